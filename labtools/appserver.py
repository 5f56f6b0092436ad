"""Start the lab's API (gunicorn, real workers) on loopback, for the benchmarks and the tests (tests/support/servers.py
adds the tests' own helpers).

    with start_app(tmp_path, workers=2, faults={"db_failure_rate": 0.5}) as server:
        requests.get(server.url + "/api/users")
        server.set_faults({"db_failure_rate": 0})  # the running workers pick it up (no restart)

The app runs exactly as in production (`gunicorn --config app/gunicorn.conf.py --chdir app
'labapi:create_app()'`), bound to 127.0.0.1 on a free port, with PROMETHEUS_MULTIPROC_DIR under
tmp_path and the fault document (APP_FAULTS_FILE) at tmp_path/faults.yaml; start_app returns once
/health/readiness answers 200.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

import yaml

ROOT = Path(__file__).resolve().parents[1]
APP_DIR = ROOT / "app"
GUNICORN_CONF = APP_DIR / "gunicorn.conf.py"
APP_SPEC = "labapi:create_app()"


# Ports handed out by free_port() in this process: a port may be used minutes after it was chosen (a site.yml run).
_GIVEN: set[int] = set()


def default_local_ports() -> dict[str, int]:
    """The local platform's default ports (group_vars/all/local.yml), which the documented commands use."""
    return dict(yaml.safe_load((ROOT / "group_vars" / "all" / "local.yml").read_text())["lab_local_ports"])


def molecule_ports() -> dict[str, int]:
    """The ports of molecule/default's lab (its vars/lab.yml)."""
    return dict(
        yaml.safe_load((ROOT / "molecule" / "default" / "vars" / "lab.yml").read_text())["lab_local_ports"]
    )


# Never handed out by free_port(): the verbatim-commands test (tests/e2e/test_documented_commands.py) runs a lab on
# the default ports, and tests/e2e/test_molecule.py runs molecule's lab on its own, while other modules run on the
# other pytest-xdist workers.
_RESERVED = frozenset(default_local_ports().values()) | frozenset(molecule_ports().values())


def _port_range() -> range:
    """This process's share of the ports below the kernel's ephemeral range.

    The kernel hands out ports for bind(("127.0.0.1", 0)) and outgoing connections from the ephemeral range only, so
    a port chosen below it stays free until the test listens on it, even when that is minutes later (a local lab's
    ports during its site.yml run). Each pytest-xdist worker gets its own slice, so two workers never pick the same
    port (PYTEST_XDIST_WORKER=gwN of PYTEST_XDIST_WORKER_COUNT; one slice, the whole range, without xdist).
    """
    low = 10000
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    start = 10000 if low > 12000 else 1024
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker) if worker.isdigit() else 0
    size = (low - start) // max(count, 1)
    return range(start + index * size, start + (index + 1) * size)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, from this worker's own range (_port_range), never
    the same one twice in a process."""
    ports = _port_range()
    for _ in range(200):
        port = random.choice(ports)
        if port in _GIVEN or port in _RESERVED:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone listens (or is connected) there
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {ports}")


def _status_of(url: str, timeout: float) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a loopback http:// URL
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"


def wait_for_http(url: str, *, timeout: float = 30.0, status: int = 200) -> None:
    """Poll `url` until it answers `status`; raise TimeoutError saying what it answered last."""
    deadline = time.monotonic() + timeout
    last: int | str = "no attempt"
    while time.monotonic() < deadline:
        last = _status_of(url, timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        if last == status:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer HTTP {status} within {timeout:.0f}s (last: {last})")


@dataclass
class Server:
    """A running gunicorn master; its workers are its children."""

    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    faults_path: Path | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def set_faults(self, document: object) -> None:
        """Replace the fault document atomically (temp file + rename), as the lab's Ansible does."""
        if self.faults_path is None:
            raise RuntimeError("this server was started without a fault document (start_app(faults=...))")
        write_faults(self.faults_path, document)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the master, wait for it to exit (SIGKILL on timeout); return its exit code."""
        try:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(self.proc)
                    self.proc.wait(timeout=10)
            return int(self.proc.returncode)
        finally:
            _kill_group(self.proc)  # stray workers, if the master died abruptly
            if self._log_file is not None:
                self._log_file.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def worker_pids(master: int) -> set[int]:
    """The PIDs of `master`'s children (gunicorn's workers), from /proc."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            pids.add(int(entry.name))
    return pids


def write_faults(path: Path, document: object) -> None:
    """Write a fault document (a mapping as JSON, or raw text) atomically: temp file + rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(document if isinstance(document, str) else json.dumps(document))
    temporary.replace(path)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def start_app(
    tmp_path: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    faults: object | None = None,
    port: int | None = None,
    python: str = sys.executable,
    timeout: float = 30.0,
    app_spec: str = APP_SPEC,
    args: Sequence[str] = (),
) -> Server:
    """Start the API under gunicorn on 127.0.0.1 and wait until it is ready.

    `env` adds to / overrides the environment (APP_* settings); `faults` (a mapping, or raw text)
    is written as the fault document tmp_path/faults.yaml, watched at APP_FAULTS_POLL_SECONDS=0.2 unless
    `env` says otherwise (without `faults` there is no document: no faults); `args` are extra gunicorn options
    (they override the config file); `app_spec` serves another WSGI app with the same settings
    (it must answer /health/readiness). The process runs in its own
    process group, so stop() can clean up its workers too. Raises RuntimeError with the log
    if it exits or does not get ready within `timeout`.
    """
    port = port or free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)
    metrics_dir = tmp_path / "prometheus-multiproc"
    log_path = tmp_path / f"gunicorn-{port}.log"
    full_env = dict(os.environ)
    full_env.update(
        {
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "APP_BIND": f"127.0.0.1:{port}",
            "APP_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
    )
    faults_path = None
    if faults is not None:
        faults_path = tmp_path / "faults.yaml"
        write_faults(faults_path, faults)
        full_env.update({"APP_FAULTS_FILE": str(faults_path), "APP_FAULTS_POLL_SECONDS": "0.2"})
    full_env.update(env or {})
    gunicorn = Path(python).parent / "gunicorn"
    cmd = [str(gunicorn), "--config", str(GUNICORN_CONF), "--chdir", str(APP_DIR), *args, app_spec]
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(
        url=f"http://127.0.0.1:{port}",
        proc=proc,
        log_path=log_path,
        faults_path=faults_path,
        _log_file=log_file,
    )
    deadline = time.monotonic() + timeout
    last: int | str = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(
                f"gunicorn exited with code {proc.returncode} before getting ready; log:\n{server.log_text()}"
            )
        last = _status_of(server.url + "/health/readiness", timeout=2.0)
        if last == 200:
            return server
        time.sleep(0.1)
    server.stop(signal.SIGKILL, timeout=5)
    raise RuntimeError(f"gunicorn not ready within {timeout:.0f}s (last: {last}); log:\n{server.log_text()}")
