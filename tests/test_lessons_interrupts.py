"""A second Ctrl-C never stops a lesson's cleanup, whenever it arrives (lessons/flow.py, lessons/playbook.py).

The SIGINTs here are real signals sent to this process at the moments a trainee's terminal could send them; the
cleanup play is a real child process. Only the play's command line is replaced (no lab is needed to be interrupted).
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lessons import flow, playbook
from lessons.session import ENV

# The "cleanup play": interrupts its parent while it runs (as a Ctrl-C at the terminal would), then succeeds.
PLAY = [
    sys.executable,
    "-c",
    "import os, signal, time; os.kill(os.getppid(), signal.SIGINT); time.sleep(0.2)",
]


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt here, as at a terminal, even when pytest was started with SIGINT ignored (a
    background job of a non-interactive shell, which its xdist workers inherit); the handler is put back after."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def fake_play(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The cleanup play's command is PLAY; the calls are recorded."""
    actions: list[str] = []
    real = playbook.command

    def command(action: str, lesson_id: str, session_file: Path, run_id: str, extra: list[str]) -> list[str]:
        actions.append(action)
        return PLAY if action == "cleanup" else real(action, lesson_id, session_file, run_id, extra)

    monkeypatch.setattr(playbook, "command", command)
    return actions


def _interrupt_on_print(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """Deliver a SIGINT to this process just after flow prints a line that contains text."""

    def printing(*args: Any, **kwargs: Any) -> None:
        builtins.print(*args, **kwargs)
        if any(text in str(a) for a in args):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(flow, "print", printing, raising=False)


def test_ctrl_c_right_after_the_cleanup_message_is_ignored(
    monkeypatch: pytest.MonkeyPatch, fake_play: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _interrupt_on_print(monkeypatch, "Ctrl-C cannot stop this step")
    try:
        rc = flow.cleanup(tmp_path / "session.json", {"lesson": "first-page", "run_id": "r1"})
    except KeyboardInterrupt:
        pytest.fail("a Ctrl-C right after 'Ctrl-C cannot stop this step' stopped the cleanup")
    assert rc == 0
    assert fake_play == ["cleanup"]
    assert "Clean: the baseline faults are in effect" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, (
        "the Ctrl-C handler is restored after"
    )


def test_second_ctrl_c_between_the_interruption_and_the_cleanup_is_ignored(
    monkeypatch: pytest.MonkeyPatch, fake_play: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session_file = tmp_path / "session.json"
    state_dir = tmp_path / "state"
    monkeypatch.setenv(ENV, str(session_file))

    def scene(argv: list[str]) -> None:
        """The scene play wrote its session, then the trainee pressed Ctrl-C."""
        run_id = next(a.split("=", 1)[1] for a in argv if a.startswith("lesson_run_id="))
        session_file.write_text(
            json.dumps(
                {"lesson": "first-page", "run_id": run_id, "status": "setting", "state_dir": str(state_dir)}
            )
        )
        raise KeyboardInterrupt

    monkeypatch.setattr(playbook, "run", scene)
    _interrupt_on_print(monkeypatch, "Interrupted.")

    try:
        rc = flow.start("first-page", [], ask=lambda _q: "")
    except KeyboardInterrupt:
        pytest.fail("a second Ctrl-C after 'Interrupted.' skipped the cleanup")
    out = capsys.readouterr().out
    assert rc == 0, out
    assert fake_play == ["scene", "cleanup"]
    assert "Clean: the baseline faults are in effect" in out
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
