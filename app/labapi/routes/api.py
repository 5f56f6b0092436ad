"""GET /api/users, POST /api/echo, GET /api/error."""

from __future__ import annotations

import json
import logging
import math
import random
import time

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from labapi import extensions as ext
from labapi.contract import answer, error, json_content, operation, query
from labapi.db import USERS, DatabaseUnavailableError
from labapi.errors import error_response
from labapi.faults import FaultState
from labapi.metrics import ERROR_CLIENT, ERROR_DB_UNAVAILABLE, ERROR_INJECTED, ERROR_SERVER

logger = logging.getLogger("labapi.api")

bp = Blueprint("api", __name__, url_prefix="/api")


def add_fault_latency(app: Flask, faults: FaultState) -> None:
    """Fault injection: extra_latency_ms added to every /api/* request, or to extra_latency_route's."""

    def delay() -> None:
        current = faults.current
        if current.extra_latency_ms and current.latency_applies_to(
            request.url_rule.rule if request.url_rule else None
        ):
            time.sleep(current.extra_latency_ms / 1000)  # gevent's sleep in the workers

    app.before_request_funcs.setdefault(bp.name, []).append(delay)


_burst_rng = random.Random()


def serialize_users(app: Flask) -> bytes:
    """The GET /api/users body, made once per app: exactly what jsonify(USERS) gives (same JSON
    provider settings, trailing newline), since the rows are constant."""
    with app.app_context():
        return jsonify(list(USERS)).get_data()


USER_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "email"],
    "additionalProperties": False,
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}},
}


@bp.get("/users")
@operation(
    "The sample users, after a simulated database query",
    {
        200: answer("The users", {"type": "array", "items": USER_SCHEMA}),
        500: error("Fault users_error_rate: this share of requests fails at once", designed=True),
        503: error(
            "Every attempt of the simulated query failed (fault db_failure_rate; APP_DB_RETRIES retries)",
            designed=True,
        ),
    },
    description="The query takes 1-10 ms (5% of queries 40-120 ms) and fails at the fault db_failure_rate; "
    "a failed attempt is retried APP_DB_RETRIES times.",
    tags=("api",),
)
def users() -> Response | tuple[Response, int]:
    extensions = current_app.extensions
    burst = extensions[ext.FAULTS].current.users_error_rate
    if burst and _burst_rng.random() < burst:
        ext.metrics(current_app).count_error(ERROR_INJECTED, "/api/users")
        logger.error("Injected error (users_error_rate=%s)", burst, extra={"error_type": ERROR_INJECTED})
        return error_response(500, "Internal Server Error", "injected error burst (fault users_error_rate)")
    try:
        extensions[ext.DATABASE].query_users()
        return Response(extensions[ext.USERS_BODY], mimetype="application/json")
    except DatabaseUnavailableError as exc:
        logger.error("Users query failed after retries: %s", exc, extra={"error_type": ERROR_DB_UNAVAILABLE})
        ext.metrics(current_app).count_error(ERROR_DB_UNAVAILABLE, "/api/users")
        return error_response(503, "Service Unavailable", "the database is unavailable, try again later")


def _read_body(limit: int) -> bytes:
    """The request body, at most `limit` bytes, else RequestEntityTooLarge (413); a body that
    cannot be read (malformed or truncated chunked framing, a client gone mid-body) is the
    client's fault: BadRequest (400). A body too slow to arrive: the server's RequestTimeout (408).
    """
    try:
        return _read_body_unchecked(limit)
    except HTTPException:
        raise
    except Exception as exc:  # the server's HTTP layer failed to parse what the client sent
        raise BadRequest(f"the request body could not be read: {type(exc).__name__}") from exc


def _read_body_unchecked(limit: int) -> bytes:
    """With a Content-Length, werkzeug reads exactly that much. A chunked upload has none: gunicorn
    terminates the stream (wsgi.input_terminated), and the body is read up to limit + 1 bytes."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise RequestEntityTooLarge(f"the body is {length} bytes; the limit is {limit} bytes")
        return request.get_data(cache=False)
    if not request.environ.get("wsgi.input_terminated"):
        return b""
    stream = request.environ["wsgi.input"]
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise RequestEntityTooLarge(f"the body is larger than the limit of {limit} bytes")
    return b"".join(chunks)


@bp.post("/echo")
@operation(
    "The JSON body, echoed",
    {
        200: answer(
            "The body as data",
            {
                "type": "object",
                "required": ["status", "data"],
                "additionalProperties": False,
                "properties": {"status": {"const": "success"}, "data": {}},
            },
        ),
        400: error(
            "Not JSON: a wrong Content-Type, an empty body, invalid JSON (also nested too deeply, NaN, "
            "Infinity, numbers out of a double's range), or a body that cannot be read (bad chunked framing)"
        ),
        408: error(
            "The body did not arrive within APP_BODY_TIMEOUT_SECONDS (Connection: close)",
            headers={"Connection": {"schema": {"const": "close"}}},
        ),
        413: error("The body is larger than APP_MAX_BODY_BYTES (default 65536), chunked or not"),
    },
    request_body={
        "required": True,
        "description": "Any JSON document (RFC 8259: no NaN or Infinity) up to APP_MAX_BODY_BYTES",
        "content": json_content(
            {"examples": [{"name": "John Doe", "tags": ["a", 1, 2.5, None, True]}, [], "x", 0]}
        ),
    },
    tags=("api",),
)
def echo() -> Response | tuple[Response, int]:
    if request.mimetype != "application/json":
        got = request.mimetype or "no Content-Type"
        return error_response(400, "Bad Request", f"expected Content-Type: application/json, got {got}")
    raw = _read_body(current_app.config["MAX_CONTENT_LENGTH"])
    if not raw.strip():
        return error_response(400, "Bad Request", "the body is empty; send a JSON document")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        return jsonify({"status": "success", "data": data})
    except RecursionError:
        return error_response(400, "Bad Request", "the body is not valid JSON: nested too deeply")
    except ValueError as exc:
        return error_response(400, "Bad Request", f"the body is not valid JSON: {exc}")


def _reject_constant(name: str) -> object:
    """NaN, Infinity and -Infinity are not JSON (RFC 8259): reject them, never echo them."""
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: out of the range of a double
        raise ValueError(f"{text[:40]} is out of range")
    return value


@bp.get("/error", endpoint="error")  # the view is not named error: that is the contract helper
@operation(
    "A simulated error",
    {
        400: error("type=client: the simulated client error", designed=True),
        500: error("The simulated server error (any type but client)", designed=True),
    },
    parameters=[
        query(
            "type",
            "client: answer 400; anything else, or none: 500",
            {"type": "string", "examples": ["client", "server"]},
        )
    ],
    tags=("api",),
)
def simulated_error() -> tuple[Response, int]:
    if request.args.get("type") == "client":
        ext.metrics(current_app).count_error(ERROR_CLIENT, "/api/error")
        return error_response(400, "Bad Request", "simulated client error (type=client)")
    ext.metrics(current_app).count_error(ERROR_SERVER, "/api/error")
    logger.error("Simulated server error")
    return error_response(500, "Internal Server Error", "simulated server error")
