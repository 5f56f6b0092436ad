"""Load shapes as plain schedules: ``tick(run_time)`` -> ``(users, spawn_rate)`` or ``None`` (stop).

They do not import Locust, so the role can validate settings (``python -m loadtest.shapes``) and the tests can
tick them without a running test. ``locustfile.LabShape`` feeds them Locust's run time.

Settings come from ``LAB_*`` environment variables (the role sets them from ``stress_test_*``):

- steady: ``LAB_USERS`` users for ``LAB_DURATION``.
- step: from ``LAB_STEP_USERS`` users, ``LAB_STEP_USERS`` more every ``LAB_STEP_SECONDS``, up to ``LAB_USERS``;
  the top step is held until ``LAB_DURATION``.
- spike: ``LAB_SPIKE_BASE_USERS`` users, ``LAB_USERS`` users from ``LAB_SPIKE_AT`` for ``LAB_SPIKE_SECONDS``
  (spawned at once), then back to the base until ``LAB_DURATION``.
- soak: ``LAB_SOAK_USERS`` users for ``LAB_SOAK_DURATION`` (long and low).
- capacity: users with no think time, ``LAB_CAPACITY_START_USERS`` first, ``LAB_CAPACITY_STEP_USERS`` more every
  ``LAB_CAPACITY_STEP_SECONDS`` (at least ``LAB_CAPACITY_WARMUP_SECONDS`` + ``LAB_CAPACITY_MIN_SCRAPES`` x ``LAB_SCRAPE_INTERVAL``; the warm-up is not measured), up to the ceiling ``LAB_CAPACITY_MAX_USERS``; the locustfile stops it earlier at
  the first step that breaches an SLO or where the generator runs out of CPU (``loadtest/capacity.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass

SHAPES = ("capacity", "steady", "step", "spike", "soak")
# A capacity step lasts at least its warm-up plus LAB_CAPACITY_MIN_SCRAPES scrape intervals (this many when unset),
# so increase() over the measured part of the step has its own samples.
SETTLE_SCRAPES = 2
_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s?)?\s*$")


class ShapeError(ValueError):
    """A load-shape setting is missing or wrong; the message names the setting."""


def parse_duration(value: str | int | float, name: str) -> int:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"5m"``, ``"1h30m"``; must be > 0."""
    if isinstance(value, bool):
        raise ShapeError(f"{name} must be a duration (seconds, or like 90s, 5m, 1h30m); got {value!r}")
    if isinstance(value, int | float):
        seconds = int(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ShapeError(f"{name} must be a duration (seconds, or like 90s, 5m, 1h30m); got {value!r}")
        hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise ShapeError(f"{name} must be more than 0 seconds; got {value!r}")
    return seconds


def parse_int(value: str | int, name: str, *, minimum: int = 1) -> int:
    """A whole number >= minimum, with a message naming the setting otherwise."""
    if isinstance(value, bool):
        raise ShapeError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ShapeError(f"{name} must be a whole number >= {minimum}; got {value!r}") from None
    if number < minimum:
        raise ShapeError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    return number


def parse_rate(value: str | float, name: str) -> float:
    """A positive number (users started per second)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ShapeError(f"{name} must be a number > 0; got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ShapeError(f"{name} must be a number > 0; got {value!r}")
    return number


@dataclass(frozen=True)
class Shape:
    """A schedule of user counts over time."""

    name: str
    duration: int
    spawn_rate: float

    def tick(self, run_time: float) -> tuple[int, float] | None:
        """(users, spawn rate) at ``run_time``; None once the duration is over (Locust then stops)."""
        if run_time >= self.duration:
            return None
        return self.at(run_time)

    def at(self, run_time: float) -> tuple[int, float]:  # pragma: no cover - abstract
        """(users, spawn rate) at ``run_time`` within the duration."""
        raise NotImplementedError

    @property
    def peak_users(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, object]:
        return {**asdict(self), "peak_users": self.peak_users}


@dataclass(frozen=True)
class Steady(Shape):
    users: int

    def at(self, run_time: float) -> tuple[int, float]:
        return self.users, self.spawn_rate

    @property
    def peak_users(self) -> int:
        return self.users


@dataclass(frozen=True)
class Step(Shape):
    users: int
    step_users: int
    step_seconds: int

    def at(self, run_time: float) -> tuple[int, float]:
        step = int(run_time // self.step_seconds) + 1
        return min(self.users, step * self.step_users), self.spawn_rate

    @property
    def peak_users(self) -> int:
        steps_run = math.ceil(self.duration / self.step_seconds)
        return min(self.users, steps_run * self.step_users)


@dataclass(frozen=True)
class Spike(Shape):
    users: int
    base_users: int
    spike_at: int
    spike_seconds: int

    def at(self, run_time: float) -> tuple[int, float]:
        if self.spike_at <= run_time < self.spike_at + self.spike_seconds:
            # The burst arrives at once: every spike user starts within one tick.
            return self.users, float(max(self.users, 1))
        return self.base_users, self.spawn_rate

    @property
    def peak_users(self) -> int:
        return self.users


@dataclass(frozen=True)
class Capacity(Shape):
    """Steps of users with no think time, from ``start_users`` up to the ceiling ``max_users``.

    ``tick`` is the schedule only; the locustfile ends the run early when a step breaches an SLO.
    """

    start_users: int
    step_users: int
    max_users: int
    step_seconds: int
    warmup_seconds: int = 0  # the start of each step that is not measured (users spawning, queues filling)
    requested_step_seconds: int = 0  # the setting, before the minimum of warm-up + SETTLE_SCRAPES scrapes
    refine_steps: int = 0  # bisection steps between the last held and the first breaching step (+1 repeat)

    @property
    def levels(self) -> list[int]:
        """Users of each upward step."""
        return [self.users_at(i) for i in range(self.steps)]

    @property
    def steps(self) -> int:
        return math.ceil((self.max_users - self.start_users) / self.step_users) + 1

    def step_index(self, run_time: float) -> int:
        """0-based index of the step running at ``run_time``."""
        return min(self.steps - 1, int(run_time // self.step_seconds))

    def users_at(self, index: int) -> int:
        return min(self.max_users, self.start_users + index * self.step_users)

    def at(self, run_time: float) -> tuple[int, float]:
        return self.users_at(self.step_index(run_time)), self.spawn_rate

    @property
    def peak_users(self) -> int:
        return self.max_users


def from_settings(env: Mapping[str, str]) -> Shape:
    """Build the shape named by ``LAB_SHAPE`` from ``LAB_*`` settings, or raise ShapeError."""
    name = env.get("LAB_SHAPE", "steady").strip()
    if name not in SHAPES:
        raise ShapeError(
            f"unknown load shape {name!r} (stress_test_shape); choose one of {', '.join(SHAPES)}"
        )

    def get(key: str) -> str:
        if key not in env or str(env[key]).strip() == "":
            raise ShapeError(f"{key} is required for the {name} shape")
        return env[key]

    spawn_rate = parse_rate(get("LAB_SPAWN_RATE"), "spawn rate (stress_test_spawn_rate)")
    if name == "soak":
        return Steady(
            name=name,
            duration=parse_duration(get("LAB_SOAK_DURATION"), "soak duration (stress_test_soak_duration)"),
            spawn_rate=spawn_rate,
            users=parse_int(get("LAB_SOAK_USERS"), "soak users (stress_test_soak_users)"),
        )
    if name == "capacity":
        start = parse_int(get("LAB_CAPACITY_START_USERS"), "start users (stress_test_capacity_start_users)")
        step = parse_int(get("LAB_CAPACITY_STEP_USERS"), "step users (stress_test_capacity_step_users)")
        ceiling = parse_int(get("LAB_CAPACITY_MAX_USERS"), "ceiling (stress_test_capacity_max_users)")
        seconds = parse_duration(
            get("LAB_CAPACITY_STEP_SECONDS"), "step length (stress_test_capacity_step_seconds)"
        )
        # Each step must hold long enough for Prometheus to see it settle: SETTLE_SCRAPES scrapes at least.
        scrape = parse_duration(get("LAB_SCRAPE_INTERVAL"), "scrape interval (stress_test_scrape_interval)")
        warmup_setting = str(env.get("LAB_CAPACITY_WARMUP_SECONDS", "0")).strip() or "0"
        warmup = (
            0
            if warmup_setting in ("0", "0s")
            else parse_duration(warmup_setting, "warm-up (stress_test_capacity_warmup_seconds)")
        )
        scrapes = parse_int(
            env.get("LAB_CAPACITY_MIN_SCRAPES", str(SETTLE_SCRAPES)),
            "scrapes per step (stress_test_capacity_min_scrapes)",
        )
        requested = seconds
        seconds = max(seconds, warmup + scrapes * scrape)
        if ceiling < start:
            raise ShapeError(f"the ceiling ({ceiling} users) must not be below the start ({start} users)")
        steps = math.ceil((ceiling - start) / step) + 1
        refine = parse_int(
            env.get("LAB_CAPACITY_REFINE_STEPS", "0"),
            "refinement steps (stress_test_capacity_refine_steps)",
            minimum=0,
        )
        return Capacity(
            name=name,
            # the upward steps, then room for the refinement and the repeat of the best level
            duration=(steps + (refine + 1 if refine else 0)) * seconds,
            spawn_rate=spawn_rate,
            start_users=start,
            step_users=step,
            max_users=ceiling,
            step_seconds=seconds,
            warmup_seconds=warmup,
            requested_step_seconds=requested,
            refine_steps=refine,
        )
    users = parse_int(get("LAB_USERS"), "users (stress_test_users)")
    duration = parse_duration(get("LAB_DURATION"), "duration (stress_test_duration)")
    if name == "steady":
        return Steady(name=name, duration=duration, spawn_rate=spawn_rate, users=users)
    if name == "step":
        step_users = parse_int(get("LAB_STEP_USERS"), "step users (stress_test_step_users)")
        step_seconds = parse_duration(get("LAB_STEP_SECONDS"), "step length (stress_test_step_seconds)")
        if step_users > users:
            raise ShapeError(f"step users ({step_users}) must not exceed users ({users})")
        return Step(
            name=name,
            duration=duration,
            spawn_rate=spawn_rate,
            users=users,
            step_users=step_users,
            step_seconds=step_seconds,
        )
    base_users = parse_int(get("LAB_SPIKE_BASE_USERS"), "spike base users (stress_test_spike_base_users)")
    spike_at = parse_duration(get("LAB_SPIKE_AT"), "spike start (stress_test_spike_at)")
    spike_seconds = parse_duration(get("LAB_SPIKE_SECONDS"), "spike length (stress_test_spike_seconds)")
    if base_users >= users:
        raise ShapeError(f"spike base users ({base_users}) must be below the spike's users ({users})")
    if spike_at + spike_seconds >= duration:
        raise ShapeError(
            f"the spike ({spike_at}s + {spike_seconds}s) must end before the run does ({duration}s), "
            "so the recovery is measured"
        )
    return Spike(
        name=name,
        duration=duration,
        spawn_rate=spawn_rate,
        users=users,
        base_users=base_users,
        spike_at=spike_at,
        spike_seconds=spike_seconds,
    )


def fault_window(env: Mapping[str, str], shape: Shape) -> dict[str, int] | None:
    """The fault window ``{"start", "end"}`` in seconds after the run's start, when LAB_FAULT_START is set."""
    if not str(env.get("LAB_FAULT_START", "")).strip():
        return None
    start = parse_duration(env["LAB_FAULT_START"], "fault start (stress_test_fault_start)")
    length = parse_duration(env.get("LAB_FAULT_DURATION", ""), "fault duration (stress_test_fault_duration)")
    if start + length >= shape.duration:
        raise ShapeError(
            f"the fault window ({start}s + {length}s) must close before the run ends ({shape.duration}s), "
            "so the recovery is measured"
        )
    return {"start": start, "end": start + length}


def main(argv: list[str] | None = None) -> int:
    """Validate the LAB_* settings in the environment and print the shape as JSON (used by the role's preflight)."""
    import os

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.parse_args(argv)
    try:
        shape = from_settings(os.environ)
        described = shape.describe()
        fault = fault_window(os.environ, shape)
    except ShapeError as err:
        print(f"bad load settings: {err}", file=sys.stderr)
        return 2
    if fault:
        described["fault"] = fault
    print(json.dumps(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
