"""GET /health/liveness (the process answers) and GET /health/readiness (it can serve)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from labapi import extensions as ext
from labapi.contract import DESIGNED_FAILURE, answer, operation
from labapi.lifecycle import shutdown_state
from labapi.metrics import check_multiproc_dir

logger = logging.getLogger("labapi.health")

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/liveness")
@operation(
    "Liveness: the process answers (no dependency checks)",
    {
        200: answer(
            "Alive", {"type": "object", "required": ["status"], "properties": {"status": {"const": "alive"}}}
        )
    },
    tags=("health",),
)
def liveness() -> Response:
    """No dependency checks: a restart would not fix a dependency."""
    return jsonify({"status": "alive"})


READINESS_CHECKS = ("database", "forced", "metrics_dir", "shutdown")


@bp.get("/readiness")
@operation(
    "Readiness: whether this instance can serve",
    {
        200: answer(
            "Ready", {"type": "object", "required": ["status"], "properties": {"status": {"const": "ready"}}}
        ),
        503: answer(
            "Not ready: each failing check named, with what is wrong (no server paths)",
            {
                "type": "object",
                "required": ["status", "failing", "checks"],
                "additionalProperties": False,
                "properties": {
                    "status": {"const": "unready"},
                    "failing": {
                        "type": "array",
                        "minItems": 1,
                        "uniqueItems": True,
                        "items": {"enum": list(READINESS_CHECKS)},
                    },
                    "checks": {
                        "type": "object",
                        "propertyNames": {"enum": list(READINESS_CHECKS)},
                        "additionalProperties": {"type": "string"},
                    },
                },
            },
        )
        | {DESIGNED_FAILURE: True},
    },
    description="shutdown: SIGTERM received, draining; forced: fault force_unready; database: fault "
    "db_failure_rate is 1; metrics_dir: PROMETHEUS_MULTIPROC_DIR missing or not writable.",
    tags=("health",),
)
def readiness() -> tuple[Response, int]:
    settings = ext.settings(current_app)
    database = ext.database(current_app)
    checks: dict[str, str] = {}
    if shutdown_state.draining:
        checks["shutdown"] = "the process is shutting down"
    faults = ext.faults(current_app).current
    if faults.force_unready:
        checks["forced"] = "the fault document sets force_unready"
    if not database.ping():
        checks["database"] = "the database is unreachable (the fault document sets db_failure_rate to 1)"
    metrics_problem = check_multiproc_dir(settings.multiproc_dir)
    if metrics_problem:  # the body says what is wrong; the log line says where (no paths to clients)
        logger.warning("Readiness: %s", metrics_problem)
        checks["metrics_dir"] = "the metrics directory (PROMETHEUS_MULTIPROC_DIR) is missing or not writable"
    if checks:
        return jsonify({"status": "unready", "failing": sorted(checks), "checks": checks}), 503
    return jsonify({"status": "ready"}), 200
