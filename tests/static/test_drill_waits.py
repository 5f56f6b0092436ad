"""Issue 19, item 4: the drill's long waits print progress lines, never a retry line per poll.

An `until:`/`retries:` loop prints `FAILED - RETRYING` at every poll (1,632 lines in the issue's 36-minute run); the
drill role waits with tasks/shared/wait.yml instead: `python -m drills progress` (one line per
drill_progress_interval) included again until the background watch has ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "roles" / "drill" / "tasks"


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += _tasks(task.get(key) or [])
    return found


def test_no_drill_task_retries_per_poll() -> None:
    loops = [
        f"{path.relative_to(ROOT)}: {task.get('name')}"
        for path in sorted(TASKS.rglob("*.yml"))
        for task in _tasks(yaml.safe_load(path.read_text()))
        if "until" in task or "retries" in task
    ]
    assert loops == []


def test_the_waits_print_a_progress_line_and_loop_until_the_watch_ends() -> None:
    wait = _tasks(yaml.safe_load((TASKS / "shared" / "wait.yml").read_text()))
    command = wait[0]["ansible.builtin.command"]["argv"]
    assert command[1:4] == ["-m", "drills", "progress"]
    assert "{{ drill_progress_interval | string }}" in command
    assert wait[1]["ansible.builtin.debug"]["msg"] == "{{ __drill_progress.stdout }}"
    assert wait[2]["ansible.builtin.include_tasks"]["file"] == "shared/wait.yml"
    run = _tasks(yaml.safe_load((TASKS / "shared" / "run.yml").read_text()))
    phases = [
        t["vars"]["_drill_wait_phase"]
        for t in run
        if t.get("ansible.builtin.include_tasks", {}).get("file") == "shared/wait.yml"
    ]
    assert phases == ["fire", "resolve"]
