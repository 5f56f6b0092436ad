"""The API image, built from app/ exactly as roles/app_image has minikube build it (tests/image/conftest.py)."""

from __future__ import annotations

import re

import pytest

from tests.image.conftest import LABEL, BuiltImage
from tests.image.engine import Engine

# The first test also waits for the session fixtures: render, and a cold build (minutes on a busy machine).
pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

# What a build toolchain or an installer would leave in the image.
COMPILERS = re.compile(
    r"(^|/)(s?bin)/((x86_64|aarch64)-linux-gnu-)?(gcc|g\+\+|cc|c\+\+|cpp|clang|clang\+\+|as|ld|make)(-\d+)?$"
)
PIP = re.compile(r"(^|/)(bin/pip[0-9.]*$|site-packages/pip/|dist-packages/pip/)")


def test_the_image_carries_the_tag_the_deployment_runs(
    engine: Engine, built_image: BuiltImage, deployment_image: str
):
    # The role's content hash names the image; the Deployment (rendered by the same role) runs exactly that tag.
    assert re.fullmatch(r"[a-z0-9-]+:src-[0-9a-f]{12}", deployment_image), deployment_image
    assert engine.has_image(deployment_image)
    config = engine.run(
        "image", "inspect", "--format", "{{json .Config.User}} {{json .Config.Cmd}}", built_image.ref
    )
    user, cmd = config.stdout.split(" ", 1)
    assert user.strip('"') == "10001:10001"
    assert cmd.strip().startswith('["gunicorn"')


# Run inside the image (one container: with the vfs driver each container copies the image's filesystem).
LIST_FILES = """
import importlib.util, os, shutil
for top, dirs, files in os.walk("/"):
    if top == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
    for name in files:
        print(os.path.join(top, name).lstrip("/"))
print("#", importlib.util.find_spec("pip"), shutil.which("pip"), shutil.which("cc"))
"""


def test_the_final_image_has_no_compiler_and_no_pip(engine: Engine, built_image: BuiltImage):
    listing = engine.run(
        "run", "--rm", "--pull", "never", "--network", "none", "--label", f"{LABEL}=1", built_image.ref,
        "python", "-c", LIST_FILES, timeout=600,
    ).stdout.splitlines()  # fmt: skip
    names = [line for line in listing if not line.startswith("# ")]
    assert any(name.startswith("opt/venv/bin/gunicorn") for name in names), "not the app's image"
    assert [n for n in names if COMPILERS.search(n)] == []
    assert [n for n in names if PIP.search(n)] == []
    # And the interpreter agrees: pip is not importable, and no pip or cc is on the image's PATH.
    assert listing[-1].split() == ["#", "None", "None", "None"]
