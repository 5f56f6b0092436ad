"""The capacity shape's stop rule: judge each finished step from the generator's own view, while the run goes on.

A step breaches when, over that step alone (deltas of Locust's cumulative stats):

- availability: the share of failed requests is above the availability budget (1 - objective);
- latency: the share of requests answered within the threshold is below the latency objective;
- generator: the load generator's CPU reached ``cpu_limit_percent`` of a core (Locust can no longer offer the
  load it is asked for, so whatever happens next says nothing about the server).

The run stops at the first breaching step (or at the shape's ceiling): this is the client's view, the only one
Locust has while it runs. Each step (measured after its warm-up) is appended to a JSON file (``LAB_STEPS_FILE``)
with Locust's p99 and mean latency and the machine's CPU split; the report joins it with Prometheus's
server-side view of the same window and judges the SLO by its definition, the server-side SLIs the alerts use
(``loadtest/report/steps.py``): a client-side breach while the server holds is reported as such, never as the
server's limit. No Locust import here: the locustfile feeds snapshots in, the tests feed numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """What a step must hold: the SLO (as ratios and milliseconds) and the generator's CPU ceiling."""

    availability_objective: float
    latency_objective: float
    latency_threshold_ms: float
    cpu_limit_percent: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        try:
            limits = cls(
                availability_objective=float(env["LAB_SLO_AVAILABILITY"]) / 100,
                latency_objective=float(env["LAB_SLO_LATENCY"]) / 100,
                latency_threshold_ms=float(env["LAB_SLO_LATENCY_THRESHOLD"]) * 1000,
                cpu_limit_percent=float(env.get("LAB_GENERATOR_CPU_LIMIT", "90")),
            )
        except (KeyError, ValueError) as err:
            raise ValueError(
                "the capacity shape needs LAB_SLO_AVAILABILITY, LAB_SLO_LATENCY (percent) and "
                f"LAB_SLO_LATENCY_THRESHOLD (seconds), from lab_slo: {err!r}"
            ) from None
        for name, value in (
            ("availability", limits.availability_objective),
            ("latency", limits.latency_objective),
        ):
            if not 0 < value < 1:
                raise ValueError(f"LAB_SLO_{name.upper()} must be a percentage between 0 and 100")
        return limits


@dataclass
class Snapshot:
    """Locust's cumulative totals at one moment."""

    at: float
    requests: int
    failures: int
    response_times: dict[int, int] = field(default_factory=dict)  # rounded ms -> count (Locust's histogram)


@dataclass
class StepResult:
    index: int
    users: int
    start: float
    end: float
    requests: int
    failures: int
    throughput_rps: float
    failure_ratio: float | None
    under_threshold_ratio: float | None
    generator_cpu_percent: float
    breaches: list[str]
    # Locust's own latency over the step (client side: includes any wait before the app sees the request).
    p99_ms: float | None = None
    mean_ms: float | None = None
    # Users actually running at the step's end, and how the machine's CPU was split (loadtest.machine.split).
    users_running: int | None = None
    warmup_seconds: float = 0.0
    cpu: dict[str, float | None] = field(default_factory=dict)
    kind: str = "search"  # search (upward), refine (bisection), repeat (the best held level again)


def percentile_ms(times: Mapping[int, int], share: float) -> float | None:
    """The response time (ms) under which ``share`` of the requests of Locust's histogram fall."""
    total = sum(times.values())
    if total <= 0:
        return None
    rank, seen = share * total, 0
    for ms in sorted(times):
        seen += times[ms]
        if seen >= rank:
            return float(ms)
    return float(max(times))


def judge(
    index: int,
    users: int,
    before: Snapshot,
    after: Snapshot,
    cpu_percent: float,
    limits: Limits,
    *,
    users_running: int | None = None,
    warmup_seconds: float = 0.0,
    cpu: dict[str, float | None] | None = None,
    kind: str = "search",
) -> StepResult:
    """The step between two snapshots (taken after the step's warm-up), with the reasons (if any) it breached."""
    requests = after.requests - before.requests
    failures = after.failures - before.failures
    seconds = max(after.at - before.at, 1e-9)
    times = {ms: count - before.response_times.get(ms, 0) for ms, count in after.response_times.items()}
    times = {ms: count for ms, count in times.items() if count > 0}
    timed = sum(times.values())
    weighted = sum(ms * count for ms, count in times.items())
    fast = sum(count for ms, count in times.items() if ms <= limits.latency_threshold_ms)
    failure_ratio = failures / requests if requests else None
    under = fast / timed if timed else None
    breaches = []
    if failure_ratio is not None and failure_ratio > 1 - limits.availability_objective:
        breaches.append(
            f"availability: {failure_ratio:.2%} of requests failed (budget {1 - limits.availability_objective:.2%})"
        )
    if under is not None and under < limits.latency_objective:
        breaches.append(
            f"latency: {under:.2%} within {limits.latency_threshold_ms:g} ms (objective {limits.latency_objective:.2%})"
        )
    if cpu_percent >= limits.cpu_limit_percent:
        breaches.append(
            f"generator: Locust used {cpu_percent:.0f}% of a core (limit {limits.cpu_limit_percent:g}%), "
            "it cannot offer more load"
        )
    if requests == 0:
        breaches.append("availability: no request completed in the step")
    return StepResult(
        index=index,
        users=users,
        start=before.at,
        end=after.at,
        requests=requests,
        failures=failures,
        throughput_rps=requests / seconds,
        failure_ratio=failure_ratio,
        under_threshold_ratio=under,
        generator_cpu_percent=cpu_percent,
        breaches=breaches,
        p99_ms=percentile_ms(times, 0.99),
        mean_ms=weighted / timed if timed else None,
        users_running=users_running,
        warmup_seconds=warmup_seconds,
        cpu=dict(cpu or {}),
        kind=kind,
    )


class StepLog:
    """Appends each judged step to a JSON file (rewritten whole each time, so a reader never sees half a list)."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path else None
        self.steps: list[dict[str, object]] = []
        self.stopped: dict[str, object] | None = None

    def add(self, step: StepResult) -> None:
        self.steps.append(asdict(step))
        self._write()

    def stop(self, reason: str, step: int | None) -> None:
        self.stopped = {"reason": reason, "step": step}
        self._write()

    def _write(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"steps": self.steps, "stopped": self.stopped}, indent=2) + "\n")
        tmp.replace(self.path)


class Search:
    """Which users each capacity step runs: the shape's steps upward, then a bisection between the last step that
    held and the first that breached, then the held level with the best throughput once more (so capacity has two
    measurements; on a server saturated from the start that is an early step, not the last one that held).

    ``next(users, held, rps)`` after each judged step returns ``(users, kind)`` of the next step (kind: "search",
    "refine" or "repeat") or None to stop; ``reason`` then says why ("ceiling", "breach", "refined").
    """

    def __init__(self, levels: list[int], refine_steps: int) -> None:
        self.levels = levels
        self.refine_steps = refine_steps
        self.index = 0
        self.good: int | None = None
        self.bad: int | None = None
        self.refining = False
        self.repeated = False
        self.best: tuple[float, int] | None = None  # (throughput, users) of the best step that held
        self.reason = ""

    def first(self) -> tuple[int, str]:
        return self.levels[0], "search"

    def next(self, users: int, held: bool, rps: float = 0.0) -> tuple[int, str] | None:
        if held:
            self.good = users if self.good is None else max(self.good, users)
            if self.best is None or rps > self.best[0]:
                self.best = (rps, users)
        else:
            self.bad = users if self.bad is None else min(self.bad, users)
        if not self.refining:
            if held:
                self.index += 1
                if self.index < len(self.levels):
                    return self.levels[self.index], "search"
                self.reason = "ceiling"
                return None
            if self.good is None or self.refine_steps <= 0:
                self.reason = "breach"
                return None
            self.refining = True
        assert self.good is not None
        assert self.bad is not None
        if self.refine_steps > 0 and self.bad - self.good > 1:
            self.refine_steps -= 1
            return (self.good + self.bad) // 2, "refine"
        if not self.repeated:
            self.repeated = True
            return (self.best[1] if self.best else self.good), "repeat"
        self.reason = "refined"
        return None
