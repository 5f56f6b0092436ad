"""The simulated database: latency model, failure rate, retries."""

from __future__ import annotations

import random

import pytest
from labapi.db import FAST_RANGE, SLOW_RANGE, DatabaseUnavailableError, SimulatedDatabase


def make_db(failure_rate: float, retries: int, seed: int = 1):
    slept: list[float] = []
    failures: list[int] = []
    database = SimulatedDatabase(
        failure_rate=failure_rate,
        retries=retries,
        on_failure=lambda: failures.append(1),
        rng=random.Random(seed),
        sleep=slept.append,
    )
    return database, slept, failures


def test_latency_is_mostly_fast_with_a_slow_tail_under_the_slo():
    database, slept, _ = make_db(0.0, 0)
    for _ in range(20000):
        database.query_users()
    slept.sort()
    assert FAST_RANGE[0] <= slept[0]
    assert slept[-1] <= SLOW_RANGE[1]
    median = slept[len(slept) // 2]
    p99 = slept[int(len(slept) * 0.99)]
    assert median < 0.03
    assert 0.05 < p99 < 0.12
    # worst case with one retry (two slow attempts) stays under the 0.3 s SLO threshold
    assert 2 * SLOW_RANGE[1] < 0.3


def test_failure_rate_and_retry():
    database, _, failures = make_db(0.05, 1)
    outcomes = []
    for _ in range(20000):
        try:
            database.query_users()
            outcomes.append(True)
        except DatabaseUnavailableError:
            outcomes.append(False)
    attempt_failure_share = len(failures) / (20000 + len(failures) - outcomes.count(False))
    assert 0.04 < attempt_failure_share < 0.06
    assert outcomes.count(False) / 20000 < 0.005  # ~0.25% with one retry


def test_no_retry_means_every_failure_reaches_the_user():
    database, slept, failures = make_db(1.0, 0)
    with pytest.raises(DatabaseUnavailableError, match="1 time"):
        database.query_users()
    assert len(failures) == 1
    assert len(slept) == 1


def test_retries_are_bounded():
    database, slept, failures = make_db(1.0, 3)
    with pytest.raises(DatabaseUnavailableError, match="4 time"):
        database.query_users()
    assert len(failures) == 4
    assert len(slept) == 4


def test_ping_fails_only_when_the_database_is_down():
    assert make_db(0.99, 0)[0].ping()
    assert not make_db(1.0, 0)[0].ping()


def test_query_users_waits_one_attempt_each_and_retries():
    database, slept, failures = make_db(0.5, 3, seed=5)
    unavailable = 0
    for _ in range(200):
        try:
            database.query_users()
        except DatabaseUnavailableError:
            unavailable += 1
    successes = 200 - unavailable
    assert unavailable > 0
    assert len(slept) == successes + len(failures)  # one wait per attempt
    assert len(failures) >= 4 * unavailable  # every attempt of an unavailable query failed
