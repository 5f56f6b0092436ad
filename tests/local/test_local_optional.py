"""Grafana, Loki and Alloy on the local platform, with stand-in binaries (tests/local/fake_server.py).

The real binaries are not installed on the test machines, so this checks the monitoring role's plumbing for them: the
configuration it writes (grafana.ini, the shared Grafana provisioning, dashboards, loki.yml, config.alloy), the admin
password file, the supervisord programs and their readiness waits, the summary, a second run changing nothing, and
teardown. It runs the real site.yml (API, Prometheus, Alertmanager included) on free ports in a temporary lab_dir,
three times (bring-up, a changed Prometheus setting (the monitoring role only), the same again), all in the
module's fixture.

It sets no lab_platform: with the default (auto) and no Minikube driver answering (DOCKER_HOST points at a socket
nobody listens on), site.yml and teardown.yml fall back to the local platform, so this is also the real bring-up
of `make lab`'s fallback (tests/local/test_platform_fallback.py checks the choice itself).
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env
from tests.support.servers import free_local_ports

# Three site.yml runs and a teardown: up to 15 minutes on a busy 2-CPU machine.
pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(1800)]

OPTIONAL = ("grafana", "loki", "alloy")
# The setting the second site.yml run changes (and the third repeats): Prometheus's rule evaluation interval.
CHANGED = {"monitoring_local_evaluation_interval": "20s"}


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("optional")
    fake_bin = base / "bin"
    fake_bin.mkdir()
    records = base / "records"
    records.mkdir()
    source = (ROOT / "tests" / "local" / "fake_server.py").read_text()
    for name in OPTIONAL:
        path = fake_bin / name
        path.write_text(f"#!{BIN / 'python'}\n{source}")
        path.chmod(0o755)
    ports = free_local_ports()
    extra = {
        "lab_dir": str(base / "lab"),
        "lab_local_ports": ports,
        "monitoring_local_binaries": {
            "prometheus": ["prometheus"],
            "promtool": ["promtool"],
            "alertmanager": ["alertmanager", "prometheus-alertmanager"],
            "amtool": ["amtool"],
            **{name: [str(fake_bin / name)] for name in OPTIONAL},
        },
    }
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    env["FAKE_RECORD_DIR"] = str(records)
    env["DOCKER_HOST"] = f"unix://{base}/no-docker-engine.sock"

    def run(playbook: str, *args: str, **overrides: object) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(BIN / "ansible-playbook"),
            str(ROOT / "playbooks" / playbook),
            "-e",
            json.dumps({**extra, **overrides}),
            *args,
        ]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    # Three site.yml runs: the bring-up; one Prometheus setting changed (a reload, no restart), a run of the
    # monitoring role only (--tags monitoring: the setting is the role's, the rest of site.yml has nothing to do);
    # the same settings again, the whole site.yml (a second run changes nothing, the API, summary and all).
    # Molecule's idempotence step repeats the default settings.
    stamp = base / "lab" / "venv" / "lab-image.json"
    first = run("site.yml")
    image_first = stamp.read_text() if stamp.exists() else ""
    prometheus_pid = _prometheus_pid(base / "lab") if first.returncode == 0 else ""
    changed = run("site.yml", "--tags", "monitoring", **CHANGED) if first.returncode == 0 else None
    again = run("site.yml", **CHANGED) if changed is not None and changed.returncode == 0 else None
    image_again = stamp.read_text() if stamp.exists() else ""
    state = {
        "base": base,
        "lab_dir": base / "lab",
        "records": records,
        "ports": ports,
        "first": first,
        "prometheus_pid": prometheus_pid,
        "changed": changed,
        "again": again,
        "same_image": image_first == image_again,
        "run": run,
    }
    yield state
    teardown = run("teardown.yml")
    state["teardown"] = teardown
    assert teardown.returncode == 0, teardown.stdout[-4000:]
    assert not (base / "lab").exists()
    for port in ports.values():
        assert not listening(port), f"port {port} still answers after teardown"


def _ok(proc: subprocess.CompletedProcess[str] | None) -> str:
    assert proc is not None
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return " ".join(proc.stdout.split())


def test_site_runs_the_optional_programs(lab: dict) -> None:
    text = _ok(lab["first"])
    for port_name in OPTIONAL:
        assert listening(lab["ports"][port_name]), f"{port_name} does not listen"
    assert f"Grafana http://127.0.0.1:{lab['ports']['grafana']}/ [RUNNING]" in text
    assert f"Loki http://127.0.0.1:{lab['ports']['loki']}/ready" in text
    assert f"Alloy http://127.0.0.1:{lab['ports']['alloy']}/" in text
    assert "Skipped, binary not on PATH" not in text


def test_the_default_platform_fell_back_to_local_with_a_banner(lab: dict) -> None:
    text = _ok(lab["first"])
    banner = "LOCAL PLATFORM INSTEAD OF MINIKUBE: no Minikube driver answers here"
    assert text.count(banner) == 2, "the banner belongs at the start and in the summary"
    assert text.index(banner) < text.index("app_image :") < text.rindex(banner)
    assert "Local lab (lab_platform=local)" in text


def results(stdout: str) -> list[tuple[str, str]]:
    """(task or handler name, status) for every result line of a play's output: ok, changed, skipping, failed, fatal."""
    found: list[tuple[str, str]] = []
    current = ""
    for line in stdout.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.+?)\] \*+$", line)
        if header:
            current = header.group(1)
        elif current and (status := re.match(r"^(ok|changed|skipping|failed|fatal):", line)):
            found.append((current, status.group(1)))
    return found


def changed_tasks(stdout: str) -> list[str]:
    """Names of the tasks (and handlers) that reported a change (once per task, whatever its loop items)."""
    names: list[str] = []
    for task, status in results(stdout):
        if status == "changed" and (not names or names[-1] != task):
            names.append(task)
    return names


def test_second_run_changes_nothing(lab: dict) -> None:
    """The third site.yml run repeats the second's settings: nothing changes."""
    _ok(lab["again"])
    changed = changed_tasks(lab["again"].stdout)
    if lab["same_image"]:
        assert changed == [], changed
    else:
        # app/ was edited between the runs (a shared working tree): a new image, and only the API follows it.
        assert all(name.startswith(("app_image :", "app_deploy :")) for name in changed), changed


def test_grafana_gets_the_shared_provisioning_and_a_password_file(lab: dict) -> None:
    _ok(lab["first"])
    lab_dir: Path = lab["lab_dir"]
    record = json.loads((lab["records"] / "grafana.json").read_text())
    password_file = lab_dir / "credentials" / "grafana-admin-password"
    secret_key_file = lab_dir / "credentials" / "grafana-secret-key"
    assert record["env"] == {
        "GF_SECURITY_ADMIN_PASSWORD__FILE": str(password_file),
        "GF_SECURITY_SECRET_KEY__FILE": str(secret_key_file),
    }
    assert f"--config={lab_dir}/grafana/grafana.ini" in record["argv"]
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text()
    assert len(password) >= 20
    # The secret is neither on a command line, nor in grafana.ini, nor in the play's output.
    assert password not in " ".join(record["argv"])
    assert password not in (lab_dir / "grafana" / "grafana.ini").read_text()
    assert password not in lab["first"].stdout
    # Grafana's secret_key: generated once like the password, read from its file, never shown
    assert stat.S_IMODE(secret_key_file.stat().st_mode) == 0o600
    secret_key = secret_key_file.read_text()
    assert len(secret_key) >= 32
    assert secret_key != password
    assert secret_key != "SW2YcwTIb9zpOOhoPsMm"  # Grafana's published default
    for text in (" ".join(record["argv"]), (lab_dir / "grafana" / "grafana.ini").read_text()):
        assert secret_key not in text
    for run in ("first", "changed", "again"):
        assert secret_key not in lab[run].stdout + lab[run].stderr
    assert secret_key_file.read_text() == secret_key  # the later runs kept it
    datasources = yaml.safe_load((lab_dir / "grafana/provisioning/datasources/lab.yml").read_text())
    by_uid = {ds["uid"]: ds for ds in datasources["datasources"]}
    assert by_uid["lab-prometheus"]["url"] == f"http://127.0.0.1:{lab['ports']['prometheus']}"
    assert by_uid["lab-loki"]["url"] == f"http://127.0.0.1:{lab['ports']['loki']}"
    providers = yaml.safe_load((lab_dir / "grafana/provisioning/dashboards/lab.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == f"{lab_dir}/grafana/dashboards"
    shipped = sorted(p.name for p in (ROOT / "files" / "dashboards").glob("*.json"))
    assert sorted(p.name for p in (lab_dir / "grafana" / "dashboards").glob("*.json")) == shipped


def test_alloy_ships_the_app_log_to_loki_with_the_contract_labels(lab: dict) -> None:
    _ok(lab["first"])
    lab_dir: Path = lab["lab_dir"]
    config = (lab_dir / "alloy" / "config.alloy").read_text()
    assert f'"__path__"  = "{lab_dir}/logs/app.log"' in config
    for label in (
        '"namespace" = "sre-lab"',
        '"pod"       = "flask-api-local"',
        '"container" = "api"',
        '"app"       = "flask-api"',
    ):
        assert label in config
    assert f'url = "http://127.0.0.1:{lab["ports"]["loki"]}/loki/api/v1/push"' in config
    loki = yaml.safe_load((lab_dir / "loki" / "loki.yml").read_text())
    assert loki["server"]["http_listen_port"] == lab["ports"]["loki"]
    assert loki["common"]["storage"]["filesystem"]["chunks_directory"].startswith(str(lab_dir))
    # Retention is applied only by the compactor with retention_enabled; it keeps what Prometheus keeps.
    assert loki["compactor"]["retention_enabled"] is True
    assert loki["compactor"]["delete_request_store"] == "filesystem"
    assert loki["compactor"]["working_directory"].startswith(str(lab_dir))
    local = yaml.safe_load((ROOT / "group_vars/all/local.yml").read_text())
    assert loki["limits_config"]["retention_period"] == local["monitoring_local_retention"]


def test_the_processes_run_under_the_labs_supervisord(lab: dict) -> None:
    _ok(lab["first"])
    lab_dir: Path = lab["lab_dir"]
    ctl = [
        str(lab_dir / "supervisor/venv/bin/supervisorctl"),
        "-c",
        str(lab_dir / "supervisor/supervisord.conf"),
    ]
    status = subprocess.run(
        [*ctl, "status"], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    programs = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines() if line.strip()}
    assert programs == dict.fromkeys(
        ["alert-receiver", "alertmanager", "alloy", "app", "grafana", "loki", "prober", "prometheus"],
        "RUNNING",
    )


def task_results(stdout: str, task: str) -> list[str]:
    """The statuses of every run of the tasks whose name starts with task."""
    return [status for name, status in results(stdout) if name.startswith(task)]


def test_the_labs_supervisord_is_set_up_once_per_run(lab: dict) -> None:
    """app_deploy, alert_receiver and monitoring each ask for supervisord; only the first call sets it up."""
    text = _ok(lab["first"])
    assert "lab_shared : Install supervisord into" in text
    results = task_results(lab["first"].stdout, "lab_shared : Install supervisord into")
    assert results == ["changed", "skipping", "skipping"], results
    asked = task_results(lab["first"].stdout, "lab_shared : Ask whether the lab's supervisord is running")
    assert asked == ["skipping", "ok", "ok"], "a fresh lab has no supervisorctl yet; later callers ask it"


def test_the_installed_app_is_the_source_without_bytecode(lab: dict) -> None:
    """app_image's copy holds the files of the image id: labapi/ and the two top files, not the checkout's pyc."""
    _ok(lab["first"])
    app_dir: Path = lab["lab_dir"] / "app"
    source = ROOT / "app"
    expected = {
        p.relative_to(source).as_posix()
        for p in (source / "labapi").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    } | {"gunicorn.conf.py", "requirements.txt"}
    installed = {
        p.relative_to(app_dir).as_posix()
        for p in app_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts  # the running API may write its own bytecode
    }
    assert installed == expected
    modes = {oct(p.stat().st_mode & 0o777) for p in app_dir.rglob("*") if "__pycache__" not in p.parts}
    assert modes <= {"0o644", "0o755"}, modes


def test_lab_dir_its_logs_and_credentials_are_private(lab: dict) -> None:
    _ok(lab["again"])
    lab_dir: Path = lab["lab_dir"]
    for path in (lab_dir, lab_dir / "logs", lab_dir / "credentials", lab_dir / "supervisor"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    conf = (lab_dir / "supervisor" / "supervisord.conf").read_text()
    assert "\numask=077\n" in conf
    logs = sorted((lab_dir / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {"app.log", "prometheus.log", "supervisord.log"}
    for log in logs:  # written by supervisord and its programs under umask 077
        assert stat.S_IMODE(log.stat().st_mode) & 0o077 == 0, (log, oct(log.stat().st_mode))


def _get(url: str, method: str = "GET") -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _prometheus_pid(lab_dir: Path) -> str:
    ctl = [
        str(lab_dir / "supervisor/venv/bin/supervisorctl"),
        "-c",
        str(lab_dir / "supervisor/supervisord.conf"),
    ]
    return subprocess.run(
        [*ctl, "pid", "prometheus"], capture_output=True, text=True, timeout=60
    ).stdout.strip()


def test_prometheus_has_no_lifecycle_api_and_reloads_on_sighup(lab: dict) -> None:
    _ok(lab["again"])
    lab_dir: Path = lab["lab_dir"]
    base = f"http://127.0.0.1:{lab['ports']['prometheus']}"
    pid = lab["prometheus_pid"]  # after the first run, before the configuration change
    assert pid.isdigit()
    assert "--web.enable-lifecycle" not in Path(f"/proc/{pid}/cmdline").read_text()
    for endpoint in ("/-/quit", "/-/reload"):
        status, body = _get(base + endpoint, "POST")
        assert status == 403, (endpoint, status, body)
    assert _get(base + "/-/ready")[0] == 200  # still running
    # the configuration change reloaded it (SIGHUP through supervisord), without a restart
    _ok(lab["changed"])
    names = changed_tasks(lab["changed"].stdout)
    assert "monitoring : Reload Prometheus with SIGHUP (rules or prometheus.yml changed)" in names, names
    config = json.loads(_get(base + "/api/v1/status/config")[1])["data"]["yaml"]
    assert "evaluation_interval: 20s" in config
    assert _prometheus_pid(lab_dir) == pid
    # (the run after it, with the same settings, changed nothing: test_second_run_changes_nothing)
