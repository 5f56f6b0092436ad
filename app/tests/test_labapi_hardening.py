"""What a hostile client sends, in-process (Flask test client through the whole WSGI stack):
deeply nested and non-standard JSON, forged log lines, /metrics sub-paths, OPTIONS, an
unhandled exception, a failing readiness check. The gunicorn-level cases (malformed chunked
bodies, slow clients, requests gunicorn's parser rejects, the fuzz run) are in
test_labapi_hostile_server.py."""

from __future__ import annotations

import json
import re

import pytest

ECHO = {"endpoint": "/api/echo", "method": "POST"}


def echo(lab, body: bytes | str):
    return lab.client.post("/api/echo", data=body, content_type="application/json")


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_a_client_error(lab_factory, metric, depth):
    lab = lab_factory(max_body_bytes=1_000_000)
    before_400 = metric("app_request_count_total", {**ECHO, "http_status": "400"})
    before_500 = metric("app_request_count_total", {**ECHO, "http_status": "500"})
    unhandled = metric(
        "app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/echo"}
    )
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = echo(lab, body)
        assert response.status_code == 400
        assert response.mimetype == "application/json"
        assert "nested too deeply" in response.get_json()["message"]
    assert metric("app_request_count_total", {**ECHO, "http_status": "400"}) == before_400 + 2
    assert metric("app_request_count_total", {**ECHO, "http_status": "500"}) == before_500
    assert (
        metric("app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/echo"})
        == unhandled
    )
    assert not [r for r in lab.json_logs() if "exc_info" in r]


@pytest.mark.parametrize(
    "body", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", '{"a": [1, NaN]}', '{"x": 1E+999}']
)
def test_non_standard_numbers_are_rejected(lab, body):
    response = echo(lab, body)
    assert response.status_code == 400
    payload = json.loads(response.get_data(as_text=True))  # strict: the answer itself is JSON
    assert payload["status"] == "error"
    assert "not valid JSON" in payload["message"]


def test_finite_floats_still_echo(lab):
    response = echo(lab, '{"a": 1.5e300, "b": -0.25, "c": 1e-400}')
    assert response.status_code == 200
    assert response.get_json()["data"] == {"a": 1.5e300, "b": -0.25, "c": 0.0}


def test_the_app_never_emits_nan(lab):
    with lab.app.app_context():
        with pytest.raises(ValueError, match="Out of range float"):
            lab.app.json.response({"x": float("nan")})
        with pytest.raises(ValueError, match="Out of range float"):
            lab.app.json.dumps(float("inf"))


def test_an_unhandled_exception_gives_one_json_500_and_one_log_record(lab_factory, metric):
    lab = lab_factory()

    def boom():
        raise KeyError("boom")

    lab.app.add_url_rule("/api/boom", "boom", boom)
    before = metric("app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/boom"})
    response = lab.client.get("/api/boom", headers={"X-Request-ID": "unhandled-1"})
    assert response.status_code == 500
    assert response.get_json() == {
        "status": "error",
        "error": "Internal Server Error",
        "message": "the server failed to handle the request",
    }
    records = lab.json_logs()
    errors = [r for r in records if r["logger"] == "labapi.errors"]
    assert len(errors) == 1, errors
    assert errors[0]["message"] == "Unhandled exception in /api/boom"
    assert "KeyError: 'boom'" in errors[0]["exc_info"]
    tracebacks = [r for r in records if "exc_info" in r]
    assert tracebacks == errors  # one traceback, not a second one from the handler itself
    access = [r for r in lab.access_logs() if r["request_id"] == "unhandled-1"]
    assert [a["status"] for a in access] == [500]
    after = metric("app_error_count_total", {"error_type": "unhandled_exception", "endpoint": "/api/boom"})
    assert after == before + 1


def test_metrics_is_matched_exactly(lab):
    assert lab.client.get("/metrics").status_code == 200
    head = lab.client.head("/metrics")
    assert head.status_code == 200
    assert head.headers["Content-Type"].startswith("text/plain")
    for path in ("/metrics/anything", "/metrics/", "/metricsX"):
        response = lab.client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "application/json"
        assert response.get_json()["status"] == "error"
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = lab.client.open("/metrics", method=method)
        assert response.status_code == 405, method
        assert response.mimetype == "application/json"
        assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD"}
        assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["/api/users", "/api/echo", "/api/error", "/health/readiness", "/metrics"])
def test_options_answers_no_content_with_allow(lab, path):
    response = lab.client.options(path)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    assert "OPTIONS" in response.headers["Allow"]
    assert response.headers["X-Request-ID"]


def test_readiness_says_what_is_wrong_without_the_servers_folders(lab_factory):
    """The app's real metrics directory is moved away (and back): the body names the problem, not the path."""
    lab = lab_factory()
    real = lab.settings.multiproc_dir
    moved = real.rename(real.with_name(real.name + ".moved"))
    try:
        response = lab.client.get("/health/readiness")
    finally:
        moved.rename(real)
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert str(real) not in body
    assert "/" not in json.loads(body)["checks"]["metrics_dir"]
    assert "metrics directory" in json.loads(body)["checks"]["metrics_dir"]
    assert json.loads(body)["failing"] == ["metrics_dir"]
    logged = [r for r in lab.json_logs() if r["logger"] == "labapi.health"]
    assert logged
    assert str(real) in logged[-1]["message"]  # the detail is in the log
    assert lab.client.get("/health/readiness").status_code == 200


FORGED_PATH = "/api/x%0a2026-11-27 10:00:00,000 [CRITICAL] admin login ok%0d%1b[2J%1b]0;owned%07%e2%80%a8"


def test_text_logs_cannot_be_forged(lab_factory):
    lab = lab_factory(log_format="text")
    lab.client.get(FORGED_PATH)
    lab.client.get("/api/users", headers={"X-Request-ID": "ok"})
    raw = lab.log.getvalue()
    lines = lab.log_lines()
    record_start = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[[A-Z]+\] ")
    assert all(record_start.match(line) for line in lines), lines
    assert not any("[CRITICAL]" in line.split("] ", 1)[0] for line in lines)
    assert "\x1b" not in raw
    assert "\r" not in raw
    assert "\x07" not in raw
    assert "\x80" not in raw
    forged = [line for line in lines if "admin login ok" in line]
    assert len(forged) == 1
    assert forged[0].startswith(forged[0][:23] + " [WARNING] GET /api/x\\n2026-11-27 10:00:00,000 [CRITICAL]")
    assert "\\x1b[2J" in forged[0]
    assert "\\x80" in forged[0]  # WSGI paths are latin-1: U+2028 arrives as its bytes, C1 \x80 escaped


def test_json_logs_cannot_be_forged(lab):
    lab.client.get(FORGED_PATH, headers={"X-Request-ID": "forge-1"})
    records = [r for r in lab.json_logs() if r.get("request_id") == "forge-1"]
    assert len(records) == 1
    access = records[0]
    for field in ("message", "path"):
        value = access[field]
        assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", value), (field, value)
        assert "\\n2026-11-27 10:00:00,000 [CRITICAL] admin login ok\\r\\x1b[2J" in value


def test_tracebacks_keep_their_lines_but_cannot_start_a_record(lab_factory):
    lab = lab_factory(log_format="text")

    def boom():
        raise ValueError("bad\n2026-11-27 10:00:00,000 [CRITICAL] admin login ok\x1b[31m")

    lab.app.add_url_rule("/api/boom", "boom", boom)
    lab.client.get("/api/boom")
    lines = lab.log.getvalue().splitlines()
    record_start = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[[A-Z]+\] ")
    for line in lines:
        assert record_start.match(line) or line.startswith("\t"), line
    assert "\x1b" not in lab.log.getvalue()
    assert any(line.startswith("\tValueError: bad") for line in lines)
    assert any(
        line.startswith("\t2026-11-27 10:00:00,000 [CRITICAL] admin login ok\\x1b[31m") for line in lines
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain /api/users", "plain /api/users"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("\x1b[31mred\x07\x00\x7f\x9b", "\\x1b[31mred\\x07\\x00\\x7f\\x9b"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("é ü ✓", "é ü ✓"),
    ],
)
def test_escape_controls(raw, escaped):
    from labapi.logging_setup import escape_controls

    assert escape_controls(raw) == escaped
