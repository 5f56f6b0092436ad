"""Response checks: each returns ``None`` when the response is what the API contract promises, else why not.

They take the status code and the body text, so they are tested without a server. The locustfile calls them from
``catch_response`` blocks: a check's message marks the request failed; expected errors (``/api/error`` in the
errors profile) pass their check and so are not counted as failures.
"""

from __future__ import annotations

import json
from typing import Any

_MISSING = object()


def _json(body: str | bytes | None) -> Any:
    if body is None:
        return _MISSING
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _MISSING


def _is_user(item: object) -> bool:
    return isinstance(item, dict) and "id" in item and "name" in item


def check_users(status: int, body: str | bytes | None) -> str | None:
    """``GET /api/users``: 200 with a JSON list of users (``{"id", "name", ...}``), bare or under ``"users"``."""
    if status != 200:
        return f"GET /api/users answered {status}, expected 200"
    data = _json(body)
    if data is _MISSING:
        return "GET /api/users did not answer JSON"
    users = data.get("users") if isinstance(data, dict) else data
    if not isinstance(users, list) or not users or not all(_is_user(u) for u in users):
        return "GET /api/users answered JSON that is not a non-empty list of users with id and name"
    return None


def check_echo(status: int, body: str | bytes | None, sent: object) -> str | None:
    """``POST /api/echo``: 200 and the JSON it was sent, under ``"data"`` (the app's envelope) or bare."""
    if status != 200:
        return f"POST /api/echo answered {status}, expected 200"
    data = _json(body)
    if data is _MISSING:
        return "POST /api/echo did not answer JSON"
    if isinstance(data, dict) and "data" in data and data["data"] == sent:
        return None
    if data == sent:
        return None
    return "POST /api/echo did not echo the payload it was sent"


def check_health(status: int, body: str | bytes | None, probe: str) -> str | None:
    """``GET /health/<probe>``: 200 with a JSON object."""
    if status != 200:
        return f"GET /health/{probe} answered {status}, expected 200"
    if not isinstance(_json(body), dict):
        return f"GET /health/{probe} did not answer a JSON object"
    return None


def check_expected_error(status: int, body: str | bytes | None, expected_status: int) -> str | None:
    """``GET /api/error``: the error it was asked for (``expected_status``) with a JSON ``"error"`` field."""
    if status != expected_status:
        return f"GET /api/error answered {status}, expected the deliberate {expected_status}"
    data = _json(body)
    if not isinstance(data, dict) or "error" not in data:
        return "GET /api/error did not answer a JSON object with an error field"
    return None
