"""The five check kinds: each reads the lab's telemetry at the moment of the answer and explains where it comes from.

check(question, answer, ctx) parses the answer first (answers.AnswerError: malformed, nothing is checked), then
asks the source (telemetry.SourceError: the lab cannot answer now), then returns a Verdict with the expected value
and the explanation, right or wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lessons import answers
from lessons.telemetry import Context, SourceError


@dataclass(frozen=True)
class Verdict:
    correct: bool
    answer: str
    expected: str
    explanation: str


def _tolerance_ok(got: float, want: float, tolerance: dict[str, float]) -> bool:
    allowed = max(tolerance.get("absolute", 0.0), tolerance.get("relative", 0.0) * abs(want))
    return abs(got - want) <= allowed + 1e-9


def _tolerance_text(tolerance: dict[str, float]) -> str:
    parts = []
    if "absolute" in tolerance:
        parts.append(f"±{tolerance['absolute']:g}")
    if "relative" in tolerance:
        parts.append(f"±{tolerance['relative'] * 100:g}%")
    return " or ".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def _scalar(ctx: Context, promql: str, now: float) -> float:
    result = ctx.query(promql, now)
    if not result:
        raise SourceError(
            f"Prometheus has no value for this question right now ({promql}); wait a little and answer again"
        )
    return float(result[0]["value"][1])


def _where_promql(ctx: Context, promql: str) -> str:
    return f"PromQL (Prometheus {ctx.prometheus().where}, or Grafana Explore on lab-prometheus): {promql}"


def check_promql(spec: dict[str, Any], text: str, ctx: Context, now: float) -> Verdict:
    unit = spec["unit"]
    if unit == "utc_time":
        got: float = answers.utc_time(text, datetime.fromtimestamp(now, UTC))
    elif unit == "yesno":
        got = 1.0 if answers.yes_no(text) else 0.0
    else:
        got = answers.number(text)
    promql = ctx.render(spec["query"], now)
    want = _scalar(ctx, promql, now) * float(spec.get("scale", 1))
    if unit == "yesno":
        correct = (want > 0.5) == (got > 0.5)
        expected = "yes" if want > 0.5 else "no"
    elif unit == "utc_time":
        correct = _tolerance_ok(got, want, spec["tolerance"])
        expected = f"{_clock(want)} ({_tolerance_text(spec['tolerance'])} s)"
    else:
        correct = _tolerance_ok(got, want, spec["tolerance"])
        expected = f"{_fmt(want)} ({_tolerance_text(spec['tolerance'])})"
    return Verdict(correct, text.strip(), expected, _where_promql(ctx, promql))


def check_label(spec: dict[str, Any], text: str, ctx: Context, now: float) -> Verdict:
    got = answers.name(text)
    promql = ctx.render(spec["query"], now)
    result = sorted(ctx.query(promql, now), key=lambda s: -float(s["value"][1]))
    want = str(result[0]["metric"].get(spec["label"], "")) if result else "none"
    return Verdict(
        got.lower() == want.lower(),
        got,
        want,
        f"label {spec['label']!r} of the top series; {_where_promql(ctx, promql)}",
    )


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _epoch(stamp: object) -> float:
    text = _FRACTION.sub(r"\1", str(stamp)).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def check_alert(spec: dict[str, Any], text: str, ctx: Context, now: float) -> Verdict:
    got = answers.name(text)
    alerts = ctx.alerts()
    since = ctx.fault_start - 5  # alerts of this scene, not older ones
    if spec["source"] == "prometheus":
        listed = [(a, a.get("active_at")) for a in alerts.prometheus()]
        where = (
            f"Prometheus's alerts (Alerts page, /api/v1/alerts at {alerts.prom_where}; "
            "PromQL: ALERTS{alertstate=...})"
        )
    else:
        listed = [(a, a.get("starts_at")) for a in alerts.alertmanager()]
        where = f"Alertmanager's alerts (its UI, /api/v2/alerts at {alerts.am_where})"
    found = [
        (_epoch(stamp), a["alertname"])
        for a, stamp in listed
        if a["state"] in spec["states"]
        and ("severity" not in spec or a["severity"] == spec["severity"])
        and stamp
        and _epoch(stamp) >= since
    ]
    found.sort()
    names = sorted({n for _t, n in found})
    if spec.get("pick", "any") == "first":
        want = [found[0][1]] if found else ["none"]
        expected = f"{want[0]} (active since {_clock(found[0][0])})" if found else "none"
    else:
        want = names or ["none"]
        expected = " or ".join(want)
    filters = f"state {'/'.join(spec['states'])}" + (
        f", severity {spec['severity']}" if "severity" in spec else ""
    )
    return Verdict(
        got.lower() in {w.lower() for w in want},
        got,
        expected,
        f"{where}, {filters}, active since the scene began ({_clock(since)})",
    )


def check_log(spec: dict[str, Any], text: str, ctx: Context, now: float) -> Verdict:
    got = answers.request_id(text)
    match = {str(k): str(v) for k, v in spec["match"].items()}
    lines = [r for r in ctx.log_lines() if str(r.get("request_id")) == got]
    wanted = " and ".join(f"{k}={v}" for k, v in match.items())
    correct = any(all(str(r.get(k)) == v for k, v in match.items()) for r in lines)
    if correct:
        expected = f"a line with {wanted}: yes"
    elif lines:
        seen = ", ".join(f"{k}={lines[0].get(k)}" for k in match)
        expected = f"a line with {wanted}; the line of {got} has {seen}"
    else:
        expected = f"a line with {wanted}; no log line has request_id {got}"
    return Verdict(correct, got, expected, ctx.log_query_hint(got))


def check_budget(spec: dict[str, Any], text: str, ctx: Context, now: float) -> Verdict:
    got = answers.number(text)
    promql = ctx.render(f'slo:error_budget_remaining:ratio{{slo="{spec["slo"]}",app="$app"}}', now)
    before = _scalar(ctx, promql, ctx.scene_start)
    after = _scalar(ctx, promql, now)
    want = (before - after) * 100
    return Verdict(
        _tolerance_ok(got, want, spec["tolerance"]),
        text.strip(),
        f"{_fmt(want)} % of the budget (tolerance {_tolerance_text(spec['tolerance'])}): "
        f"{before * 100:.1f} % left at {_clock(ctx.scene_start)}, {after * 100:.1f} % now",
        f"the budget left before the scene minus the budget left now; {_where_promql(ctx, promql)} "
        "(the SLO dashboard's 'Error budget remaining' panel)",
    )


KINDS: dict[str, Callable[[dict[str, Any], str, Context, float], Verdict]] = {
    "promql": check_promql,
    "label": check_label,
    "alert": check_alert,
    "log": check_log,
    "budget": check_budget,
}


def check(question: dict[str, Any], text: str, ctx: Context, now: float | None = None) -> Verdict:
    spec = question["check"]
    verdict = KINDS[spec["kind"]](spec, text, ctx, time.time() if now is None else now)
    return Verdict(
        verdict.correct,
        verdict.answer,
        verdict.expected,
        f"{spec['explain'].strip()}\nWhere: {verdict.explanation}",
    )
