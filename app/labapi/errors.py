"""JSON error responses for every error: no HTML error page anywhere."""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from labapi.metrics import ERROR_UNHANDLED, Metrics
from labapi.observability import endpoint_label

logger = logging.getLogger("labapi.errors")


def error_response(status: int, error: str, message: str) -> tuple[Response, int]:
    """The one error body shape: {"status": "error", "error": ..., "message": ...}."""
    return jsonify({"status": "error", "error": error, "message": message}), status


def error_body(error: str, message: str) -> bytes:
    """The same error body as bytes, for the layers outside Flask (the gunicorn worker)."""
    body = {"status": "error", "error": error, "message": message}
    return (json.dumps(body, separators=(",", ":")) + "\n").encode()


def register_error_handlers(app: Flask, metrics: Metrics) -> None:
    def handle_http_exception(exc: HTTPException) -> Response:
        code = exc.code or 500
        body, _ = error_response(code, exc.name, exc.description or exc.name)
        body.status_code = code
        for name, value in exc.get_headers():  # keeps e.g. Allow on 405
            if name.lower() != "content-type":
                body.headers[name] = value
        return body

    def handle_unexpected(exc: Exception) -> tuple[Response, int]:
        endpoint = endpoint_label(request.environ)
        logger.exception("Unhandled exception in %s", endpoint, extra={"error_type": ERROR_UNHANDLED})
        metrics.count_error(ERROR_UNHANDLED, endpoint)
        return error_response(500, "Internal Server Error", "the server failed to handle the request")

    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
