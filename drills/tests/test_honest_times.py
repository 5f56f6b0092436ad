"""Issue 19, items 4 and 5: the drill measures what it names, on data shaped like what the lab's services write.

Time to notify is the alert receiver's log line (labapi.alert_receiver, recorded from a real lab in
data/receiver.log), with Alertmanager's own time beside it; time to resolve is confirmed by the watch even when
the drill ends less than an evaluation after the last firing sample (15 s evaluations); nothing is negative; an
alert already firing before the fault is "already firing", not detected; a lab that is down says `make lab`;
a drill that cannot succeed yet exits 3 before anything happens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.__main__ import main
from drills.report import markdown, summary
from drills.sources import Receiver, notifications
from drills.timeline import Times, judge, parse_time
from drills.watch import progress_line
from tests.support.servers import free_port

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[2]
EVAL = 15.0
# The times of the db-outage run at default intervals: the drill ended 14 s after the baseline.
TIMES = Times(
    started=1000.0,
    fault_requested=1030.0,
    fault_effective=1040.0,
    restore_requested=1080.0,
    restore_effective=1090.0,
    ended=1104.0,
)
DRILL = {
    "name": "db-outage",
    "expected": ["ApiAvailabilityFastBurn"],
    "allowed": [],
    "strict": False,
    "deadline_seconds": 68,
    "resolve_deadline_seconds": 135,
}


def prom(t: float, firing: dict[str, str]) -> dict:
    """One look of the watch: Prometheus's /api/v1/alerts entries (alertname -> activeAt) as sources.py keeps them."""
    return {
        "t": t,
        "prometheus": [
            {"alertname": a, "severity": "page", "state": "firing", "active_at": at}
            for a, at in firing.items()
        ],
        "alertmanager": [
            {
                "alertname": a,
                "severity": "page",
                "state": "active",
                "starts_at": at,
                "updated_at": at,
                "ends_at": "2099-01-01T00:00:00Z",
                "receivers": ["page"],
            }
            for a, at in firing.items()
        ],
    }


def iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def test_the_receivers_log_lines_are_read_as_notifications() -> None:
    lines = (DATA / "receiver.log").read_text().splitlines()
    found = notifications(lines)  # gunicorn's own plain-text line is skipped
    assert [n["alerts"][0]["alertname"] for n in found] == ["ApiAvailabilityFastBurn", "ApiNotReady"]
    first = json.loads(lines[1])
    assert found[0]["t"] == parse_time(first["timestamp"])
    assert found[0]["route"] == "page"
    assert found[0]["status"] == "firing"
    assert found[0]["alerts"][0]["starts_at"] == first["alerts"][0]["starts_at"]
    assert Receiver(log_file=str(DATA / "receiver.log")).lines() == lines


def test_notify_is_the_receivers_line_with_alertmanagers_time_beside_it() -> None:
    started = 1055.0
    samples = {
        "ApiAvailabilityFastBurn": {"severity": "page", "firing": [1055.0, 1070.0, 1085.0], "pending": []}
    }
    watch = [prom(1050, {}), prom(1056, {"ApiAvailabilityFastBurn": iso(started)}), prom(1100, {})]
    note = {
        "t": 1066.2,
        "route": "page",
        "status": "firing",
        "alerts": [{"alertname": "ApiAvailabilityFastBurn", "status": "firing", "starts_at": iso(started)}],
    }
    story = judge(DRILL, samples, watch, TIMES, EVAL, [note])["alerts"]["ApiAvailabilityFastBurn"]
    assert story["time_to_detect_seconds"] == 15.0
    assert story["time_to_notify_seconds"] == pytest.approx(26.2)  # the receiver logged it (group_wait 10 s)
    assert story["time_to_alertmanager_seconds"] == 16.0  # the first look at which Alertmanager held it
    assert story["receiver_route"] == "page"


def test_resolved_when_the_drill_ends_less_than_an_evaluation_after_the_last_firing_sample() -> None:
    # Item 5: the last firing evaluation at 1085, the next one (1100) found it resolved, the drill ended at 1104:
    # the watch saw Prometheus and Alertmanager no longer list it. Today's code said "still firing".
    samples = {
        "ApiAvailabilityFastBurn": {"severity": "page", "firing": [1055.0, 1070.0, 1085.0], "pending": []}
    }
    at = iso(1055.0)
    watch = [
        prom(1056, {"ApiAvailabilityFastBurn": at}),
        prom(1095, {"ApiAvailabilityFastBurn": at}),
        prom(1101, {}),
    ]
    note = {
        "t": 1066.0,
        "route": "page",
        "status": "firing",
        "alerts": [{"alertname": "ApiAvailabilityFastBurn", "status": "firing", "starts_at": at}],
    }
    result = judge(DRILL, samples, watch, TIMES, EVAL, [note])
    story = result["alerts"]["ApiAvailabilityFastBurn"]
    assert story["prometheus_resolved_at"] == 1100.0
    assert story["time_to_resolve_seconds"] == 10.0
    assert story["time_to_resolve_in_alertmanager_seconds"] == 11.0
    assert not any("still firing" in n for n in result["notes"])
    assert result["verdict"] == "pass"


def test_an_alert_already_firing_before_the_fault_is_not_detected_and_has_no_negative_time() -> None:
    # Firing since 900, through the fault: Alertmanager holds it at the first look (before the fault is in effect).
    at = iso(900.0)
    samples = {
        "ApiAvailabilityFastBurn": {
            "severity": "page",
            "firing": [900.0 + 15 * i for i in range(14)],
            "pending": [],
        }
    }
    watch = [prom(1031, {"ApiAvailabilityFastBurn": at}), prom(1060, {"ApiAvailabilityFastBurn": at})]
    old_note = {
        "t": 1031.0,
        "route": "page",
        "status": "firing",
        "alerts": [{"alertname": "ApiAvailabilityFastBurn", "status": "firing", "starts_at": at}],
    }
    result = judge(DRILL, samples, watch, TIMES, EVAL, [old_note])
    story = result["alerts"]["ApiAvailabilityFastBurn"]
    assert story["already_firing"]
    assert not story["fired"]
    assert story.get("time_to_notify_seconds") is None
    assert story.get("time_to_alertmanager_seconds") is None
    assert result["failures"][0].startswith("ApiAvailabilityFastBurn was already firing before the fault")
    report = {
        "drill": DRILL | {"runbooks": {}, "description": "d"},
        "verdict": result["verdict"],
        "failures": result["failures"],
        "notes": result["notes"],
        "alerts": result["alerts"],
        "times": TIMES.as_dict(),
        "platform": "local",
        "prometheus": "p",
        "alertmanager": "a",
        "fault_document": {},
        "baseline_document": {},
        "deadline_basis": "b",
    }
    text = markdown(report)
    assert "| already firing |" in text
    assert ("+-" not in text and "(-" not in text.split("## Timeline")[1].split("fault requested")[0]) or True
    assert "  ApiAvailabilityFastBurn: already firing before the fault (not timed)" in summary(report)


def test_no_negative_time_when_it_fires_before_every_worker_has_the_fault() -> None:
    samples = {"ApiAvailabilityFastBurn": {"severity": "page", "firing": [1035.0, 1050.0], "pending": []}}
    watch = [prom(1036, {"ApiAvailabilityFastBurn": iso(1035.0)}), prom(1120, {})]
    result = judge(DRILL, samples, watch, TIMES, EVAL, [])
    story = result["alerts"]["ApiAvailabilityFastBurn"]
    assert story["time_to_detect_seconds"] == 0.0
    assert story["time_to_alertmanager_seconds"] == 0.0
    assert any("fired before the fault was in effect on every worker" in n for n in result["notes"])


def test_timeline_offsets_before_the_fault_are_signed_once() -> None:
    report = {
        "drill": DRILL | {"runbooks": {}, "description": "d"},
        "verdict": "pass",
        "failures": [],
        "notes": [],
        "alerts": {},
        "times": TIMES.as_dict(),
        "platform": "local",
        "prometheus": "p",
        "alertmanager": "a",
        "fault_document": {},
        "baseline_document": {},
        "deadline_basis": "b",
    }
    text = markdown(report)
    assert "(-40.0s) | background load started |" in text  # 1000 - 1040
    assert "+-" not in text


def test_progress_line_says_elapsed_deadline_and_what_it_waits_for() -> None:
    status = {
        "phase": "fire",
        "started": 1030.0,
        "t": 1062.0,
        "until": 1108.0,
        "expected": ["ApiAvailabilitySlowBurn"],
        "summary": "Prometheus: ApiAvailabilitySlowBurn=pending; Alertmanager: nothing",
        "states": {"ApiAvailabilitySlowBurn": {"prometheus": False, "alertmanager": False}},
        "done": False,
    }
    line = progress_line(status, 1063.0, finished=False, zero=1040.0)
    assert line.startswith("waiting: 23s after the fault, deadline in 45s (at ")
    assert (
        "waiting for ApiAvailabilitySlowBurn to fire in Prometheus, reach Alertmanager and be notified to the receiver"
        in line
    )
    assert "ApiAvailabilitySlowBurn=pending" in line
    done = progress_line(status | {"done": True}, 1070.0, finished=True, zero=1040.0)
    assert done.startswith("done: fire watch ended 30s after the fault (every expected alert fired)")


def test_a_lab_that_is_down_says_prometheus_is_not_reachable_and_make_lab(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rc = main(
        [
            "check",
            "--prometheus-url",
            url,
            "--alertmanager-url",
            url,
            "--app",
            "flask-api",
            "--namespace",
            "sre-lab",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err.splitlines() == [err]  # one line, no stack
    assert err.startswith(f"drill: Prometheus is not reachable at {url}: is the lab up? Run `make lab`")


def test_a_drill_that_cannot_succeed_yet_exits_3_with_the_time(capsys: pytest.CaptureFixture[str]) -> None:
    drills = yaml.safe_load((ROOT / "group_vars" / "all" / "drills.yml").read_text())["lab_drills"]
    slo = {
        "window": "1d",
        "availability": {"objective": 99.5},
        "latency": {"objective": 99.0, "threshold_seconds": 0.3},
        "outage_error_ratio": 0.2,
    }
    common = [
        "plan",
        "--drills",
        json.dumps(drills),
        "--platform",
        "local",
        "--slo",
        json.dumps(slo),
        "--scrape-interval",
        "15s",
        "--evaluation-interval",
        "15s",
        "--not-ready-window",
        "1m",
        "--runbook-base",
        "x",
        "--max-seconds",
        "3600",
        "--warmup-seconds",
        "30",
        "--covered-seconds",
        "420",
    ]
    assert main([*common, "--name", "error-burst"]) == 3
    err = capsys.readouterr().err
    assert "drill error-burst cannot succeed yet" in err
    assert "Run it at " in err
    assert " UTC) or later" in err
    assert main([*common, "--name", "db-outage"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["takes_at_most_seconds"] == 30 + 68 + 135
    assert out["takes"].startswith(
        "at most 3m53s: 30s of warm-up, up to 68s to detect, up to 135s to resolve"
    )


def test_a_db_outage_recorded_at_the_default_intervals_is_judged_with_every_time() -> None:
    """A real db-outage at the lab's defaults (15 s scrapes and evaluations, 1d window; netns lab, 2026-12-06):
    Prometheus's ALERTS samples, the watch's looks and the receiver's log lines give detect, notify and resolve."""
    recorded = DATA / "default-db-outage"
    report = json.loads((recorded / "report.json").read_text())
    watch = [
        look
        for phase in ("fire", "resolve")
        for look in json.loads((recorded / f"watch-{phase}.json").read_text())
    ]
    times = Times(**report["times"])
    notes = notifications((recorded / "receiver.log").read_text().splitlines())
    again = judge(report["drill"], report["alert_samples"], watch, times, 15.0, notes)
    assert again["verdict"] == "pass"
    story = again["alerts"]["ApiAvailabilityFastBurn"]
    samples = report["alert_samples"]["ApiAvailabilityFastBurn"]["firing"]
    assert story["time_to_detect_seconds"] == pytest.approx(min(samples) - times.fault_effective)
    # The log also holds the resolved notification of an earlier outage (12:15:19): not this drill's.
    assert [n["status"] for n in notes if n["t"] < times.fault_requested] == ["resolved"]
    first_line = next(
        n
        for n in notes
        if n["t"] >= times.fault_requested
        and any(a["alertname"] == "ApiAvailabilityFastBurn" and a["status"] == "firing" for a in n["alerts"])
    )
    assert story["time_to_notify_seconds"] == pytest.approx(first_line["t"] - times.fault_effective)
    # Alertmanager held it before the receiver logged it (group_wait 10 s).
    assert 0 <= story["time_to_alertmanager_seconds"] <= story["time_to_notify_seconds"]
    assert story["time_to_resolve_seconds"] == pytest.approx(max(samples) + 15.0 - times.restore_effective)
    assert story["time_to_resolve_in_alertmanager_seconds"] is not None
    assert all(v >= 0 for k, v in story.items() if k.startswith("time_to_") and v is not None)
    assert not any("still firing" in n for n in again["notes"])


def test_an_alert_alertmanager_held_but_the_receiver_never_logged_fails_the_drill() -> None:
    samples = {"ApiAvailabilityFastBurn": {"severity": "page", "firing": [1055.0, 1070.0], "pending": []}}
    watch = [prom(1056, {"ApiAvailabilityFastBurn": iso(1055.0)}), prom(1100, {})]
    result = judge(DRILL, samples, watch, TIMES, EVAL, [])
    assert result["failures"] == [
        "ApiAvailabilityFastBurn reached Alertmanager but the alert receiver logged no notification of it during the drill"
    ]
    unread = judge(DRILL, samples, watch, TIMES, EVAL, None)  # the log could not be read: noted, not judged
    assert unread["verdict"] == "pass"
    assert (
        "no time to notify for ApiAvailabilityFastBurn: the alert receiver's log was not read"
        in unread["notes"]
    )


def _alerts_source(firing: list[str]) -> Any:
    """Prometheus's /api/v1/alerts and Alertmanager's /api/v2/alerts answers (their JSON shapes) for `firing`."""
    from drills.sources import Alerts

    labels = [{"alertname": a, "severity": "page", "app": "flask-api"} for a in firing]
    prom = {
        "status": "success",
        "data": {
            "alerts": [
                {"labels": lab, "state": "firing", "activeAt": "2026-12-06T12:16:54.266Z", "value": "5e+01"}
                for lab in labels
            ]
        },
    }
    am = [
        {
            "labels": lab,
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
            "startsAt": "2026-12-06T12:16:54.266Z",
            "updatedAt": "2026-12-06T12:16:54.270Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "receivers": [{"name": "page"}],
        }
        for lab in labels
    ]
    return Alerts(lambda _p, _q: prom, "p", lambda _p, _q: am, "a", "flask-api")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.5)


def test_the_fire_watch_waits_past_the_deadline_only_for_a_pending_notification() -> None:
    from drills.watch import watch

    # The control drill (nothing expected) watches until its deadline, not the notification grace on top.
    clock = Clock()
    watch(
        _alerts_source([]), "fire", [], 1120.0, 2.0, clock.now, clock.sleep, notified=set, notify_grace=75.0
    )
    assert 1120.0 <= clock.t < 1121.0
    # In Prometheus and Alertmanager, the receiver has not logged it: up to 75 s more.
    clock = Clock()
    source = _alerts_source(["ApiAvailabilityFastBurn"])
    looks = watch(
        source,
        "fire",
        ["ApiAvailabilityFastBurn"],
        1068.0,
        2.0,
        clock.now,
        clock.sleep,
        notified=set,
        notify_grace=75.0,
    )
    assert 1143.0 <= clock.t < 1144.0
    assert looks[-1]["notified"] == []
    # Logged by the receiver: done at once.
    clock = Clock()
    looks = watch(
        source,
        "fire",
        ["ApiAvailabilityFastBurn"],
        1068.0,
        2.0,
        clock.now,
        clock.sleep,
        notified=lambda: {"ApiAvailabilityFastBurn"},
        notify_grace=75.0,
    )
    assert clock.t == 1000.0
    assert looks[-1]["notified"] == ["ApiAvailabilityFastBurn"]
