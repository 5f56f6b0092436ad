"""The local platform's preflight: bad input and a taken port stop site.yml early with a message that says what to do.

Each test runs the real playbooks/site.yml (or teardown.yml) with lab_platform=local against a short lab_dir under
pytest's temporary folder, limited by tags to the preflight that is being tested, so no process is started.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, ansible_env
from tests.support.servers import free_local_ports


@pytest.fixture
def ports() -> dict[str, int]:
    """A port map for lab_local_ports where every port is free right now."""
    return free_local_ports()


@pytest.fixture
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab_dir with a short path: the supervisor socket under it must stay under 100 characters (the preflight
    checks that), and tmp_path's name grows with the test's name and, under pytest-xdist, the worker's folder."""
    return tmp_path_factory.mktemp("pf") / "lab"


@pytest.fixture
def squatter() -> Iterator[socket.socket]:
    """A listening socket that is not the lab's: someone else holding a port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


def run(
    playbook: str, lab_dir: Path, extra: dict[str, object], *args: str, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    extra_vars = {"lab_platform": "local", "lab_dir": str(lab_dir), **extra}
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    cmd = [
        str(BIN / "ansible-playbook"),
        str(ROOT / "playbooks" / playbook),
        "-e",
        json.dumps(extra_vars),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def output(proc: subprocess.CompletedProcess[str]) -> str:
    # The YAML callback folds long messages over several lines: compare on single spaces.
    return " ".join((proc.stdout + proc.stderr).split())


def test_port_taken_by_another_process_stops_the_api(lab_dir: Path, ports: dict[str, int], squatter) -> None:
    taken = squatter.getsockname()[1]
    proc = run(
        "site.yml",
        lab_dir,
        {"lab_local_ports": {**ports, "api": taken}},
        "--tags",
        "app_deploy_preflight",
    )
    text = output(proc)
    assert proc.returncode != 0, text[-3000:]
    assert (
        f"Port {taken} on 127.0.0.1 (lab_local_ports.api, for app) is already in use by another process"
        in text
    )
    assert "pick a free port for lab_local_ports.api in group_vars/all/local.yml" in text


def test_port_taken_by_another_process_stops_prometheus(
    lab_dir: Path, ports: dict[str, int], squatter
) -> None:
    taken = squatter.getsockname()[1]
    proc = run(
        "site.yml",
        lab_dir,
        {"lab_local_ports": {**ports, "prometheus": taken}},
        "--tags",
        "monitoring_preflight",
    )
    text = output(proc)
    assert proc.returncode != 0, text[-3000:]
    assert f"Port {taken} on 127.0.0.1 (lab_local_ports.prometheus, for prometheus) is already in use" in text


def test_free_ports_pass_the_preflights(lab_dir: Path, ports: dict[str, int]) -> None:
    # app_deploy's preflight also wants the app's image: with no image it says how to build it, after the port check.
    proc = run("site.yml", lab_dir, {"lab_local_ports": ports}, "--tags", "monitoring_preflight")
    assert proc.returncode == 0, output(proc)[-3000:]
    proc = run("site.yml", lab_dir, {"lab_local_ports": ports}, "--tags", "app_deploy_preflight")
    text = output(proc)
    assert proc.returncode != 0
    assert "already in use" not in text
    assert "The API's virtualenv is not built yet" in text
    assert "Run the whole playbooks/site.yml -e lab_platform=local" in text


@pytest.mark.parametrize(
    ("extra", "tags", "expected"),
    [
        (
            {"monitoring_local_scrape_interval": "fast"},
            "monitoring_preflight",
            "monitoring_local_scrape_interval and monitoring_local_evaluation_interval (group_vars/all/local.yml) "
            "must be Prometheus durations",
        ),
        (
            {"monitoring_local_retention": "forever"},
            "monitoring_preflight",
            "monitoring_local_retention one like 7d",
        ),
        (
            {"app_deploy_settings": {"APP_WORKERS": "0"}},
            "app_deploy_preflight",
            "app_deploy_settings.APP_WORKERS (group_vars/all/app.yml) must be an integer from 1 to 64; got 0",
        ),
        (
            {"app_deploy_settings": {"APP_LOG_LEVEL": {"nested": 1}}},
            "app_deploy_preflight",
            "app_deploy_settings (group_vars/all/app.yml) must map environment variable names",
        ),
        (
            {"lab_baseline_faults": {"APP_DB_FAILURE_RATE": "0.5", "users_error_rate": 2}},
            "app_deploy_preflight",
            "bad fault document: unknown key 'APP_DB_FAILURE_RATE' (known: db_failure_rate, extra_latency_ms, "
            "extra_latency_route, force_unready, users_error_rate); users_error_rate: 2 is not a number from 0 to 1",
        ),
        (
            {
                "app_deploy_probes": {
                    "startup": {},
                    "liveness": {},
                    "readiness": {"path": "/health/readiness"},
                }
            },
            "app_deploy_preflight",
            "app_deploy_probes.startup (roles/app_deploy/defaults/main.yml) must have a path starting with /",
        ),
        (
            {
                "app_deploy_probes": {
                    name: {
                        "path": "/health/liveness",
                        "period_seconds": 0 if name == "readiness" else 5,
                        "timeout_seconds": 2,
                        "failure_threshold": 3,
                    }
                    for name in ("startup", "liveness", "readiness")
                }
            },
            "app_deploy_preflight",
            "app_deploy_probes.readiness (roles/app_deploy/defaults/main.yml) must have a path starting with / "
            "(no spaces or commas) and period_seconds, timeout_seconds and failure_threshold as whole numbers from 1; "
            "got {'path': '/health/liveness', 'period_seconds': 0,",
        ),
        (
            {"app_image_local_python": "/nonexistent/python3"},
            "app_image_preflight",
            "app_image_local_python (/nonexistent/python3) must be a Python >= 3.12 with the venv module",
        ),
    ],
    ids=[
        "scrape-interval",
        "retention",
        "workers",
        "settings-shape",
        "fault-document",
        "probes-missing",
        "probe-period",
        "python",
    ],
)
def test_bad_input_gets_a_clear_message(
    lab_dir: Path, ports: dict[str, int], extra: dict[str, object], tags: str, expected: str
) -> None:
    proc = run("site.yml", lab_dir, {"lab_local_ports": ports, **extra}, "--tags", tags)
    text = output(proc)
    assert proc.returncode != 0, text[-3000:]
    assert expected in text, text[-3000:]


def test_missing_binaries_message_says_what_to_install(lab_dir: Path, ports: dict[str, int]) -> None:
    binaries = {
        name: [f"/nonexistent/{name}"]
        for name in ("prometheus", "promtool", "alertmanager", "amtool", "grafana", "loki", "alloy")
    }
    proc = run(
        "site.yml",
        lab_dir,
        {"lab_local_ports": ports, "monitoring_local_binaries": binaries},
        "--tags",
        "monitoring_preflight",
    )
    text = output(proc)
    assert proc.returncode != 0
    assert "sudo apt-get install prometheus prometheus-alertmanager" in text
    assert "https://prometheus.io/download/" in text


def test_teardown_of_a_lab_that_does_not_exist_is_a_no_op(tmp_path: Path) -> None:
    proc = run("teardown.yml", tmp_path / "never-created", {})
    assert proc.returncode == 0, output(proc)[-3000:]
    assert not (tmp_path / "never-created").exists()


def test_teardown_refuses_to_remove_the_home_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "keep").mkdir(parents=True)
    proc = run("teardown.yml", home, {}, home=home)
    text = output(proc)
    assert proc.returncode != 0
    assert "looks like a system or home directory" in text
    assert (home / "keep").is_dir()


def test_teardown_keeps_the_run_reports_and_removes_the_rest(lab_dir: Path) -> None:
    """The reports of stress runs and drills are the user's results: teardown removes the lab's state around them."""
    report = lab_dir / "reports" / "20261127T000000Z" / "report.md"
    drill = lab_dir / "reports" / "drills" / "db-outage" / "report.json"
    state = [lab_dir / "venv" / "bin" / "python", lab_dir / "logs" / "app.log", lab_dir / ".hidden"]
    for path in (report, drill, *state):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    proc = run("teardown.yml", lab_dir, {})
    text = output(proc)
    assert proc.returncode == 0, text[-3000:]
    assert report.read_text() == "x"
    assert drill.read_text() == "x"
    assert sorted(p.name for p in lab_dir.iterdir()) == ["reports"]
    assert f"Kept the run reports in {lab_dir}/reports" in text
    again = run("teardown.yml", lab_dir, {})
    assert again.returncode == 0, output(again)[-3000:]
    assert "changed=0" in output(again)


def test_teardown_keeps_reports_under_another_name_and_leaves_reports_outside_lab_dir(
    lab_dir: Path, tmp_path: Path
) -> None:
    """lab_reports_dir (group_vars/all/lab.yml) is the one place the reports' folder is named: teardown keeps the
    folder it names, and removes all of lab_dir when the reports are elsewhere (it never touches them there)."""
    kept = lab_dir / "results" / "20261127T000000Z" / "report.md"
    for path in (kept, lab_dir / "reports" / "old.md", lab_dir / "logs" / "app.log"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    proc = run("teardown.yml", lab_dir, {"lab_reports_dir": str(lab_dir / "results")})
    assert proc.returncode == 0, output(proc)[-3000:]
    assert kept.read_text() == "x"
    assert sorted(p.name for p in lab_dir.iterdir()) == ["results"]

    outside = tmp_path / "elsewhere" / "reports" / "report.md"
    outside.parent.mkdir(parents=True)
    outside.write_text("x")
    proc = run("teardown.yml", lab_dir, {"lab_reports_dir": str(outside.parent)})
    assert proc.returncode == 0, output(proc)[-3000:]
    assert not lab_dir.exists()
    assert outside.read_text() == "x"


@pytest.mark.parametrize("where", ["deeper/reports", "."])
def test_reports_nested_deeper_in_lab_dir_are_refused_before_anything_is_removed(
    lab_dir: Path, where: str
) -> None:
    state = lab_dir / "logs" / "app.log"
    state.parent.mkdir(parents=True)
    state.write_text("x")
    reports = lab_dir / where
    proc = run("teardown.yml", lab_dir, {"lab_reports_dir": str(reports)})
    text = output(proc)
    assert proc.returncode != 0, text[-3000:]
    assert (
        f"lab_reports_dir={reports} must be an absolute path, either outside lab_dir={lab_dir} or a folder"
        in text
    )
    assert state.read_text() == "x"
