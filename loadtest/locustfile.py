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

from locust import LoadTestShape, between, constant, task
from locust.contrib.fasthttp import FastHttpUser

try:  # run from the repository (tests, local platform)
    from loadtest import capacity, checks, machine, shapes
except ImportError:  # in the Locust image the files sit side by side in the ConfigMap mount
    import capacity  # type: ignore[no-redef,import-not-found]
    import checks  # type: ignore[no-redef,import-not-found]
    import machine  # type: ignore[no-redef,import-not-found]
    import shapes  # type: ignore[no-redef,import-not-found]

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

# The capacity shape checks each step against the SLO as it goes, so its limits are read up front too.
try:
    LIMITS = capacity.Limits.from_env(os.environ) if isinstance(SHAPE, shapes.Capacity) else None
except ValueError as _err:
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

    # The capacity shape offers load by adding users that never pause: throughput then follows the server.
    wait_time = constant(0) if isinstance(SHAPE, shapes.Capacity) else between(WAIT_MIN, WAIT_MAX)
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


def _snapshot(runner: Any, at: float) -> capacity.Snapshot:
    total = runner.stats.total
    return capacity.Snapshot(at, total.num_requests, total.num_failures, dict(total.response_times))


def _own_cpu_seconds() -> float:
    """CPU seconds (user + system) this Locust process has used so far."""
    import psutil  # a Locust dependency

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _workers_cpu(runner: Any) -> float | None:
    """Distributed mode: the busiest worker's last reported CPU (percent of one core); None when standalone."""
    workers = getattr(runner, "clients", None)
    if not workers:
        return None
    return max((float(getattr(w, "cpu_usage", 0.0)) for w in workers.values()), default=0.0)


def _target_port() -> int | None:
    """The port of the target (to find the server's processes on this machine), None when it is not local."""
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("LAB_TARGET_URL", ""))
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return url.port or (443 if url.scheme == "https" else 80)


class LabShape(LoadTestShape):
    """Feeds Locust's run time to the shape chosen by LAB_SHAPE; for capacity, judges each step as it ends.

    A capacity step is measured after its warm-up (``warmup_seconds`` after the step's start): the snapshot of
    Locust's totals and the CPU sample are taken then, and compared with the ones at the step's end. Which users
    the next step runs is ``capacity.Search``'s choice: upward, then a bisection around the break, then a repeat.
    """

    def __init__(self) -> None:
        super().__init__()
        self._search: capacity.Search | None = None
        self._step = -1
        self._users = 0
        self._kind = "search"
        self._step_started = 0.0  # run time
        self._before: capacity.Snapshot | None = None
        self._cpu: list[float] = []
        self._cpu_at_start = 0.0
        self._machine: machine.CpuSampler | None = None
        self._machine_before: machine.CpuSample | None = None
        self._log = capacity.StepLog(os.environ.get("LAB_STEPS_FILE"))
        self._done = False

    def tick(self) -> tuple[int, float] | None:
        run_time = self.get_run_time()
        if not isinstance(SHAPE, shapes.Capacity) or self.runner is None:
            return SHAPE.tick(run_time)
        return self._capacity_tick(SHAPE, run_time)

    def _measure_from(self, now: float) -> None:
        """Start measuring the running step: Locust's totals, its own CPU and the machine's, now."""
        import time

        if self._machine is None:
            self._machine = machine.CpuSampler(_target_port())
        self._before = _snapshot(self.runner, now)
        self._cpu = []
        self._cpu_at_start = _own_cpu_seconds()
        self._machine_before = self._machine.sample(time.monotonic())

    def _start(self, users: int, kind: str, run_time: float, now: float, shape: shapes.Capacity) -> None:
        self._step += 1
        self._users, self._kind, self._step_started, self._before = users, kind, run_time, None
        if shape.warmup_seconds <= 0:
            self._measure_from(now)

    def _judge(self, shape: shapes.Capacity, now: float, workers: float | None) -> capacity.StepResult | None:
        """The step that just ended, judged and logged (None when it was never measured)."""
        import time

        assert LIMITS is not None
        if self._before is None:
            return None
        split: dict[str, float | None] = {}
        if self._machine is not None and self._machine_before is not None:
            split = machine.split(
                self._machine_before, self._machine.sample(time.monotonic()), self._machine.cores
            )
        import psutil  # a Locust dependency

        forked = len(psutil.Process().children())  # local workers (--processes N) are this process's children
        if workers is None and not forked:  # standalone: this process's own CPU over the step, exactly
            cpu = (_own_cpu_seconds() - self._cpu_at_start) / max(now - self._before.at, 1e-9) * 100
        else:  # workers report every few seconds (the first reports say 0): the median of the reports, and
            # for local workers at least their mean as measured here (the master's share is small)
            samples = sorted(self._cpu)
            reported = samples[len(samples) // 2] if any(samples) else 0.0
            local = float(split.get("generator_total_cpu_percent") or 0.0) / forked if forked else 0.0
            cpu = max(reported, local)
        result = capacity.judge(
            self._step,
            self._users,
            self._before,
            _snapshot(self.runner, now),
            cpu,
            LIMITS,
            users_running=int(getattr(self.runner, "user_count", 0) or 0),
            warmup_seconds=float(shape.warmup_seconds),
            cpu=split,
            kind=self._kind,
        )
        self._log.add(result)
        return result

    def _capacity_tick(self, shape: shapes.Capacity, run_time: float) -> tuple[int, float] | None:
        if self._done:
            return None
        import time

        now = time.time()
        workers = _workers_cpu(self.runner)
        if workers is not None and self._before is not None:
            self._cpu.append(workers)
        if self._search is None:
            self._search = capacity.Search(shape.levels, shape.refine_steps)
            users, kind = self._search.first()
            self._start(users, kind, run_time, now, shape)
        elif run_time >= self._step_started + shape.step_seconds or run_time >= shape.duration:
            result = self._judge(shape, now, workers)
            step = self._step
            following = (
                self._search.next(self._users, not result.breaches, result.throughput_rps)
                if result is not None and run_time < shape.duration
                else None
            )
            if following is None:
                self._log.stop(self._search.reason or "end of the run", step)
                self._done = True
                return None
            self._start(*following, run_time, now, shape)
        elif self._before is None and run_time >= self._step_started + shape.warmup_seconds:
            self._measure_from(now)
        return self._users, shape.spawn_rate
