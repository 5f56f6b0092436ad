"""Static checks of the image definition (no Docker engine is needed, or available, to run them)."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]
DOCKERFILE = (APP / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n\s*", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [i.split(None, 1)[1] for i in INSTRUCTIONS if i.split(None, 1)[0].upper() == keyword]


def stage_of(index: int) -> str:
    """The stage (FROM ... AS name) that the instruction at `index` belongs to."""
    name = ""
    for instruction in INSTRUCTIONS[: index + 1]:
        if instruction.upper().startswith("FROM "):
            name = instruction.split()[-1]
    return name


def test_base_image_is_a_pinned_python_313_slim_patch_tag():
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert default, "the base image is set once, by ARG PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.13\.\d+-slim(-[a-z]+)?", default.group(1))
    assert instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_final_stage_runs_as_a_numeric_non_root_user():
    users = instructions("USER")
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit()
    assert int(uid) > 0
    assert gid.isdigit()
    assert int(gid) > 0
    index = next(i for i, ins in enumerate(INSTRUCTIONS) if ins.startswith("USER"))
    assert stage_of(index) == "runtime"


def test_final_stage_installs_nothing():
    for index, instruction in enumerate(INSTRUCTIONS):
        if stage_of(index) == "runtime":
            assert not instruction.upper().startswith("RUN"), f"the final stage runs {instruction!r}"
    assert "--only-binary=:all:" in DOCKERFILE  # no compiler needed even in the build stage


def test_command_is_the_contract_and_metrics_dir_is_under_tmp():
    cmd = instructions("CMD")[-1]
    assert cmd.startswith("[")  # exec form: gunicorn is PID 1 and gets SIGTERM
    argv = [a.strip().strip('"') for a in cmd.strip("[]").split(",")]
    assert argv == [
        "gunicorn",
        "--config",
        "/srv/app/gunicorn.conf.py",
        "--chdir",
        "/srv/app",
        "labapi:create_app()",
    ]
    env = " ".join(instructions("ENV"))
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/metrics" in env
    assert "EXPOSE 8000" in INSTRUCTIONS
    # the app's own default is 127.0.0.1:8000: the image must ask for every interface explicitly
    assert "APP_BIND=0.0.0.0:8000" in env


def test_everything_copied_from_the_context_exists_and_is_not_ignored():
    patterns = [
        p.strip() for p in (APP / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            pat = pattern[1:] if negated else pattern
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.rstrip("/") + "*"):
                result = not negated
        return result

    for copy in instructions("COPY"):
        if copy.startswith("--from"):
            continue
        source = shlex.split(copy)[0]
        assert (APP / source).exists(), source
        assert not ignored(source.rstrip("/")), f"{source} is excluded by .dockerignore"
    assert ignored("tests")
    assert ignored("bench")


@pytest.mark.parametrize("name", ["flask", "gunicorn", "gevent", "prometheus-client", "python-json-logger"])
def test_runtime_requirements_are_pinned(name):
    pins = dict(
        line.split("==", 1)
        for line in (APP / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert re.fullmatch(r"\d+(\.\d+)+", pins[name])
