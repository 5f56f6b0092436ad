"""The capacity shape's stop rule: each step judged from Locust's own deltas against the SLO and the CPU limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import capacity

LIMITS = capacity.Limits(
    availability_objective=0.995, latency_objective=0.99, latency_threshold_ms=300, cpu_limit_percent=90
)


def snap(at: float, requests: int, failures: int, times: dict[int, int]) -> capacity.Snapshot:
    return capacity.Snapshot(at, requests, failures, times)


def test_a_step_within_the_slo_holds_and_only_its_own_requests_count() -> None:
    before = snap(100.0, 1000, 50, {10: 900, 500: 100})  # earlier steps: slow and failing
    after = snap(110.0, 3000, 51, {10: 2895, 500: 101, 290: 4})
    step = capacity.judge(2, 30, before, after, 40.0, LIMITS)
    assert step.requests == 2000
    assert step.throughput_rps == pytest.approx(200.0)
    assert step.failure_ratio == pytest.approx(1 / 2000)
    assert step.under_threshold_ratio == pytest.approx(1999 / 2000)
    assert step.breaches == []


def test_each_slo_and_the_generator_breach_with_a_reason() -> None:
    before = snap(0.0, 0, 0, {})
    slow = capacity.judge(0, 10, before, snap(10.0, 100, 0, {10: 98, 310: 2}), 10.0, LIMITS)
    assert [b.split(":")[0] for b in slow.breaches] == ["latency"]
    failing = capacity.judge(0, 10, before, snap(10.0, 100, 1, {10: 100}), 10.0, LIMITS)
    assert [b.split(":")[0] for b in failing.breaches] == ["availability"]
    busy = capacity.judge(0, 10, before, snap(10.0, 100, 0, {10: 100}), 95.0, LIMITS)
    assert [b.split(":")[0] for b in busy.breaches] == ["generator"]
    silent = capacity.judge(0, 10, before, snap(10.0, 0, 0, {}), 5.0, LIMITS)
    assert silent.breaches == ["availability: no request completed in the step"]


def test_limits_come_from_the_slo_settings() -> None:
    env = {"LAB_SLO_AVAILABILITY": "99.5", "LAB_SLO_LATENCY": "99", "LAB_SLO_LATENCY_THRESHOLD": "1"}
    limits = capacity.Limits.from_env(env)
    assert (limits.availability_objective, limits.latency_objective, limits.latency_threshold_ms) == (
        0.995,
        0.99,
        1000.0,
    )
    assert limits.cpu_limit_percent == 90
    with pytest.raises(ValueError, match="LAB_SLO_AVAILABILITY"):
        capacity.Limits.from_env({})
    with pytest.raises(ValueError, match="between 0 and 100"):
        capacity.Limits.from_env({**env, "LAB_SLO_LATENCY": "100"})


def test_step_log_is_rewritten_whole(tmp_path: Path) -> None:
    log = capacity.StepLog(tmp_path / "steps.json")
    step = capacity.judge(0, 10, snap(0.0, 0, 0, {}), snap(10.0, 100, 0, {10: 100}), 20.0, LIMITS)
    log.add(step)
    assert json.loads((tmp_path / "steps.json").read_text())["steps"][0]["users"] == 10
    log.stop("ceiling", 0)
    assert json.loads((tmp_path / "steps.json").read_text())["stopped"] == {"reason": "ceiling", "step": 0}


def walk(search: capacity.Search, breaks_at: int) -> list[tuple[int, str]]:
    """The steps a search runs when every step from ``breaks_at`` users up breaches."""
    step: tuple[int, str] | None = search.first()
    ran = []
    while step is not None:
        ran.append(step)
        step = search.next(step[0], step[0] < breaks_at, float(step[0]))  # throughput grows with users
    return ran


def test_the_search_bisects_between_the_last_held_and_the_first_breached_step_then_repeats() -> None:
    search = capacity.Search([50, 100, 150, 200, 250], refine_steps=2)
    assert walk(search, breaks_at=130) == [
        (50, "search"),
        (100, "search"),
        (150, "search"),  # breached: bisect between 100 and 150
        (125, "refine"),  # held
        (137, "refine"),  # breached
        (125, "repeat"),  # the best held level measured a second time
    ]
    assert search.reason == "refined"


def test_the_repeat_measures_the_held_level_with_the_best_throughput_again() -> None:
    """Saturated from the start: 50 users gave the most requests/s, so 50 users is measured a second time."""
    search = capacity.Search([50, 100, 150], refine_steps=1)
    rates = {50: 1800.0, 100: 1650.0, 125: 1600.0}
    step: tuple[int, str] | None = search.first()
    ran = []
    while step is not None:
        ran.append(step)
        step = search.next(step[0], step[0] < 130, rates.get(step[0], 0.0))
    assert ran == [(50, "search"), (100, "search"), (150, "search"), (125, "refine"), (50, "repeat")]


def test_the_search_stops_at_the_ceiling_or_a_first_step_breach() -> None:
    up = capacity.Search([10, 20], refine_steps=2)
    assert walk(up, breaks_at=99) == [(10, "search"), (20, "search")]
    assert up.reason == "ceiling"
    at_once = capacity.Search([10, 20], refine_steps=2)
    assert walk(at_once, breaks_at=5) == [(10, "search")]
    assert at_once.reason == "breach"  # nothing held: nothing to refine
    plain = capacity.Search([10, 20, 30], refine_steps=0)
    assert walk(plain, breaks_at=25) == [(10, "search"), (20, "search"), (30, "search")]
    assert plain.reason == "breach"
