"""The stress test's verdict, from the server's own metrics over exactly the run's window.

``python -m loadtest.report --run <dir>/run.json --prometheus-url URL`` (or ``--prometheus-service ns/name:port``)
reads the run's metadata (written by the stress_test role: start, end, app, namespace, the SLO spec ``lab_slo``),
waits until Prometheus has scraped the API after the run ended, queries it over [start, that scrape], adds
Locust's own figures from its CSV, and writes ``report.json`` and ``report.md`` beside run.json.
``--check`` only checks that Prometheus answers and scrapes the API (the role's preflight).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.prom import Prometheus, PrometheusError, service_proxy_fetcher, url_fetcher

QUANTILES = (0.5, 0.95, 0.99)
_WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ReportError(RuntimeError):
    """The run's metadata or the query results do not allow a verdict."""


@dataclass(frozen=True)
class Slo:
    window_seconds: int
    availability_objective: float  # ratio, e.g. 0.995
    latency_objective: float  # ratio, e.g. 0.99
    latency_threshold: float  # seconds, an exact bucket bound

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Slo:
        """From group_vars ``lab_slo`` (objectives in percent, window like ``30d``)."""
        try:
            window = str(spec["window"]).strip()
            seconds = int(window[:-1]) * _WINDOW_UNITS[window[-1]]
            availability = float(spec["availability"]["objective"]) / 100
            latency = float(spec["latency"]["objective"]) / 100
            threshold = float(spec["latency"]["threshold_seconds"])
        except (KeyError, ValueError, TypeError, IndexError) as err:
            raise ReportError(f"lab_slo is incomplete or malformed ({err!r}): {spec!r}") from None
        for name, value in (("availability", availability), ("latency", latency)):
            if not 0 < value < 1:
                raise ReportError(
                    f"lab_slo.{name}.objective must be a percentage between 0 and 100; got {value * 100}"
                )
        return cls(seconds, availability, latency, threshold)


def selector(app: str, namespace: str, extra: str = "") -> str:
    """The SLI's series: the API's user-facing endpoints (docs/ARCHITECTURE.md)."""
    parts = [f'app="{app}"', f'namespace="{namespace}"', 'endpoint=~"/api/.+"']
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}"


def queries(app: str, namespace: str, threshold: float, window: int) -> dict[str, str]:
    """Every PromQL the report runs, at the evaluation time, over [eval - window, eval]."""
    rng = f"[{window}s]"
    count = "app_request_count_total"
    bucket = "app_request_latency_seconds_bucket"
    q = {
        "requests": f"sum(increase({count}{selector(app, namespace)}{rng}))",
        "errors": f"sum(increase({count}{selector(app, namespace, 'http_status=~"5.."')}{rng}))",
        "latency_count": f"sum(increase(app_request_latency_seconds_count{selector(app, namespace)}{rng}))",
        "latency_good": f"sum(increase({bucket}{selector(app, namespace, f'le="{threshold:g}"')}{rng}))",
        "alerts_firing": f'max by (alertname, severity, slo) (max_over_time(ALERTS{{alertstate="firing"}}{rng}))',
        "alerts_pending": f'max by (alertname, severity, slo) (max_over_time(ALERTS{{alertstate="pending"}}{rng}))',
    }
    for quantile in QUANTILES:
        q[f"p{quantile * 100:g}"] = (
            f"histogram_quantile({quantile}, sum by (le) (increase({bucket}{selector(app, namespace)}{rng})))"
        )
    return q


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def wait_for_final_scrape(
    prom: Prometheus,
    app: str,
    namespace: str,
    end: float,
    timeout: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until every scraped API target has a sample after ``end``; return that time (the evaluation time)."""
    promql = f'min(timestamp(up{{app="{app}",namespace="{namespace}"}}))'
    deadline = clock() + timeout
    while True:
        now = clock()
        last = prom.scalar(promql, now)
        if last is not None and last >= end:
            return max(last, end)
        if now >= deadline:
            raise ReportError(
                f"Prometheus ({prom.where}) has no scrape of the API (up{{app={app!r},namespace={namespace!r}}}) "
                f"after the run ended within {timeout:.0f}s; last sample at {last}"
            )
        sleep(1.0)


def locust_figures(csv_prefix: Path) -> dict[str, Any] | None:
    """Locust's own view from <prefix>_stats.csv: the aggregated row and the /api/ rows."""
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return None
    rows = list(csv.DictReader(path.open()))
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if total is None:
        return None
    api = [r for r in rows if r["Name"].startswith("/api/")]

    def ms(row: dict[str, str], key: str) -> float | None:
        value = row.get(key, "N/A")
        return None if value in ("N/A", "") else float(value)

    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "api_requests": sum(int(r["Request Count"]) for r in api),
        "requests_per_second": float(total["Requests/s"]),
        "p50_ms": ms(total, "50%"),
        "p95_ms": ms(total, "95%"),
        "p99_ms": ms(total, "99%"),
    }


def _alerts(result: list[dict[str, Any]]) -> list[dict[str, str]]:
    found = [
        {k: r["metric"].get(k, "") for k in ("alertname", "severity", "slo")}
        for r in result
        if r["metric"].get("alertname")
    ]
    return sorted(found, key=lambda a: (a["alertname"], a["slo"]))


def phases(shape: dict[str, Any], run_seconds: float) -> list[dict[str, Any]]:
    """The parts of a step or spike run to judge one by one: (label, users, from, to) in seconds after the start."""
    name = shape.get("name")
    found: list[dict[str, Any]] = []
    if name == "step":
        length, per_step, top = int(shape["step_seconds"]), int(shape["step_users"]), int(shape["users"])
        begin = 0
        while begin < run_seconds - 1:
            users = min(top, (begin // length + 1) * per_step)
            found.append(
                {
                    "phase": f"{users} users",
                    "users": users,
                    "from": begin,
                    "to": min(begin + length, run_seconds),
                }
            )
            begin += length
    elif name == "spike":
        at, length = int(shape["spike_at"]), int(shape["spike_seconds"])
        found = [
            {"phase": "before the spike", "users": shape["base_users"], "from": 0, "to": at},
            {"phase": "spike", "users": shape["users"], "from": at, "to": at + length},
            {"phase": "recovery", "users": shape["base_users"], "from": at + length, "to": run_seconds},
        ]
    return [p for p in found if p["to"] - p["from"] >= 1]


def judge_phases(prom: Prometheus, run: dict[str, Any], slo: Slo) -> list[dict[str, Any]]:
    """Per phase: throughput, 5xx ratio, share under the threshold, p99, and whether it met both SLOs."""
    start, end = float(run["start"]), float(run["end"])
    rows = []
    for phase in phases(run.get("shape") or {}, end - start):
        length = math.ceil(phase["to"] - phase["from"])
        q = queries(run["app"], run["namespace"], slo.latency_threshold, length)
        at = start + phase["to"]
        requests = _number(prom.scalar(q["requests"], at)) or 0.0
        errors = _number(prom.scalar(q["errors"], at)) or 0.0
        count = _number(prom.scalar(q["latency_count"], at)) or 0.0
        good = _number(prom.scalar(q["latency_good"], at)) or 0.0
        error_ratio = errors / requests if requests else None
        under = min(1.0, good / count) if count else None
        ok = (
            None
            if error_ratio is None or under is None
            else error_ratio <= 1 - slo.availability_objective and under >= slo.latency_objective
        )
        rows.append(
            {
                **phase,
                "throughput_rps": requests / length,
                "error_ratio": error_ratio,
                "latency_under_threshold_ratio": under,
                "latency_p99_seconds": _number(prom.scalar(q["p99"], at)),
                "meets_slo": ok,
            }
        )
    return rows


def build_report(prom: Prometheus, run: dict[str, Any], eval_time: float) -> dict[str, Any]:
    """Query Prometheus over [start, eval_time] and compute the verdict against the SLO."""
    slo = Slo.from_spec(run["slo"])
    start, end = float(run["start"]), float(run["end"])
    if end <= start:
        raise ReportError(f"the run ended ({end}) before it started ({start})")
    window = max(1, math.ceil(eval_time - start))
    q = queries(run["app"], run["namespace"], slo.latency_threshold, window)
    values = {name: _number(prom.scalar(q[name], eval_time)) for name in q if not name.startswith("alerts")}
    requests = values["requests"] or 0.0
    errors = values["errors"] or 0.0
    latency_count = values["latency_count"] or 0.0
    latency_good = values["latency_good"] or 0.0
    duration = end - start

    allowed_errors = 1 - slo.availability_objective
    allowed_slow = 1 - slo.latency_objective
    if requests <= 0 or latency_count <= 0:
        error_ratio = under = None
        verdict = "no_data"
        breaches = ["Prometheus holds no API requests for the run's window: is it scraping the API?"]
        budgets: dict[str, Any] = {}
    else:
        error_ratio = errors / requests
        under = min(1.0, latency_good / latency_count)
        breaches = []
        if error_ratio > allowed_errors:
            breaches.append(
                f"availability: {error_ratio:.3%} of API requests failed with a 5xx, "
                f"the SLO allows {allowed_errors:.3%} (objective {slo.availability_objective:.3%})"
            )
        if under < slo.latency_objective:
            breaches.append(
                f"latency: {under:.3%} of API requests took under {slo.latency_threshold:g}s, "
                f"the SLO asks for {slo.latency_objective:.3%}"
            )
        verdict = "breach" if breaches else "pass"
        budgets = {}
        for name, bad_ratio, allowed in (
            ("availability", error_ratio, allowed_errors),
            ("latency", 1 - under, allowed_slow),
        ):
            burn = bad_ratio / allowed
            budgets[name] = {
                "burn_rate": burn,
                # Share of the SLO window's error budget this run used (traffic over the window at the run's rate).
                "budget_consumed": burn * duration / slo.window_seconds,
            }

    locust = locust_figures(Path(run["locust_csv_prefix"])) if run.get("locust_csv_prefix") else None
    notes = []
    if locust and locust["api_requests"] and requests:
        gap = (requests - locust["api_requests"]) / locust["api_requests"]
        if abs(gap) > 0.1:
            notes.append(
                f"Prometheus counted {gap:+.0%} API requests compared with Locust: other clients, requests that never "
                "reached the API (restarts), or series that first appeared during the run (increase() cannot see "
                "their first increment)"
            )
    return {
        "run_id": run.get("run_id"),
        "platform": run.get("platform"),
        "target": run.get("target"),
        "prometheus": prom.where,
        "shape": run.get("shape"),
        "profile": run.get("profile"),
        "fault_window": run.get("fault_window"),
        "window": {"start": start, "end": end, "duration_seconds": duration, "evaluated_at": eval_time},
        "slo": {
            "window_seconds": slo.window_seconds,
            "availability_objective": slo.availability_objective,
            "latency_objective": slo.latency_objective,
            "latency_threshold_seconds": slo.latency_threshold,
        },
        "prometheus_figures": {
            "requests": requests,
            "errors_5xx": errors,
            "throughput_rps": requests / duration,
            "error_ratio": error_ratio,
            "latency_under_threshold_ratio": under,
            "latency_p50_seconds": values["p50"],
            "latency_p95_seconds": values["p95"],
            "latency_p99_seconds": values["p99"],
        },
        "budget": budgets,
        "phases": (phase_rows := judge_phases(prom, run, slo)),
        # step shape: the first step (user count) at which the API no longer met both SLOs.
        "first_failing_phase": next((p["phase"] for p in phase_rows if p["meets_slo"] is False), None),
        "alerts_fired": _alerts(prom.query(q["alerts_firing"], eval_time)),
        "alerts_pending": _alerts(prom.query(q["alerts_pending"], eval_time)),
        "locust": locust,
        "notes": notes,
        "queries": q,
        "verdict": verdict,
        "breaches": breaches,
    }


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
                f"{name} budget used",
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


def _prometheus(args: argparse.Namespace) -> Prometheus:
    if args.prometheus_url:
        return Prometheus(url_fetcher(args.prometheus_url), args.prometheus_url)
    namespace, _, service = args.prometheus_service.partition("/")
    if not namespace or not service:
        raise ReportError(
            f"--prometheus-service must be <namespace>/<service>:<port>; got {args.prometheus_service!r}"
        )
    fetch = service_proxy_fetcher(namespace, service, args.kubeconfig, args.context)
    return Prometheus(fetch, f"service {args.prometheus_service} via the API server")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.report", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--prometheus-url", help="e.g. http://127.0.0.1:19090")
    where.add_argument(
        "--prometheus-service", help="<namespace>/<service>:<port>, through the API server proxy"
    )
    parser.add_argument("--kubeconfig", default="")
    parser.add_argument("--context", default="")
    parser.add_argument("--run", type=Path, help="run.json written by the role (required unless --check)")
    parser.add_argument(
        "--check", action="store_true", help="only check Prometheus answers and scrapes the API"
    )
    parser.add_argument("--app", default="flask-api", help="with --check: the app label")
    parser.add_argument("--namespace", default="sre-lab", help="with --check: the namespace label")
    parser.add_argument(
        "--check-timeout", type=float, default=30.0, help="with --check: max wait for a scrape"
    )
    parser.add_argument("--settle-timeout", type=float, default=90.0, help="max wait for the post-run scrape")
    args = parser.parse_args(argv)
    try:
        prom = _prometheus(args)
        if args.check:
            info = prom.check()
            # A Prometheus started moments ago (site.yml just ran) has not scraped yet: give it a few intervals.
            deadline = time.time() + args.check_timeout
            while not (up := prom.query(f'up{{app="{args.app}",namespace="{args.namespace}"}}', time.time())):
                if time.time() >= deadline:
                    break
                time.sleep(1.0)
            if not up:
                raise ReportError(
                    f"Prometheus ({prom.where}, {info.get('version')}) has no target with "
                    f'app="{args.app}",namespace="{args.namespace}": it does not scrape the API'
                )
            print(json.dumps({"prometheus_version": info.get("version"), "api_targets": len(up)}))
            return 0
        if args.run is None:
            parser.error("--run is required")
        run = json.loads(args.run.read_text())
        fault_file = args.run.parent / "fault.json"
        if fault_file.exists():
            run["fault_window"] = json.loads(fault_file.read_text())
        eval_time = wait_for_final_scrape(
            prom, run["app"], run["namespace"], float(run["end"]), args.settle_timeout
        )
        report = build_report(prom, run, eval_time)
    except (PrometheusError, ReportError, OSError, KeyError, ValueError) as err:
        print(f"stress report: {err}", file=sys.stderr)
        return 2
    out = args.run.parent
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
