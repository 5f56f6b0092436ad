"""The timeline and verdict of a drill (drills/timeline.py), on ALERTS samples and watch snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drills.timeline import Times, episodes, judge, parse_time

DATA = Path(__file__).resolve().parent / "data"
TIMES = Times(
    started=1000.0,
    fault_requested=1010.0,
    fault_effective=1014.0,
    restore_requested=1030.0,
    restore_effective=1034.0,
    ended=1060.0,
)
DRILL = {
    "name": "db-outage",
    "expected": ["ApiAvailabilityFastBurn"],
    "allowed": ["ApiNotReady"],
    "strict": False,
    "deadline_seconds": 20,
    "resolve_deadline_seconds": 30,
}


def firing(first: float, last: float, severity: str = "page") -> dict:
    return {
        "severity": severity,
        "firing": [float(t) for t in range(int(first), int(last) + 1)],
        "pending": [],
    }


def snap(t: float, prom: list[str], am: list[str], ends_at: str = "2099-01-01T00:00:00Z") -> dict:
    return {
        "t": t,
        "prometheus": [
            {"alertname": a, "severity": "page", "state": "firing", "active_at": None} for a in prom
        ],
        "alertmanager": [
            {
                "alertname": a,
                "severity": "page",
                "state": "active",
                "starts_at": "1970-01-01T00:16:58.5Z",
                "ends_at": ends_at,
                "receivers": ["lab-sink"],
            }
            for a in am
        ],
    }


WATCH = [
    snap(1011, [], []),
    snap(1019, ["ApiAvailabilityFastBurn"], []),
    snap(1020, ["ApiAvailabilityFastBurn"], ["ApiAvailabilityFastBurn"]),
    snap(1035, ["ApiAvailabilityFastBurn"], ["ApiAvailabilityFastBurn"]),
    snap(1046, [], ["ApiAvailabilityFastBurn"], ends_at="1970-01-01T00:17:25Z"),
    snap(1047, [], []),
]


def notified(
    t: float, alert: str = "ApiAvailabilityFastBurn", starts_at: str = "1970-01-01T00:16:58.5Z"
) -> dict:
    return {
        "t": t,
        "route": "page",
        "status": "firing",
        "alerts": [{"alertname": alert, "status": "firing", "starts_at": starts_at}],
    }


def test_times_to_detect_notify_and_resolve() -> None:
    result = judge(
        DRILL,
        {"ApiAvailabilityFastBurn": firing(1018, 1044)},
        WATCH,
        TIMES,
        eval_s=1.0,
        notifications=[notified(1029.5)],
    )
    assert result["verdict"] == "pass", result["failures"]
    story = result["alerts"]["ApiAvailabilityFastBurn"]
    assert story["prometheus_firing_at"] == 1018
    assert story["time_to_detect_seconds"] == 4  # from the fault in effect (1014)
    # Notify: the receiver's log line (group_wait after Alertmanager got it), Alertmanager's own time beside it.
    assert story["receiver_notified_at"] == 1029.5
    assert story["time_to_notify_seconds"] == 15.5
    assert story["alertmanager_seen_at"] == 1020
    assert story["time_to_alertmanager_seconds"] == 6
    assert story["alertmanager_starts_at"] == 1018.5
    assert story["alertmanager_receivers"] == ["lab-sink"]
    assert story["prometheus_resolved_at"] == 1045  # the evaluation after the last firing sample
    assert story["time_to_resolve_seconds"] == 11  # from the baseline in effect (1034)
    # endsAt in the past at 1046 counts as resolved in Alertmanager.
    assert story["alertmanager_resolved_seen_at"] == 1046


def test_too_late_is_a_failure_that_says_by_how_much() -> None:
    result = judge(DRILL, {"ApiAvailabilityFastBurn": firing(1040, 1044)}, WATCH, TIMES, eval_s=1.0)
    assert result["verdict"] == "fail"
    assert "did not fire in Prometheus within the deadline (20s" in result["failures"][0]
    assert "it fired 26s after" in result["failures"][0]


def test_never_reaching_alertmanager_is_a_failure() -> None:
    watch = [snap(1019, ["ApiAvailabilityFastBurn"], []), snap(1040, [], [])]
    result = judge(DRILL, {"ApiAvailabilityFastBurn": firing(1018, 1030)}, watch, TIMES, eval_s=1.0)
    assert result["failures"] == [
        "ApiAvailabilityFastBurn fired in Prometheus but did not reach Alertmanager within the deadline"
    ]


def test_unexpected_page_fails_an_allowed_one_does_not_a_ticket_is_noted() -> None:
    samples = {
        "ApiAvailabilityFastBurn": firing(1018, 1044),
        "ApiNotReady": firing(1025, 1030),
        "ApiTargetDown": firing(1022, 1024),
        "ApiLatencySlowBurn": firing(1022, 1059, severity="ticket"),
    }
    result = judge(DRILL, samples, WATCH, TIMES, eval_s=1.0)
    assert result["verdict"] == "fail"
    assert result["failures"] == ["unexpected page: ApiTargetDown fired 8s after the fault"]
    assert sorted(result["unexpected"]) == ["ApiLatencySlowBurn", "ApiTargetDown"]
    assert any("ApiLatencySlowBurn (ticket) fired too" in n for n in result["notes"])


def test_strict_drill_fails_on_any_alert_but_not_on_one_already_firing() -> None:
    control = {**DRILL, "expected": [], "allowed": [], "strict": True}
    already = {"ApiAvailabilitySlowBurn": firing(900, 1059, severity="ticket")}
    quiet = judge(control, already, [snap(1011, [], [])], TIMES, eval_s=1.0)
    assert quiet["verdict"] == "pass"
    assert quiet["notes"] == ["already firing when the fault was injected: ApiAvailabilitySlowBurn"]
    noisy = judge(control, {**already, "ApiNoTraffic": firing(1020, 1025, "ticket")}, [], TIMES, eval_s=1.0)
    assert noisy["failures"] == [
        "unexpected alert (ticket): ApiNoTraffic (this drill must fire nothing else)"
    ]


def test_still_firing_at_the_end_is_noted() -> None:
    result = judge(DRILL, {"ApiAvailabilityFastBurn": firing(1018, 1060)}, WATCH[:4], TIMES, eval_s=1.0)
    assert result["verdict"] == "pass"
    assert result["alerts"]["ApiAvailabilityFastBurn"]["time_to_resolve_seconds"] is None
    # The note says when the drill really ended (issue 19, item 5: it printed the resolve deadline instead).
    assert result["notes"][0] == (
        "ApiAvailabilityFastBurn was still firing in Prometheus when the drill ended (26s after the baseline was "
        "in effect; the resolve deadline is 30s)"
    )


def test_episodes_split_on_missed_evaluations() -> None:
    assert episodes([1, 2, 3, 7, 8, 20], eval_s=1.0) == [(1, 3), (7, 8), (20, 20)]
    assert episodes([0, 15, 30.4, 45], eval_s=15.0) == [(0, 45)]


def test_parse_time_accepts_nanoseconds_and_the_zero_time() -> None:
    expected = datetime(2026, 11, 27, 16, 44, 22, 123456, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-27T16:44:22.123456789Z") == pytest.approx(expected)
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time(None) is None


@pytest.mark.parametrize("name", ["db-outage", "unready", "none"])
def test_recorded_drills_judge_the_same(name: str) -> None:
    """Drills recorded from a real Prometheus and Alertmanager (tests/e2e runs): the judgement is reproducible."""
    recorded = DATA / name
    report = json.loads((recorded / "report.json").read_text())
    watch = []
    for phase in ("fire", "resolve"):
        path = recorded / f"watch-{phase}.json"
        if path.exists():
            watch += json.loads(path.read_text())
    times = Times(**report["times"])
    again = judge(
        report["drill"], report["alert_samples"], watch, times, report["drill"]["evaluation_seconds"]
    )
    assert again["verdict"] == report["verdict"]
    for alert, old in report["alerts"].items():
        for key in ("fired", "prometheus_firing_at", "time_to_detect_seconds", "alertmanager_seen_at"):
            assert again["alerts"][alert].get(key) == old.get(key), (alert, key)
    for name_ in report["drill"]["expected"]:
        story = again["alerts"][name_]
        samples = report["alert_samples"][name_]["firing"]
        first = min(t for t in samples if t >= times.fault_requested)
        assert story["time_to_detect_seconds"] == pytest.approx(first - times.fault_effective, abs=0.01)
        assert 0 < story["time_to_detect_seconds"] <= report["drill"]["deadline_seconds"]
        last = max(samples)
        assert story["time_to_resolve_seconds"] == pytest.approx(
            last + 1.0 - times.restore_effective, abs=0.01
        )
        assert story["prometheus_resolved_at"] > times.restore_requested


def test_a_flapping_alert_is_detected_at_its_first_and_resolved_after_its_last_evaluation() -> None:
    samples = {
        "ApiAvailabilityFastBurn": {"severity": "page", "firing": [1018.0, *range(1020, 1045)], "pending": []}
    }
    story = judge(DRILL, samples, WATCH, TIMES, eval_s=1.0)["alerts"]["ApiAvailabilityFastBurn"]
    assert story["flaps"] == 1
    assert story["time_to_detect_seconds"] == 4
    assert story["time_to_resolve_seconds"] == 11
