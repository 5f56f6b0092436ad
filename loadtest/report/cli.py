"""The command line of the stress report (``python -m loadtest.report``); see the package docstring."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest.prom import Prometheus, PrometheusError, service_proxy_fetcher, url_fetcher
from loadtest.report.html import Annotations, RunWindow, write_html
from loadtest.report.locust_csv import load_history
from loadtest.report.markdown import STEP_COLUMNS, markdown, step_cells, summary_rows, table, window_text
from loadtest.report.panels import PanelError
from loadtest.report.sli import SliError, SliSource, seconds
from loadtest.report.slo import ReportError
from loadtest.report.verdict import build_report


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


def write_run_html(path: Path, prom: Prometheus, run: dict[str, Any], report: dict[str, Any]) -> Path:
    """report.html of a stress run: the run's window, its fault window, load history, steps and verdict."""
    fault = run.get("fault_window") or {}
    faults = (
        [(float(fault["on"]), float(fault["off"]), "fault window")]
        if "on" in fault and "off" in fault
        else []
    )
    cap = report.get("capacity")
    headline = f"Verdict: {report['verdict'].upper()}."
    tables = []
    if cap:
        headline += " " + " ".join(cap["story"])
        tables.append(("Capacity steps", STEP_COLUMNS, [step_cells(s) for s in report["steps"]]))
    notes = Annotations(
        title=f"Stress test {report['run_id']}: {report['verdict'].upper()}",
        faults=faults,
        load=load_history(Path(run["locust_csv_prefix"])) if run.get("locust_csv_prefix") else [],
        steps=report["phases"],
        latency_threshold=report["slo"]["latency_threshold_seconds"],
        latency_objective=report["slo"]["latency_objective"],
        availability_objective=report["slo"]["availability_objective"],
        saturation_limit=run.get("saturation_limit"),
        verdict_rows=summary_rows(report),
        headline=headline,
        extra_sections=[("Breaches", "\n".join(report["breaches"]))] if report["breaches"] else [],
        window_note=window_text(report),
        tables=tables,
        capacity=report.get("steps") or [],
    )
    window = RunWindow(
        float(run["start"]),
        float(report["window"]["evaluated_at"]),
        run["app"],
        run["namespace"],
        seconds(str(run.get("scrape_interval") or "15s")),
        str(run.get("scrape_job") or ""),
    )
    return write_html(path, prom, window, notes, sli=SliSource.load(prom).for_job(window.job))


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


def _wait_for_job(prom: Prometheus, job: str, timeout: float) -> int:
    """Wait until ``job`` has scraped a target successfully (service discovery, then the first scrape); print how
    many targets it scrapes. A line on stderr every 15 s while waiting."""
    started = time.time()
    said = started
    while not (up := prom.query(f'up{{job="{job}"}} == 1', time.time())):
        now = time.time()
        if now - started >= timeout:
            raise ReportError(
                f"Prometheus ({prom.where}) has not scraped the API with job {job!r} within {timeout:.0f} s: "
                "is the stress-only scrape job in its configuration? Run `make lab` to deploy it"
            )
        if now - said >= 15:
            print(
                f"waiting for Prometheus's job {job!r} to scrape the API ({now - started:.0f} s)",
                file=sys.stderr,
            )
            said = now
        time.sleep(1.0)
    print(json.dumps({"job": job, "targets_up": len(up), "waited_seconds": round(time.time() - started, 1)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.report", description="Stress test verdict and report from Prometheus"
    )
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
    parser.add_argument(
        "--check-job",
        default="",
        help="with --check: wait for a successful scrape by this job instead (the stress-only 1 s job)",
    )
    parser.add_argument("--settle-timeout", type=float, default=90.0, help="max wait for the post-run scrape")
    args = parser.parse_args(argv)
    try:
        prom = _prometheus(args)
        if args.check:
            info = prom.check()
            if args.check_job:
                return _wait_for_job(prom, args.check_job, args.check_timeout)
            # A Prometheus started moments ago (site.yml just ran) has not scraped yet: give it a few intervals.
            deadline = time.time() + args.check_timeout
            while not (up := prom.query(f'up{{app="{args.app}",namespace="{args.namespace}"}}', time.time())):
                if time.time() >= deadline:
                    break
                time.sleep(1.0)
            if up:
                SliSource.load(prom)  # the SLO rules are loaded: the verdict has its SLI queries
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
        run["steps_file"] = str(args.run.parent / "steps.json")  # the capacity shape's step log, if any
        wrk_file = args.run.parent / "wrk.json"  # the physical limit, measured before the search (capacity)
        if wrk_file.exists():
            run["wrk"] = json.loads(wrk_file.read_text())
        fault_file = args.run.parent / "fault.json"
        if fault_file.exists():
            run["fault_window"] = json.loads(fault_file.read_text())
        eval_time = wait_for_final_scrape(
            prom, run["app"], run["namespace"], float(run["end"]), args.settle_timeout
        )
        report = build_report(prom, run, eval_time)
        out = args.run.parent
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "report.md").write_text(markdown(report))
        write_run_html(out / "report.html", prom, run, report)
    except (PrometheusError, ReportError, SliError, PanelError, OSError, KeyError, ValueError) as err:
        print(f"stress report: {err}", file=sys.stderr)
        return 2
    print(table(report))
    return 0
