"""The session file (written by playbooks/lesson.yml: the scene, the ways to the telemetry) and the progress file.

The session file's path is chosen here (LAB_LESSON_SESSION, default build/lessons/session.json in the checkout) and
handed to the play; everything in it comes from the play, the one owner of the lab's settings. Progress is kept
under the lab's reports folder (<lab_reports_dir>/lessons/progress.json, kept by teardown) and written atomically,
only after a well-formed answer was checked.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENV = "LAB_LESSON_SESSION"


class SessionError(RuntimeError):
    """No session, or not the one the command names; the message says what to run."""


def session_path() -> Path:
    return Path(os.environ.get(ENV) or REPO / "build" / "lessons" / "session.json")


def write_json(path: Path, data: object) -> None:
    """Write atomically (a temporary file renamed over it), readable by the lab's user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_session(path: Path | None = None) -> dict[str, Any]:
    path = path or session_path()
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SessionError(
            "no lesson has been started: make lesson L=<id> (make lesson lists them)"
        ) from None
    except (OSError, ValueError) as err:
        raise SessionError(f"the session file {path} cannot be read: {err}") from None
    return data


def active_session(lesson_id: str, path: Path | None = None) -> dict[str, Any]:
    session = read_session(path)
    if session.get("status") != "ready":
        raise SessionError(
            f"no lesson is running (the last one, {session.get('lesson')}, is {session.get('status')}): "
            f"make lesson L={lesson_id or '<id>'}"
        )
    if lesson_id and session.get("lesson") != lesson_id:
        raise SessionError(
            f"the lesson running is {session.get('lesson')}, not {lesson_id}: answer its questions "
            f"(make answer L={session.get('lesson')} Q=<n> A=...) or start {lesson_id} with make lesson L={lesson_id}"
        )
    return session


class Progress:
    """<state_dir>/progress.json: per lesson, its runs and every checked answer."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "progress.json"

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"lessons": {}}
        return data

    def _lesson(self, data: dict[str, Any], lesson_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = data["lessons"].setdefault(lesson_id, {"runs": []})
        return entry

    def start(self, lesson_id: str, platform: str) -> None:
        data = self.load()
        self._lesson(data, lesson_id)["runs"].append(
            {"started": time.time(), "platform": platform, "ended": None, "answers": []}
        )
        write_json(self.path, data)

    def record(
        self, lesson_id: str, question: int, answer: str, correct: bool, expected: str
    ) -> dict[str, Any]:
        data = self.load()
        runs = self._lesson(data, lesson_id)["runs"]
        if not runs:
            runs.append({"started": time.time(), "platform": "", "ended": None, "answers": []})
        run: dict[str, Any] = runs[-1]
        run["answers"].append(
            {
                "question": question,
                "answer": answer,
                "correct": correct,
                "expected": expected,
                "at": time.time(),
            }
        )
        write_json(self.path, data)
        return run

    def end(self, lesson_id: str) -> None:
        data = self.load()
        runs = self._lesson(data, lesson_id)["runs"]
        if runs and runs[-1]["ended"] is None:
            runs[-1]["ended"] = time.time()
            write_json(self.path, data)


def solved(run: dict[str, Any]) -> set[int]:
    """The questions of a run answered right at least once."""
    return {a["question"] for a in run["answers"] if a["correct"]}
