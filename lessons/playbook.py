"""Run playbooks/lesson.yml, the one owner of the lab's settings: the scene, and the cleanup."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lessons.session import REPO


class PlayError(RuntimeError):
    """The play failed; its own output (above) says why."""


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else (shutil.which("ansible-playbook") or "ansible-playbook")


def command(action: str, lesson_id: str, session_file: Path, run_id: str, extra: list[str]) -> list[str]:
    return [
        _ansible_playbook(),
        str(REPO / "playbooks" / "lesson.yml"),
        "-e",
        f"lesson={lesson_id}",
        "-e",
        f"lesson_action={action}",
        "-e",
        f"lesson_session_file={session_file}",
        "-e",
        f"lesson_run_id={run_id}",
        *extra,
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    return env


def run(argv: list[str]) -> None:
    """Run in the foreground: Ctrl-C reaches the play too, which stops after its task; then KeyboardInterrupt here."""
    proc = subprocess.Popen(argv, cwd=REPO, env=_env())
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        # Not killed at once (subprocess.run would): ansible-playbook ends its task and stops by itself.
        try:
            proc.wait(timeout=120)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            proc.wait()
        raise
    if rc != 0:
        raise PlayError(f"playbooks/lesson.yml failed (exit {rc}); its output above says why")


@contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Ctrl-C is ignored inside (nests: the outermost restores the handler it found)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_shielded(argv: list[str]) -> int:
    """Run to the end whatever the terminal sends: the play is in its own session, Ctrl-C here is ignored."""
    with interrupts_ignored():
        return subprocess.run(argv, cwd=REPO, env=_env(), check=False, start_new_session=True).returncode
