"""A self-contained report.html of any run window (stress runs now, drills later): no script, no CDN, no fetch.

Entry point for any caller::

    from loadtest.report.html import RunWindow, Annotations, write_html
    write_html(out_dir / "report.html", prom, RunWindow(start, end, app, namespace, scrape_seconds),
               Annotations(title=..., faults=[(on, off, "db failures")], ...), sli=SliSource.load(prom))

It runs Prometheus range queries over the window (the dashboards' panel queries, the SLI rules' burn rates,
ALERTS) and inlines every chart as SVG (matplotlib). Tables (verdict, steps) are passed in as rows.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.prom import Prometheus
from loadtest.report import charts, panels
from loadtest.report.sli import SliSource, scrape_job_only


@dataclass(frozen=True)
class RunWindow:
    start: float  # epoch seconds
    end: float
    app: str
    namespace: str
    scrape_seconds: float = 15.0
    job: str = ""  # only this scrape job's series of the app (a stress run's 1 s job); "" = every job


@dataclass
class Annotations:
    title: str
    faults: list[tuple[float, float, str]] = field(default_factory=list)  # epoch start, end, label
    load: list[dict[str, float]] = field(default_factory=list)  # Locust history: time, users, rps, fail_rps
    steps: list[dict[str, Any]] = field(default_factory=list)  # judged phases/steps (verdict.build_report)
    latency_threshold: float = 0.3
    latency_objective: float = 0.99
    availability_objective: float = 0.995
    saturation_limit: float | None = None
    verdict_rows: Sequence[tuple[str, str, str]] = ()
    headline: str = ""
    extra_sections: Sequence[tuple[str, str]] = ()  # (title, Markdown-free plain text)
    window_note: str = ""  # the window as the report states it (default: start and length of the window)
    # (title, column names, rows of cells): e.g. the capacity steps, the same cells as report.md
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[str]]]] = ()
    capacity: list[dict[str, Any]] = field(default_factory=list)  # report.json's capacity steps (the chart)


def _matrix(result: list[dict[str, Any]], start: float, legend: str) -> list[charts.Series]:
    found = []
    for item in result:
        points = [(float(t) - start, float(v)) for t, v in item["values"] if v not in ("NaN", "+Inf", "-Inf")]
        found.append(
            charts.Series(
                panels.legend(legend, item["metric"]), [p[0] for p in points], [p[1] for p in points]
            )
        )
    return sorted(found, key=lambda s: s.label)


def _panel_series(
    prom: Prometheus, window: RunWindow, dashboard: str, title: str, step: float, containing: str = ""
) -> tuple[str, list[charts.Series], list[str]]:
    panel = panels.panel(dashboard, title, containing=containing)
    rate = panels.rate_interval(window.scrape_seconds, step)
    series: list[charts.Series] = []
    queries = []
    for target in panel.targets:
        expr = panels.substitute(
            scrape_job_only(target.expr, window.job),
            app=window.app,
            namespace=window.namespace,
            rate=rate,
            range_seconds=window.end - window.start,
        )
        queries.append(expr)
        series += _matrix(prom.query_range(expr, window.start, window.end, step), window.start, target.legend)
    return panel.title, series, queries


def _alert_rows(
    prom: Prometheus, window: RunWindow, step: float
) -> dict[str, list[tuple[float, float, str]]]:
    """Each alert rule of the lab, with its pending and firing periods in the window."""
    rows: dict[str, list[tuple[float, float, str]]] = {
        f"{r['name']} ({(r.get('labels') or {}).get('severity', '')})": [] for r in prom.rules("alert")
    }
    expr = 'ALERTS{alertname=~".+"}'
    for item in prom.query_range(expr, window.start, window.end, step):
        metric = item["metric"]
        key = f"{metric.get('alertname')} ({metric.get('severity', '')})"
        times = [float(t) - window.start for t, _ in item["values"]]
        begin = prev = times[0]
        for t in times[1:]:
            if t - prev > step * 1.5:  # a gap: the alert left this state and came back
                rows.setdefault(key, []).append((begin, prev + step, metric.get("alertstate", "firing")))
                begin = t
            prev = t
        rows.setdefault(key, []).append((begin, prev + step, metric.get("alertstate", "firing")))
    return rows


def build_charts(
    prom: Prometheus, window: RunWindow, notes: Annotations, sli: SliSource
) -> tuple[list[charts.Chart], list[str]]:
    duration = window.end - window.start
    step = max(1.0, round(duration / 240, 1), window.scrape_seconds / 2)
    marks = charts.Marks(
        faults=[charts.Span(a - window.start, b - window.start, label) for a, b, label in notes.faults],
        steps=[s["to"] for s in notes.steps[:-1]],
        duration=duration,
    )
    drawn: list[charts.Chart] = []
    queries: list[str] = []

    def from_panel(key: str, dashboard: str, title: str, containing: str = "", **kwargs: Any) -> None:
        full_title, series, exprs = _panel_series(prom, window, dashboard, title, step, containing)
        queries.extend(exprs)
        drawn.append(charts.time_chart(key, full_title, series, marks, **kwargs))

    if notes.load:
        times = [p["time"] - window.start for p in notes.load]
        drawn.append(
            charts.time_chart(
                "load",
                "Load shape: offered requests/s and users, as Locust saw them",
                [charts.Series("requests/s (Locust)", times, [p["rps"] for p in notes.load])],
                marks,
                unit="requests/s",
                right=[charts.Series("users", times, [p["users"] for p in notes.load])],
                right_unit="users",
            )
        )
    from_panel("throughput", "api-overview", "Request rate by endpoint", unit="requests/s")
    from_panel(
        "errors",
        "api-overview",
        "Error ratio (5xx)",
        unit="ratio",
        lines=[(1 - notes.availability_objective, "SLO budget", "tab:red")],
    )
    from_panel(
        "latency",
        "api-overview",
        "Latency p50",
        unit="seconds",
        lines=[(notes.latency_threshold, f"threshold {notes.latency_threshold:g}s", "tab:red")],
    )
    from_panel(
        "slow",
        "api-overview",
        "Requests slower than",
        unit="share over the threshold",
        lines=[(1 - notes.latency_objective, "allowed share", "tab:red")],
    )
    thresholds = [
        (f, f"{sev} {f:g}x", "tab:red" if sev == "page" else "tab:orange")
        for sev, factors in sli.burn_thresholds.items()
        for f in factors
    ]
    for slo in ("Availability", "Latency"):
        from_panel(
            f"burn-{slo.lower()}",
            "api-slo",
            f"{slo} (",
            containing="burn rate",
            unit="burn rate",
            lines=thresholds,
            from_zero=True,
        )
    limit = [(notes.saturation_limit, "saturation limit", "tab:red")] if notes.saturation_limit else []
    from_panel("inflight", "api-overview", "In-flight requests", unit="requests", lines=limit)
    drawn.append(
        charts.state_chart("alerts", "Alerts: pending and firing", _alert_rows(prom, window, step), marks)
    )
    if notes.capacity:
        drawn.append(charts.capacity_chart(notes.capacity, notes.latency_threshold))
    return drawn, queries


def render(
    window: RunWindow, notes: Annotations, drawn: Sequence[charts.Chart], queries: Sequence[str]
) -> str:
    esc = html.escape
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(window.start))
    rows = "".join(
        f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td></tr>" for a, b, c in notes.verdict_rows
    )
    sections = "".join(
        f"<section><h2>{esc(t)}</h2><pre>{esc(body)}</pre></section>" for t, body in notes.extra_sections
    )
    sections += "".join(
        f'<section><h2>{esc(t)}</h2><table class="steps"><tr>{"".join(f"<th>{esc(c)}</th>" for c in cols)}</tr>'
        + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        + "</table></section>"
        for t, cols, rows in notes.tables
    )
    window_note = notes.window_note or f"{started}, {window.end - window.start:.0f} s"
    figures = "".join(
        f'<figure class="chart" data-key="{esc(c.key)}" data-series="{c.series}"'
        + (f' data-values="{esc(c.data)}"' if c.data else "")
        + f">{c.svg}"
        f"<figcaption>{esc(c.title)}{' (' + esc(c.note) + ')' if c.note else ''}</figcaption></figure>"
        for c in drawn
    )
    query_list = "".join(f"<li><code>{esc(q)}</code></li>" for q in queries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{esc(notes.title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: .25em .6em; }}
figure.chart {{ margin: 1em 0; }} figure.chart svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: .8em; color: #555; }} code {{ font-size: .8em; }}
table.steps {{ font-size: .8em; }} table.steps td:last-child {{ min-width: 20em; }}
</style></head><body>
<h1>{esc(notes.title)}</h1>
<p>{esc(notes.headline)}</p>
<p>Window: {esc(window_note)}; app <code>{esc(window.app)}</code> in
<code>{esc(window.namespace)}</code>. Red shading: fault windows; dotted lines: load steps.</p>
<table><tr><th>what</th><th>measured</th><th>objective</th></tr>{rows}</table>
{sections}
{figures}
<details><summary>Range queries</summary><ul>{query_list}</ul></details>
</body></html>
"""


def write_html(
    path: Path, prom: Prometheus, window: RunWindow, notes: Annotations, *, sli: SliSource | None = None
) -> Path:
    """Query Prometheus over the window, draw every chart and write one self-contained HTML file."""
    sli = sli or SliSource.load(prom)
    drawn, queries = build_charts(prom, window, notes, sli)
    path.write_text(render(window, notes, drawn, queries))
    return path
