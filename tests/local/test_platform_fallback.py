"""`make lab` with the default settings (lab_platform auto) on a machine where no Minikube driver answers runs the
local platform, with a banner at the start and in the summary; Minikube stays the choice where a driver answers,
and an explicit -e lab_platform=minikube never falls back (issue 9, item 6).

"No driver answers" is made certain on any machine: DOCKER_HOST points the docker client at a socket nobody
listens on (and a machine without docker fails the probe the same way). The full local bring-up through the
fallback runs in tests/local/test_local_optional.py (it sets no lab_platform); here the runs stop after a preflight,
so they start nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, ansible_env
from tests.support.servers import free_local_ports

BANNER = "LOCAL PLATFORM INSTEAD OF MINIKUBE: no Minikube driver answers here (`docker version` failed:"


def run(tmp_path: Path, playbook: str, *args: str, path_prefix: Path | None = None) -> tuple[int, str]:
    ports = free_local_ports()
    env = ansible_env()
    env["HOME"] = str(tmp_path)
    env.pop("KUBECONFIG", None)
    env["ANSIBLE_NOCOLOR"] = "1"
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker-engine.sock"
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}:{env['PATH']}"
    extra = {"lab_dir": str(tmp_path / "lab"), "lab_local_ports": ports}
    cmd = [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / playbook), "-e", json.dumps(extra), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    # The YAML callback folds messages over lines and doubles single quotes inside quoted scalars.
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split()).replace("''", "'")


def test_no_driver_runs_the_local_platform_with_a_banner(tmp_path: Path) -> None:
    rc, text = run(tmp_path, "site.yml", "--tags", "monitoring_preflight,lab_summary")
    assert rc == 0, text[-4000:]
    # The banner comes first (before any role), then the local platform's preflight, then the summary repeats it.
    start = text.index(BANNER)
    local_preflight = text.index("monitoring : Check the local monitoring settings")
    summary = text.index("Local lab (lab_platform=local)")
    assert start < local_preflight < summary
    assert text.count(BANNER) == 2, "the banner belongs at the start and in the summary"
    assert "Cannot connect to the Docker daemon" in text
    assert (
        "For the Kubernetes lab on Minikube install and start docker (Docker Engine or Docker Desktop)"
        in text
    )
    assert "minikube, kubectl and helm (or set minikube_reset_install_tools: true)" in text
    # The platform dispatcher (lab_shared) includes each role's tasks/<dir>/preflight.yml by role: the task names say
    # which ran (the local one's first check is asserted above).
    assert "minikube_reset : Check the Minikube settings" not in text, (
        "the minikube platform's preflight must not run"
    )
    assert "Run the preflight checks of monitoring" in text
    assert "changed=0" in text
    assert not (tmp_path / "lab" / "supervisor").exists(), "a preflight-only run starts nothing"


def test_teardown_follows_the_same_choice(tmp_path: Path) -> None:
    rc, text = run(tmp_path, "teardown.yml")
    assert rc == 0, text[-4000:]
    assert BANNER in text
    assert "No cluster answers" not in text, "teardown must not look for a cluster when the lab ran locally"


@pytest.fixture
def answering_docker(tmp_path: Path) -> Path:
    """A `docker` on PATH that answers `docker version` like an engine: a stand-in for a driver that runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text('#!/bin/sh\n[ "$1" = version ] && echo 27.5.1 && exit 0\nexit 1\n')
    fake.chmod(0o755)
    return bin_dir


def test_a_driver_that_answers_keeps_minikube(tmp_path: Path, answering_docker: Path) -> None:
    rc, text = run(tmp_path, "site.yml", path_prefix=answering_docker)
    assert "LOCAL PLATFORM INSTEAD OF MINIKUBE" not in text
    # Minikube was chosen: its preflight runs and says what is missing (minikube itself, on this machine).
    assert rc != 0, text[-4000:]
    assert "The minikube platform cannot start here." in text
    assert "the docker engine does not answer" not in text


def test_explicit_minikube_never_falls_back(tmp_path: Path) -> None:
    rc, text = run(tmp_path, "site.yml", "-e", "lab_platform=minikube")
    assert rc != 0, text[-4000:]
    assert "LOCAL PLATFORM INSTEAD OF MINIKUBE" not in text
    assert "The minikube platform cannot start here." in text
    assert "the docker engine does not answer" in text
    assert "make lab ARGS='-e lab_platform=local'" in text


def test_auto_as_an_extra_variable_is_refused(tmp_path: Path) -> None:
    rc, text = run(tmp_path, "site.yml", "-e", "lab_platform=auto")
    assert rc != 0
    assert "lab_platform must be minikube, kubernetes or local (got 'auto')" in text
