"""The lesson files (lessons/catalog/<id>.yml): load them and validate each against the schema (schema.py).

A bad file is refused with a message naming the file and the key (questions[2].check.tolerance: ...).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lessons.schema import LESSON_SCHEMA

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"
# The placeholders a query may use ($app, ...): filled in from the session (telemetry.Context.values).
PLACEHOLDERS = frozenset({"app", "namespace", "scene_range", "fault_range", "scene_set_at", "fault_window"})


class LessonError(ValueError):
    """A lesson file is missing or invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Lesson:
    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def questions(self) -> list[dict[str, Any]]:
        questions: list[dict[str, Any]] = self.data["questions"]
        return questions

    @property
    def scene(self) -> dict[str, Any]:
        scene: dict[str, Any] = self.data["scene"]
        return scene


def _where(err: ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path]
    return "".join(parts).lstrip(".") or "(top level)"


def _first_error(errors: list[ValidationError]) -> ValidationError:
    # The deepest error says most (the key inside the check rather than "check is not valid").
    return max(errors, key=lambda e: (len(e.absolute_path), -len(e.message)))


def validate(path: Path, data: object) -> Lesson:
    """The lesson in `data` (read from `path`), or LessonError naming the file and the key."""
    errors = list(Draft202012Validator(LESSON_SCHEMA).iter_errors(data))
    if errors:
        err = _first_error(errors)
        raise LessonError(f"{path}: {_where(err)}: {err.message}")
    assert isinstance(data, dict)
    if data["id"] != path.stem:
        raise LessonError(f"{path}: id: {data['id']!r} must be the file's name ({path.stem!r})")
    for n, question in enumerate(data["questions"]):
        query = question["check"].get("query")
        if query is None:
            continue
        found = string.Template.pattern.findall(query)  # (escaped, named, braced, invalid) per "$"
        if any(invalid for _e, _n, _b, invalid in found):
            raise LessonError(
                f"{path}: questions[{n}].check.query: a '$' that starts no placeholder ($$ = '$')"
            )
        unknown = {named or braced for _e, named, braced, _i in found if named or braced} - PLACEHOLDERS
        if unknown:
            raise LessonError(
                f"{path}: questions[{n}].check.query: unknown placeholder(s) {sorted(unknown)}; "
                f"known: {sorted(PLACEHOLDERS)}"
            )
    return Lesson(path, data)


def load_file(path: Path) -> Lesson:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise LessonError(f"{path}: cannot be read as YAML: {err}") from None
    return validate(path, data)


def load_all(directory: Path = CATALOG_DIR) -> list[Lesson]:
    """Every lesson of the catalog, in their `order`, each validated."""
    lessons = [load_file(p) for p in sorted(directory.glob("*.yml"))]
    if not lessons:
        raise LessonError(f"{directory}: no lesson files (*.yml)")
    return sorted(lessons, key=lambda lesson: (lesson.data.get("order", 999), lesson.id))


def find(lesson_id: str, directory: Path = CATALOG_DIR) -> Lesson:
    lessons = load_all(directory)
    for lesson in lessons:
        if lesson.id == lesson_id:
            return lesson
    raise LessonError(
        f"no lesson {lesson_id!r}; the lessons: {', '.join(lesson.id for lesson in lessons)} (make lesson lists them)"
    )
