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

import logging
import os
from pathlib import Path
from typing import TextIO

from flask import Flask, Response, request

from labapi.config import ConfigError, Settings, load_settings
from labapi.db import SimulatedDatabase
from labapi.errors import register_error_handlers
from labapi.flask_app import LabFlask
from labapi.json_provider import CompactJSONProvider
from labapi.logging_setup import configure_logging
from labapi.metrics import (
    ERROR_DB_FAILURE,
    Metrics,
    MetricsRoute,
    metrics_wsgi_app,
    multiprocess_mode_active,
)
from labapi.observability import AccessLog, ObservabilityMiddleware
from labapi.request_id import RequestIdMiddleware
from labapi.routes import api, health

logger = logging.getLogger("labapi")


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


def build_app(settings: Settings | None = None, *, log_stream: TextIO | None = None) -> Flask:
    """Build the app from `settings` (default: the validated environment).

    `log_stream` replaces stdout for the log lines (tests).
    """
    settings = settings if settings is not None else load_settings()
    _check_multiprocess(settings)
    configure_logging(settings.log_format, settings.log_level, log_stream)

    app = LabFlask("labapi")
    app.config.update(
        LABAPI_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.json = CompactJSONProvider(app)

    metrics = Metrics(settings.latency_slo_seconds)
    database = SimulatedDatabase(
        failure_rate=settings.db_failure_rate,
        retries=settings.db_retries,
        on_failure=lambda: metrics.count_error(ERROR_DB_FAILURE, "/api/users"),
    )
    app.extensions["labapi.metrics"] = metrics
    app.extensions["labapi.db"] = database

    app.register_blueprint(api.bp)
    app.extensions[api.USERS_BODY_KEY] = api.serialize_users(app)
    api.add_extra_latency(app, settings.extra_latency_ms)
    app.register_blueprint(health.bp)
    register_error_handlers(app, metrics)

    observed = ObservabilityMiddleware(
        app.wsgi_app,
        metrics,
        AccessLog(settings.access_log_sample_rate, settings.latency_slo_seconds),
    )
    metrics_app = metrics_wsgi_app(settings.multiproc_dir)
    metrics_endpoint = RequestIdMiddleware(metrics_app)
    # The route is known to Flask too, so other methods get the JSON 405 with Allow (GET/HEAD
    # never reach this view: MetricsRoute serves them outside the counted layer).
    app.add_url_rule(
        "/metrics", "metrics", lambda: Response.from_app(metrics_app, request.environ), methods=["GET"]
    )
    app.wsgi_app = MetricsRoute(observed, metrics_endpoint)  # type: ignore[method-assign]
    logger.info(
        "labapi ready: log_format=%s sample_rate=%s slo=%ss db_failure_rate=%s retries=%s extra_latency_ms=%s",
        settings.log_format,
        settings.access_log_sample_rate,
        settings.latency_slo_seconds,
        settings.db_failure_rate,
        settings.db_retries,
        settings.extra_latency_ms,
    )
    return app
