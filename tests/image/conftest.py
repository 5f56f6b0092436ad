"""Fixtures of the image tests: the lab's engine, the image built as minikube builds it, and its container run as
the rendered Deployment runs it. Run them with `make image-test` (scripts/image-test.sh); they are deselected from
the plain pytest run (marker `image`, see pyproject.toml).

Figures (build time, image size, time to Ready, drain timing) are collected in FIGURES and printed at the end of
the run (and written to $LAB_IMAGE_TEST_DIR/figures.json).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT
from tests.image.engine import RUN_BY, Engine, lab_engine
from tests.image.pod import PodRun, pod_run
from tests.support.servers import free_port

APP_DIR = ROOT / "app"  # the build context minikube gets (roles/app_image: `minikube image build <repo>/app`)
LABEL = "sre-lab.image-test"
FIGURES: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("image-test figures")
    for key, value in FIGURES.items():
        terminalreporter.write_line(f"{key}: {value}")
    state = os.environ.get("LAB_IMAGE_TEST_DIR")
    if state and Path(state).is_dir():
        (Path(state) / "figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")


@pytest.fixture(scope="session")
def engine() -> Engine:
    return lab_engine()


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    """The local test base (Debian's Python); nothing may be pulled, so it must already be in the engine."""
    base = os.environ.get("LAB_TEST_BASE_IMAGE", "")
    if not base:
        pytest.fail(f"LAB_TEST_BASE_IMAGE is not set: run the image tests with {RUN_BY}")
    if not engine.has_image(base):
        pytest.fail(
            f"the test base image {base} is not in the lab's engine (nothing is ever pulled): run {RUN_BY}"
        )
    return base


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    size_bytes: int
    build_seconds: float


@pytest.fixture(scope="session")
def deployment_image(rendered_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image reference of the rendered Deployment: roles/app_image's content-hash tag, computed by the role."""
    return pod_run(rendered_dir, port=1, config_dir=tmp_path_factory.mktemp("unused")).image


@pytest.fixture(scope="session")
def built_image(engine: Engine, base_image: str, deployment_image: str) -> BuiltImage:
    """app/Dockerfile built as minikube builds it: context app/, tag from the role; the base is the local test
    base (build argument), the legacy builder, host network for pip (the engine has no bridge)."""
    started = time.monotonic()
    build = engine.run(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={base_image}",
        "--tag",
        deployment_image,
        str(APP_DIR),
        timeout=1500,
        DOCKER_BUILDKIT="0",
    )
    seconds = time.monotonic() - started
    state = os.environ.get("LAB_IMAGE_TEST_DIR")
    if state:
        (Path(state) / "build.log").write_text(build.stdout + build.stderr)
    size = int(engine.run("image", "inspect", "--format", "{{.Size}}", deployment_image).stdout.strip())
    FIGURES["image"] = deployment_image
    FIGURES["image size"] = f"{size / 2**20:.0f} MiB ({size} bytes, on the test base)"
    FIGURES["build time"] = (
        f"{seconds:.1f} s ({'cached layers' if 'Using cache' in build.stdout else 'no cache'})"
    )
    # Earlier builds of this lab (other source hashes) are not needed any more: keep the engine's disk bounded.
    repo = deployment_image.rsplit(":", 1)[0]
    for old in engine.run("image", "ls", repo, "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if old != deployment_image:
            engine.run("image", "rm", old, check=False)
    return BuiltImage(deployment_image, size, seconds)


@dataclass
class Running:
    """A container of the image, run from the rendered pod spec."""

    engine: Engine
    name: str
    pod: PodRun
    url: str
    ready_seconds: float
    create_seconds: float = 0.0

    def inspect(self, template: str) -> str:
        return self.engine.run("inspect", "--format", template, self.name).stdout.strip()

    @property
    def pid(self) -> int:
        return int(self.inspect("{{.State.Pid}}"))

    def stdout(self) -> str:
        """The container's stdout only (docker logs keeps the two streams apart)."""
        return self.engine.run("logs", self.name).stdout

    def logs(self) -> str:
        result = self.engine.run("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]


def start_container(
    engine: Engine, image: str, rendered: Path, tmp: Path, *, read_only: bool = True
) -> Running:
    """Run the image as the Deployment runs it and wait for Ready as the kubelet would: the startup probe must
    pass within its budget (periodSeconds x failureThreshold), then the readiness probe. `read_only=False` drops
    only --read-only (to see what the app would write if it could)."""
    pod = pod_run(rendered, port=free_port(), config_dir=tmp / "config")
    if not read_only:
        pod = replace(pod, options=[o for o in pod.options if o != "--read-only"])
    assert pod.image == image
    for path, content in pod.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_text(content)
        path.chmod(0o644)
    name = f"sre-lab-api-{uuid.uuid4().hex[:10]}"
    args = pod.docker_args(name, labels={LABEL: "1"})
    url = f"http://{pod.env['APP_BIND']}"
    created = time.monotonic()
    engine.run(*args, timeout=600)
    running = Running(engine, name, pod, url, 0.0)
    running.create_seconds = time.monotonic() - created
    try:
        running.ready_seconds = _wait_until_ready(running)
    except BaseException:
        engine.run("rm", "--force", name, check=False)
        raise
    return running


def _wait_until_ready(running: Running) -> float:
    """Start the container; poll the startup probe, then readiness; return the seconds from start to Ready."""
    pod, url = running.pod, running.url
    started = time.monotonic()
    running.engine.run("start", running.name)
    startup = pod.probes.get("startup") or pod.probes["liveness"]
    ready = pod.probes["readiness"]
    deadline = started + startup.budget
    phase, last = startup, "no answer yet"
    while True:
        if running.inspect("{{.State.Running}}") != "true":
            pytest.fail(f"the container exited before getting ready; its log:\n{running.logs()}")
        try:
            status = requests.get(url + phase.path, timeout=phase.timeout).status_code
            last = str(status)
        except requests.RequestException as exc:
            status, last = 0, type(exc).__name__
        if status == 200 and phase is ready:
            break
        if status == 200:
            phase = ready
            continue
        if time.monotonic() > deadline:
            pytest.fail(
                f"{phase.path} did not answer 200 within {startup.budget:.0f} s (the startup probe's budget; "
                f"last: {last}); log:\n{running.logs()}"
            )
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def container(
    engine: Engine, built_image: BuiltImage, rendered_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    running = start_container(engine, built_image.ref, rendered_dir, tmp_path_factory.mktemp("pod"))
    startup_budget = (running.pod.probes.get("startup") or running.pod.probes["liveness"]).budget
    FIGURES["time to Ready"] = (
        f"{running.ready_seconds:.1f} s (docker start to readiness 200; startup probe budget {startup_budget:.0f} s; "
        f"docker create before it: {running.create_seconds:.1f} s)"
    )
    try:
        yield running
    finally:
        engine.run("rm", "--force", "--volumes", running.name, check=False)
