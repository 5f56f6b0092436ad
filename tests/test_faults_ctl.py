"""roles/app_deploy/files/faults_ctl.py: the controller side of the run-time faults (validate, wait for every worker)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.servers import start_app

ROOT = Path(__file__).resolve().parents[1]
CTL = ROOT / "roles" / "app_deploy" / "files" / "faults_ctl.py"

_spec = importlib.util.spec_from_file_location("faults_ctl", CTL)
assert _spec
assert _spec.loader
faults_ctl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faults_ctl)


def ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CTL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_validate_normalises_a_good_document() -> None:
    proc = ctl("validate", json.dumps({"db_failure_rate": 1}))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "db_failure_rate": 1.0,
        "extra_latency_ms": 0,
        "extra_latency_route": "",
        "force_unready": False,
        "users_error_rate": 0.0,
    }


def test_validate_names_every_problem_of_a_bad_document() -> None:
    proc = ctl("validate", json.dumps({"db_failure_rate": -1, "extra_latency_route": "/nope", "x": 1}))
    assert proc.returncode == 2
    assert "db_failure_rate: -1 is not a number from 0 to 1" in proc.stderr
    assert "extra_latency_route: '/nope'" in proc.stderr
    assert "unknown key 'x'" in proc.stderr


def test_faults_ctl_reaches_labapi_as_an_installed_package(tmp_path: Path) -> None:
    """No sys.path edit: a copy of faults_ctl.py outside the checkout, run from elsewhere with no PYTHONPATH, validates
    with labapi as requirements/lab.txt installs it in the lab's virtualenv, and refuses what the app refuses."""
    copy = tmp_path / "faults_ctl.py"
    shutil.copy(CTL, copy)
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(copy), "validate", json.dumps({"extra_latency_route": None})],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "extra_latency_route: None is not" in proc.stderr


METRICS = """# HELP app_fault Fault in effect
app_fault{fault="db_failure_rate",pid="11"} 1.0
app_fault{fault="extra_latency_ms",pid="11"} 0.0
app_fault{fault="force_unready",pid="11"} 0.0
app_fault{fault="users_error_rate",pid="11"} 0.0
app_fault{fault="db_failure_rate",pid="12"} 0.05
app_fault{fault="extra_latency_ms",pid="12"} 0.0
app_fault{fault="force_unready",pid="12"} 0.0
app_fault{fault="users_error_rate",pid="12"} 0.0
app_fault_latency_route{pid="11",route="all"} 1.0
app_fault_latency_route{pid="11",route="/api/users"} 0.0
app_fault_latency_route{pid="11",route="/api/echo"} 0.0
app_fault_latency_route{pid="11",route="/api/error"} 0.0
app_fault_latency_route{pid="12",route="all"} 0.0
app_fault_latency_route{pid="12",route="/api/users"} 1.0
app_fault_latency_route{pid="12",route="/api/echo"} 0.0
app_fault_latency_route{pid="12",route="/api/error"} 0.0
app_faults_applied_timestamp_seconds{pid="11"} 1700000005.0
app_faults_applied_timestamp_seconds{pid="12"} 1700000001.0
"""


def test_a_lagging_or_missing_worker_is_named() -> None:
    workers = faults_ctl.parse_workers(METRICS)
    assert set(workers) == {"11", "12"}
    expected = faults_ctl.expected_values(faults_ctl.normalise({"db_failure_rate": 1}))
    problems = faults_ctl.lagging(workers, expected, 3)
    assert problems[0] == "2 of 3 workers report app_fault"
    assert problems[1] == (
        "worker 12 still has db_failure_rate=0.05, latency_route[all]=0.0, latency_route[/api/users]=1.0"
    )
    assert len(problems) == 2


def test_wait_times_out_naming_the_instance_and_worker() -> None:
    faults = faults_ctl.normalise({"db_failure_rate": 1})
    with pytest.raises(
        TimeoutError, match=r"within 1 s: http://x: worker 12 still has db_failure_rate=0\.05"
    ):
        faults_ctl.wait(lambda: {"http://x": METRICS}, faults, 0.0, 2, timeout=1, interval=0.1)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_wait_returns_when_every_worker_of_a_real_gunicorn_has_the_document(tmp_path: Path) -> None:
    with start_app(tmp_path, workers=3, faults={"db_failure_rate": 0.05}) as server:
        url = server.url + "/metrics"
        written = time.time()
        server.set_faults({"db_failure_rate": 1, "extra_latency_ms": 5, "extra_latency_route": "/api/echo"})
        document = json.dumps(
            {"db_failure_rate": 1, "extra_latency_ms": 5, "extra_latency_route": "/api/echo"}
        )
        proc = ctl(
            "wait",
            document,
            "--written-at",
            str(written),
            "--workers",
            "3",
            "--timeout",
            "20",
            "--metrics-url",
            url,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert written <= result["effective_at"] <= result["confirmed_at"]
        assert result["effective_at"] - written < 5
        assert len(result["instances"][url]) == 3
        # Expecting a document the app does not have: exit 1 naming what lags.
        proc = ctl(
            "wait",
            "{}",
            "--written-at",
            str(written),
            "--workers",
            "3",
            "--timeout",
            "1",
            "--metrics-url",
            url,
        )
        assert proc.returncode == 1
        assert "still has db_failure_rate=1.0" in proc.stderr
        # Expecting more workers than run: exit 1 saying how many report.
        proc = ctl(
            "wait",
            document,
            "--written-at",
            str(written),
            "--workers",
            "4",
            "--timeout",
            "1",
            "--metrics-url",
            url,
        )
        assert proc.returncode == 1
        assert "3 of 4 workers report app_fault" in proc.stderr
