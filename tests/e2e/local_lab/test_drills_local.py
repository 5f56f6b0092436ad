"""playbooks/drill.yml end to end on the local platform: real drills against a real local lab.

The lab is the directory's shared local lab (conftest.py: playbooks/site.yml once, for this module and
test_faults_local.py; 1s scrapes and evaluations, a 1d SLO window with 1-minute short alert windows and a 20s
ApiNotReady window, so each drill takes seconds instead of minutes). The drills
db-outage, unready and none run as a user runs them (stress_test's Locust as the load, app_deploy's faults entry
point for the fault), and each report is checked against what Prometheus (the ALERTS series, app_fault) and
Alertmanager recorded. teardown.yml stops everything at the end, also on failure (conftest.py).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_playbook
from tests.support.prometheus import query

# Bringing the local lab up (site.yml) takes minutes on a busy 2-core machine: each test gets 30 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(1800)]


@pytest.fixture
def lab(local_lab: dict[str, Any]) -> dict[str, Any]:
    """The directory's shared local lab (conftest.py): its settings, URLs and directory."""
    return local_lab


def drill(lab: dict[str, Any], name: str, check: bool = True):
    proc = run_playbook("drill.yml", "-e", json.dumps({**lab["settings"], "drill": name}), check=check)
    latest = Path(lab["settings"]["lab_dir"]) / "reports" / "drills" / "latest"
    report = json.loads((latest / "report.json").read_text()) if check else None
    return proc, latest.resolve(), report


def firing_samples(prom: str, alert: str, report: dict[str, Any]) -> list[float]:
    """Raw ALERTS samples of `alert` (firing) over the drill, straight from Prometheus."""
    times = report["times"]
    rng = int(times["ended"] - times["started"]) + 5
    result = query(prom, f'ALERTS{{alertname="{alert}",alertstate="firing"}}[{rng}s]', time_=times["ended"])
    return sorted(float(t) for series in result for t, _v in series["values"])


def first_sample_at(prom: str, promql: str, start: float, end: float) -> float | None:
    """The first time in [start, end] (1 s steps) at which `promql` returns something."""
    data = query_range(prom, promql, start, end)
    stamps = sorted(float(t) for series in data for t, _v in series["values"])
    return stamps[0] if stamps else None


def query_range(prom: str, promql: str, start: float, end: float) -> list[dict[str, Any]]:
    from tests.support.prometheus import api

    return api(
        prom, "query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
    )["result"]


def check_detected(
    lab: dict[str, Any], report: dict[str, Any], alert: str, severity: str = "page"
) -> dict[str, Any]:
    """The report's figures for `alert` are what Prometheus and Alertmanager recorded."""
    prom = lab["urls"]["prometheus"]
    times = report["times"]
    story = report["alerts"][alert]
    assert story["fired"], story
    samples = firing_samples(prom, alert, report)
    during = [t for t in samples if t >= times["fault_requested"]]
    assert during, f"Prometheus holds no firing sample of {alert} during the drill"
    # Time to detect: the first firing evaluation (Prometheus's ALERTS series) after the fault was in effect.
    assert story["prometheus_firing_at"] == pytest.approx(
        during[0], abs=0.01
    )  # epoch seconds: absolute tolerance
    assert story["time_to_detect_seconds"] == pytest.approx(during[0] - times["fault_effective"], abs=0.01)
    assert 0 < story["time_to_detect_seconds"] <= report["drill"]["deadline_seconds"]
    # Alertmanager got it from this Prometheus: its startsAt is the alert's first evaluation there, and the
    # routing file (roles/monitoring/templates/alertmanager.yml.j2) sent it to the receiver of its severity.
    assert story["alertmanager_receivers"] == [severity]
    assert abs(story["alertmanager_starts_at"] - during[0]) <= 2.0
    assert story["prometheus_firing_at"] <= story["alertmanager_seen_at"] <= report["deadline_at"]
    # Time to notify: the alert receiver's log line of this alert's notification (issue 19, item 5), after the
    # detection, with Alertmanager's own time beside it.
    lines = [
        json.loads(line)
        for line in (Path(lab["settings"]["lab_dir"]) / "logs" / "alert-receiver.log")
        .read_text()
        .splitlines()
        if line.startswith("{")
    ]
    notes = [
        n
        for n in lines
        if n.get("event") == "alert_notification"
        and any(a["alertname"] == alert and a["status"] == "firing" for a in n["alerts"])
    ]
    logged = [datetime.fromisoformat(n["timestamp"]).timestamp() for n in notes]
    assert story["receiver_notified_at"] == pytest.approx(
        min(t for t in logged if t >= times["fault_requested"]), abs=0.001
    )
    assert story["receiver_route"] == severity
    assert story["time_to_notify_seconds"] == pytest.approx(
        story["receiver_notified_at"] - times["fault_effective"], abs=0.01
    )
    assert story["time_to_notify_seconds"] >= story["time_to_detect_seconds"]
    assert story["time_to_alertmanager_seconds"] >= 0
    # Time to resolve: the evaluation after the last firing sample, counted from the baseline in effect.
    assert story["prometheus_resolved_at"] == pytest.approx(samples[-1] + 1.0, abs=0.01)
    assert story["time_to_resolve_seconds"] == pytest.approx(
        samples[-1] + 1.0 - times["restore_effective"], abs=0.01
    )
    # After the baseline was asked for; it may precede "in effect on every worker" by a moment: one ready worker
    # answering a probe is enough to resolve ApiNotReady.
    assert story["prometheus_resolved_at"] > times["restore_requested"]
    assert story["alertmanager_resolved_seen_at"] is not None
    return story


def check_fault_in_effect(lab: dict[str, Any], report: dict[str, Any], fault: str, value: float) -> None:
    """The fault document reached every worker: Prometheus saw app_fault at its value between the two switches."""
    prom = lab["urls"]["prometheus"]
    times = report["times"]
    seen = first_sample_at(
        prom,
        f'min(app_fault{{fault="{fault}"}}) == {value}',
        times["fault_requested"],
        times["restore_requested"],
    )
    assert seen is not None, f"Prometheus never saw app_fault{{fault={fault!r}}} == {value} on every worker"
    # Scraped at most a couple of scrapes after the last worker applied it.
    assert times["fault_requested"] <= seen <= times["fault_effective"] + 3


# Order matters: the young-lab refusal runs first (the lab is minutes old); the control drill next (the db outage
# leaves the slow-burn ticket firing for minutes).
def test_a_drill_the_young_lab_cannot_pass_stops_at_once_and_says_when_it_can_run(
    lab: dict[str, Any],
) -> None:
    """Issue 19, item 4: error-burst's ticket pair is silent until the data covers its 48m window; on a lab minutes
    old the drill stops in the preflight (no load, no fault) with the clock time at which it can run."""
    prom = lab["urls"]["prometheus"]
    selector = '{app="flask-api",namespace="sre-lab"}'

    def covered() -> float:
        return float(query(prom, f"min(slo:period_covered:seconds{selector})")[0]["value"][1])

    before, t0 = covered(), time.time()
    proc, _run_dir, _report = drill(lab, "error-burst", check=False)
    after, t1 = covered(), time.time()
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())  # the play's YAML output folds long messages
    assert "drill error-burst cannot succeed yet: ApiAvailabilitySlowBurn fires 34m18s into the fault" in out
    assert "Drills that can run now: db-outage, slow-database, unready, none." in out
    # The clock time: when the data will cover 823 s at the fault (2880 s window - 2057 s to fire), after the 5 s
    # warm-up, from what Prometheus held while the preflight ran.
    stamp = re.search(r"Run it at (\d\d:\d\d:\d\d) \S+ \((\d\d:\d\d:\d\d) UTC\)", out)
    assert stamp, out[-3000:]
    earliest = t0 + 823 - 5 - after - 1
    latest = t1 + 823 - 5 - before + 1
    day = datetime.fromtimestamp(earliest, UTC).strftime("%Y-%m-%d")
    printed = datetime.fromisoformat(f"{day}T{stamp.group(2)}+00:00").timestamp()
    assert earliest - 1 <= printed <= latest + 1
    # Nothing happened: no load, no fault, no report.
    assert "Start the background load" not in out
    faults = Path(lab["settings"]["lab_dir"]) / "run" / "faults.yaml"
    assert yaml.safe_load(faults.read_text())["db_failure_rate"] == pytest.approx(0.05)
    assert not list((Path(lab["settings"]["lab_dir"]) / "reports").glob("drills/*-error-burst"))
    assert t1 - t0 < 120


def test_a_drill_against_a_lab_that_is_down_says_make_lab(lab: dict[str, Any]) -> None:
    from tests.support.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    proc = run_playbook(
        "drill.yml",
        "-e",
        json.dumps({**lab["settings"], "drill": "db-outage", "drill_prometheus_url": url}),
        check=False,
    )
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())  # the play's YAML output folds long messages
    assert f"drill: Prometheus is not reachable at {url}: is the lab up? Run `make lab`" in out
    assert "Traceback" not in proc.stdout + proc.stderr


def test_control_drill_fires_nothing(lab: dict[str, Any]) -> None:
    _proc, _run_dir, report = drill(lab, "none")
    assert report["verdict"] == "pass", report["failures"]
    assert [name for name, s in report["alerts"].items() if s["fired"]] == []
    times = report["times"]
    rng = int(times["ended"] - times["fault_requested"]) + 1
    assert query(lab["urls"]["prometheus"], f"ALERTS[{rng}s]", time_=times["ended"]) == []
    assert times["ended"] - times["fault_effective"] >= 15  # it watched for the whole deadline


def test_unready_is_caught_by_the_readiness_page_not_by_the_slis(lab: dict[str, Any]) -> None:
    _proc, _run_dir, report = drill(lab, "unready")
    assert report["verdict"] == "pass", report["failures"]
    check_fault_in_effect(lab, report, "force_unready", 1)
    check_detected(lab, report, "ApiNotReady")
    # The SLIs saw nothing: no burn-rate alert fired while every replica was unready.
    burn = [name for name, s in report["alerts"].items() if "Burn" in name and s["fired"]]
    assert burn == []
    print(f"unready: {'; '.join(report_lines(report))}")


def test_db_outage_pages_on_availability(lab: dict[str, Any]) -> None:
    proc, run_dir, report = drill(lab, "db-outage")
    assert report["verdict"] == "pass", report["failures"]
    assert report["drill"]["expected"] == ["ApiAvailabilityFastBurn"]
    check_fault_in_effect(lab, report, "db_failure_rate", 1)
    story = check_detected(lab, report, "ApiAvailabilityFastBurn")
    assert report["unexpected"] == []
    text = (run_dir / "report.md").read_text()
    assert "# Drill `db-outage`: PASS" in text
    assert "ApiAvailabilityFastBurn firing in Prometheus" in text
    assert "docs/runbooks/ApiAvailabilityFastBurn.md" in text
    assert f"detect {story['time_to_detect_seconds']:.1f}s" in proc.stdout
    # Waiting prints progress lines, not a retry line per poll (issue 19, item 4).
    assert "FAILED - RETRYING" not in proc.stdout
    assert "done: fire watch ended" in proc.stdout
    assert "done: resolve watch ended" in proc.stdout
    assert "the drill takes at most " in " ".join(proc.stdout.split())
    assert (run_dir / "load" / "locust_stats.csv").is_file()  # stress_test's Locust was the load
    print(f"db-outage: {'; '.join(report_lines(report))}")


def test_unknown_drill_lists_the_drills_and_breaks_nothing(lab: dict[str, Any]) -> None:
    proc, _run_dir, _report = drill(lab, "db-outtage", check=False)
    assert proc.returncode != 0
    assert "unknown drill 'db-outtage'" in proc.stdout
    assert "db-outage, slow-database, error-burst, unready, none" in proc.stdout
    faults = Path(lab["settings"]["lab_dir"]) / "run" / "faults.yaml"
    assert yaml.safe_load(faults.read_text())["db_failure_rate"] == pytest.approx(0.05)


def report_lines(report: dict[str, Any]) -> list[str]:
    out = []
    for name in report["drill"]["expected"]:
        s = report["alerts"][name]
        out.append(
            f"{name} detect {s['time_to_detect_seconds']:.1f}s notify {s['time_to_notify_seconds']:.1f}s "
            f"(Alertmanager {s['time_to_alertmanager_seconds']:.1f}s) resolve {s['time_to_resolve_seconds']:.1f}s "
            f"(Alertmanager {s['time_to_resolve_in_alertmanager_seconds']:.1f}s)"
        )
    return out


def test_drill_timing_table_matches_the_rendered_rules(lab: dict[str, Any]) -> None:
    """drills.plan.OTHER_ALERTS (deadlines of the non-burn-rate alerts) follows the rules Prometheus runs."""
    from drills.plan import OTHER_ALERTS
    from tests.support.prometheus import rule_health

    rules = {r["name"]: r for r in rule_health(lab["urls"]["prometheus"]) if r.get("type") == "alerting"}
    for name, (severity, _window, hold) in OTHER_ALERTS.items():
        assert rules[name]["labels"]["severity"] == severity
        assert rules[name].get("duration", 0) == hold, name
    assert "[20s]" in rules["ApiNotReady"]["query"]
