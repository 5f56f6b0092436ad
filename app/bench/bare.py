"""The baseline: a bare Flask app with the same endpoints' logic and no instrumentation.

``make_app(name)`` builds it; the instrumented peers of the benchmark (``original_hooks``, ``flask_exporter``,
``floor``) add their instrumentation to the same app, so only the instrumentation differs.

``POST /api/echo`` is labapi's own view function (``labapi.routes.api.echo``: Content-Type check, body size
limit, strict JSON parsing, the same JSON answer), registered on a plain ``Flask`` with Flask's default JSON
provider and the same body limit: every contender does the same request work, and what is measured on top of
this app is the instrumentation (and, for ours, its own Flask set-up: JSON provider, error handlers, the
fault-latency hook). ``original_echo_app`` is the original lab's unchecked echo, a reference row in part (5).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from labapi.config import load_settings
from labapi.routes.api import echo


def make_app(name: str) -> Flask:
    flask_app = Flask(name)
    flask_app.config["MAX_CONTENT_LENGTH"] = load_settings().max_body_bytes  # what labapi sets
    flask_app.add_url_rule("/api/echo", "echo", echo, methods=["POST"])

    @flask_app.get("/trivial")
    def trivial() -> Response:
        return jsonify({"status": "ok"})

    @flask_app.get("/health/readiness")
    def readiness() -> Response:
        return jsonify({"status": "ready"})

    return flask_app


def make_original_echo_app(name: str) -> Flask:
    """The original lab's echo as it was (``request.get_json()``, none of labapi's checks): a reference row, to show what
    the checks themselves cost next to the instrumentation."""
    flask_app = Flask(name)

    @flask_app.post("/api/echo")
    def echo_unchecked() -> Response:
        return jsonify({"status": "success", "data": request.get_json()})

    @flask_app.get("/health/readiness")
    def readiness() -> Response:
        return jsonify({"status": "ready"})

    return flask_app


app = make_app("bare")
original_echo_app = make_original_echo_app("bare-original-echo")
