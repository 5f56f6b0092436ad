"""roles/app_deploy/files/prober.py, the local platform's kubelet probes, against a real HTTP server.

The prober runs as supervisord runs it (a process with --base-url and --probe arguments); the server counts the
probes it gets and answers what the test says. Periods are fractions of a second so a test takes seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PROBER = Path(__file__).resolve().parents[1] / "roles" / "app_deploy" / "files" / "prober.py"


class Api:
    """A server whose /health/readiness answers `ready_status`; it counts every probe by path."""

    def __init__(self) -> None:
        self.ready_status = 200
        self.hits: Counter[str] = Counter()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.hits[self.path] += 1
                status = api.ready_status if self.path == "/health/readiness" else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.server.shutdown()


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PROBER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, list[dict]]:
    """SIGTERM, as supervisord stops it; the exit code and the JSON lines it logged."""
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=10)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    return proc.returncode, lines


def test_probes_arrive_on_each_probes_schedule(api: Api) -> None:
    proc = start(
        "--base-url", api.url,
        "--probe", "liveness=/health/liveness,0.4,1,3",
        "--probe", "readiness=/health/readiness,0.2,1,2",
    )  # fmt: skip
    time.sleep(3.0)
    code, lines = stop(proc)
    assert code == 0
    # 3 s at 0.2 s and 0.4 s periods (the first probe at once): about 15 and 8; a busy machine may lose a few.
    assert 11 <= api.hits["/health/readiness"] <= 16, api.hits
    assert 6 <= api.hits["/health/liveness"] <= 8, api.hits
    assert set(api.hits) == {"/health/readiness", "/health/liveness"}
    states = [(line["probe"], line["state"]) for line in lines if "state" in line]
    assert sorted(states) == [("liveness", "ok"), ("readiness", "ok")], lines  # first results only: no change


def test_a_failing_readiness_is_failed_after_the_threshold_and_ok_after_one_success(api: Api) -> None:
    proc = start("--base-url", api.url, "--probe", "readiness=/health/readiness,0.1,1,3")
    time.sleep(0.5)
    api.ready_status = 503
    time.sleep(1.0)
    api.ready_status = 200
    time.sleep(0.5)
    _code, lines = stop(proc)
    changes = [line for line in lines if "state" in line]
    assert [c["state"] for c in changes] == ["ok", "failed", "ok"], changes
    failed = changes[1]
    assert failed["failures"] == 3  # the threshold, not the first 503
    assert failed["got"] == "HTTP 503"
    assert failed["path"] == "/health/readiness"
    assert (failed["level"], failed["logger"]) == ("INFO", "prober")  # the API's log fields
    assert failed["message"] == "readiness probe failed (HTTP 503)"
    assert failed["timestamp"].endswith("+00:00")


def test_an_api_that_is_down_fails_the_probe_and_the_prober_keeps_running(api: Api) -> None:
    url = api.url
    api.server.shutdown()
    api.server.server_close()
    proc = start("--base-url", url, "--probe", "readiness=/health/readiness,0.1,1,2")
    time.sleep(1.0)
    assert proc.poll() is None, "the prober must outlive a refused connection"
    _code, lines = stop(proc)
    changes = [line for line in lines if "state" in line]
    assert [c["state"] for c in changes] == ["pending", "failed"], changes
    assert "ConnectionRefusedError" in changes[-1]["got"] or "URLError" in changes[-1]["got"]


@pytest.mark.parametrize(
    "probe",
    [
        "readiness",
        "readiness=/health/readiness,5,2",
        "readiness=health,5,2,2",
        "readiness=/h,0,2,2",
        "r=/h,5,2,0",
    ],
)
def test_a_bad_probe_argument_exits_2_and_says_the_format(probe: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(PROBER), "--base-url", "http://127.0.0.1:9", "--probe", probe],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--probe" in proc.stderr, proc.stderr
    assert repr(probe) in proc.stderr, proc.stderr
