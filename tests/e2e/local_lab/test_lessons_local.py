"""The lessons end to end on the directory's shared local lab (conftest.py): every lesson of lessons/catalog/.

Each lesson runs as the README shows (python -m lessons start, what `make lesson L=<id>` runs, here without a
terminal so the questions are printed; `make answer` = python -m lessons answer). For every question the test
derives a right and a wrong answer from the live lab itself (tests/support/lesson_answers.py: its own queries of
Prometheus and Alertmanager, its own reading of the API's log file), answers wrong (exit 1, WRONG with the
explanation) then right (exit 0, RIGHT); the last right answer ends the lesson: the baseline faults are back and the
load has stopped. Malformed answers change nothing. One lesson (INTERACTIVE) is answered the same way in a real
terminal instead (pexpect: typed at the prompt), so every lesson is covered once; then Ctrl-C during a scene, which
still cleans up.

Scenes run at lesson_time_scale 0.15 (a 60 s window takes 9 s) on the lab's 1 s scrapes and evaluations.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.plan import seconds
from lessons import catalog
from tests.conftest import ROOT, ansible_env
from tests.support.lesson_answers import right_and_wrong
from tests.support.prometheus import query

pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(1800)]

LESSONS = [lesson.id for lesson in catalog.load_all()]
# Covered in a terminal (test_interactive_lesson_in_a_terminal) rather than with make answer: one scene less.
INTERACTIVE = "failing-endpoint"
BASELINE = yaml.safe_load((ROOT / "group_vars" / "all" / "app.yml").read_text())["lab_baseline_faults"]
TIME_SCALE = 0.15


def wait_for_lab_age(lab: dict[str, Any]) -> None:
    """Wait until Prometheus's data covers every lesson's needs.lab_age (a fresh lab: a minute or two; one line/15 s)."""
    need = max(seconds(lesson.data["needs"]["lab_age"], "lab_age") for lesson in catalog.load_all())
    promql = f'max(slo:period_covered:seconds{{app="{lab["settings"].get("lab_app_name", "flask-api")}"}})'
    deadline, said = time.time() + 600, 0.0
    while True:
        result = query(lab["urls"]["prometheus"], promql)
        covered = float(result[0]["value"][1]) if result else 0.0
        if covered >= need:
            return
        assert time.time() < deadline, (
            f"Prometheus's data covers {covered:.0f} s after 10 minutes, not {need} s"
        )
        if time.time() - said >= 15:
            print(
                f"waiting for the lab's data to cover {need} s (the lessons' lab_age): {covered:.0f} s",
                flush=True,
            )
            said = time.time()
        time.sleep(2)


@pytest.fixture
def lessons_env(local_lab: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    wait_for_lab_age(local_lab)
    env = ansible_env()
    env["LAB_LESSON_SESSION"] = str(tmp_path / "session.json")
    settings = tmp_path / "settings.json"  # the lab's settings as a file: ARGS='-e @<file>' needs no quoting
    settings.write_text(json.dumps({**local_lab["settings"], "lesson_time_scale": TIME_SCALE}))
    the_env = {
        "env": env,
        "args": ["-e", f"@{settings}"],
        "session": tmp_path / "session.json",
        "lab": local_lab,
    }
    yield the_env
    # A test that failed half-way (a killed terminal, a timeout) leaves its lesson running: end it as a trainee
    # would (make lesson-end), so its load and fault do not outlive the test.
    session = the_env["session"]
    if session.exists() and json.loads(session.read_text()).get("status") != "ended":
        lessons(the_env, "end", timeout=300)


def lessons(env: dict[str, Any], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lessons", *args],
        cwd=ROOT,
        env=env["env"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def answer(env: dict[str, Any], lesson: str, n: int, text: str) -> subprocess.CompletedProcess[str]:
    return lessons(env, "answer", "--lesson", lesson, "--question", str(n), f"--answer={text}")


def make_lesson(env: dict[str, Any], lesson_id: str) -> list[str]:
    """`make lesson L=<id> ARGS=...` verbatim, with the test's virtualenv taken as up to date (-o: no reinstall)."""
    venv = Path(sys.executable).parent.parent
    return [
        "-s",
        f"-o{venv}/.lab-stamp",
        f"-o{venv}/.stress-stamp",
        "lesson",
        f"L={lesson_id}",
        f"VENV={venv}",
        "ARGS=" + " ".join(env["args"]),
    ]


def faults_in_effect(lab: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load((lab["lab_dir"] / "run" / "faults.yaml").read_text())


def assert_clean(env: dict[str, Any], session: dict[str, Any]) -> None:
    """The lesson cleaned up: session ended, the baseline fault document in effect, its Locust gone."""
    assert json.loads(env["session"].read_text())["status"] == "ended"
    in_effect = faults_in_effect(env["lab"])
    assert {k: in_effect.get(k) for k in BASELINE} == BASELINE, in_effect
    if session.get("load"):
        run = json.loads((Path(session["load"]["dir"]) / "run.json").read_text())
        pid = int(run["locust_pid"])
        deadline = time.time() + 15
        while time.time() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.5)
        assert not Path(f"/proc/{pid}").exists(), f"the lesson's Locust (pid {pid}) still runs"


@pytest.mark.parametrize("lesson_id", [lesson for lesson in LESSONS if lesson != INTERACTIVE])
def test_lesson_checks_right_and_wrong_answers(lessons_env: dict[str, Any], lesson_id: str) -> None:
    env = lessons_env
    lesson = catalog.find(lesson_id)
    started = time.monotonic()
    proc = lessons(env, "start", lesson_id, *env["args"])
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "The scene is set" in proc.stdout
    assert f"make answer L={lesson_id} Q=<n>" in proc.stdout  # no terminal: the questions are printed
    session = json.loads(env["session"].read_text())
    assert session["status"] == "ready"
    assert session["lesson"] == lesson_id
    if lesson.scene.get("fault") and not lesson.scene.get("restore"):
        # The drill's fault document is in effect over the baseline while the questions are asked.
        assert faults_in_effect(env["lab"]) != BASELINE
    progress = Path(session["state_dir"]) / "progress.json"

    if lesson_id == LESSONS[0]:
        # Malformed answers: a clear message, exit 2, and the progress file untouched.
        before = progress.read_bytes()
        for n, text in ((1, "lots"), (99, "1"), (1, "")):
            bad = answer(env, lesson_id, n, text)
            assert bad.returncode == 2, bad.stdout + bad.stderr
            assert (
                "Nothing was recorded" in bad.stderr
                or "Q must be" in bad.stderr
                or "give the answer" in bad.stderr
            )
        assert progress.read_bytes() == before

    total = len(lesson.questions)
    for n, question in enumerate(lesson.questions, 1):
        right, wrong = right_and_wrong(question, session)
        out = answer(env, lesson_id, n, wrong)
        assert out.returncode == 1, f"Q{n} {wrong!r}: {out.stdout}{out.stderr}"
        assert f"Q{n}: WRONG" in out.stdout, out.stdout
        assert "Where:" in out.stdout, out.stdout
        right, _wrong = right_and_wrong(question, session)  # read again: the lab moved on meanwhile
        out = answer(env, lesson_id, n, right)
        assert out.returncode == 0, f"Q{n} {right!r}: {out.stdout}{out.stderr}"
        assert f"Q{n}: RIGHT" in out.stdout, out.stdout
        assert "Where:" in out.stdout, out.stdout
    assert f"Every question of {lesson_id} answered right" in out.stdout
    assert "Clean: the baseline faults are in effect" in out.stdout
    assert_clean(env, session)

    run = json.loads(progress.read_text())["lessons"][lesson_id]["runs"][-1]
    assert {a["question"] for a in run["answers"] if a["correct"]} == set(range(1, total + 1))
    assert sum(not a["correct"] for a in run["answers"]) == total
    assert run["ended"] is not None
    print(f"lesson {lesson_id}: {time.monotonic() - started:.0f} s")  # the durations the report lists


def _ctrl_c_by_default() -> None:
    """In the child, before make starts: SIGINT has its default action, as in a user's terminal, even when pytest was
    started with it ignored (a background job of a non-interactive shell passes SIG_IGN on through exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interactive_lesson_in_a_terminal(lessons_env: dict[str, Any]) -> None:
    """make lesson L=<id> in a terminal: prompts, malformed and wrong answers, right ones, cleanup at the end."""
    import pexpect

    env = lessons_env
    lesson = catalog.find(INTERACTIVE)
    child = pexpect.spawn(
        "make",
        make_lesson(env, lesson.id),
        cwd=str(ROOT),
        env=env["env"],
        encoding="utf-8",
        timeout=300,
        dimensions=(50, 200),
        preexec_fn=_ctrl_c_by_default,
    )
    try:
        child.expect("=== The scene is set")  # printed once the session file is final
        session = json.loads(env["session"].read_text())
        for n, question in enumerate(lesson.questions, 1):
            child.expect(f"Q{n}> ")
            if n == 1:
                child.sendline("<not a label>")
                child.expect("Not an answer: .*Nothing was recorded")
                child.expect(f"Q{n}> ")
            right, wrong = right_and_wrong(question, session)
            child.sendline(wrong)
            child.expect(f"Q{n}: WRONG")
            child.expect(f"Q{n}> ")
            right, _wrong = right_and_wrong(question, session)
            child.sendline(right)
            child.expect(f"Q{n}: RIGHT")
        child.expect(f"Cleaning up lesson {INTERACTIVE}")
        child.expect("Clean: the baseline faults are in effect")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert_clean(env, session)


def test_ctrl_c_during_the_scene_still_cleans_up(lessons_env: dict[str, Any]) -> None:
    """Ctrl-C while the scene is being set (load running): the lesson says so, restores the baseline, stops the load."""
    import pexpect

    env = lessons_env
    child = pexpect.spawn(
        "make",
        make_lesson(env, "first-page"),
        cwd=str(ROOT),
        env=env["env"],
        encoding="utf-8",
        timeout=300,
        dimensions=(50, 200),
        preexec_fn=_ctrl_c_by_default,
    )
    try:
        child.expect("Wait while the load settles")
        session = json.loads(env["session"].read_text())
        assert session["load"], "the load's handle is in the session before the warmup"
        child.sendintr()
        child.expect("Interrupted")
        child.expect("Cleaning up lesson first-page.*Ctrl-C cannot stop this step")
        child.sendintr()  # a second Ctrl-C does not stop the cleanup
        child.expect("Clean: the baseline faults are in effect")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert_clean(env, session)


def test_lesson_report_lists_what_was_done(lessons_env: dict[str, Any]) -> None:
    """After the lessons above (the last tests of the module): make lesson-report writes the HTML summary beside the progress."""
    env = lessons_env
    # The report finds progress through the last session: the one of this lab (another test's tmp session).
    sessions = sorted(Path(env["session"]).parent.parent.glob("*/session.json"), key=os.path.getmtime)
    if not sessions:
        pytest.skip("no lesson ran in this session")
    env["env"]["LAB_LESSON_SESSION"] = str(sessions[-1])
    proc = lessons(env, "report")
    assert proc.returncode == 0, proc.stderr
    report = Path(proc.stdout.split("Report: ", 1)[1].strip())
    html = report.read_text()
    for lesson_id in LESSONS:  # every lesson was done above, every question right in the end
        assert re.search(
            rf"<tr><td>{lesson_id}</td><td>[^<]*</td><td>[0-9]+</td><td>complete</td></tr>", html
        ), lesson_id
    assert "<td class=wrong>wrong</td>" in html
    # A lesson that needs more data than Prometheus holds is refused with the figures (the scene's preflight).
    check = lessons(env, "check", "--session", str(sessions[-1]), "--lab-age", "864000")
    assert check.returncode == 3
    assert "needs Prometheus data over at least 864000 s" in check.stderr
    assert "Come back in" in check.stderr
