"""Log lines: JSON fields, the text format, X-Request-ID propagation, access-line sampling."""

from __future__ import annotations

import random
import re

from labapi.observability import AccessLog
from labapi.request_id import MAX_LENGTH, accept_request_id


def test_json_lines_have_the_standard_fields(lab):
    lab.client.get("/api/users", headers={"X-Request-ID": "req-123"})
    records = lab.json_logs()
    assert records, "no log line"
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record)
    access = lab.access_logs()[-1]
    assert access["level"] == "INFO"
    assert access["method"] == "GET"
    assert access["endpoint"] == "/api/users"
    assert access["path"] == "/api/users"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)
    assert access["request_id"] == "req-123"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", access["timestamp"])


def test_text_format_is_the_original_labs(lab_factory):
    lab = lab_factory(log_format="text")
    lab.client.get("/api/error")
    lines = lab.log_lines()
    pattern = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(INFO|WARNING|ERROR)\] .+")
    assert lines
    assert all(pattern.match(line) for line in lines), lines
    assert any("[ERROR] GET /api/error 500" in line for line in lines)


def test_request_id_is_echoed_and_in_the_error_lines(lab_factory):
    lab = lab_factory(faults={"db_failure_rate": 1.0}, db_retries=0)
    response = lab.client.get("/api/users", headers={"X-Request-ID": "abc-DEF_1.2:3"})
    assert response.headers["X-Request-ID"] == "abc-DEF_1.2:3"
    mine = [r for r in lab.json_logs() if r.get("request_id") == "abc-DEF_1.2:3"]
    messages = [r["message"] for r in mine]
    assert "Database connection timeout occurred" in messages
    assert any(m.startswith("GET /api/users 503") for m in messages)


def test_request_id_is_generated_when_absent_or_invalid(lab):
    generated = lab.client.get("/health/liveness").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    for bad in ("has space", "x" * (MAX_LENGTH + 1), 'quote"s', "new\\nline", "é"):
        response = lab.client.get("/health/liveness", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad
    assert lab.client.get("/health/liveness").headers["X-Request-ID"] != generated
    assert accept_request_id("x" * MAX_LENGTH) == "x" * MAX_LENGTH


def test_every_response_has_one_request_id(lab):
    for response in (lab.client.get("/metrics"), lab.client.get("/nope"), lab.client.post("/api/users")):
        assert len(response.headers.getlist("X-Request-ID")) == 1


def test_failed_requests_are_always_logged_and_good_ones_sampled(lab_factory):
    lab = lab_factory(access_log_sample_rate=0.0)
    for _ in range(20):
        lab.client.get("/api/users")
        lab.client.get("/health/liveness")
    assert lab.access_logs() == []
    lab.client.get("/api/error?type=client")
    lab.client.get("/api/error")
    lab.client.get("/nope")
    statuses = [(r["status"], r["level"]) for r in lab.access_logs()]
    assert statuses == [(400, "WARNING"), (500, "ERROR"), (404, "WARNING")]


def test_slow_requests_are_always_logged(lab_factory):
    lab = lab_factory(faults={"extra_latency_ms": 20}, access_log_sample_rate=0.0, latency_slo_seconds=0.01)
    lab.client.get("/api/users")
    lab.client.get("/health/liveness")  # fast: not logged
    access = lab.access_logs()
    assert len(access) == 1
    assert access[0]["endpoint"] == "/api/users"
    assert access[0]["slow"] is True
    assert access[0]["level"] == "WARNING"


def test_sample_rate_one_logs_everything(lab_factory):
    lab = lab_factory(access_log_sample_rate=1.0)
    for _ in range(25):
        lab.client.get("/health/liveness")
    assert len(lab.access_logs()) == 25


def test_sampling_rate_is_respected():
    access_log = AccessLog(0.1, 0.3, rng=random.Random(7))
    logged = sum(access_log.should_log(200, 0.01) for _ in range(20000))
    assert 1700 < logged < 2300
    assert all(access_log.should_log(503, 0.01) for _ in range(100))
    assert all(access_log.should_log(200, 0.31) for _ in range(100))


def test_log_level_filters(lab_factory):
    lab = lab_factory(log_level="ERROR")
    lab.client.get("/api/error?type=client")  # WARNING access line: filtered
    lab.client.get("/api/error")  # ERROR lines: kept
    levels = {r["level"] for r in lab.json_logs()}
    assert levels == {"ERROR"}


def test_one_middleware_sets_the_request_id_and_header(metric):
    from labapi.metrics import Metrics
    from labapi.observability import ObservabilityMiddleware
    from labapi.request_id import ENVIRON_KEY, HEADER

    seen: dict[str, object] = {}

    def app(environ, start_response):
        seen["id"] = environ[ENVIRON_KEY]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = ObservabilityMiddleware(app, Metrics(), AccessLog(0.0, 0.3))
    sent: list[list[tuple[str, str]]] = []
    middleware({"REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": "abc-1"}, lambda s, h, e=None: sent.append(h))
    assert seen["id"] == "abc-1"
    assert [value for name, value in sent[0] if name == HEADER] == ["abc-1"]
