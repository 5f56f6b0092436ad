"""gunicorn settings for the API, used everywhere (container and host).

    gunicorn --config app/gunicorn.conf.py --chdir app 'labapi:create_app()'

Every value comes from the validated environment (labapi.config): an invalid variable stops
gunicorn before any worker starts, with a message naming it.

- gevent workers: /api/users waits on a simulated query; with gevent each worker serves up to
  APP_WORKER_CONNECTIONS requests concurrently instead of one per thread.
- prometheus_client multiprocess mode: the metrics directory is wiped in on_starting, and a
  dead worker's live gauge files are removed in child_exit.
- Shutdown: at SIGTERM the master first flips readiness to 503 in every worker and keeps
  serving for APP_SHUTDOWN_DRAIN_SECONDS (Kubernetes removes the pod from the Service
  meanwhile), then stops the workers gracefully: they finish in-flight requests within
  APP_GRACEFUL_TIMEOUT.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labapi.config import ConfigError, load_settings
from labapi.lifecycle import shutdown_state

try:
    _settings = load_settings()
except ConfigError as _exc:
    sys.stderr.write(f"labapi: {_exc}\n")
    sys.stderr.flush()
    sys.exit(2)

# Imported here, in the master, on purpose: the workers inherit the module, so prometheus_client's
# value lock is a native lock rather than the gevent lock it would be if the worker imported it
# after gevent's monkey patching. Its critical sections never yield to the gevent hub (an mmap
# write), so a native lock is safe, and it halves the cost of each metric write on the hot path.
# PROMETHEUS_MULTIPROC_DIR is set (validated above), so multiprocess mode is selected.
from prometheus_client import multiprocess

bind = [_settings.bind]
workers = _settings.workers
# gunicorn's gevent worker, bounded against slow and many clients (body read time, keep-alive idle
# time and reuse) and answering the requests gunicorn's parser rejects in JSON: labapi/worker.py.
worker_class = "labapi.worker.LabGeventWorker"
worker_connections = _settings.worker_connections
graceful_timeout = _settings.graceful_timeout
timeout = 30
keepalive = _settings.keepalive_seconds  # idle time of a keep-alive connection, and time to send the headers
accesslog = None
errorlog = "-"
logger_class = "labapi.gunicorn_logging.GunicornLogger"
loglevel = _settings.log_level.lower()
proc_name = "labapi"
# gunicorn >= 25 opens a control socket under $HOME by default: not wanted with a read-only root
# filesystem, and several instances on one host would share it.
control_socket_disable = True
# Worker heartbeat files: on tmpfs when there is one (a disk-backed /tmp can stall the heartbeat).
_SHM = "/dev/shm"  # noqa: S108 - gunicorn's recommended heartbeat location, not a temp file
worker_tmp_dir = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None


def _wipe_metrics_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory: stale files would resurrect old series."""
    _wipe_metrics_dir(_settings.multiproc_dir)
    shutdown_state.reset()
    server.log.info("metrics directory %s wiped", _settings.multiproc_dir)


def when_ready(server: Any) -> None:
    """Replace the master's SIGTERM handling with drain-then-stop."""
    drain = _settings.shutdown_drain_seconds

    def handle_term() -> None:
        shutdown_state.begin_drain()
        server.log.info("SIGTERM: readiness now 503; draining for %ss before stopping the workers", drain)
        deadline = time.monotonic() + drain
        while time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            server.reap_workers()
        server.log.info("drain over: stopping the workers gracefully (up to %ss)", _settings.graceful_timeout)
        raise StopIteration

    server.handle_term = handle_term


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live gauge files so app_active_requests forgets it."""
    multiprocess.mark_process_dead(worker.pid, str(_settings.multiproc_dir))
