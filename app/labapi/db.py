"""The simulated database behind GET /api/users.

Each query waits a random, mostly short time (a slow tail of 5%) and fails at the configured
rate. A failed attempt is logged and counted (error_type="db_failure"); the caller retries up
to APP_DB_RETRIES times, so a user sees a failure only when every attempt fails.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("labapi.db")

USERS: tuple[dict[str, object], ...] = (
    {"id": 101, "name": "John Doe", "email": "john@example.com"},
    {"id": 102, "name": "Jane Smith", "email": "jane@example.com"},
)

# Latency model (seconds). With one retry the worst case (two slow attempts) is 0.24 s, under the
# 0.3 s latency SLO threshold; typical p99 is about 0.1 s.
FAST_RANGE = (0.001, 0.010)
SLOW_RANGE = (0.040, 0.120)
SLOW_SHARE = 0.05


class DatabaseUnavailableError(RuntimeError):
    """Every attempt of a query failed."""


@dataclass
class SimulatedDatabase:
    failure_rate: float
    retries: int
    on_failure: Callable[[], None] = lambda: None
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep  # gevent patches time.sleep in the workers

    def _latency(self) -> float:
        low, high = SLOW_RANGE if self.rng.random() < SLOW_SHARE else FAST_RANGE
        return self.rng.uniform(low, high)

    def _attempt(self) -> bool:
        self.sleep(self._latency())
        return self.rng.random() >= self.failure_rate

    def query_users(self) -> None:
        """Run the users query (wait, fail, retry) without building the rows: the rows are the
        constant USERS, which GET /api/users serves pre-serialized. Raise DatabaseUnavailableError
        when every attempt fails."""
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            if self._attempt():
                return
            logger.error(
                "Database connection timeout occurred",
                extra={"error_type": "db_failure", "attempt": attempt, "attempts": attempts},
            )
            self.on_failure()
        raise DatabaseUnavailableError(f"database query failed {attempts} time(s)")

    def ping(self) -> bool:
        """Readiness check: the database is reachable unless it is entirely down (failure rate 1)."""
        return self.failure_rate < 1.0
