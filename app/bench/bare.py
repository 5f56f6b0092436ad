"""The baseline: a bare Flask app with the same endpoints' logic and no instrumentation.

``make_app(name)`` builds it; the instrumented peers of the benchmark (``seed_hooks``, ``flask_exporter``,
``floor``) add their instrumentation to the same app, so only the instrumentation differs.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request


def make_app(name: str) -> Flask:
    flask_app = Flask(name)

    @flask_app.post("/api/echo")
    def echo() -> Response:
        return jsonify({"status": "success", "data": request.get_json()})

    @flask_app.get("/trivial")
    def trivial() -> Response:
        return jsonify({"status": "ok"})

    @flask_app.get("/health/readiness")
    def readiness() -> Response:
        return jsonify({"status": "ready"})

    return flask_app


app = make_app("bare")
