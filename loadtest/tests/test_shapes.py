"""Load shapes: tick-by-tick schedules and the validation of their settings."""

from __future__ import annotations

import json

import pytest

from loadtest import shapes

BASE = {"LAB_SPAWN_RATE": "5", "LAB_USERS": "50", "LAB_DURATION": "60"}


def ticks(shape: shapes.Shape, until: int) -> list[tuple[int, float] | None]:
    return [shape.tick(t) for t in range(until)]


def test_steady_holds_the_users_then_stops() -> None:
    shape = shapes.from_settings({**BASE, "LAB_SHAPE": "steady"})
    assert shape.tick(0) == (50, 5.0)
    assert shape.tick(59.9) == (50, 5.0)
    assert shape.tick(60) is None
    assert shape.peak_users == 50


def test_step_rises_by_step_users_every_step_and_caps_at_users() -> None:
    shape = shapes.from_settings(
        {**BASE, "LAB_SHAPE": "step", "LAB_USERS": "25", "LAB_STEP_USERS": "10", "LAB_STEP_SECONDS": "10s"}
    )
    users = [t[0] for t in ticks(shape, 60) if t]
    assert users[0:10] == [10] * 10
    assert users[10:20] == [20] * 10
    assert users[20:] == [25] * 40  # capped, then held to the end
    assert shape.tick(60) is None
    assert shape.peak_users == 25


def test_step_peak_is_what_the_duration_reaches() -> None:
    shape = shapes.from_settings(
        {**BASE, "LAB_SHAPE": "step", "LAB_USERS": "1000", "LAB_STEP_USERS": "10", "LAB_STEP_SECONDS": "20"}
    )
    assert shape.peak_users == 30


def test_spike_bursts_at_once_then_recovers_to_the_base() -> None:
    shape = shapes.from_settings(
        {
            **BASE,
            "LAB_SHAPE": "spike",
            "LAB_USERS": "100",
            "LAB_SPIKE_BASE_USERS": "10",
            "LAB_SPIKE_AT": "20",
            "LAB_SPIKE_SECONDS": "10",
        }
    )
    assert shape.tick(19) == (10, 5.0)
    assert shape.tick(20) == (100, 100.0)  # every spike user starts within a tick
    assert shape.tick(29.5) == (100, 100.0)
    assert shape.tick(30) == (10, 5.0)
    assert shape.tick(59) == (10, 5.0)
    assert shape.tick(60) is None


def test_soak_is_long_and_low_with_its_own_settings() -> None:
    shape = shapes.from_settings(
        {**BASE, "LAB_SHAPE": "soak", "LAB_SOAK_USERS": "5", "LAB_SOAK_DURATION": "1h"}
    )
    assert shape.tick(0) == (5, 5.0)
    assert shape.tick(3599) == (5, 5.0)
    assert shape.tick(3600) is None


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90), (90, 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2m10s", 130)]
)
def test_durations(value: object, seconds: int) -> None:
    assert shapes.parse_duration(value, "d") == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"LAB_SHAPE": "ramp"}, "unknown load shape 'ramp'"),
        ({"LAB_USERS": "many"}, "users (stress_test_users) must be a whole number"),
        ({"LAB_USERS": "0"}, "users (stress_test_users) must be a whole number >= 1"),
        ({"LAB_USERS": "2.5"}, "users (stress_test_users) must be a whole number"),
        ({"LAB_SPAWN_RATE": "-1"}, "spawn rate (stress_test_spawn_rate) must be a number > 0"),
        ({"LAB_SPAWN_RATE": "nan"}, "spawn rate"),
        ({"LAB_DURATION": "soon"}, "duration (stress_test_duration) must be a duration"),
        ({"LAB_DURATION": "0"}, "must be more than 0 seconds"),
        ({"LAB_DURATION": ""}, "LAB_DURATION is required"),
        ({"LAB_SHAPE": "step", "LAB_STEP_USERS": "60", "LAB_STEP_SECONDS": "5"}, "must not exceed users"),
        (
            {
                "LAB_SHAPE": "spike",
                "LAB_SPIKE_BASE_USERS": "5",
                "LAB_SPIKE_AT": "50",
                "LAB_SPIKE_SECONDS": "10",
            },
            "must end before the run does",
        ),
        (
            {
                "LAB_SHAPE": "spike",
                "LAB_SPIKE_BASE_USERS": "50",
                "LAB_SPIKE_AT": "5",
                "LAB_SPIKE_SECONDS": "5",
            },
            "must be below the spike's users",
        ),
    ],
)
def test_bad_settings_are_named(override: dict[str, str], message: str) -> None:
    with pytest.raises(shapes.ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shapes.from_settings({**BASE, **override})


def test_cli_prints_the_shape_or_a_clear_error(monkeypatch, capsys) -> None:
    for key, value in {**BASE, "LAB_SHAPE": "steady"}.items():
        monkeypatch.setenv(key, value)
    assert shapes.main([]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "steady",
        "duration": 60,
        "spawn_rate": 5.0,
        "users": 50,
        "peak_users": 50,
    }
    monkeypatch.setenv("LAB_USERS", "lots")
    assert shapes.main([]) == 2
    assert "bad load settings: users (stress_test_users)" in capsys.readouterr().err


def test_fault_window_must_close_before_the_run_ends(monkeypatch, capsys) -> None:
    for key, value in {
        **BASE,
        "LAB_SHAPE": "steady",
        "LAB_FAULT_START": "10s",
        "LAB_FAULT_DURATION": "20s",
    }.items():
        monkeypatch.setenv(key, value)
    assert shapes.main([]) == 0
    assert json.loads(capsys.readouterr().out)["fault"] == {"start": 10, "end": 30}
    monkeypatch.setenv("LAB_FAULT_DURATION", "1m")
    assert shapes.main([]) == 2
    assert "fault window (10s + 60s) must close before the run ends (60s)" in capsys.readouterr().err


CAPACITY = {
    "LAB_SHAPE": "capacity",
    "LAB_SPAWN_RATE": "50",
    "LAB_CAPACITY_START_USERS": "10",
    "LAB_CAPACITY_STEP_USERS": "20",
    "LAB_CAPACITY_MAX_USERS": "60",
    "LAB_CAPACITY_STEP_SECONDS": "5",
    "LAB_SCRAPE_INTERVAL": "1s",
}


def test_capacity_steps_up_to_the_ceiling_then_stops() -> None:
    shape = shapes.from_settings(CAPACITY)
    assert isinstance(shape, shapes.Capacity)
    assert shape.steps == 4  # 10, 30, 50, 60 (the ceiling caps the last step)
    assert shape.duration == 20
    users = [t[0] for t in ticks(shape, 20) if t]
    assert users == [10] * 5 + [30] * 5 + [50] * 5 + [60] * 5
    assert shape.tick(20) is None
    assert shape.peak_users == 60


def test_capacity_steps_last_at_least_two_scrape_intervals() -> None:
    shape = shapes.from_settings({**CAPACITY, "LAB_SCRAPE_INTERVAL": "15s"})
    assert isinstance(shape, shapes.Capacity)
    assert shape.step_seconds == 2 * 15
    assert (
        shapes.from_settings(
            {**CAPACITY, "LAB_CAPACITY_STEP_SECONDS": "45s", "LAB_SCRAPE_INTERVAL": "15s"}
        ).step_seconds
        == 45
    )  # type: ignore[attr-defined]


def test_capacity_steps_hold_the_warm_up_plus_the_minimum_scrapes() -> None:
    shape = shapes.from_settings(
        {
            **CAPACITY,
            "LAB_CAPACITY_WARMUP_SECONDS": "5s",
            "LAB_CAPACITY_MIN_SCRAPES": "20",
            "LAB_CAPACITY_STEP_SECONDS": "20s",
        }
    )
    assert isinstance(shape, shapes.Capacity)
    assert (shape.step_seconds, shape.warmup_seconds, shape.requested_step_seconds) == (25, 5, 20)
    assert shape.describe()["warmup_seconds"] == 5
    with pytest.raises(shapes.ShapeError, match="stress_test_capacity_min_scrapes"):
        shapes.from_settings({**CAPACITY, "LAB_CAPACITY_MIN_SCRAPES": "0"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"LAB_CAPACITY_MAX_USERS": "5"}, "must not be below the start"),
        ({"LAB_CAPACITY_STEP_USERS": "0"}, "step users (stress_test_capacity_step_users)"),
        ({"LAB_SCRAPE_INTERVAL": ""}, "LAB_SCRAPE_INTERVAL is required"),
    ],
)
def test_capacity_bad_settings(change: dict[str, str], message: str) -> None:
    with pytest.raises(shapes.ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shapes.from_settings({**CAPACITY, **change})
