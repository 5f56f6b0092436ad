"""The lessons as data (lessons/catalog/, lessons/schema.py) and the answers' parsing, without a lab.

The shipped lessons validate, name faults the drills have, and their queries parse as PromQL and select rule names
the lab's rules define; a bad lesson file is refused with a message naming the file and the key; malformed answers
and answers without a lesson running change nothing.
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import promql_parser
import pytest
import yaml

from lessons import answers, catalog
from tests.conftest import ROOT

LESSONS = catalog.load_all()
DRILLS = yaml.safe_load((ROOT / "group_vars" / "all" / "drills.yml").read_text())["lab_drills"]
RULES_TEMPLATE = (
    ROOT / "roles" / "monitoring" / "templates" / "rules" / "recording_rules.yml.j2"
).read_text()


def test_at_least_eight_lessons_from_red_to_the_budget_policy() -> None:
    ids = [lesson.id for lesson in LESSONS]
    assert len(ids) >= 8
    assert ids[0] == "red-healthy"
    assert ids[-1] == "budget-policy"
    kinds = {q["check"]["kind"] for lesson in LESSONS for q in lesson.questions}
    assert kinds == {"promql", "label", "alert", "log", "budget"}


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.id)
def test_shipped_lesson_is_consistent(lesson: catalog.Lesson) -> None:
    assert set(lesson.data["needs"]["platforms"]) == {"local", "minikube", "kubernetes"}
    if "fault" in lesson.scene:
        assert lesson.scene["fault"] in {d["name"] for d in DRILLS}
    for question in lesson.questions:
        query = question["check"].get("query")
        if query is None:
            continue
        rendered = string.Template(query).substitute(
            app="flask-api",
            namespace="sre-lab",
            scene_range="95s",
            fault_range="60s",
            scene_set_at="1765000000.000",
            fault_window="45s",
        )
        promql_parser.parse(rendered)  # raises on a syntax error
        for rule in re.findall(r"\bslo:[a-z_:]+", rendered):
            assert rule in RULES_TEMPLATE, f"{lesson.id}: {rule} is not a recording rule of the lab"


def _write(tmp_path: Path, data: dict, name: str = "x.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _valid() -> dict:
    return json.loads(json.dumps(next(lesson.data for lesson in LESSONS if lesson.id == "red-healthy")))


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            lambda d: d["questions"][2]["check"].pop("tolerance"),
            "questions[2].check",
            "'tolerance' is a required",
        ),
        (
            lambda d: d["questions"][0]["check"].update(kind="guess"),
            "questions[0].check.kind",
            "'guess' is not one of",
        ),
        (
            lambda d: d["questions"][1]["check"].update(unit="ms"),
            "questions[1].check.unit",
            "'ms' is not one of",
        ),
        (lambda d: d["scene"].update(window="soon"), "scene.window", "does not match"),
        (lambda d: d.update(colour="red"), "(top level)", "'colour' was unexpected"),
        (
            lambda d: d["questions"][3]["check"].update(query="up{app=$ap}"),
            "questions[3].check.query",
            "['ap']",
        ),
        (lambda d: d.update(id="other"), "id", "must be the file's name"),
    ],
)
def test_bad_lesson_file_names_the_file_and_the_key(tmp_path: Path, change, key: str, words: str) -> None:
    data = _valid()
    change(data)
    path = _write(tmp_path, data, "red-healthy.yml")
    with pytest.raises(catalog.LessonError) as err:
        catalog.load_file(path)
    assert str(err.value).startswith(f"{path}: {key}: "), err.value
    assert words in str(err.value)


def test_cli_refuses_a_bad_lesson_and_an_unknown_fault(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lessons",
            "plan",
            "--lesson",
            "no-such",
            "--platform",
            "local",
            "--drills",
            "[]",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "no lesson 'no-such'; the lessons: red-healthy," in proc.stderr
    drills = json.dumps([d for d in DRILLS if d["name"] != "error-burst"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lessons",
            "plan",
            "--lesson",
            "failing-endpoint",
            "--platform",
            "local",
            "--drills",
            drills,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "failing-endpoint.yml: scene.fault: no drill 'error-burst' in lab_drills" in proc.stderr


def test_plan_scales_the_scene_and_takes_the_drills_fault() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lessons",
            "plan",
            "--lesson",
            "budget-spent",
            "--platform",
            "kubernetes",
            "--drills",
            json.dumps(DRILLS),
            "--time-scale",
            "0.5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(proc.stdout)
    assert plan["faults"] == next(d["faults"] for d in DRILLS if d["name"] == "db-outage")
    assert (plan["warmup_seconds"], plan["window_seconds"], plan["restore"]) == (10, 20, True)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (answers.number, "about ten"),
        (answers.number, ""),
        (answers.yes_no, "maybe"),
        (answers.name, "two words"),
        (answers.request_id, "id with spaces"),
        (lambda t: answers.utc_time(t, datetime.now(UTC)), "25:00"),
        (lambda t: answers.utc_time(t, datetime.now(UTC)), "noon"),
    ],
)
def test_malformed_answers_are_refused(parse, text: str) -> None:
    with pytest.raises(answers.AnswerError, match=r"expected|not a time"):
        parse(text)


def test_answers_are_read_with_their_units() -> None:
    assert answers.number("120 ms") == 120
    assert answers.number("3.5%") == 3.5
    assert answers.yes_no(" Yes ") is True
    now = datetime(2026, 12, 6, 0, 10, tzinfo=UTC)
    assert answers.utc_time("23:59:30", now) == datetime(2026, 12, 5, 23, 59, 30, tzinfo=UTC).timestamp()
    assert answers.utc_time("00:05", now) == datetime(2026, 12, 6, 0, 5, tzinfo=UTC).timestamp()


def test_make_lesson_lists_and_answer_without_a_lesson_changes_nothing(tmp_path: Path) -> None:
    session_dir = tmp_path / "lessons"
    env = {
        "PATH": "/usr/bin:/bin",
        "LAB_LESSON_SESSION": str(session_dir / "session.json"),
        "HOME": str(tmp_path),
    }
    # The test's own virtualenv, taken as up to date (-o: make does not reinstall it).
    venv = f"VENV={Path(sys.executable).parent.parent}"
    stamps = [f"-o{Path(sys.executable).parent.parent}/.{s}-stamp" for s in ("lab", "stress")]
    listing = subprocess.run(
        ["make", "-s", *stamps, "lesson", venv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    for lesson in LESSONS:
        assert lesson.id in listing.stdout
        assert lesson.data["goal"] in listing.stdout
    assert "lab age" in listing.stdout
    proc = subprocess.run(
        ["make", "-s", *stamps, "answer", venv, "L=red-healthy", "Q=1", "A=it's 3 'ish'"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "no lesson has been started: make lesson L=<id>" in proc.stderr
    assert not session_dir.exists()  # nothing written
