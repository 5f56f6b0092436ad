"""Log configuration: one JSON object per line on stdout, or the original lab's plain-text format.

JSON lines carry timestamp, level, logger, message, plus any `extra` fields (access lines add
method, endpoint, path, status, duration_ms) and the request id of the request being handled.

Log lines cannot be forged: both formats escape control characters (newlines, carriage returns,
terminal escapes, DEL, C1 controls, Unicode line separators) as `\n`, `\x1b`, `\u2028`, ... in
every string they write, so a client-supplied path, method or header cannot start a new line or
drive a terminal. Only a traceback keeps its own line breaks, and in the text format its
continuation lines are indented by a tab, so none of them can look like the start of a record.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s [%(levelname)s] %(message)s"  # the original lab's format (APP_LOG_FORMAT=text)
HANDLER_NAME = "labapi"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_match(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """`text` with every control character written as an escape: one line, nothing for a terminal."""
    return _CONTROL.sub(_escape_match, text) if _CONTROL.search(text) else text


def escape_traceback(text: str) -> str:
    """A traceback keeps its line breaks; every other control character is escaped."""
    return _CONTROL_BUT_NEWLINE.sub(_escape_match, text) if _CONTROL_BUT_NEWLINE.search(text) else text


class SafeTextFormatter(logging.Formatter):
    """The original lab's text format, one record per line: the message is escaped, and the lines of a
    traceback are indented (a tab) so that none can pass for a record of its own."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        parts = [self.formatMessage(record)]
        # never the cached record.exc_text: another handler may have formatted it unescaped
        if record.exc_info:
            parts.append(escape_traceback(self.formatException(record.exc_info)))
        elif record.exc_text:
            parts.append(escape_traceback(record.exc_text))
        if record.stack_info:
            parts.append(escape_traceback(self.formatStack(record.stack_info)))
        # the message is escaped: every line break left is a traceback's; indent what follows it
        return "\n".join(parts).replace("\n", "\n\t")


class SafeJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with every string field escaped (tracebacks keep their
    line breaks: JSON encodes them, and a reader shows them as the traceback's lines)."""

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key, value in log_data.items():
            if isinstance(value, str):
                log_data[key] = (
                    escape_traceback(value) if key in ("exc_info", "stack_info") else escape_controls(value)
                )
        return log_data


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
    return SafeJsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return json_formatter()
    if log_format == "text":
        return SafeTextFormatter(TEXT_FORMAT)
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
