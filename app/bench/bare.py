"""The baseline: a bare Flask app with the same endpoints' logic and no instrumentation."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask("bare")


@app.post("/api/echo")
def echo() -> Response:
    return jsonify({"status": "success", "data": request.get_json()})


@app.get("/trivial")
def trivial() -> Response:
    return jsonify({"status": "ok"})


@app.get("/health/readiness")
def readiness() -> Response:
    return jsonify({"status": "ready"})
