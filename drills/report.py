"""The drill report: report.json (everything) and report.md (the timeline a trainee reads)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _at(t: float | None, zero: float) -> str:
    if t is None:
        return "-"
    stamp = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
    return f"{stamp} ({t - zero:+.1f}s)"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _pair(story: dict[str, Any], first: str, second: str) -> str:
    return f"{_secs(story.get(first))} / {_secs(story.get(second))}"


def events(report: dict[str, Any]) -> list[tuple[float, str]]:
    """The timeline: the role's steps and each alert's transitions, in time order."""
    times = report["times"]
    found = [
        (times["started"], "background load started"),
        (times["fault_requested"], f"fault requested: {report['fault_document']}"),
        (times["fault_effective"], "fault in effect on every replica (app_fault)"),
        (times["restore_requested"], "baseline requested (lab_baseline_faults)"),
        (times["restore_effective"], "baseline in effect on every replica"),
        (times["ended"], "drill ended"),
    ]
    for name, s in report["alerts"].items():
        for key, what in (
            ("prometheus_pending_at", "pending in Prometheus"),
            ("prometheus_firing_at", "firing in Prometheus"),
            ("alertmanager_seen_at", "in Alertmanager"),
            ("receiver_notified_at", "notification logged by the alert receiver"),
            ("prometheus_resolved_at", "resolved in Prometheus"),
            ("alertmanager_resolved_seen_at", "resolved in Alertmanager"),
        ):
            if s.get(key) is not None:
                found.append((s[key], f"{name} {what}"))
    return sorted(found)


def markdown(report: dict[str, Any]) -> str:
    """report.md: verdict, expected vs actual, timeline, what to read."""
    drill = report["drill"]
    zero = report["times"]["fault_effective"]
    lines = [
        f"# Drill `{drill['name']}`: {report['verdict'].upper()}",
        "",
        drill["description"],
        "",
        f"- platform: {report['platform']}; Prometheus: {report['prometheus']}; Alertmanager: {report['alertmanager']}",
        f"- fault document: `{report['fault_document']}`; baseline restored: `{report['baseline_document']}`",
        f"- deadline: {drill['deadline_seconds']}s to detect, {drill['resolve_deadline_seconds']}s to resolve "
        f"(derived from the rules: {report['deadline_basis']})",
        "",
    ]
    for failure in report["failures"]:
        lines.append(f"- **FAIL**: {failure}")
    for note in report["notes"]:
        lines.append(f"- note: {note}")
    lines += [
        "",
        "## Expected vs actual",
        "",
        "| alert | expected | fired | time to detect (Prometheus) | time to notify (receiver / Alertmanager) "
        "| time to resolve (Prometheus / Alertmanager) |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in report["alerts"].items():
        role = "expected" if name in drill["expected"] else ("allowed" if name in drill["allowed"] else "no")
        fired = "yes" if s["fired"] else ("already firing" if s.get("already_firing") else "no")
        lines.append(
            f"| {name} ({s['severity'] or '?'}) | {role} | {fired} | "
            f"{_secs(s.get('time_to_detect_seconds'))} | {_pair(s, 'time_to_notify_seconds', 'time_to_alertmanager_seconds')} | "
            f"{_pair(s, 'time_to_resolve_seconds', 'time_to_resolve_in_alertmanager_seconds')} |"
        )
    if not report["alerts"]:
        lines.append("| (none) | | | | | |")
    lines += [
        "",
        "Times to detect and notify count from the fault in effect on every worker; times to resolve from the "
        "baseline in effect. Notify: the alert receiver's log line of the notification / the first look at which "
        "Alertmanager held the alert. An alert already firing before the fault is not timed.",
        "",
    ]
    lines += ["## Timeline", "", "| time (UTC, from the fault in effect) | event |", "|---|---|"]
    lines += [f"| {_at(t, zero)} | {what} |" for t, what in events(report)]
    lines += ["", "## Runbooks", ""]
    lines += [f"- {name}: {url}" for name, url in drill["runbooks"].items()] or ["- (no alert expected)"]
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> list[str]:
    """The lines the play prints."""
    out = [f"Drill {report['drill']['name']}: {report['verdict'].upper()}"]
    for name in report["drill"]["expected"]:
        s = report["alerts"][name]
        if s.get("already_firing") and not s["fired"]:
            out.append(f"  {name}: already firing before the fault (not timed)")
            continue
        out.append(
            f"  {name}: detect {_secs(s.get('time_to_detect_seconds'))}, "
            f"notify {_secs(s.get('time_to_notify_seconds'))} (receiver; Alertmanager {_secs(s.get('time_to_alertmanager_seconds'))}), "
            f"resolve {_secs(s.get('time_to_resolve_seconds'))} (Prometheus; Alertmanager {_secs(s.get('time_to_resolve_in_alertmanager_seconds'))})"
        )
    out += [f"  FAIL: {f}" for f in report["failures"]]
    out += [f"  note: {n}" for n in report["notes"]]
    return out
