"""The parts of a run judged one by one: step and spike phases from the shape, capacity steps from steps.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def shape_phases(shape: dict[str, Any], run_seconds: float) -> list[dict[str, Any]]:
    """Step or spike phases: (label, users, from, to) in seconds after the start."""
    name = shape.get("name")
    found: list[dict[str, Any]] = []
    if name == "step":
        length, per_step, top = int(shape["step_seconds"]), int(shape["step_users"]), int(shape["users"])
        begin = 0
        while begin < run_seconds - 1:
            users = min(top, (begin // length + 1) * per_step)
            found.append(
                {
                    "phase": f"{users} users",
                    "users": users,
                    "from": begin,
                    "to": min(begin + length, run_seconds),
                }
            )
            begin += length
    elif name == "spike":
        at, length = int(shape["spike_at"]), int(shape["spike_seconds"])
        found = [
            {"phase": "before the spike", "users": shape["base_users"], "from": 0, "to": at},
            {"phase": "spike", "users": shape["users"], "from": at, "to": at + length},
            {"phase": "recovery", "users": shape["base_users"], "from": at + length, "to": run_seconds},
        ]
    return [p for p in found if p["to"] - p["from"] >= 1]


def capacity_steps(steps_file: Path, run_start: float) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The capacity shape's judged steps (generator view) as phases, and why the run stopped."""
    if not steps_file.exists():
        return [], None
    data = json.loads(steps_file.read_text())
    phases = [
        {
            "phase": f"step {s['index'] + 1}: {s['users']} users"
            + ("" if s.get("kind", "search") == "search" else f" ({s['kind']})"),
            "users": s["users"],
            "from": s["start"] - run_start,
            "to": s["end"] - run_start,
            "generator": s,
        }
        for s in data.get("steps", [])
    ]
    return phases, data.get("stopped")
