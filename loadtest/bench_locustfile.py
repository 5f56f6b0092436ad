"""The benchmark's user: GET /health/liveness as fast as it answers (no think time), fast HTTP client."""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class LivenessUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def liveness(self) -> None:
        self.client.get("/health/liveness")
