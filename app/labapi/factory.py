"""The app factory: settings -> Flask app wrapped in the request-id, metrics and /metrics layers.

WSGI stack (outermost first):
  MetricsRoute                   GET/HEAD /metrics (exactly) -> RequestIdMiddleware ->
                                 prometheus_client's WSGI app (X-Request-ID, not counted)
  ObservabilityMiddleware        X-Request-ID, in-flight gauge, request count, latency, access lines
  Flask                          routes (blueprints) and JSON error handlers

One instrumented layer on the hot path: the request id and the metrics share one start_response
wrapper (the /metrics scrape, which is not hot, keeps its own request-id layer).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TextIO

from flask import Flask, request
from werkzeug.wrappers import Response

from labapi import extensions as ext
from labapi.config import ConfigError, Settings, load_settings
from labapi.contract import answer, build_document, operation
from labapi.db import SimulatedDatabase
from labapi.errors import register_error_handlers
from labapi.faults import LATENCY_ROUTES, ROUTE_ALL, Faults, FaultState
from labapi.flask_app import LabFlask
from labapi.json_provider import CompactJSONProvider
from labapi.logging_setup import configure_logging
from labapi.metrics import (
    ERROR_DB_FAILURE,
    FaultMetrics,
    Metrics,
    MetricsRoute,
    metrics_wsgi_app,
    multiprocess_mode_active,
)
from labapi.observability import AccessLog, ObservabilityMiddleware
from labapi.request_id import RequestIdMiddleware
from labapi.routes import api, docs, health

logger = logging.getLogger("labapi")

CONTRACT_VERSION = "1.0.0"  # info.version of /openapi.json: raise it when the contract changes


def _check_multiprocess(settings: Settings) -> None:
    """The metric files must go where /metrics reads them, in multiprocess mode."""
    env_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not env_dir or Path(env_dir).resolve() != settings.multiproc_dir.resolve():
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR in the environment ({env_dir!r}) must be the metrics directory "
            f"of the settings ({str(settings.multiproc_dir)!r}): prometheus_client reads the environment"
        )
    if not multiprocess_mode_active():
        raise ConfigError(
            "prometheus_client is not in multiprocess mode: set PROMETHEUS_MULTIPROC_DIR in the environment "
            "before the process starts (it is read when prometheus_client is imported)"
        )
    settings.multiproc_dir.mkdir(parents=True, exist_ok=True)


def create_app(settings: Settings | None = None, *, log_stream: TextIO | None = None) -> Flask:
    """Build the app from `settings` (default: the validated environment).

    `log_stream` replaces stdout for the log lines (tests).
    """
    settings = settings if settings is not None else load_settings()
    _check_multiprocess(settings)
    configure_logging(settings.log_format, settings.log_level, log_stream)

    app = LabFlask("labapi", static_folder=None)  # no /static route: the API serves no files of its own
    app.config.update({ext.SETTINGS: settings, "MAX_CONTENT_LENGTH": settings.max_body_bytes})
    app.json = CompactJSONProvider(app)

    metrics = Metrics(settings.latency_slo_seconds)
    database = SimulatedDatabase(
        failure_rate=0.0,
        retries=settings.db_retries,
        on_failure=lambda: metrics.count_error(ERROR_DB_FAILURE, "/api/users"),
    )
    faults = _fault_state(settings, database)
    app.extensions[ext.METRICS] = metrics
    app.extensions[ext.DATABASE] = database
    app.extensions[ext.FAULTS] = faults

    app.register_blueprint(api.bp)
    app.extensions[ext.USERS_BODY] = api.serialize_users(app)
    api.add_fault_latency(app, faults)
    app.register_blueprint(health.bp)
    app.register_blueprint(docs.bp)
    register_error_handlers(app, metrics)

    observed = ObservabilityMiddleware(
        app.wsgi_app,
        metrics,
        AccessLog(settings.access_log_sample_rate, settings.latency_slo_seconds),
    )
    metrics_app = metrics_wsgi_app(settings.multiproc_dir)
    metrics_endpoint = RequestIdMiddleware(metrics_app)
    # The route is known to Flask too, so other methods get the JSON 405 with Allow (GET/HEAD
    # never reach this view: MetricsRoute serves them outside the counted layer), and it is in the contract.

    @operation(
        "Prometheus metrics, aggregated over every worker (not counted in the request metrics)",
        {200: answer("The Prometheus text format", {"type": "string"}, media_type="text/plain")},
        tags=("metrics",),
    )
    def metrics_view() -> Response:
        return Response.from_app(metrics_app, request.environ)

    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    # The contract of every route registered above (ContractError if one has no operation): built and
    # serialized once, served by GET /openapi.json.
    document = build_document(app, title="labapi: the SRE lab's API", version=CONTRACT_VERSION)
    app.extensions[ext.CONTRACT] = (json.dumps(document, indent=1) + "\n").encode()
    app.wsgi_app = MetricsRoute(observed, metrics_endpoint)  # type: ignore[method-assign]
    logger.info(
        "labapi ready: log_format=%s sample_rate=%s slo=%ss retries=%s faults_file=%s (every %ss)",
        settings.log_format,
        settings.access_log_sample_rate,
        settings.latency_slo_seconds,
        settings.db_retries,
        settings.faults_file,
        settings.faults_poll_seconds,
    )
    faults.start()
    return app


def _fault_state(settings: Settings, database: SimulatedDatabase) -> FaultState:
    """The worker's faults: read now (the first request sees them), then watched in the background."""
    fault_metrics = FaultMetrics(LATENCY_ROUTES, ROUTE_ALL)

    def apply(faults: Faults) -> None:
        database.failure_rate = faults.db_failure_rate
        fault_metrics.show(faults.gauges(), faults.extra_latency_route, state.applied_at)

    state = FaultState(
        settings.faults_file,
        claim_dir=settings.multiproc_dir,
        poll_seconds=settings.faults_poll_seconds,
        on_apply=apply,
        on_reject=fault_metrics.count_reload_error,
    )
    state.load_initial()
    return state
