"""``python -m lessons <list|start|answer|end|report|plan|check>`` (make lesson, make answer, make lesson-end,
make lesson-report; plan and check are the steps of roles/lesson).

Exit status: 0 done (answer: right), 1 failed (answer: wrong), 2 bad input or no lesson running (nothing changed),
3 the lab cannot answer now.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from drills.plan import PlanError, check_faults, seconds
from drills.sources import SourceError
from lessons import catalog, flow, report
from lessons.session import Progress, SessionError, read_session
from lessons.telemetry import Context


def cmd_list(_args: argparse.Namespace) -> int:
    lessons = catalog.load_all()
    print("Lessons (make lesson L=<id> starts one; the lab must be up: make lab):\n")
    for lesson in lessons:
        needs = lesson.data["needs"]
        print(f"  {lesson.id:<22} {lesson.data['goal']}")
        print(
            f"  {'':<22} about {lesson.data['minutes']} min; platforms: {', '.join(needs['platforms'])}; "
            f"lab age: Prometheus data over at least {needs['lab_age']}"
        )
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    return flow.start(args.lesson, args.ansible_args)


def cmd_answer(args: argparse.Namespace) -> int:
    return flow.answer(args.lesson, args.question, args.answer)


def cmd_end(_args: argparse.Namespace) -> int:
    return flow.end()


def cmd_report(_args: argparse.Namespace) -> int:
    try:
        session = read_session()
    except SessionError as err:
        print(f"lesson: {err}", file=sys.stderr)
        return 2
    state_dir = Path(session["state_dir"])
    out = report.write(catalog.load_all(), Progress(state_dir).load(), state_dir / "report.html")
    print(f"Report: {out}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """The scene of a lesson for the play: the fault document (a drill's, over the baseline), load and windows."""
    lesson = catalog.find(args.lesson)
    scene = lesson.scene
    if args.platform not in lesson.data["needs"]["platforms"]:
        raise catalog.LessonError(
            f"{lesson.path}: needs.platforms: lesson {lesson.id} runs on {', '.join(lesson.data['needs']['platforms'])}, "
            f"not on {args.platform}"
        )
    faults: dict[str, object] = {}
    if "fault" in scene:
        drills = {d.get("name"): d for d in json.loads(args.drills) if isinstance(d, dict)}
        if scene["fault"] not in drills:
            raise catalog.LessonError(
                f"{lesson.path}: scene.fault: no drill {scene['fault']!r} in lab_drills (group_vars/all/drills.yml); "
                f"the drills: {', '.join(str(n) for n in drills)}"
            )
        faults = check_faults(drills[scene["fault"]].get("faults", {}), f"lab_drills {scene['fault']}.faults")
    scale = args.time_scale

    def scaled(key: str) -> int:
        value = seconds(scene[key], f"scene.{key}")
        return max(1, round(value * scale)) if value > 0 else 0

    plan = {
        "id": lesson.id,
        "title": lesson.data["title"],
        "load": scene["load"],
        "fault": scene.get("fault", ""),
        "faults": faults,
        "warmup_seconds": scaled("warmup"),
        "window_seconds": scaled("window"),
        "restore": bool(scene.get("restore", False)),
        "lab_age_seconds": seconds(lesson.data["needs"]["lab_age"], "needs.lab_age"),
    }
    print(json.dumps(plan))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Prometheus answers, scrapes the API, and its data covers the lesson's lab age."""
    ctx = Context(read_session(Path(args.session)))
    now = time.time()
    up = ctx.query(f'up{{app="{ctx.app}"}}', now)
    if not up:
        print(
            f"Prometheus ({ctx.prometheus().where}) scrapes no API target (app={ctx.app}): is the lab up? make lab",
            file=sys.stderr,
        )
        return 3
    covered = ctx.query(f'max(slo:period_covered:seconds{{app="{ctx.app}"}})', now)
    have = float(covered[0]["value"][1]) if covered else 0.0
    if have < args.lab_age:
        print(
            f"This lesson needs Prometheus data over at least {args.lab_age:.0f} s (its needs.lab_age); the lab's data "
            f"covers {have:.0f} s (slo:period_covered:seconds). Come back in {args.lab_age - have:.0f} s.",
            file=sys.stderr,
        )
        return 3
    print(f"Prometheus {ctx.prometheus().where} scrapes the API; its data covers {have:.0f} s.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lessons", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the lessons, their goal, time and needs").set_defaults(func=cmd_list)
    p = sub.add_parser("start", help="set the scene, ask the questions (a terminal), clean up")
    p.add_argument("lesson")
    p.add_argument("ansible_args", nargs=argparse.REMAINDER, help="passed to ansible-playbook (make ARGS)")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("answer", help="answer one question of the running lesson")
    p.add_argument("--lesson", default="")
    p.add_argument("--question", required=True)
    p.add_argument("--answer", required=True)
    p.set_defaults(func=cmd_answer)
    sub.add_parser("end", help="end the running lesson: baseline faults, load stopped").set_defaults(
        func=cmd_end
    )
    sub.add_parser("report", help="write the HTML report of the lessons done").set_defaults(func=cmd_report)
    p = sub.add_parser("plan", help="(roles/lesson) the scene of a lesson as JSON")
    p.add_argument("--lesson", required=True)
    p.add_argument("--platform", required=True)
    p.add_argument("--drills", required=True, help="lab_drills as JSON")
    p.add_argument("--time-scale", type=float, default=1.0)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("check", help="(roles/lesson) the lab is ready for the lesson")
    p.add_argument("--session", required=True)
    p.add_argument("--lab-age", type=float, required=True)
    p.set_defaults(func=cmd_check)
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except (catalog.LessonError, PlanError, SessionError) as err:
        print(f"lesson: {err}", file=sys.stderr)
        return 2
    except SourceError as err:
        print(f"lesson: {err}", file=sys.stderr)
        return 3
    return rc


if __name__ == "__main__":
    sys.exit(main())
