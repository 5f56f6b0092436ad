"""GET /health/liveness (the process answers) and GET /health/readiness (it can serve)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from labapi import extensions as ext
from labapi.lifecycle import shutdown_state
from labapi.metrics import check_multiproc_dir

logger = logging.getLogger("labapi.health")

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/liveness")
def liveness() -> Response:
    """No dependency checks: a restart would not fix a dependency."""
    return jsonify({"status": "alive"})


@bp.get("/readiness")
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
