"""Every route and error path, through the real WSGI stack (Flask test client)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from labapi import extensions

USERS = [
    {"id": 101, "name": "John Doe", "email": "john@example.com"},
    {"id": 102, "name": "Jane Smith", "email": "jane@example.com"},
]


def assert_json_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == "error"
    for word in words:
        assert word in body["message"]
    return body


def test_users_returns_the_sample_users(lab):
    response = lab.client.get("/api/users")
    assert response.status_code == 200
    assert response.get_json() == USERS


def test_users_retries_a_failed_query(lab_factory):
    lab = lab_factory(faults={"db_failure_rate": 0.5}, db_retries=1)
    database = extensions.database(lab.app)
    outcomes = iter([False, True])  # first attempt fails, the retry succeeds
    database._attempt = lambda: next(outcomes)
    response = lab.client.get("/api/users")
    assert response.status_code == 200
    assert response.get_json() == USERS
    errors = [r for r in lab.json_logs() if r.get("message") == "Database connection timeout occurred"]
    assert len(errors) == 1
    assert errors[0]["level"] == "ERROR"


def test_users_gives_a_json_503_when_every_attempt_fails(lab_factory):
    lab = lab_factory(faults={"db_failure_rate": 1.0}, db_retries=2)
    response = lab.client.get("/api/users")
    assert_json_error(response, 503, "database")
    errors = [r for r in lab.json_logs() if r.get("message") == "Database connection timeout occurred"]
    assert [e["attempt"] for e in errors] == [1, 2, 3]


def test_users_availability_with_the_baseline_failure_rate_meets_the_slo(lab_factory):
    lab = lab_factory(faults={"db_failure_rate": 0.05}, db_retries=1, access_log_sample_rate=0.0)
    statuses = [lab.client.get("/api/users").status_code for _ in range(2000)]
    failures = sum(status != 200 for status in statuses)
    # each attempt fails 5% of the time, so ~0.25% of requests fail: well inside a 99.5% SLO
    assert failures / len(statuses) < 0.005
    assert set(statuses) <= {200, 503}


def test_extra_latency_fault_delays_api_requests(lab_factory):
    lab = lab_factory(faults={"extra_latency_ms": 60})
    response = lab.client.get("/api/error?type=client")
    assert response.status_code == 400
    access = lab.access_logs()[-1]
    assert access["duration_ms"] >= 60


@pytest.mark.parametrize("payload", [{"a": 1, "nested": [1, 2, {"b": None}]}, [1, 2, 3], "text", 0, None])
def test_echo_returns_the_json_it_received(lab, payload):
    response = lab.client.post("/api/echo", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    assert response.get_json() == {"status": "success", "data": payload}


def test_echo_accepts_a_charset_parameter(lab):
    response = lab.client.post("/api/echo", data='{"x": "é"}', content_type="application/json; charset=utf-8")
    assert response.get_json() == {"status": "success", "data": {"x": "é"}}


@pytest.mark.parametrize(
    ("data", "content_type", "why"),
    [
        ('{"a": 1}', "text/plain", "Content-Type"),
        ('{"a": 1}', None, "no Content-Type"),
        ("", "application/json", "empty"),
        ("   ", "application/json", "empty"),
        ("{not json", "application/json", "not valid JSON"),
        (b"\xff\xfe", "application/json", "not valid JSON"),
    ],
)
def test_echo_rejects_bad_bodies_with_a_json_400_saying_why(lab, data, content_type, why):
    kwargs = {"data": data}
    if content_type:
        kwargs["content_type"] = content_type
    assert_json_error(lab.client.post("/api/echo", **kwargs), 400, why)


def test_echo_rejects_an_oversized_body_with_a_json_413(lab_factory):
    lab = lab_factory(max_body_bytes=100)
    ok = lab.client.post("/api/echo", data=json.dumps({"k": "v" * 80}), content_type="application/json")
    assert ok.status_code == 200
    too_big = lab.client.post("/api/echo", data=json.dumps({"k": "v" * 200}), content_type="application/json")
    assert_json_error(too_big, 413, "100 bytes")


def test_error_endpoint_server_and_client(lab):
    assert_json_error(lab.client.get("/api/error"), 500, "simulated server error")
    assert_json_error(lab.client.get("/api/error?type=server"), 500)
    assert_json_error(lab.client.get("/api/error?type=client"), 400, "client")


def test_liveness(lab):
    response = lab.client.get("/health/liveness")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}


def test_readiness_ready(lab):
    response = lab.client.get("/health/readiness")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}


def test_readiness_forced_down(lab_factory):
    response = lab_factory(faults={"force_unready": True}).client.get("/health/readiness")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["forced"]


def test_readiness_names_the_database_when_it_is_down(lab_factory):
    response = lab_factory(faults={"db_failure_rate": 1.0}).client.get("/health/readiness")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["database"]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Make a real directory unwritable, also for root: chattr +i (immutable: access(2) says EPERM to anyone)
    as root, chmod 0500 otherwise; undone on exit."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        assert chattr, "chattr is missing: install e2fsprogs (apt-get install e2fsprogs)"
        subprocess.run([chattr, "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(mode)


def test_check_multiproc_dir(tmp_path):
    from labapi.metrics import check_multiproc_dir

    assert check_multiproc_dir(tmp_path) is None
    assert "not a directory" in check_multiproc_dir(tmp_path / "missing")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    with locked(read_only):
        assert "not writable" in check_multiproc_dir(read_only)
    assert check_multiproc_dir(read_only) is None


def test_readiness_fails_while_the_real_metrics_dir_is_locked(lab):
    """The app's own PROMETHEUS_MULTIPROC_DIR, made unwritable for real: unready, then ready again."""
    assert lab.client.get("/health/readiness").status_code == 200
    with locked(lab.settings.multiproc_dir):
        response = lab.client.get("/health/readiness")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["metrics_dir"]
    assert lab.client.get("/health/readiness").status_code == 200


def test_readiness_is_503_while_draining(lab):
    from labapi.lifecycle import shutdown_state

    shutdown_state.begin_drain()
    try:
        response = lab.client.get("/health/readiness")
        assert response.status_code == 503
        assert response.get_json()["failing"] == ["shutdown"]
        assert lab.client.get("/api/users").status_code == 200  # still serving while draining
        assert lab.client.get("/health/liveness").status_code == 200
    finally:
        shutdown_state.reset()


def test_unknown_path_is_a_json_404(lab):
    body = assert_json_error(lab.client.get("/nope/nothing"), 404)
    assert body["error"] == "Not Found"


@pytest.mark.parametrize(
    ("method", "path"), [("post", "/api/users"), ("get", "/api/echo"), ("delete", "/api/error")]
)
def test_wrong_method_is_a_json_405_with_allow(lab, method, path):
    response = getattr(lab.client, method)(path)
    assert_json_error(response, 405)
    assert response.headers["Allow"]


def test_unhandled_exception_is_a_json_500(lab_factory, metric):
    lab = lab_factory()

    @lab.app.get("/api/boom")
    def boom():
        raise RuntimeError("kaboom")

    before = metric("app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/boom"})
    response = lab.client.get("/api/boom")
    assert_json_error(response, 500)
    assert "kaboom" not in response.get_data(as_text=True)  # no internals leak to the client
    after = metric("app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/boom"})
    assert after == before + 1
    logged = [r for r in lab.json_logs() if r.get("logger") == "labapi.errors"]
    assert "kaboom" in logged[-1]["exc_info"]


def test_no_html_anywhere(lab):
    for response in (
        lab.client.get("/"),
        lab.client.get("/api"),
        lab.client.put("/health/liveness"),
        lab.client.get("/api/users/1"),
    ):
        assert response.mimetype == "application/json", response.get_data(as_text=True)


def test_users_body_is_byte_for_byte_what_jsonify_gives(lab):
    from flask import jsonify

    response = lab.client.get("/api/users")
    with lab.app.app_context():
        expected = jsonify(USERS)
    assert response.get_data() == expected.get_data()
    assert response.headers["Content-Type"] == expected.headers["Content-Type"]
    assert response.headers["Content-Length"] == expected.headers["Content-Length"]


def test_users_query_waits_and_fails_through_the_route(lab_factory):
    lab = lab_factory(faults={"db_failure_rate": 1.0}, db_retries=0)
    database = extensions.database(lab.app)
    slept: list[float] = []
    database.sleep = slept.append
    assert lab.client.get("/api/users").status_code == 503
    assert len(slept) == 1
