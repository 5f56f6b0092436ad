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
    if report.get("phases") and not report.get("capacity"):
        rows.append(("first phase failing the SLOs", report.get("first_failing_phase") or "none", ""))
    cap = report.get("capacity")
    if cap:
        rows += capacity_rows(report)
    scope = ""
    if report.get("verdict_scope") == "steps":
        broke = [s for s in report.get("steps") or [] if s["verdict"] == "broke"]
        scope = (
            "every step held (server side)"
            if not broke
            else "broke at "
            + ", ".join(f"step {s['step']} ({s['users']} users)" for s in broke)
            + " (server side)"
        )
    rows.append(("verdict", report["verdict"].upper(), scope))
    return rows


def window_text(report: dict[str, Any]) -> str:
    """The run's one window, as report.md and report.html both state it."""
    w = report["window"]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(w["start"]))
    return (
        f"{started}, {w['duration_seconds']:.0f} s of load; the run's figures cover it up to the first scrape of the "
        f"API after the end ({w['evaluated_at'] - w['end']:.0f} s later), each step's figures its own measured window"
    )


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Stress test {report['run_id']}: {report['verdict'].upper()}",
        "",
        f"- target: {report['target']} ({report['platform']}), shape {json.dumps(report['shape'])}, "
        f"profile {report['profile']}",
        f"- window: {window_text(report)}",
        f"- Prometheus: {report['prometheus']}"
        + (
            f", the API's series of its stress-only job {report['scrape_job']} (every {report['scrape_interval']})"
            if report.get("scrape_job")
            else ""
        ),
        "",
        "| what | measured | objective |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in summary_rows(report)),
        "",
    ]
    if report["breaches"]:
        lines += ["## Breaches", "", *(f"- {b}" for b in report["breaches"]), ""]
    if report.get("phases") and not report.get("capacity"):
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


def _rate(figure: dict[str, Any]) -> str:
    if figure["rps"] is None:
        return "none held"
    return f"{'at least ' if figure['at_least'] else ''}{figure['rps']:,.1f}/s"


def _where(figure: dict[str, Any]) -> str:
    if not figure["step"]:
        return "no step held"
    spread = figure["spread"]
    if spread["measurements"] < 2:
        return f"{figure['step']} (one measurement)"
    return f"{figure['step']} ({spread['measurements']} measurements, spread {spread['relative']:.1%})"


def capacity_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The capacity rows of the summary table: both figures, where each view broke, saturation, the CPU split."""
    cap = report["capacity"]
    slo, client, sat, gap = cap["slo"], cap["client"], cap["saturation"], cap["gap"] or {}
    rows = [
        ("capacity by the SLO (server side)", _rate(slo), _where(slo)),
        ("capacity by the clients (Locust)", _rate(client), _where(client)),
        ("SLO broke at", slo["broke_at"] or "did not break", ", ".join(slo["broke_by"])),
        (
            "clients breached at",
            client["broke_at"] or "did not breach",
            ", ".join(client["broke_by"])
            + (
                ""
                if gap.get("p99_gap_seconds") is None or not client["broke_at"]
                else f"; p99 gap client - server {gap['p99_gap_seconds'] * 1000:+.1f} ms"
            ),
        ),
        (
            "saturation",
            "not reached" if not sat["reached"] else f"{sat['rps']:,.1f}/s",
            f"at {sat['users']} users" if sat["reached"] else sat["why"],
        ),
    ]
    physical = cap.get("physical")
    if physical:
        rows.append(
            (
                "wrk maximum (same /api/ mix)",
                "n/a" if physical["wrk_rps"] is None else f"{physical['wrk_rps']:,.1f}/s",
                physical.get("error")
                or (
                    ""
                    if physical["ratio"] is None
                    else f"{physical['ratio_of']} / wrk = {physical['ratio']:.0%}"
                ),
            )
        )
    steps = report.get("steps") or []
    if steps:
        last = steps[-1]
        rows.append(("CPU at the last step", cpu_split(last), f"load {_num(last.get('load1'), '.2f')}"))
    return rows


def _num(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def cpu_split(step: dict[str, Any]) -> str:
    """ "generator 95%, server 80%, others 10% of 2 cores" (percent of one core each). On Kubernetes the server's
    figure is cAdvisor's (its containers, wherever they run) and "others" is the rest of the generator's node."""
    cores = step.get("cores")
    server = f"server {_num(step.get('server_cpu_percent'), '.0f')}%"
    if step.get("server_cpu_source") == "cadvisor":
        server += " (cAdvisor)"
    return (
        f"generator {_num(step.get('generator_cpu_percent'), '.0f')}%, {server}, "
        f"others {_num(step.get('others_cpu_percent'), '.0f')}%"
        + ("" if cores is None else f" of {cores:.0f} cores")
    )


STEP_COLUMNS = (
    "step",
    "users",
    "seconds",
    "requests",
    "server rps",
    "server 5xx",
    "server under threshold",
    "server p99",
    "client under threshold",
    "client p99",
    "p99 gap",
    "CPU (% of a core)",
    "verdict",
    "reason",
)


def step_cells(step: dict[str, Any]) -> list[str]:
    """One row of the per-step table (report.md and report.html print the same cells)."""
    server, client = step["server"], step["client"]
    gap = step["p99_gap_seconds"]
    return [
        step["label"],
        str(step["users"]),
        f"{step['duration_seconds']:.0f} (after {step['warmup_seconds']:.0f} s warm-up)",
        _fmt(step["requests"], "n"),
        _fmt(server["throughput_rps"], "rps"),
        _fmt(server["error_ratio"], "pct"),
        _fmt(server["under_threshold_ratio"], "pct"),
        _fmt(server["p99_seconds"], "ms"),
        _fmt(client["under_threshold_ratio"], "pct"),
        _fmt(client["p99_seconds"], "ms"),
        "n/a" if gap is None else f"{gap * 1000:+.1f} ms",
        cpu_split(step),
        step["verdict"] + (" (generator-limited)" if step["generator_limited"] else ""),
        step["reason"],
    ]


def capacity_lines(report: dict[str, Any]) -> list[str]:
    """The capacity story in words, then one row per step (server view, client view, CPU, verdict, reason)."""
    cap = report["capacity"]
    return [
        *cap["story"],
        "",
        "| " + " | ".join(STEP_COLUMNS) + " |",
        "|" + "---|" * len(STEP_COLUMNS),
        *("| " + " | ".join(c.replace("|", "/") for c in step_cells(s)) + " |" for s in report["steps"]),
    ]
