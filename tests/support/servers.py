"""Start the lab's API (gunicorn, real workers) on loopback for tests and benchmarks.

    with start_app(tmp_path, workers=2, env={"APP_DB_FAILURE_RATE": "0"}) as server:
        requests.get(server.url + "/api/users")

The app runs exactly as in production (`gunicorn --config app/gunicorn.conf.py --chdir app
'labapi:create_app()'`), bound to 127.0.0.1 on a free port, with PROMETHEUS_MULTIPROC_DIR under
tmp_path; start_app returns once /health/readiness answers 200.
"""

from __future__ import annotations

import contextlib
import os
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

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "app"
GUNICORN_CONF = APP_DIR / "gunicorn.conf.py"
APP_SPEC = "labapi:create_app()"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_of(url: str, timeout: float) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
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
    _log_file: IO[bytes] | None = field(default=None, repr=False)

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


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def start_app(
    tmp_path: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    port: int | None = None,
    python: str = sys.executable,
    timeout: float = 30.0,
    app_spec: str = APP_SPEC,
    args: Sequence[str] = (),
) -> Server:
    """Start the API under gunicorn on 127.0.0.1 and wait until it is ready.

    `env` adds to / overrides the environment (APP_* settings); `args` are extra gunicorn options
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
    full_env.update(env or {})
    gunicorn = Path(python).parent / "gunicorn"
    cmd = [str(gunicorn), "--config", str(GUNICORN_CONF), "--chdir", str(APP_DIR), *args, app_spec]
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(url=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path, _log_file=log_file)
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
