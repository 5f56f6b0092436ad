"""Fixtures shared by the suites under tests/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """Environment for running the project's playbooks from the tests."""
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return env


def run_playbook(playbook: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run playbooks/<playbook> with the project's ansible.cfg and inventory."""
    cmd = [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / playbook), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Everything playbooks/render.yml writes (Kubernetes platform), rendered once per run (read it, never write it).

    Under pytest-xdist the workers share one rendering: the first that needs it renders it under a file lock into
    the run's common temporary directory, the others wait for it and read the same files."""
    if worker_id == "master":  # not under xdist (-n 0)
        out = tmp_path_factory.mktemp("rendered")
        run_playbook("render.yml", "-e", f"lab_render_dir={out}", "-e", "lab_platform=minikube")
        return out
    shared = tmp_path_factory.getbasetemp().parent  # pytest-N/, above every worker's popen-gwK/
    out = shared / "rendered"
    with FileLock(shared / "rendered.lock"):
        if not (shared / "rendered.done").exists():
            shutil.rmtree(out, ignore_errors=True)  # a worker that failed half-way
            run_playbook("render.yml", "-e", f"lab_render_dir={out}", "-e", "lab_platform=minikube")
            (shared / "rendered.done").touch()
    return out
