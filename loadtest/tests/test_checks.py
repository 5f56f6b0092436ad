"""Response checks: what the locustfile counts as a failure."""

from __future__ import annotations

import json

import pytest

from loadtest import checks

USERS = json.dumps([{"id": 101, "name": "John Doe", "email": "john@example.com"}])


def test_users_ok_and_wrapped() -> None:
    assert checks.check_users(200, USERS) is None
    assert checks.check_users(200, json.dumps({"users": json.loads(USERS)})) is None


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, '{"status": "error"}', "answered 503, expected 200"),
        (200, "<html>", "did not answer JSON"),
        (200, "[]", "not a non-empty list"),
        (200, '[{"id": 1}]', "not a non-empty list of users with id and name"),
        (200, '{"status": "ok"}', "not a non-empty list"),
    ],
)
def test_users_failures(status: int, body: str, message: str) -> None:
    assert message in (checks.check_users(status, body) or "")


@pytest.mark.parametrize("payload", [{"a": 1}, [1, 2.5], {"text": "héllo ✓"}, {"n": None}])
def test_echo_ok(payload: object) -> None:
    assert checks.check_echo(200, json.dumps({"status": "success", "data": payload}), payload) is None


def test_echo_failures() -> None:
    sent = {"a": 1}
    assert "answered 413" in (checks.check_echo(413, "{}", sent) or "")
    assert "did not echo" in (
        checks.check_echo(200, json.dumps({"status": "success", "data": {"a": 2}}), sent) or ""
    )
    assert "did not answer JSON" in (checks.check_echo(200, b"\xff", sent) or "")


def test_health() -> None:
    assert checks.check_health(200, '{"status": "alive"}', "liveness") is None
    assert "answered 503" in (checks.check_health(503, '{"status": "unready"}', "readiness") or "")
    assert "JSON object" in (checks.check_health(200, "ok", "liveness") or "")


def test_expected_errors_pass_and_others_fail() -> None:
    body = json.dumps({"status": "error", "error": "Internal Server Error", "message": "simulated"})
    assert checks.check_expected_error(500, body, 500) is None
    assert checks.check_expected_error(400, body, 400) is None
    assert "expected the deliberate 500" in (checks.check_expected_error(200, body, 500) or "")
    assert "error field" in (checks.check_expected_error(500, "{}", 500) or "")
