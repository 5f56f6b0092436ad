"""One real local lab for every module of this directory: playbooks/site.yml runs once, teardown.yml once.

The drills (test_drills_local.py), the run-time faults (test_faults_local.py) and the lessons (test_lessons_local.py)
need the same thing, "a running local lab": the API under gunicorn and supervisord, Prometheus with the lab's rules,
Alertmanager, on free ports in a temporary lab_dir. Bringing it up takes a minute or two, so it comes up once for all
of them (tests/support/xdist_groups.py
keeps this directory on one pytest-xdist worker) and is removed when the last test of the directory has run, also
on failure (teardown.yml, then supervisord's PID if teardown failed).

Settings: 1s scrapes and evaluations, a 1d SLO window (1-minute short alert windows) and a 20s ApiNotReady window,
so each drill takes seconds instead of minutes. Every playbook a test runs against the lab gets the same settings
(`lab["settings"]`), so nothing is reconfigured behind another test's back.

Order: pytest runs test_drills_local.py before test_faults_local.py (file names, alphabetical). The control drill
needs a lab where no alert has fired yet; the faults module's stress run (an 8 s error burst) fires burn-rate
alerts, so it comes after every drill. test_lessons_local.py comes last: its alert questions count only the alerts
active since the lesson's own fault.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, run_playbook
from tests.support.prometheus import require_binary
from tests.support.servers import free_local_ports

DRILLS = yaml.safe_load((ROOT / "group_vars" / "all" / "drills.yml").read_text())["lab_drills"]


def _drills_for_the_test() -> list[dict[str, Any]]:
    """The shipped drills; only the control drill watches for 15 s instead of 2 minutes (a trainer's kind of edit)."""
    drills = copy.deepcopy(DRILLS)
    next(d for d in drills if d["name"] == "none")["deadline"] = "15s"
    return drills


@pytest.fixture(scope="package")
def local_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    for tool in ("prometheus", "promtool", "prometheus-alertmanager"):  # Debian's name for Alertmanager
        require_binary(tool)
    tmp = tmp_path_factory.mktemp("local-lab")
    ports = free_local_ports()
    settings: dict[str, Any] = {
        "lab_platform": "local",
        "lab_dir": str(tmp / "lab"),
        "lab_local_ports": ports,
        "monitoring_local_scrape_interval": "1s",
        "monitoring_local_evaluation_interval": "1s",
        "monitoring_local_retention": "1d",
        "app_deploy_shutdown_drain_seconds": 0,
        "lab_slo": {
            "window": "1d",
            "availability": {"objective": 99.5},
            "latency": {"objective": 99.0, "threshold_seconds": 0.3},
            "outage_error_ratio": 0.2,
        },
        "lab_not_ready_window": "20s",
        "lab_drills": _drills_for_the_test(),
        "drill_warmup_seconds": 5,
        "drill_poll_interval": 1,
    }
    urls = {name: f"http://127.0.0.1:{ports[name]}" for name in ("api", "prometheus", "alertmanager")}
    teardown = None
    try:
        run_playbook("site.yml", "-e", json.dumps(settings))
        yield {"settings": settings, "urls": urls, "dir": tmp, "lab_dir": Path(settings["lab_dir"])}
    finally:
        teardown = run_playbook("teardown.yml", "-e", json.dumps(settings), check=False)
        pid_file = tmp / "lab" / "supervisor" / "supervisord.pid"
        if pid_file.exists():  # teardown failed: stop the lab's supervisord (and its programs) by its PID
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    assert teardown.returncode == 0, teardown.stdout[-4000:]
