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
    assert story["time_to_notify_seconds"] >= story["time_to_detect_seconds"]
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


# Order matters: the control drill runs first (the db outage leaves the slow-burn ticket firing for minutes).
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
            f"resolve {s['time_to_resolve_seconds']:.1f}s"
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
