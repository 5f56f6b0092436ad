"""The report as Markdown (report.md) and as the console table the play prints."""

from __future__ import annotations

import json
import time
from typing import Any


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{value:.3%}"
    if kind == "ms":
        return f"{value * 1000:.1f} ms"
    if kind == "rps":
        return f"{value:.1f}/s"
    return f"{value:,.0f}"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, measured, objective) rows of the summary table."""
    p = report["prometheus_figures"]
    slo = report["slo"]
    rows = [
        ("API requests (Prometheus)", _fmt(p["requests"], "n"), ""),
        ("throughput", _fmt(p["throughput_rps"], "rps"), ""),
        ("5xx error ratio", _fmt(p["error_ratio"], "pct"), f"<= {1 - slo['availability_objective']:.3%}"),
        (
            f"under {slo['latency_threshold_seconds']:g}s",
            _fmt(p["latency_under_threshold_ratio"], "pct"),
            f">= {slo['latency_objective']:.3%}",
        ),
        ("latency p50", _fmt(p["latency_p50_seconds"], "ms"), ""),
        ("latency p95", _fmt(p["latency_p95_seconds"], "ms"), ""),
        ("latency p99", _fmt(p["latency_p99_seconds"], "ms"), ""),
    ]
    for name, budget in report["budget"].items():
        rows.append(
            (
                f"{name} budget used (of the {slo['window']} SLO window)",
                f"{budget['budget_consumed']:.4%}",
                f"burn rate {budget['burn_rate']:.2f}x",
            )
        )
    fired = ", ".join(a["alertname"] for a in report["alerts_fired"]) or "none"
    rows.append(("alerts fired", fired, ""))
    locust = report.get("locust")
    if locust:
        rows.append(("Locust requests / failures", f"{locust['requests']:,} / {locust['failures']:,}", ""))
        rows.append(("Locust p95", "n/a" if locust["p95_ms"] is None else f"{locust['p95_ms']:.0f} ms", ""))
    if report.get("phases"):
        rows.append(("first phase failing the SLOs", report.get("first_failing_phase") or "none", ""))
    cap = report.get("capacity")
    if cap:
        rows.append(
            (
                "capacity (both SLOs held)",
                _fmt(cap["sustained_rps"], "rps"),
                cap["sustained_step"] or "no step held",
            )
        )
        rows.append(("broke at", cap["broke_at"] or "did not break", cap["broke_first"] or cap["limit"]))
    rows.append(("verdict", report["verdict"].upper(), ""))
    return rows


def markdown(report: dict[str, Any]) -> str:
    w = report["window"]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(w["start"]))
    lines = [
        f"# Stress test {report['run_id']}: {report['verdict'].upper()}",
        "",
        f"- target: {report['target']} ({report['platform']}), shape {json.dumps(report['shape'])}, "
        f"profile {report['profile']}",
        f"- window: {started}, {w['duration_seconds']:.0f}s (evaluated {w['evaluated_at'] - w['end']:.0f}s after "
        "the end, once Prometheus had scraped the API again)",
        f"- Prometheus: {report['prometheus']}",
        "",
        "| what | measured | objective |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in summary_rows(report)),
        "",
    ]
    if report["breaches"]:
        lines += ["## Breaches", "", *(f"- {b}" for b in report["breaches"]), ""]
    if report.get("phases"):
        lines += [
            "## Phases",
            "",
            "| phase | seconds | throughput | 5xx ratio | under threshold | p99 | meets the SLOs |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {p['phase']} | {p['from']:.0f}-{p['to']:.0f} | {_fmt(p['throughput_rps'], 'rps')} | "
                f"{_fmt(p['error_ratio'], 'pct')} | {_fmt(p['latency_under_threshold_ratio'], 'pct')} | "
                f"{_fmt(p['latency_p99_seconds'], 'ms')} | {'n/a' if p['meets_slo'] is None else p['meets_slo']} |"
                for p in report["phases"]
            ),
            "",
        ]
    cap = report.get("capacity")
    if cap:
        lines += ["## Capacity", "", *capacity_lines(report), ""]
    if report.get("notes"):
        lines += ["## Notes", "", *(f"- {n}" for n in report["notes"]), ""]
    if report.get("fault_window"):
        lines += ["## Fault window", "", f"`{json.dumps(report['fault_window'])}`", ""]
    lines += ["## Queries", "", *(f"- {k}: `{v}`" for k, v in report["queries"].items()), ""]
    lines += [
        "Locust's own files: `locust.html`, `locust_stats.csv`, `locust_stats_history.csv`, "
        "`locust_failures.csv`.",
        "",
    ]
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    rows = summary_rows(report)
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:>16}  {c}".rstrip() for a, b, c in rows)


def capacity_lines(report: dict[str, Any]) -> list[str]:
    """The capacity verdict in words, then one row per step (server view + the generator's CPU)."""
    cap = report["capacity"]
    if cap["sustained_rps"] is None:
        held = "No step held both SLOs."
    else:
        held = (
            f"Highest sustained throughput with both SLOs held: **{cap['sustained_rps']:.1f} requests/s** "
            f"({cap['sustained_step']})."
        )
    broke = (
        f"It broke at {cap['broke_at']}: {'; '.join(cap['broke_reasons'])} (first: {cap['broke_first']}; "
        f"the limit was {cap['limit']})."
        if cap["broke_at"]
        else f"No step broke before the ceiling ({(cap.get('stopped') or {}).get('reason', 'end of the run')})."
    )
    lines = [
        held,
        broke,
        "",
        "| step | throughput | 5xx ratio | under threshold | p99 | Locust CPU | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in report["phases"]:
        gen = step.get("generator", {})
        cpu = gen.get("generator_cpu_percent")
        lines.append(
            f"| {step['phase']} | {_fmt(step['throughput_rps'], 'rps')} | {_fmt(step['error_ratio'], 'pct')} | "
            f"{_fmt(step['latency_under_threshold_ratio'], 'pct')} | {_fmt(step['latency_p99_seconds'], 'ms')} | "
            f"{'n/a' if cpu is None else f'{cpu:.0f}%'} | {step['meets_slo'] and not gen.get('breaches')} |"
        )
    return lines
