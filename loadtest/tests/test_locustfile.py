"""The locustfile: traffic mix per profile, the shape it feeds Locust, and how responses are judged.

Locust monkey-patches the process with gevent on import, so every test here runs the locustfile in a
subprocess (locust_probe.py). The last tests run the real ApiUser with Locust's local runner against a small
stdlib server that follows the API contract (one variant answers 503 on /api/users): expected errors pass,
unexpected ones count as failures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtest.tests.jsonhttp import JsonHandler

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "LAB_SHAPE": "steady",
    "LAB_USERS": "4",
    "LAB_SPAWN_RATE": "4",
    "LAB_DURATION": "30",
    "LAB_WAIT_MIN": "0",
    "LAB_WAIT_MAX": "0.01",
}


def probe(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "loadtest.tests.locust_probe", *args],
        cwd=ROOT,
        env={**os.environ, **SETTINGS, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def describe(**env: str) -> dict:
    return json.loads(probe("describe", **env).stdout)


def test_normal_profile_mix_has_no_error_endpoint() -> None:
    names = describe(LAB_PROFILE="normal")["tasks"]
    assert set(names) == {"users", "echo", "health"}
    assert names.count("users") > names.count("echo") > names.count("health")


def test_errors_profile_adds_deliberate_errors() -> None:
    names = describe(LAB_PROFILE="errors")["tasks"]
    assert "deliberate_error" in names
    assert names.count("users") > names.count("deliberate_error")


def test_unknown_profile_or_bad_shape_stops_before_any_load() -> None:
    proc = probe("describe", check=False, LAB_PROFILE="chaos")
    assert proc.returncode != 0
    assert "unknown LAB_PROFILE 'chaos'" in proc.stderr
    proc = probe("describe", check=False, LAB_USERS="x")
    assert proc.returncode != 0
    assert "bad load settings: users (stress_test_users)" in proc.stderr


def test_lab_shape_feeds_locust_run_time_to_the_chosen_shape() -> None:
    out = describe(
        LAB_SHAPE="step", LAB_USERS="30", LAB_STEP_USERS="10", LAB_STEP_SECONDS="5", LAB_DURATION="20"
    )
    assert out["first_tick"] == [10, 4.0]
    assert out["tick_after_duration"] is None


def test_echo_payloads_vary_and_stay_under_the_body_limit() -> None:
    out = describe()
    assert out["payload_kinds"] == ["dict", "list"]
    sizes = out["payload_sizes"]
    assert min(sizes) < 100
    assert 1000 < max(sizes) < 65536  # APP_MAX_BODY_BYTES
    assert out["distinct_payloads"] > 150


class ContractHandler(JsonHandler):
    users_status = 200

    def do_GET(self) -> None:
        if self.path == "/api/users":
            if self.users_status == 200:
                self.send_json(200, [{"id": 101, "name": "John Doe"}])
            else:
                self.send_json(self.users_status, {"status": "error", "error": "Service Unavailable"})
        elif self.path.startswith("/health/"):
            self.send_json(200, {"status": "ok"})
        elif self.path == "/api/error?type=client":
            self.send_json(400, {"status": "error", "error": "Bad Request"})
        elif self.path == "/api/error":
            self.send_json(500, {"status": "error", "error": "Internal Server Error"})
        else:
            self.send_json(404, {"status": "error", "error": "Not Found"})

    def do_POST(self) -> None:
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_json(200, {"status": "success", "data": data})


@pytest.fixture
def fake_api(request) -> Iterator[str]:
    handler = type("Handler", (ContractHandler,), {"users_status": getattr(request, "param", 200)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_users(host: str, **env: str) -> dict:
    return json.loads(probe("run", host, "2", **env).stdout)


def test_errors_profile_counts_deliberate_errors_as_expected(fake_api) -> None:
    out = run_users(fake_api, LAB_PROFILE="errors")
    entries = out["entries"]
    assert entries["GET /api/users"]["requests"] > 0
    assert entries["POST /api/echo"]["requests"] > 0
    assert entries["GET /api/error"]["requests"] + entries["GET /api/error?type=client"]["requests"] > 0
    assert out["failures"] == 0, out["errors"]


@pytest.mark.parametrize("fake_api", [503], indirect=True)
def test_unexpected_errors_count_as_failures(fake_api) -> None:
    out = run_users(fake_api, LAB_PROFILE="normal")
    users = out["entries"]["GET /api/users"]
    assert users["requests"] > 0
    assert users["failures"] == users["requests"]
    assert out["entries"]["POST /api/echo"]["failures"] == 0
    assert any("answered 503, expected 200" in e for e in out["errors"])
