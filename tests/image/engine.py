"""The Docker engine the image tests talk to: /usr/bin/docker on the lab's own socket (scripts/image-test.sh).

Only /usr/bin/docker is used (another `docker` client may come first on PATH), only with DOCKER_HOST set to a
unix socket, so the tests never reach an engine that is not the lab's by accident.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import pytest

DOCKER = "/usr/bin/docker"
RUN_BY = "make image-test (scripts/image-test.sh), which installs docker.io, starts the lab's own engine and sets DOCKER_HOST"


@dataclass(frozen=True)
class Engine:
    host: str

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host, **extra}

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input_bytes: bytes | None = None,
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [DOCKER, *args],
            env=self.env(**env),
            capture_output=True,
            timeout=timeout,
            input=input_bytes,
            check=False,
        )
        result = subprocess.CompletedProcess(
            proc.args,
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0


def lab_engine() -> Engine:
    """The engine make image-test started; a clear failure when the tests are run some other way."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        pytest.fail(
            f"DOCKER_HOST is not the lab's engine socket ({host!r}): run the image tests with {RUN_BY}"
        )
    if not os.access(DOCKER, os.X_OK):
        pytest.fail(f"{DOCKER} is missing: run the image tests with {RUN_BY}")
    engine = Engine(host)
    version = engine.run("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
    if version.returncode != 0:
        pytest.fail(f"no Docker engine answers on {host} ({version.stderr.strip()}): run them with {RUN_BY}")
    return engine
