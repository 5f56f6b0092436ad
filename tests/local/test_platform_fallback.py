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
    assert "minikube, kubectl and helm (or set lab_install_tools: true)" in text
    # Each role's tasks/main.yml includes its own tasks/<lab_platform_family>/preflight.yml: the task names say which
    # ran (the local one's first check is asserted above).
    assert "minikube_reset : Check the Minikube settings" not in text, (
        "the minikube platform's preflight must not run"
    )
    assert "monitoring : Check what the monitoring stack needs on platform local" in text
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


# Issue 19, items 1 and 10: drill.yml and faults.yml did not resolve auto (the drill failed with "unknown platform
# 'auto'", faults went down the Kubernetes path with empty connection defaults). Every playbook starts with
# playbooks/prelude.yml now: the same choice and banner, then that platform's own path (here: a local lab that is not
# up, so each stops at its first check of it, and says `make lab`).
NOT_UP = {
    "drill.yml": ("-e", "drill=db-outage"),
    "faults.yml": ("-e", '{"faults": {"db_failure_rate": 0.5}}'),
    "stress.yml": (),
}


@pytest.mark.parametrize("playbook", list(NOT_UP), ids=[name.removesuffix(".yml") for name in NOT_UP])
def test_every_playbook_follows_the_same_choice(tmp_path: Path, playbook: str) -> None:
    rc, text = run(tmp_path, playbook, *NOT_UP[playbook])
    assert rc != 0, text[-4000:]
    assert text.count(BANNER) == 1, text[-4000:]
    assert "unknown platform 'auto'" not in text
    assert "Could not create API client" not in text, "took the Kubernetes path"
    assert "kubernetes.core" not in text
    assert "is not reachable at http://127.0.0.1:" in text, text[-3000:]
    assert "is the lab up? Run `make lab`" in text, text[-3000:]


def test_render_resolves_auto_without_probing(tmp_path: Path) -> None:
    rc, text = run(
        tmp_path, "render.yml", "-e", f"lab_render_dir={tmp_path}/rendered", "--tags", "never-a-tag"
    )
    assert rc == 0, text[-4000:]
    assert "LOCAL PLATFORM INSTEAD OF MINIKUBE" not in text
    assert "Probe the Minikube driver's engine (lab_platform auto)" in text  # the task is listed, and skipped
    assert "Every Kubernetes call of this run uses context 'sre-lab'" in text, (
        "auto renders the Minikube path"
    )


def test_every_playbook_starts_with_the_prelude() -> None:
    """One place resolves lab_platform and checks the settings: the first play of every playbook (issue 19, item 1)."""
    import yaml

    playbooks = sorted((ROOT / "playbooks").glob("*.yml"))
    assert {p.name for p in playbooks} >= {
        "site.yml",
        "stress.yml",
        "drill.yml",
        "faults.yml",
        "teardown.yml",
    }
    for path in playbooks:
        if path.name == "prelude.yml":
            continue
        plays = yaml.safe_load(path.read_text())
        imports = [
            i for i, play in enumerate(plays) if play.get("ansible.builtin.import_playbook") == "prelude.yml"
        ]
        assert imports, f"{path.name} does not import prelude.yml"
        # Only a check of Python packages may come before it (stress, drill): nothing that reads a setting.
        assert all("python_packages" in str(play) for play in plays[: imports[0]]), path.name
        for play in plays[imports[0] + 1 :]:
            assert play.get("module_defaults") == {
                "group/kubernetes.core.k8s": "{{ lab_k8s_auth }}",
                "group/kubernetes.core.helm": "{{ lab_k8s_auth }}",
            }, f"{path.name}: {play.get('name')} has other connection defaults"
            assert "import_tasks: tasks/platform.yml" not in yaml.safe_dump(play), path.name
