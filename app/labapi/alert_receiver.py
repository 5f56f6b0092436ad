"""Alertmanager's webhook receiver of the lab: one JSON log line per notification, nothing else.

Alertmanager (the same routing file on every platform: roles/monitoring/templates/alertmanager.yml.j2) posts
each notification to /alerts/<route> (page, ticket or other). This app writes one JSON object per notification
on stdout, so the trainee sees every page and ticket in the receiver's log and, through Alloy, in Loki
({app="alert-receiver"} | json | event="alert_notification"). It answers 200 so Alertmanager counts the
notification as delivered. It runs from the API's image (or virtualenv) under gunicorn, as its own process:

    gunicorn --config /dev/null --bind 0.0.0.0:8080 --workers 1 --chdir app 'labapi.alert_receiver:create_app()'

Plain WSGI, standard library plus python-json-logger: no Flask app, no metrics, no settings besides the log level
(APP_LOG_LEVEL, default INFO).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from labapi.logging_setup import json_formatter

LOGGER_NAME = "labapi.alert_receiver"
MAX_BODY_BYTES = 1 << 20  # Alertmanager's notifications are a few KiB; refuse anything absurd.
ROUTES = ("page", "ticket", "other")
HANDLER_NAME = "alert_receiver"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def configure_logger(stream: TextIO | None = None, level: str | None = None) -> logging.Logger:
    """The receiver's own logger: JSON lines on stdout (or `stream`), not propagated to the root logger."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if handler.get_name() == HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(json_formatter())
    logger.addHandler(handler)
    logger.setLevel(level or os.environ.get("APP_LOG_LEVEL", "INFO"))
    logger.propagate = False
    return logger


def summarize(route: str, body: dict[str, Any]) -> dict[str, Any]:
    """The fields of the log line: who was notified, of what, in which state (Alertmanager webhook format v4)."""
    alerts = body.get("alerts") or []
    return {
        "event": "alert_notification",
        "route": route,
        "receiver": body.get("receiver"),
        "status": body.get("status"),
        "group": body.get("groupLabels") or {},
        "alert_count": len(alerts),
        "alerts": [
            {
                "alertname": (a.get("labels") or {}).get("alertname"),
                "severity": (a.get("labels") or {}).get("severity"),
                "slo": (a.get("labels") or {}).get("slo"),
                "status": a.get("status"),
                "starts_at": a.get("startsAt"),
                "summary": (a.get("annotations") or {}).get("summary"),
                "runbook_url": (a.get("annotations") or {}).get("runbook_url"),
            }
            for a in alerts
            if isinstance(a, dict)
        ],
        "external_url": body.get("externalURL"),
    }


def _reply(start_response: StartResponse, status: str, payload: dict[str, Any]) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def create_app(*, stream: TextIO | None = None, level: str | None = None) -> WSGIApp:
    """Build the WSGI app; `stream` and `level` are for tests (default: stdout, APP_LOG_LEVEL)."""
    logger = configure_logger(stream, level)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        if path in ("/health", "/-/ready") and method in ("GET", "HEAD"):
            return _reply(start_response, "200 OK", {"status": "ok"})
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "alerts" or parts[1] not in ROUTES:
            return _reply(
                start_response, "404 Not Found", {"error": f"no such path {path}; POST /alerts/<route>"}
            )
        if method != "POST":
            return _reply(start_response, "405 Method Not Allowed", {"error": "POST a notification"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return _reply(
                start_response, "413 Content Too Large", {"error": f"body over {MAX_BODY_BYTES} bytes"}
            )
        try:
            body = json.loads(environ["wsgi.input"].read(length) or b"null")
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            logger.warning(
                "bad alert notification", extra={"event": "alert_notification_rejected", "error": str(exc)}
            )
            return _reply(
                start_response, "400 Bad Request", {"error": f"not an Alertmanager notification: {exc}"}
            )
        fields = summarize(parts[1], body)
        names = sorted({a["alertname"] for a in fields["alerts"] if a["alertname"]})
        logger.info(
            "alert notification: %s %s (%s)",
            parts[1],
            fields["status"],
            ", ".join(names) or "no alerts",
            extra=fields,
        )
        return _reply(start_response, "200 OK", {"status": "logged"})

    return app
