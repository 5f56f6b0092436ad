"""The drill's timeline and verdict, from what Prometheus recorded (ALERTS samples) and what the watch saw.

Pure functions on plain data, so the unit tests feed them samples taken from a real Prometheus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
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
    observations: list[dict[str, Any]], source: str, alert: str, active: bool, after: float
) -> dict[str, Any] | None:
    """The first observation after `after` where `alert` is (active=True) or is no longer (False) active."""
    for obs in observations:
        if obs["t"] < after or source not in obs:
            continue
        entries = [a for a in obs[source] if a["alertname"] == alert]
        if source == "prometheus":
            on = [a for a in entries if a["state"] == "firing"]
        else:
            on = [
                a
                for a in entries
                if a["state"] in ACTIVE_AM_STATES
                and (parse_time(a.get("ends_at")) or float("inf")) > obs["t"]
            ]
        if bool(on) == active:
            return {"t": obs["t"], "entry": on[0] if on else None}
    return None


def alert_story(
    alert: str,
    samples: dict[str, Any] | None,
    observations: list[dict[str, Any]],
    times: Times,
    eval_s: float,
) -> dict[str, Any]:
    """One alert through the drill: pending, firing, in Alertmanager, resolved; seconds from the fault's times."""
    firing = episodes((samples or {}).get("firing", []), eval_s)
    pending = sorted((samples or {}).get("pending", []))
    already = [e for e in firing if e[0] < times.fault_requested <= e[1] + 1.5 * eval_s]
    during = [e for e in firing if e[0] >= times.fault_requested]
    story: dict[str, Any] = {
        "alert": alert,
        "severity": (samples or {}).get("severity", ""),
        "already_firing": bool(already),
        "fired": bool(during),
        "firing_episodes": [list(e) for e in during],
    }
    pend = next((t for t in pending if t >= times.fault_requested), None)
    story["prometheus_pending_at"] = pend
    if during:
        # Detected at the first firing evaluation; resolved after the last one (an alert may flap in between).
        first, last = during[0][0], during[-1][1]
        story["flaps"] = len(during) - 1
        story["prometheus_firing_at"] = first
        story["time_to_detect_seconds"] = first - times.fault_effective
        still = times.ended - last <= 1.5 * eval_s
        story["prometheus_resolved_at"] = None if still else last + eval_s
        story["time_to_resolve_seconds"] = None if still else last + eval_s - times.restore_effective
    seen = _first(observations, "prometheus", alert, True, times.fault_requested)
    story["watch_saw_firing_at"] = seen["t"] if seen else None
    am = _first(observations, "alertmanager", alert, True, times.fault_requested)
    if am:
        entry = am["entry"]
        story["alertmanager_seen_at"] = am["t"]
        story["time_to_notify_seconds"] = am["t"] - times.fault_effective
        story["alertmanager_starts_at"] = parse_time(entry.get("starts_at"))
        story["alertmanager_receivers"] = entry.get("receivers", [])
        gone = _first(observations, "alertmanager", alert, False, max(am["t"], times.restore_requested))
        story["alertmanager_resolved_seen_at"] = gone["t"] if gone else None
        story["time_to_resolve_in_alertmanager_seconds"] = (
            gone["t"] - times.restore_effective if gone else None
        )
    return story


def judge(
    drill: dict[str, Any],
    samples: dict[str, dict[str, Any]],
    observations: list[dict[str, Any]],
    times: Times,
    eval_s: float,
) -> dict[str, Any]:
    """Every alert's story, and the verdict: did the expected alerts fire in time, did an unexpected page fire?"""
    names = set(samples) | {
        a["alertname"] for o in observations for s in ("prometheus", "alertmanager") for a in o.get(s, [])
    }
    names |= set(drill["expected"])
    stories = {
        name: alert_story(name, samples.get(name), observations, times, eval_s) for name in sorted(names)
    }
    deadline_at = times.fault_effective + drill["deadline_seconds"]
    failures: list[str] = []
    notes: list[str] = []
    for name in drill["expected"]:
        s = stories[name]
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
        if s.get("prometheus_resolved_at") is None:
            notes.append(
                f"{name} was still firing when the drill ended ({drill['resolve_deadline_seconds']}s after the baseline)"
            )
        elif s.get("alertmanager_resolved_seen_at") is None:
            notes.append(
                f"{name} resolved in Prometheus but was still active in Alertmanager when the drill ended"
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
