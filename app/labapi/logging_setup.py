"""Log configuration: one JSON object per line on stdout, or the seed's plain-text format.

JSON lines carry timestamp, level, logger, message, plus any `extra` fields (access lines add
method, endpoint, path, status, duration_ms) and the request id of the request being handled.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"  # the seed's format (APP_LOG_FORMAT=text)
HANDLER_NAME = "labapi"


class RequestIdFilter(logging.Filter):
    """Adds request_id to records emitted while a request is being handled (if not already set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            from flask import has_request_context, request

            if has_request_context():
                from labapi.request_id import ENVIRON_KEY

                record.request_id = request.environ.get(ENVIRON_KEY)
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return json_formatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"unknown log format {log_format!r} (expected json or text)")


def configure_logging(log_format: str, level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records to one stdout handler (replacing ours if already installed)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler
