"""The lab's load test: ``locust -f loadtest/locustfile.py --headless --host http://api``.

Traffic mix (weights): mostly ``GET /api/users``, some ``POST /api/echo`` with varied payloads, a few health
checks. ``LAB_PROFILE=errors`` adds deliberate ``GET /api/error`` calls (a share of 500s and 400s the SLO should
catch); they are checked as *expected* errors, so only unexpected failures count in Locust's failure column.
The load shape comes from ``LAB_SHAPE`` and the other ``LAB_*`` settings (see ``shapes.py``).
"""

from __future__ import annotations

import os
import random
import string
from typing import Any

from locust import LoadTestShape, between, task
from locust.contrib.fasthttp import FastHttpUser

try:  # run from the repository (tests, local platform)
    from loadtest import checks, shapes
except ImportError:  # in the Locust image the files sit side by side in the ConfigMap mount
    import checks  # type: ignore[no-redef]
    import shapes  # type: ignore[no-redef]

PROFILES = ("normal", "errors")
PROFILE = os.environ.get("LAB_PROFILE", "normal")
if PROFILE not in PROFILES:
    raise SystemExit(
        f"unknown LAB_PROFILE {PROFILE!r} (stress_test_profile); choose one of {', '.join(PROFILES)}"
    )

# The shape is built at import so bad settings stop Locust before a single request is sent.
try:
    SHAPE = shapes.from_settings(os.environ)
except shapes.ShapeError as _err:
    raise SystemExit(f"bad load settings: {_err}") from None

WAIT_MIN = float(os.environ.get("LAB_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LAB_WAIT_MAX", "1.5"))
# Task weights. The errors profile adds /api/error at this weight (3 in 18 picks; a quarter ask for a 400).
WEIGHTS = {"users": 10, "echo": 4, "health": 1, "error": 3 if PROFILE == "errors" else 0}


def echo_payload(rng: random.Random) -> object:
    """A varied JSON payload: small objects, nested ones, lists, unicode text, a few kilobytes of text."""
    kind = rng.randrange(5)
    if kind == 0:
        return {"message": "hello", "n": rng.randint(0, 10_000)}
    if kind == 1:
        return {
            "order": {
                "id": rng.randint(1, 99_999),
                "items": [{"sku": f"SKU-{i}", "qty": i} for i in range(3)],
            }
        }
    if kind == 2:
        return [rng.random() for _ in range(rng.randint(1, 20))]
    if kind == 3:
        return {"text": "héllo wörld ✓ 日本語", "tags": ["a", "b"], "ok": True, "none": None}
    size = rng.randint(1_000, 8_000)
    return {"blob": "".join(rng.choices(string.ascii_letters, k=size))}


class ApiUser(FastHttpUser):
    """A client of the API, using Locust's fast HTTP client (geventhttpclient)."""

    wait_time = between(WAIT_MIN, WAIT_MAX)
    rng = random.Random()

    @staticmethod
    def _check(response: Any, problem: str | None) -> None:
        if problem is None:
            response.success()
        else:
            response.failure(problem)

    @task(WEIGHTS["users"])
    def users(self) -> None:
        with self.client.get("/api/users", name="/api/users", catch_response=True) as r:
            self._check(r, checks.check_users(r.status_code, r.text))

    @task(WEIGHTS["echo"])
    def echo(self) -> None:
        payload = echo_payload(self.rng)
        with self.client.post("/api/echo", json=payload, name="/api/echo", catch_response=True) as r:
            self._check(r, checks.check_echo(r.status_code, r.text, payload))

    @task(WEIGHTS["health"])
    def health(self) -> None:
        probe = self.rng.choice(("liveness", "readiness"))
        with self.client.get(f"/health/{probe}", name=f"/health/{probe}", catch_response=True) as r:
            self._check(r, checks.check_health(r.status_code, r.text, probe))

    @task(WEIGHTS["error"])
    def deliberate_error(self) -> None:
        """Only in the errors profile (weight 0 otherwise): ask for an error and expect it."""
        client_kind = self.rng.random() < 0.25
        url, expected = ("/api/error?type=client", 400) if client_kind else ("/api/error", 500)
        with self.client.get(url, name=url, catch_response=True) as r:
            self._check(r, checks.check_expected_error(r.status_code, r.text, expected))


class LabShape(LoadTestShape):
    """Feeds Locust's run time to the shape chosen by LAB_SHAPE."""

    def tick(self) -> tuple[int, float] | None:
        return SHAPE.tick(self.get_run_time())
