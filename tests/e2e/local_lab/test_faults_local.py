"""Run-time faults end to end on the local platform: the real site.yml deploys the lab (API under supervisord,
Prometheus, Alertmanager) on free ports in a temporary lab_dir (the directory's shared local lab, conftest.py, also
used by test_drills_local.py), then the real playbooks/faults.yml (app_deploy's `faults` entry point) switches
faults on the running API and back, and teardown.yml removes everything.

Checked: the switch needs no restart (same gunicorn master and workers, counters keep counting), it returns only
once every worker reports the document, bad documents change nothing, and Prometheus sees app_fault. The time
from the switch to "in effect on every worker" is printed (pytest -n 0 -s).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env
from tests.support.prometheus import query, wait_for_series
from tests.support.servers import worker_pids

# site.yml on a busy 2-core machine takes minutes (when this module is the first to ask for the lab)
pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(1800)]


def _status(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return resp.read().decode()


def _fault_values(text: str) -> dict[str, set[float]]:
    values: dict[str, set[float]] = {}
    for fault, value in re.findall(r'^app_fault\{fault="(\w+)",pid="\d+"\} (\S+)$', text, re.M):
        values.setdefault(fault, set()).add(float(value))
    return values


def _requests_served(text: str, endpoint: str = "/api/users") -> float:
    """The API's count of requests to `endpoint` (every status, every worker) in a /metrics text."""
    return sum(
        float(v)
        for v in re.findall(
            rf'^app_request_count_total\{{endpoint="{re.escape(endpoint)}"[^}}]*\}} (\S+)$', text, re.M
        )
    )


@pytest.fixture
def lab(local_lab: dict[str, Any]) -> dict[str, Any]:
    """The directory's shared local lab (conftest.py), with this module's helpers: `run` runs a playbook with the
    lab's own settings (so nothing else changes), `master` is the API's gunicorn master PID from supervisorctl."""
    lab_dir: Path = local_lab["lab_dir"]
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"

    def run(playbook: str, *more: str) -> subprocess.CompletedProcess[str]:
        cmd = [
            str(BIN / "ansible-playbook"),
            str(ROOT / "playbooks" / playbook),
            "-e",
            json.dumps(local_lab["settings"]),
            *more,
        ]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)

    supervisorctl = [
        str(lab_dir / "supervisor/venv/bin/supervisorctl"),
        "-c",
        str(lab_dir / "supervisor/supervisord.conf"),
    ]
    return {
        "run": run,
        "api": local_lab["urls"]["api"],
        "prometheus": local_lab["urls"]["prometheus"],
        "faults_file": lab_dir / "run" / "faults.yaml",
        "prober_log": lab_dir / "logs" / "prober.log",
        "not_ready_window": local_lab["settings"]["lab_not_ready_window"],
        "master": lambda: int(
            subprocess.run([*supervisorctl, "pid", "app"], capture_output=True, text=True).stdout
        ),
    }


def test_the_faults_playbook_switches_a_running_local_lab_without_a_restart(lab: dict) -> None:
    api = lab["api"]
    baseline = yaml.safe_load((ROOT / "group_vars/all/app.yml").read_text())["lab_baseline_faults"]
    assert (
        yaml.safe_load(lab["faults_file"].read_text()) == baseline
    )  # the deploy wrote the baseline document
    master = lab["master"]()
    workers = worker_pids(master)
    assert len(workers) == 2
    for _ in range(20):
        _status(api + "/api/users")
    served = _requests_served(_metrics(api))
    assert served >= 20

    started = time.time()
    proc = lab["run"](
        "faults.yml", "-e", json.dumps({"faults": {"db_failure_rate": 1, "force_unready": True}})
    )
    took = time.time() - started
    assert proc.returncode == 0, proc.stdout[-6000:]
    # The play returned only after every worker reported the document: no waiting needed here.
    assert _fault_values(_metrics(api)) == {
        "db_failure_rate": {1.0},
        "extra_latency_ms": {0.0},
        "force_unready": {1.0},
        "users_error_rate": {0.0},
    }
    match = re.search(r"Faults in effect on every worker ([0-9.]+) s after the switch", proc.stdout)
    assert match, proc.stdout[-3000:]
    print(
        f"\nlocal platform: faults in effect on every worker {match.group(1)} s after the switch (playbook: {took:.1f} s)"
    )
    assert float(match.group(1)) <= 10
    for _ in range(10):
        assert _status(api + "/api/users")[0] == 503
        status, body = _status(api + "/health/readiness")
        assert status == 503
        assert body["failing"] == ["database", "forced"]
    # No restart: the same master and workers, and the counters kept counting.
    assert lab["master"]() == master
    assert worker_pids(master) == workers
    assert _requests_served(_metrics(api)) >= served

    # Prometheus sees the faults, with the lab's labels (what the dashboards and the drills read).
    series = wait_for_series(
        lab["prometheus"],
        'max by (fault) (app_fault{app="flask-api",fault="db_failure_rate"}) == 1',
        timeout=30,
    )
    assert series[0]["metric"]["fault"] == "db_failure_rate"

    # A bad document fails the play, names the problem and changes nothing.
    before = lab["faults_file"].read_text()
    bad = lab["run"]("faults.yml", "-e", json.dumps({"faults": {"db_failure_rate": 3, "typo": 1}}))
    assert bad.returncode != 0
    assert "db_failure_rate: 3 is not a number from 0 to 1" in bad.stdout
    assert "unknown key 'typo'" in bad.stdout
    assert lab["faults_file"].read_text() == before
    assert _status(api + "/health/readiness")[0] == 503

    # Without `faults` the baseline comes back.
    restore = lab["run"]("faults.yml")
    assert restore.returncode == 0, restore.stdout[-6000:]
    assert yaml.safe_load(lab["faults_file"].read_text()) == baseline
    assert _status(api + "/health/readiness")[0] == 200
    assert _fault_values(_metrics(api))["db_failure_rate"] == {baseline["db_failure_rate"]}
    assert lab["master"]() == master
    assert worker_pids(master) == workers
    assert query(
        lab["prometheus"], "app_fault_reload_errors_total"
    )  # the counter exists (at 0) for the dashboards


def _prober_states(log: Path) -> list[tuple[str, str, str]]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [(line["probe"], line["state"], line["got"]) for line in lines if "state" in line]


def test_the_prober_probes_like_the_kubelet_so_unready_pages_without_any_load(lab: dict) -> None:
    """The local platform's prober (supervisord program `prober`, app_deploy_probes) sends the readiness probes on the
    Deployment's schedule: with force_unready and no load test at all, ApiNotReady fires within lab_not_ready_window
    plus one probe period and the scrape/evaluation lag, and the prober logs the probe's change of state."""
    probes = yaml.safe_load((ROOT / "roles/app_deploy/defaults/main.yml").read_text())["app_deploy_probes"]
    period = probes["readiness"]["period_seconds"]
    window = int(lab["not_ready_window"].removesuffix("s"))
    prom = lab["prometheus"]
    firing = 'ALERTS{alertname="ApiNotReady",alertstate="firing"}'
    deadline = time.monotonic() + window + 30
    while query(prom, firing) and time.monotonic() < deadline:  # an earlier test's drill may still resolve it
        time.sleep(1)
    assert not query(prom, firing), "ApiNotReady still fires before the fault"
    assert ("readiness", "ok", "HTTP 200") in _prober_states(lab["prober_log"])
    before, started = _requests_served(_metrics(lab["api"]), "/health/readiness"), time.monotonic()

    switched = lab["run"]("faults.yml", "-e", json.dumps({"faults": {"force_unready": True}}))
    try:
        assert switched.returncode == 0, switched.stdout[-4000:]
        effective = time.monotonic()
        # Nothing else sends requests now: the prober's probes alone must page.
        series = wait_for_series(prom, firing, timeout=window + period + 20)
        detect = time.monotonic() - effective
        assert series[0]["metric"]["severity"] == "page"
        probes_sent = _requests_served(_metrics(lab["api"]), "/health/readiness") - before
        elapsed = time.monotonic() - started
        print(
            f"\nApiNotReady fired {detect:.1f} s after force_unready, with {probes_sent:.0f} probes in {elapsed:.0f} s"
        )
        assert elapsed / period - 2 <= probes_sent <= elapsed / period + 2, (probes_sent, elapsed)
        states = _prober_states(lab["prober_log"])
        assert states[-1] == ("readiness", "failed", "HTTP 503"), states
    finally:
        restore = lab["run"]("faults.yml")
    assert restore.returncode == 0, restore.stdout[-4000:]
    deadline = time.monotonic() + 3 * period
    while (
        _prober_states(lab["prober_log"])[-1] != ("readiness", "ok", "HTTP 200")
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert _prober_states(lab["prober_log"])[-1] == ("readiness", "ok", "HTTP 200")


def test_a_second_deploy_restores_the_baseline_without_restarting(lab: dict) -> None:
    master = lab["master"]()
    switched = lab["run"]("faults.yml", "-e", json.dumps({"faults": {"users_error_rate": 1}}))
    assert switched.returncode == 0, switched.stdout[-4000:]
    assert _status(lab["api"] + "/api/users")[0] == 500
    site = lab["run"]("site.yml", "--tags", "app_deploy")
    assert site.returncode == 0, site.stdout[-4000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _status(lab["api"] + "/api/users")[0] == 500:
        time.sleep(0.2)
    assert _fault_values(_metrics(lab["api"]))["users_error_rate"] == {0.0}
    assert lab["master"]() == master


def test_the_stress_fault_window_switches_at_run_time(lab: dict) -> None:
    """playbooks/stress.yml with its fault window: the error burst goes on and off through the same entry point,
    the API is never restarted, and fault.json records when each switch was in effect on every worker."""
    master = lab["master"]()
    workers = worker_pids(master)
    run = {
        "stress_test_shape": "steady",
        "stress_test_users": 4,
        "stress_test_spawn_rate": 4,
        "stress_test_duration": "24s",
        "stress_test_wait_min_seconds": 0.05,
        "stress_test_wait_max_seconds": 0.2,
        "stress_test_progress_interval": 4,
        "stress_test_settle_timeout": 30,
        "stress_test_fault_enabled": True,
        "stress_test_fault_start": "6s",
        "stress_test_fault_duration": "8s",
        "stress_test_fault_settings": {"users_error_rate": 1},
    }
    proc = lab["run"]("stress.yml", "-e", json.dumps(run))
    assert proc.returncode == 0, proc.stdout[-6000:]
    latest = Path(lab["faults_file"]).parents[1] / "reports" / "latest"
    window = json.loads((latest / "fault.json").read_text())
    assert window["settings"] == {"users_error_rate": 1}
    assert window["on"] <= window["on_effective"] < window["off"] <= window["off_effective"]
    on_took, off_took = window["on_effective"] - window["on"], window["off_effective"] - window["off"]
    print(f"\nstress fault window: on in effect after {on_took:.2f} s, off after {off_took:.2f} s")
    assert on_took <= 10
    assert off_took <= 10
    # The burst really hit /api/users during the window, counted as injected errors, and the API was not restarted.
    injected = re.findall(
        r'^app_error_count_total\{endpoint="/api/users",error_type="injected_error"\} (\S+)$',
        _metrics(lab["api"]),
        re.M,
    )
    assert injected
    assert float(injected[0]) > 0
    assert lab["master"]() == master
    assert worker_pids(master) == workers
    assert _fault_values(_metrics(lab["api"]))["users_error_rate"] == {0.0}
