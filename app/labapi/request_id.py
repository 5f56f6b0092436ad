"""X-Request-ID: taken from the request when it is well formed, otherwise generated.

The id is stored in the WSGI environ (ENVIRON_KEY) for the handlers and the log lines, and
added to every response, /metrics included, so a failing request can be found in the logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from random import getrandbits as _getrandbits
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
ENVIRON_KEY = "labapi.request_id"
MAX_LENGTH = 128
# Letters, digits and a few separators: what UUIDs, trace ids and proxies' ids use; nothing that
# could break a log line or a header.
_VALID = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")


def new_request_id() -> str:
    """32 random hex digits (random is reseeded in every forked worker)."""
    return f"{_getrandbits(128):032x}"


def accept_request_id(value: str | None) -> str:
    """The client's id if it is valid (1-128 safe characters), else a fresh one."""
    if value and _VALID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Outermost WSGI layer: sets environ[ENVIRON_KEY] and the X-Request-ID response header."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = accept_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_KEY] = request_id

        def start_with_id(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            headers.append((HEADER, request_id))  # the app never sets it itself
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        return self.app(environ, start_with_id)  # type: ignore[arg-type]
