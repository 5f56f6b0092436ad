"""Watch the alerts, bounded in time: until the expected alerts fire (or resolve), or the deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from drills.sources import Alerts, SourceError
from drills.timeline import ACTIVE_AM_STATES, parse_time


def snapshot(alerts: Alerts, now: float) -> dict[str, Any]:
    """What Prometheus and Alertmanager list right now (an error is recorded, not raised)."""
    obs: dict[str, Any] = {"t": now}
    for source, read in (("prometheus", alerts.prometheus), ("alertmanager", alerts.alertmanager)):
        try:
            obs[source] = read()
        except SourceError as err:
            obs.setdefault("errors", []).append(str(err))
    return obs


def _firing(obs: dict[str, Any], alert: str) -> tuple[bool, bool]:
    """(firing in Prometheus, active in Alertmanager) for `alert` in one snapshot."""
    prom = any(a["alertname"] == alert and a["state"] == "firing" for a in obs.get("prometheus", []))
    am = any(
        a["alertname"] == alert
        and a["state"] in ACTIVE_AM_STATES
        and (parse_time(a.get("ends_at")) or float("inf")) > obs["t"]
        for a in obs.get("alertmanager", [])
    )
    return prom, am


def done(phase: str, obs: dict[str, Any], expected: list[str]) -> bool:
    """fire: every expected alert firing, in Alertmanager and (when the look read the receiver's log) notified;
    resolve: none of them in Prometheus or Alertmanager."""
    if "errors" in obs:
        return False
    states = [_firing(obs, a) for a in expected]
    if phase == "fire":
        notified = set(obs.get("notified", expected))
        return bool(expected) and all(p and m for p, m in states) and notified >= set(expected)
    return not any(p or m for p, m in states)


def watch(
    alerts: Alerts,
    phase: str,
    expected: list[str],
    until: float | Callable[[], float],
    interval: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_change: Callable[[str], None] | None = None,
    on_look: Callable[[dict[str, Any]], None] | None = None,
    notified: Callable[[], set[str]] | None = None,
    notify_grace: float = 0.0,
) -> list[dict[str, Any]]:
    """Poll every `interval` seconds until `done` or `until` (epoch seconds); return every snapshot.

    `until` may be a function, asked at each look (the deadline counts from the fault in effect, which is known
    only once the watch runs). A drill that expects nothing (the control drill) watches until `until`.
    """
    deadline = until if callable(until) else (lambda: until)
    seen: list[dict[str, Any]] = []
    last = ""
    while True:
        now = clock()
        obs = snapshot(alerts, now)
        if notified is not None and phase == "fire" and all(all(_firing(obs, a)) for a in expected):
            # Prometheus and Alertmanager have them all: wait for the receiver's log line of each notification
            # (read only now, so a long log is not parsed at every look).
            try:
                obs["notified"] = sorted(notified() & set(expected))
            except SourceError as err:
                obs["notified"] = []
                obs["receiver_error"] = str(err)
        seen.append(obs)
        summary = _summary(obs)
        if on_change and summary != last:
            on_change(f"+{now - seen[0]['t']:.0f}s {summary}")
            last = summary
        # Past the deadline only while every expected alert is in Prometheus and Alertmanager and the watch waits
        # for the receiver's log line (Alertmanager's grouping delays it), at most notify_grace seconds.
        awaiting = bool(expected) and "notified" in obs and phase == "fire"
        bound = deadline() + (notify_grace if awaiting else 0.0)
        finished = done(phase, obs, expected) or now >= bound
        if on_look:
            on_look(
                {
                    "phase": phase,
                    "started": seen[0]["t"],
                    "t": now,
                    "until": bound,
                    "expected": expected,
                    "summary": summary,
                    "states": {
                        a: dict(zip(("prometheus", "alertmanager"), _firing(obs, a), strict=True))
                        for a in expected
                    },
                    "done": done(phase, obs, expected),
                }
            )
        if finished:
            return seen
        sleep(max(0.0, min(interval, bound - clock())))


def _summary(obs: dict[str, Any]) -> str:
    if "errors" in obs:
        return "error: " + "; ".join(obs["errors"])
    prom = sorted(f"{a['alertname']}={a['state']}" for a in obs.get("prometheus", []))
    am = sorted({a["alertname"] for a in obs.get("alertmanager", []) if a["state"] in ACTIVE_AM_STATES})
    text = f"Prometheus: {', '.join(prom) or 'nothing'}; Alertmanager: {', '.join(am) or 'nothing'}"
    if "notified" in obs:
        text += f"; receiver notified: {', '.join(obs['notified']) or 'nothing yet'}"
    return text


def progress_line(status: dict[str, Any] | None, now: float, finished: bool, zero: float | None) -> str:
    """One line for the play: how long the watch has run, until when, what it waits for, what it sees.

    `zero` is the moment the phase counts from (the fault or the baseline in effect), None before it is known.
    """
    if status is None:
        return "waiting: the watch has not looked yet"
    phase = status["phase"]
    expected = status["expected"]
    start = zero if zero is not None else status["started"]
    elapsed = now - start
    left = status["until"] - now
    what = {
        "fire": (
            f"for {', '.join(expected)} to fire in Prometheus, reach Alertmanager and be notified to the receiver"
            if expected
            else "(nothing may fire: the control drill watches until its deadline)"
        ),
        "resolve": f"for {', '.join(expected)} to resolve in Prometheus and Alertmanager",
    }[phase]
    since = {"fire": "the fault", "resolve": "the baseline"}[phase]
    if zero is None:
        since = f"{since} (not in effect yet)"
    states = "; ".join(
        f"{a}: Prometheus {'firing' if s['prometheus'] else 'not firing'}, "
        f"Alertmanager {'active' if s['alertmanager'] else 'not active'}"
        for a, s in status["states"].items()
    )
    head = "done" if finished else "waiting"
    if finished:
        outcome = (
            {"fire": "every expected alert fired", "resolve": "none of them is firing any more"}[phase]
            if status["done"] and expected
            else ("nothing to wait for" if status["done"] else "deadline reached")
        )
        return f"{head}: {phase} watch ended {elapsed:.0f}s after {since} ({outcome}). {states or status['summary']}"
    return (
        f"{head}: {elapsed:.0f}s after {since}, deadline in {max(0.0, left):.0f}s "
        f"(at {datetime.fromtimestamp(status['until'], UTC).strftime('%H:%M:%S')} UTC); waiting {what}. "
        f"Now: {status['summary']}"
    )
