"""The drill's timeline and verdict, from what Prometheus recorded (ALERTS samples) and what the watch saw.

Pure functions on plain data, so the unit tests feed them samples taken from a real Prometheus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

ACTIVE_AM_STATES = ("active", "suppressed", "unprocessed")


@dataclass(frozen=True)
class Times:
    """The drill's clock (epoch seconds) as the role recorded it."""

    started: float  # background load started
    fault_requested: float  # the fault document was about to be written
    fault_effective: float  # every worker of every replica reported it (app_deploy_faults_effective_at)
    restore_requested: float
    restore_effective: float
    ended: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _clock(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


def parse_time(value: str | None) -> float | None:
    """RFC 3339 from Prometheus/Alertmanager (nanoseconds allowed) as epoch seconds; None for the zero time."""
    if not value or value.startswith("0001-01-01"):
        return None
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # keep at most microseconds: fromisoformat stops there
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tz}"
    return datetime.fromisoformat(text).timestamp()


def episodes(samples: list[float], eval_s: float) -> list[tuple[float, float]]:
    """Consecutive evaluations (gap <= 1.5 intervals) as (first, last) sample times."""
    runs: list[tuple[float, float]] = []
    for t in sorted(samples):
        if runs and t - runs[-1][1] <= 1.5 * eval_s:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def _first(
    observations: list[dict[str, Any]],
    source: str,
    alert: str,
    active: bool,
    after: float,
    since: float | None = None,
) -> dict[str, Any] | None:
    """The first observation after `after` where `alert` is (active=True) or is no longer (False) active.

    With `since`, an entry counts as active only when it started at or after `since` (Prometheus's activeAt,
    Alertmanager's startsAt): an alert that was already firing before the fault is not this drill's.
    """
    for obs in observations:
        if obs["t"] < after or source not in obs:
            continue
        entries = [a for a in obs[source] if a["alertname"] == alert]
        if source == "prometheus":
            on = [a for a in entries if a["state"] == "firing"]
            start_key = "active_at"
        else:
            on = [
                a
                for a in entries
                if a["state"] in ACTIVE_AM_STATES
                and (parse_time(a.get("ends_at")) or float("inf")) > obs["t"]
            ]
            start_key = "starts_at"
        if since is not None and active:
            on = [a for a in on if (parse_time(a.get(start_key)) or since) >= since]
        if bool(on) == active:
            return {"t": obs["t"], "entry": on[0] if on else None}
    return None


def first_notification(
    notifications: list[dict[str, Any]], alert: str, since: float
) -> dict[str, Any] | None:
    """The receiver's first notification of `alert` firing, for an episode that started at or after `since`."""
    for note in notifications:
        if note["t"] < since:
            continue
        for entry in note["alerts"]:
            started = parse_time(entry.get("starts_at"))
            if (
                entry.get("alertname") == alert
                and entry.get("status") == "firing"
                and (started is None or started >= since)
            ):
                return {"t": note["t"], "route": note.get("route"), "starts_at": started}
    return None


def _since(t: float | None, zero: float) -> float | None:
    """Seconds from `zero` to `t`, never negative (an event a moment before `zero` counts as at it)."""
    return None if t is None else max(0.0, t - zero)


def alert_story(
    alert: str,
    samples: dict[str, Any] | None,
    observations: list[dict[str, Any]],
    times: Times,
    eval_s: float,
    notifications: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One alert through the drill: pending, firing, notified, resolved; seconds from the fault's times.

    Time to detect: fault in effect -> first firing evaluation (Prometheus's ALERTS). Time to notify: fault in
    effect -> the receiver's log line of the notification, with the first look at which Alertmanager held the
    alert beside it. Time to resolve: baseline in effect -> the evaluation after the last firing one (Prometheus),
    and -> the first look at which Alertmanager no longer held it. An alert already firing before the fault is
    "already firing": none of these times is counted for it.
    """
    firing = episodes((samples or {}).get("firing", []), eval_s)
    pending = sorted((samples or {}).get("pending", []))
    already = [e for e in firing if e[0] < times.fault_requested <= e[1] + 1.5 * eval_s]
    during = [e for e in firing if e[0] >= times.fault_requested]
    story: dict[str, Any] = {
        "alert": alert,
        "severity": (samples or {}).get("severity", ""),
        "already_firing": bool(already),
        "already_firing_since": already[0][0] if already else None,
        "fired": bool(during),
        "firing_episodes": [list(e) for e in during],
    }
    pend = next((t for t in pending if t >= times.fault_requested), None)
    story["prometheus_pending_at"] = pend
    if not during:
        return story
    # Detected at the first firing evaluation; resolved after the last one (an alert may flap in between).
    first, last = during[0][0], during[-1][1]
    story["flaps"] = len(during) - 1
    story["prometheus_firing_at"] = first
    story["time_to_detect_seconds"] = _since(first, times.fault_effective)
    story["fired_before_fault_in_effect"] = first < times.fault_effective
    # Resolved: a later evaluation found it no longer firing, i.e. the drill ran on for more than an evaluation
    # after the last firing sample, or the watch saw Prometheus list it as no longer firing after that sample.
    gone = _first(observations, "prometheus", alert, False, last + 0.001)
    resolved = times.ended - last > 1.5 * eval_s or gone is not None
    story["prometheus_resolved_at"] = last + eval_s if resolved else None
    story["time_to_resolve_seconds"] = _since(last + eval_s, times.restore_effective) if resolved else None
    seen = _first(observations, "prometheus", alert, True, times.fault_requested, since=times.fault_requested)
    story["watch_saw_firing_at"] = seen["t"] if seen else None
    note = first_notification(notifications or [], alert, times.fault_requested)
    story["receiver_notified_at"] = note["t"] if note else None
    story["receiver_route"] = note["route"] if note else None
    story["time_to_notify_seconds"] = _since(note["t"], times.fault_effective) if note else None
    am = _first(observations, "alertmanager", alert, True, times.fault_requested, since=times.fault_requested)
    story["alertmanager_seen_at"] = am["t"] if am else None
    story["time_to_alertmanager_seconds"] = _since(am["t"], times.fault_effective) if am else None
    if am:
        entry = am["entry"]
        story["alertmanager_starts_at"] = parse_time(entry.get("starts_at"))
        story["alertmanager_receivers"] = entry.get("receivers", [])
        am_gone = _first(observations, "alertmanager", alert, False, max(am["t"], times.restore_requested))
        story["alertmanager_resolved_seen_at"] = am_gone["t"] if am_gone else None
        story["time_to_resolve_in_alertmanager_seconds"] = (
            _since(am_gone["t"], times.restore_effective) if am_gone else None
        )
    return story


def judge(
    drill: dict[str, Any],
    samples: dict[str, dict[str, Any]],
    observations: list[dict[str, Any]],
    times: Times,
    eval_s: float,
    notifications: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every alert's story, and the verdict: did the expected alerts fire in time, did an unexpected page fire?"""
    names = set(samples) | {
        a["alertname"] for o in observations for s in ("prometheus", "alertmanager") for a in o.get(s, [])
    }
    names |= set(drill["expected"])
    stories = {
        name: alert_story(name, samples.get(name), observations, times, eval_s, notifications or [])
        for name in sorted(names)
    }
    deadline_at = times.fault_effective + drill["deadline_seconds"]
    failures: list[str] = []
    notes: list[str] = []
    for name in drill["expected"]:
        s = stories[name]
        if s["already_firing"] and not s["fired"]:
            failures.append(
                f"{name} was already firing before the fault (since {_clock(s['already_firing_since'])}) and did not "
                "stop: the drill cannot tell what the fault caused; run it again once the alert has resolved"
            )
            continue
        if not s["fired"] or s["prometheus_firing_at"] > deadline_at:
            failures.append(
                f"{name} did not fire in Prometheus within the deadline ({drill['deadline_seconds']}s after the fault "
                "was in effect)"
                + (f"; it fired {s['time_to_detect_seconds']:.0f}s after" if s["fired"] else "")
            )
        elif s.get("alertmanager_seen_at") is None or s["alertmanager_seen_at"] > deadline_at:
            failures.append(f"{name} fired in Prometheus but did not reach Alertmanager within the deadline")
        if s.get("flaps"):
            notes.append(
                f"{name} stopped firing and fired again {s['flaps']} time(s) before it resolved (flapping)"
            )
        if failures and failures[-1].startswith(name):
            continue
        after = times.ended - times.restore_effective
        if s.get("prometheus_resolved_at") is None:
            notes.append(
                f"{name} was still firing in Prometheus when the drill ended ({after:.0f}s after the baseline was in "
                f"effect; the resolve deadline is {drill['resolve_deadline_seconds']}s)"
            )
        elif s.get("alertmanager_resolved_seen_at") is None:
            notes.append(
                f"{name} resolved in Prometheus but was still active in Alertmanager when the drill ended "
                f"({after:.0f}s after the baseline was in effect)"
            )
        if s.get("receiver_notified_at") is None:
            if notifications is None:  # the receiver's log could not be read (the report notes why)
                notes.append(f"no time to notify for {name}: the alert receiver's log was not read")
            else:
                failures.append(
                    f"{name} reached Alertmanager but the alert receiver logged no notification of it during the drill"
                )
        if s.get("fired_before_fault_in_effect"):
            notes.append(
                f"{name} fired before the fault was in effect on every worker (some workers had it): "
                "time to detect counted as 0"
            )
    known = set(drill["expected"]) | set(drill["allowed"])
    unexpected = [s for s in stories.values() if s["fired"] and s["alert"] not in known]
    for s in unexpected:
        if s["severity"] == "page":
            failures.append(
                f"unexpected page: {s['alert']} fired {s['time_to_detect_seconds']:.0f}s after the fault"
            )
        elif drill.get("strict"):
            failures.append(
                f"unexpected alert ({s['severity']}): {s['alert']} (this drill must fire nothing else)"
            )
        else:
            notes.append(f"{s['alert']} ({s['severity']}) fired too; it is neither expected nor allowed")
    already = [s["alert"] for s in stories.values() if s["already_firing"]]
    if already:
        notes.append(f"already firing when the fault was injected: {', '.join(already)}")
    return {
        "verdict": "fail" if failures else "pass",
        "failures": failures,
        "notes": notes,
        "deadline_at": deadline_at,
        "alerts": stories,
        "unexpected": [s["alert"] for s in unexpected],
    }
