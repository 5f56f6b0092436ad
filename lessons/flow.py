"""What the trainee runs: start a lesson (scene, questions, cleanup), answer one question, end the lesson.

The scene and the cleanup are plays (playbooks/lesson.yml): the faults only through app_deploy's faults entry point,
the load only through stress_test's background entry points. The questions are asked and checked here.
"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from lessons import catalog, checks, playbook
from lessons.answers import AnswerError
from lessons.session import (
    Progress,
    SessionError,
    active_session,
    read_session,
    session_path,
    solved,
    write_json,
)
from lessons.telemetry import Context, SourceError

WIDTH = 100


def say(text: str, out: TextIO = sys.stdout) -> None:
    for paragraph in text.strip().split("\n\n"):
        print(textwrap.fill(" ".join(paragraph.split()), WIDTH), file=out)
        print(file=out)


def cleanup(session_file: Path, session: dict[str, Any]) -> int:
    """Baseline faults back and the load stopped (the cleanup play), whatever the terminal sends meanwhile.

    Ctrl-C is ignored from before the message that says so: a second Ctrl-C right after it cannot stop the cleanup.
    """
    with playbook.interrupts_ignored():
        print(
            f"\nCleaning up lesson {session.get('lesson')}: the baseline faults (lab_baseline_faults) go back and "
            "the background load stops (playbooks/lesson.yml, lesson_action=cleanup); Ctrl-C cannot stop this step.",
            flush=True,
        )
        argv = playbook.command(
            "cleanup",
            str(session.get("lesson", "")),
            session_file,
            str(session.get("run_id", "")),
            list(session.get("ansible_args", [])),
        )
        rc = playbook.run_shielded(argv)
        if rc == 0:
            print("Clean: the baseline faults are in effect and no lesson load runs.", flush=True)
        else:
            print(
                f"The cleanup play failed (exit {rc}): run make lesson-end, or make faults to restore the baseline."
            )
        return rc


def _end_previous(session_file: Path) -> None:
    try:
        previous = read_session(session_file)
    except SessionError:
        return
    if previous.get("status") in ("setting", "ready"):
        print(f"Lesson {previous.get('lesson')} is still set up: ending it first.")
        cleanup(session_file, previous)


def _clock(epoch: object) -> str:
    return datetime.fromtimestamp(float(str(epoch)), UTC).strftime("%H:%M:%S UTC")


def scene_summary(session: dict[str, Any]) -> str:
    """What the scene did, from the session the play wrote."""
    plan, times = session.get("plan", {}), session.get("times", {})
    parts = [f"a steady load of {session.get('users')} users" if plan.get("load") else "no load"]
    if plan.get("fault"):
        fault = f"the fault of drill {plan['fault']} {json.dumps(plan['faults'])} in effect since {_clock(times['fault_effective'])}"
        if times.get("restore_effective"):
            fault += f", the baseline back since {_clock(times['restore_effective'])}"
        else:
            fault += " (until the lesson ends)"
        parts.append(fault)
    else:
        parts.append("the baseline faults only")
    parts.append(f"scene began {_clock(times['started'])}")
    if times.get("ready"):
        parts.append(f"questions from {_clock(times['ready'])}")
    return "; ".join(parts)


def _print_verdict(n: int, verdict: checks.Verdict, out: TextIO = sys.stdout) -> None:
    mark = "RIGHT" if verdict.correct else "WRONG"
    print(f"Q{n}: {mark}: you answered {verdict.answer!r}; the lab says {verdict.expected}.", file=out)
    print(textwrap.indent(verdict.explanation, "  "), file=out, flush=True)


def _questions_text(lesson: catalog.Lesson) -> str:
    return "\n".join(f"  Q{n}. {q['ask'].strip()}" for n, q in enumerate(lesson.questions, 1))


def start(lesson_id: str, ansible_args: list[str], ask: Callable[[str], str] | None = None) -> int:
    lesson = catalog.find(lesson_id)
    session_file = session_path()
    _end_previous(session_file)
    run_id = uuid.uuid4().hex
    interactive = ask is not None or sys.stdin.isatty()
    print(f"\n=== Lesson {lesson.id}: {lesson.data['title']} (about {lesson.data['minutes']} min) ===\n")
    say(lesson.data["intro"])
    print(
        "Setting the scene (playbooks/lesson.yml): load, fault and time window as the lesson describes.\n",
        flush=True,
    )
    session: dict[str, Any] = {"lesson": lesson.id, "run_id": run_id, "ansible_args": ansible_args}
    written = False  # the play wrote this run's session: from then on there may be a scene to undo
    try:
        try:
            playbook.run(playbook.command("scene", lesson.id, session_file, run_id, ansible_args))
        finally:
            # The play wrote the session (or began to): keep the arguments the cleanup needs with it.
            try:
                on_disk = read_session(session_file)
                if on_disk.get("run_id") == run_id:
                    session, written = {**on_disk, "ansible_args": ansible_args}, True
                    write_json(session_file, session)
            except SessionError:
                pass
        ctx = Context(session)
        progress = Progress(Path(session["state_dir"]))
        progress.start(lesson.id, str(session["platform"]))
        print(f"\n=== The scene is set: {scene_summary(session)} ===\n")
        if not interactive:
            print(f"The questions of {lesson.id}:\n{_questions_text(lesson)}\n")
            print(
                f"Answer each with: make answer L={lesson.id} Q=<n> A='<your answer>'\n"
                "The scene stays until every question is answered right or you run make lesson-end; then the "
                "lesson cleans up after itself (baseline faults back, load stopped)."
            )
            return 0
        _ask_all(lesson, ctx, progress, ask or input)
        say(lesson.data["outro"])
    except KeyboardInterrupt:
        with playbook.interrupts_ignored():  # a second Ctrl-C must not skip the cleanup below
            print("\nInterrupted.")
            return _finish(lesson.id, session_file, session, written)
    except EOFError:
        print("\nNo more input.")
    except playbook.PlayError as err:
        print(str(err), file=sys.stderr)
        # A scene that failed half-way was undone by the play itself (rescue); one refused before it began
        # (a bad lesson, the lab not ready) changed nothing.
        return 1
    return _finish(lesson.id, session_file, session, written)


def _finish(lesson_id: str, session_file: Path, session: dict[str, Any], written: bool) -> int:
    """The scene's end: undo what the play set up (if it wrote anything) and close the progress record."""
    if not written:  # interrupted before the play wrote anything: nothing was changed
        print("The scene had not changed anything yet: nothing to clean up.")
        return 1
    rc = cleanup(session_file, session)
    if "state_dir" in session:
        Progress(Path(session["state_dir"])).end(lesson_id)
    return 0 if rc == 0 else 1


def _ask_all(lesson: catalog.Lesson, ctx: Context, progress: Progress, ask: Callable[[str], str]) -> None:
    total = len(lesson.questions)
    print("Answer each question; 'skip' moves on, 'quit' ends the lesson (it cleans up either way).\n")
    for n, question in enumerate(lesson.questions, 1):
        print(f"Question {n}/{total}: {question['ask'].strip()}", flush=True)
        while True:
            text = ask(f"Q{n}> ").strip()
            if not text:
                continue
            if text.lower() in ("skip", "s"):
                break
            if text.lower() in ("quit", "q"):
                return
            try:
                verdict = checks.check(question, text, ctx)
            except AnswerError as err:
                print(f"Not an answer: {err}. Nothing was recorded; try again.", flush=True)
                continue
            except SourceError as err:
                print(f"The lab cannot check this now: {err}. Nothing was recorded; try again.", flush=True)
                continue
            progress.record(lesson.id, n, text, verdict.correct, verdict.expected)
            _print_verdict(n, verdict)
            if verdict.correct:
                print(flush=True)
                break
            print("Try again, or 'skip' / 'quit'.", flush=True)


def answer(lesson_id: str, number: str, text: str) -> int:
    """One answer, non-interactively: 0 right, 1 wrong, 2 bad input (nothing recorded), 3 the lab cannot answer."""
    session_file = session_path()
    try:
        session = active_session(lesson_id, session_file)
        lesson = catalog.find(session["lesson"])
    except (SessionError, catalog.LessonError) as err:
        print(f"lesson: {err}", file=sys.stderr)
        return 2
    total = len(lesson.questions)
    if not number.isdigit() or not 1 <= int(number) <= total:
        print(
            f"lesson: Q must be a question number of {lesson.id}, 1 to {total}; got {number!r}",
            file=sys.stderr,
        )
        return 2
    if not text.strip():
        print(
            f"lesson: give the answer with A=...; Q{number} asks: {lesson.questions[int(number) - 1]['ask']}",
            file=sys.stderr,
        )
        return 2
    n = int(number)
    try:
        verdict = checks.check(lesson.questions[n - 1], text, Context(session))
    except AnswerError as err:
        print(f"lesson: not an answer to Q{n}: {err}. Nothing was recorded.", file=sys.stderr)
        return 2
    except SourceError as err:
        print(f"lesson: the lab cannot check this now: {err}. Nothing was recorded.", file=sys.stderr)
        return 3
    progress = Progress(Path(session["state_dir"]))
    run = progress.record(lesson.id, n, text.strip(), verdict.correct, verdict.expected)
    _print_verdict(n, verdict)
    left = [q for q in range(1, total + 1) if q not in solved(run)]
    if verdict.correct and not left:
        print(f"\nEvery question of {lesson.id} answered right.")
        say(lesson.data["outro"])
        cleanup(session_file, session)
        progress.end(lesson.id)
    elif left:
        print(f"Still open: {', '.join(f'Q{q}' for q in left)}.")
    return 0 if verdict.correct else 1


def end() -> int:
    session_file = session_path()
    try:
        session = read_session(session_file)
    except SessionError as err:
        print(f"lesson: {err}", file=sys.stderr)
        return 2
    if session.get("status") not in ("setting", "ready"):
        print(f"Lesson {session.get('lesson')} is already over and cleaned up.")
        return 0
    rc = cleanup(session_file, session)
    if "state_dir" in session:
        Progress(Path(session["state_dir"])).end(str(session["lesson"]))
    return 0 if rc == 0 else 1
