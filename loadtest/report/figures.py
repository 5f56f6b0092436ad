"""Server-side figures of a time window, from Prometheus, through the SLI expressions of the rules."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from loadtest.prom import Prometheus
from loadtest.report import panels
from loadtest.report.sli import SliSource, series_value

# cAdvisor is scraped at the platform's interval (15 s): a rate needs two of its samples.
CADVISOR_MIN_RANGE_SECONDS = 30.0

QUANTILES = (0.5, 0.95, 0.99)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


@dataclass(frozen=True)
class Target:
    app: str
    namespace: str


def window_queries(sli: SliSource, target: Target, seconds: float) -> dict[str, str]:
    """Every PromQL the window's figures need, over [eval - seconds, eval]."""
    rng = f"{max(1, math.ceil(seconds))}s"
    latency = sli.slis["latency"]
    q = {
        "requests": sli.slis["availability"].count(rng),
        "error_ratio": sli.slis["availability"].ratio(rng),
        "latency_count": latency.count(rng),
        "latency_error_ratio": latency.ratio(rng),
    }
    for quantile in QUANTILES:
        q[f"p{quantile * 100:g}"] = (
            f"histogram_quantile({quantile}, {latency.latency_buckets(rng, target.namespace)})"
        )
    return q


def window_figures(
    prom: Prometheus, sli: SliSource, target: Target, start: float, end: float
) -> dict[str, Any]:
    """Requests, throughput, 5xx ratio, share under the threshold and quantiles of [start, end]."""
    seconds = end - start
    q = window_queries(sli, target, seconds)

    def value(name: str) -> float | None:
        result = prom.query(q[name], end)
        if name.startswith("p"):
            return _number(float(result[0]["value"][1])) if result else None
        return _number(series_value(result, target.app, target.namespace))

    requests = value("requests") or 0.0
    error_ratio = value("error_ratio") if requests else None
    latency_bad = value("latency_error_ratio") if requests else None
    return {
        "requests": requests,
        "errors_5xx": (error_ratio or 0.0) * requests,
        "throughput_rps": requests / seconds if seconds > 0 else 0.0,
        "error_ratio": error_ratio,
        "latency_under_threshold_ratio": None if latency_bad is None else max(0.0, 1 - latency_bad),
        "latency_p50_seconds": value("p50"),
        "latency_p95_seconds": value("p95"),
        "latency_p99_seconds": value("p99"),
        "server_cpu_cadvisor_percent": server_cpu_cadvisor(prom, target, seconds, end),
        "queries": q,
    }


@functools.cache
def _cpu_panel_expr() -> str:
    """The dashboard's cAdvisor CPU query, read once per process (every step's window uses it)."""
    return panels.panel("api-overview", "CPU against the limit").targets[0].expr


def server_cpu_cadvisor(prom: Prometheus, target: Target, seconds: float, end: float) -> float | None:
    """The API's containers' CPU over the window ending at ``end`` (at least CADVISOR_MIN_RANGE_SECONDS), in percent
    of one core, summed over its pods: the query of the dashboard's "CPU against the limit (cAdvisor)" panel. None
    where Prometheus has no cAdvisor series of the API (the local platform: the generator samples the server's
    processes there)."""
    expr = panels.substitute(
        _cpu_panel_expr(),
        app=target.app,
        namespace=target.namespace,
        rate=f"{math.ceil(max(seconds, CADVISOR_MIN_RANGE_SECONDS))}s",
        range_seconds=seconds,
    )
    result = prom.query(f"sum({expr}) * 100", end)
    return _number(float(result[0]["value"][1])) if result else None


def alerts(prom: Prometheus, start: float, end: float, state: str) -> list[dict[str, str]]:
    """Alerts that were in ``state`` (pending or firing) at some point of [start, end]."""
    rng = f"{max(1, math.ceil(end - start))}s"
    result = prom.query(
        f'max by (alertname, severity, slo) (max_over_time(ALERTS{{alertstate="{state}"}}[{rng}]))', end
    )
    found = [
        {k: r["metric"].get(k, "") for k in ("alertname", "severity", "slo")}
        for r in result
        if r["metric"].get("alertname")
    ]
    return sorted(found, key=lambda a: (a["alertname"], a["slo"]))
