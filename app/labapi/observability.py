"""Per-request request id, metrics and access lines, as one WSGI middleware around the Flask app.

For every request (except /metrics, which is mounted outside this layer and gets its request id
from labapi.request_id.RequestIdMiddleware) it sets the request id (environ and X-Request-ID
response header), increments the
in-flight gauge and times the request; when the app hands over the response status it counts the
request, observes its latency and decides whether to write an access line; when the app returns
(or raises) it decrements the gauge in a `finally`. Flask builds the whole body before it
returns (the API streams nothing), so "in flight" means "being handled".

Failed requests (status >= 400) and requests slower than the latency SLO threshold are always
logged; the rest at the configured sample rate, and the sampling decision is taken before any
log record is built.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING

from labapi.metrics import UNMATCHED, Metrics, method_label
from labapi.request_id import ENVIRON_KEY as REQUEST_ID_KEY
from labapi.request_id import HEADER as REQUEST_ID_HEADER
from labapi.request_id import accept_request_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


def endpoint_label(environ: WSGIEnvironment) -> str:
    """The matched route template, from the request object werkzeug keeps in the environ.

    Read after the app has run (no per-request hook needed); `<unmatched>` when no route matched
    (404, 405) or the request never got that far.
    """
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return rule.rule if rule is not None else UNMATCHED


access_logger = logging.getLogger("labapi.access")


class AccessLog:
    """Decides which requests get an access line and writes it."""

    __slots__ = ("_random", "sample_rate", "slow_seconds")

    def __init__(self, sample_rate: float, slow_seconds: float, rng: random.Random | None = None) -> None:
        self.sample_rate = sample_rate
        self.slow_seconds = slow_seconds
        self._random = (rng or random.Random()).random

    def should_log(self, status: int, seconds: float) -> bool:
        return status >= 400 or seconds > self.slow_seconds or self._random() < self.sample_rate

    def write(self, environ: WSGIEnvironment, endpoint: str, status: int, seconds: float) -> None:
        if status >= 500:
            level = logging.ERROR
        elif status >= 400 or seconds > self.slow_seconds:
            level = logging.WARNING
        else:
            level = logging.INFO
        if not access_logger.isEnabledFor(level):
            return
        method = environ.get("REQUEST_METHOD", "")
        path = environ.get("PATH_INFO", "")
        request_id = environ.get(REQUEST_ID_KEY)
        duration_ms = round(seconds * 1000, 3)
        access_logger.log(
            level,
            "%s %s %d %.1fms request_id=%s",
            method,
            path,
            status,
            duration_ms,
            request_id,
            extra={
                "method": method,
                "endpoint": endpoint,
                "path": path,
                "status": status,
                "duration_ms": duration_ms,
                "slow": seconds > self.slow_seconds,
                "request_id": request_id,
            },
        )


class ObservabilityMiddleware:
    """Request id, metrics and access lines for every request that reaches the Flask app.

    One layer (one start_response wrapper per request) instead of a request-id middleware
    around a metrics middleware: the hot path pays for one closure and one extra call.
    """

    __slots__ = ("access_log", "app", "metrics")

    def __init__(self, app: WSGIApplication, metrics: Metrics, access_log: AccessLog) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = accept_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ[REQUEST_ID_KEY] = request_id
        started = perf_counter()
        active_add = self.metrics.active_add
        active_add(1)
        recorded = False

        def recording_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> object:
            # The response is complete when the app hands over its status: count it now, before
            # the body goes out, so a client that has the response also sees it in /metrics.
            nonlocal recorded
            if not recorded:
                recorded = True
                self._record(environ, int(status[:3]), perf_counter() - started)
            headers.append((REQUEST_ID_HEADER, request_id))  # the app never sets it itself
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        try:
            return self.app(environ, recording_start_response)  # type: ignore[arg-type]
        finally:
            # Always runs, also when the app raised: the gauge cannot leak.
            active_add(-1)
            if not recorded:  # the app failed before answering
                self._record(environ, 500, perf_counter() - started)

    def _record(self, environ: WSGIEnvironment, status: int, seconds: float) -> None:
        endpoint = endpoint_label(environ)
        self.metrics.observe_request(
            endpoint, method_label(environ.get("REQUEST_METHOD", "")), status, seconds
        )
        access_log = self.access_log
        if access_log.should_log(status, seconds):
            access_log.write(environ, endpoint, status, seconds)
