"""The run's verdict: figures over the run's window, per phase or capacity step, budget, alerts, capacity.

Every verdict (the run's, each phase's, each capacity step's) is the SLO's: the server-side SLIs of the recording
rules the alerts use. Capacity steps add Locust's client-side view and the story (``steps``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.prom import Prometheus
from loadtest.report.figures import Target, alerts, window_figures
from loadtest.report.locust_csv import locust_figures
from loadtest.report.phases import capacity_steps, shape_phases
from loadtest.report.sli import SliSource
from loadtest.report.slo import ReportError, Slo
from loadtest.report.steps import capacity_summary, step_record


def judge_phases(
    prom: Prometheus, sli: SliSource, run: dict[str, Any], slo: Slo, phases: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per phase: throughput, 5xx ratio, share under the threshold, p99, and whether it met both SLOs (server side)."""
    start = float(run["start"])
    target = Target(run["app"], run["namespace"])
    rows = []
    for phase in phases:
        figures = window_figures(prom, sli, target, start + phase["from"], start + phase["to"])
        figures.pop("queries")
        rows.append(
            {
                **phase,
                **figures,
                "meets_slo": slo.holds(figures["error_ratio"], figures["latency_under_threshold_ratio"]),
            }
        )
    return rows


def build_report(
    prom: Prometheus, run: dict[str, Any], eval_time: float, sli: SliSource | None = None
) -> dict[str, Any]:
    """Query Prometheus over [start, eval_time] and compute the verdict against the SLO."""
    slo = Slo.from_spec(run["slo"])
    # A stress run with the 1 s stress scrape job: that job's series only (the API is scraped twice meanwhile).
    sli = (sli or SliSource.load(prom)).for_job(str(run.get("scrape_job") or ""))
    start, end = float(run["start"]), float(run["end"])
    if end <= start:
        raise ReportError(f"the run ended ({end}) before it started ({start})")
    duration = end - start
    target = Target(run["app"], run["namespace"])
    figures = window_figures(prom, sli, target, start, eval_time)
    queries = figures.pop("queries")
    figures["throughput_rps"] = figures["requests"] / duration
    requests, error_ratio, under = (
        figures["requests"],
        figures["error_ratio"],
        figures["latency_under_threshold_ratio"],
    )

    budgets: dict[str, Any] = {}
    if requests <= 0 or error_ratio is None or under is None:
        verdict = "no_data"
        breaches = ["Prometheus holds no API requests for the run's window: is it scraping the API?"]
    else:
        breaches = []
        allowed_errors = 1 - slo.availability_objective
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
        for name, bad_ratio, allowed in (
            ("availability", error_ratio, allowed_errors),
            ("latency", 1 - under, 1 - slo.latency_objective),
        ):
            burn = bad_ratio / allowed
            # Share of the error budget of the rules' SLO window (sli.period) this run used.
            budgets[name] = {"burn_rate": burn, "budget_consumed": burn * duration / sli.period_seconds}

    shape = run.get("shape") or {}
    stopped = None
    if shape.get("name") == "capacity":
        phases, stopped = capacity_steps(Path(run.get("steps_file") or ""), start)
    else:
        phases = shape_phases(shape, duration)
    phase_rows = judge_phases(prom, sli, run, slo, phases)

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
    report = {
        "run_id": run.get("run_id"),
        "platform": run.get("platform"),
        "target": run.get("target"),
        "prometheus": prom.where,
        # The API's series the report read: the stress-only job's ("" = the platform's, by the app label).
        "scrape_job": str(run.get("scrape_job") or ""),
        "scrape_interval": str(run.get("scrape_interval") or ""),
        "shape": shape,
        "profile": run.get("profile"),
        "fault_window": run.get("fault_window"),
        "window": {"start": start, "end": end, "duration_seconds": duration, "evaluated_at": eval_time},
        "slo": {
            "window": sli.period,
            "window_seconds": sli.period_seconds,
            "availability_objective": slo.availability_objective,
            "latency_objective": slo.latency_objective,
            "latency_threshold_seconds": slo.latency_threshold,
            "burn_rate_thresholds": sli.burn_thresholds,
        },
        "prometheus_figures": figures,
        "budget": budgets,
        "phases": phase_rows,
        "first_failing_phase": next((p["phase"] for p in phase_rows if p["meets_slo"] is False), None),
        "alerts_fired": alerts(prom, start, eval_time, "firing"),
        "alerts_pending": alerts(prom, start, eval_time, "pending"),
        "locust": locust,
        "notes": notes,
        "queries": queries,
        "verdict": verdict,
        "breaches": breaches,
    }
    if shape.get("name") == "capacity":
        cpu_limit = float(run.get("generator_cpu_limit") or 90)
        # Each judged phase row holds the step (from steps.json, under "generator") and its server figures.
        records = [step_record(i + 1, row, row, slo, cpu_limit) for i, row in enumerate(phase_rows)]
        report["steps"] = records
        report["capacity"] = capacity_summary(records, stopped, run.get("wrk"))
        _judge_by_steps(report, records)
    return report


def _judge_by_steps(report: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """A capacity run's verdict is its steps' (server side, each over its measured window): the same answer as the
    step table, the capacity chart and the capacity figure. The whole window also holds the warm-ups; when it
    disagrees, a note says so. Without a judged step (no steps.json, or Prometheus holds nothing in any step's
    window) the whole window's verdict stands: no step is no evidence that the steps held."""
    if report["verdict"] == "no_data" or not any(s["verdict"] in ("held", "broke") for s in records):
        return
    window_breaches = report["breaches"]
    broke = [s for s in records if s["verdict"] == "broke"]
    report["verdict_scope"] = "steps"
    report["verdict"] = "breach" if broke else "pass"
    report["breaches"] = [f"step {s['step']} ({s['users']} users): {s['reason']}" for s in broke]
    if window_breaches and not broke:
        report["notes"].append(
            "over the whole run's window, warm-ups included, the SLIs breach ("
            + "; ".join(window_breaches)
            + "), while every step's measured window held"
        )
