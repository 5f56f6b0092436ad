"""make lesson-report: a self-contained HTML summary of what the trainee did (from progress.json)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from lessons.catalog import Lesson
from lessons.session import solved

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.right{color:#176f2c}.wrong{color:#a4161a}.muted{color:#666}
"""


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else "not ended"


def _run_html(lesson: Lesson, run: dict[str, Any]) -> str:
    right = solved(run)
    total = len(lesson.questions)
    rows = "".join(
        f"<tr><td>Q{a['question']}</td><td>{escape(a['answer'])}</td>"
        f"<td class={'right' if a['correct'] else 'wrong'}>{'right' if a['correct'] else 'wrong'}</td>"
        f"<td>{escape(str(a['expected']))}</td><td>{_when(a['at'])}</td></tr>"
        for a in run["answers"]
    )
    table = (
        "<table><tr><th>question</th><th>answer</th><th>verdict</th><th>the lab said</th><th>at</th></tr>"
        f"{rows}</table>"
        if rows
        else "<p class=muted>No answer given.</p>"
    )
    return (
        f"<h3>{_when(run['started'])} on {escape(run.get('platform') or '?')}: "
        f"{len(right)} of {total} questions right (ended: {_when(run.get('ended'))})</h3>{table}"
    )


def html(lessons: list[Lesson], progress: dict[str, Any]) -> str:
    done = progress.get("lessons", {})
    summary_rows = []
    sections = []
    for lesson in lessons:
        runs = done.get(lesson.id, {}).get("runs", [])
        best = max((len(solved(r)) for r in runs), default=0)
        total = len(lesson.questions)
        state = "not started" if not runs else ("complete" if best == total else f"{best}/{total} right")
        summary_rows.append(
            f"<tr><td>{escape(lesson.id)}</td><td>{escape(lesson.data['title'])}</td>"
            f"<td>{len(runs)}</td><td>{state}</td></tr>"
        )
        if runs:
            sections.append(
                f"<h2>{escape(lesson.id)}: {escape(lesson.data['title'])}</h2>"
                + "".join(_run_html(lesson, r) for r in runs)
            )
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>Lab lessons: report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Lab lessons: what was done</h1>"
        f"<p class=muted>Written {_when(datetime.now(UTC).timestamp())}.</p>"
        "<table><tr><th>lesson</th><th>title</th><th>runs</th><th>best</th></tr>"
        + "".join(summary_rows)
        + "</table>"
        + "".join(sections)
        + "</body></html>\n"
    )


def write(lessons: list[Lesson], progress: dict[str, Any], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html(lessons, progress))
    return out
