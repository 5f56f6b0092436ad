"""The gunicorn worker class of the API: gunicorn's gevent worker, bounded against slow and many
clients, and with JSON answers for the requests gunicorn rejects itself.

Imported by the worker processes only (`worker_class` in app/gunicorn.conf.py), after gevent's
monkey patching. What it adds to `gunicorn.workers.ggevent.GeventWorker`:

- Body read time: a request body must arrive within APP_BODY_TIMEOUT_SECONDS of the end of the
  headers, or the app's read raises RequestTimeout (JSON 408; the connection is closed). The idle
  time of a keep-alive connection, and the time to send the request line and headers, is bounded
  by gunicorn's `keepalive` (APP_KEEPALIVE_SECONDS): the connection is then closed without answer.
- Keep-alive reuse: at most APP_KEEPALIVE_MAX_REQUESTS requests per connection, and no keep-alive
  at all while the worker holds more than PRESSURE_SHARE of its APP_WORKER_CONNECTIONS slots: each
  response then closes its connection, so clients that hold idle connections cannot keep the
  slots that other clients need.
- Body reads wake the worker once per body, not once per segment: while a Content-Length body of
  up to MAX_RCVLOWAT bytes is awaited, the socket's SO_RCVLOWAT is the count still to come.
- Requests gunicorn's parser rejects (bad request line, method or version, over-long URI or
  header fields, bad chunked framing, ...) are answered like the app's own errors: a JSON error
  body with X-Request-ID, counted in app_request_count{endpoint="<rejected>"}, one access line.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sys
import termios
from time import monotonic
from typing import Any

import gevent
import gunicorn.workers.ggevent
from gevent.server import StreamServer
from gevent.socket import wait_read
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http.body import LengthReader
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout

from labapi import extensions as ext
from labapi.config import load_settings
from labapi.errors import error_body
from labapi.metrics import Metrics, method_label
from labapi.request_id import HEADER as REQUEST_ID_HEADER
from labapi.request_id import accept_request_id

PRESSURE_SHARE = 0.5
MAX_ACCEPT = 32  # connections accepted per wake-up of the listening socket (gunicorn: 1)
# Largest SO_RCVLOWAT set while a body of known length is read: the kernel then wakes the worker
# once the rest of a small body has arrived, not for every segment a slow client sends. Kept well
# under half of the smallest default receive buffer (tcp_rmem default 128 KiB), which caps it.
MAX_RCVLOWAT = 16 * 1024

access_logger = logging.getLogger("labapi.access")

# gunicorn's own rejections: exception class -> (status, reason). Anything else is ours (500).
_REJECTIONS: tuple[tuple[type[BaseException], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Bad Request"),
)


def rejection_of(exc: BaseException) -> tuple[int, str] | None:
    """(status, reason) for an exception of gunicorn's request parser, None for anything else."""
    if isinstance(exc, http_errors.ConfigurationProblem):
        return None
    for cls, status, reason in _REJECTIONS:
        if isinstance(exc, cls):
            return status, reason
    return None


def _socket_bytes_needed(reader: Any, size: int) -> int:
    """Bytes that must still come from the socket before `reader.read(size)` can return: 0 when
    unknown (not a Content-Length body read from a socket). Never more than the read needs, so a
    receive low-water mark set to it cannot make a complete body wait."""
    if not isinstance(reader, LengthReader) or not isinstance(reader.unreader, SocketUnreader):
        return 0
    buffered = reader.unreader.buf
    buffered.seek(0, os.SEEK_END)
    return max(0, min(size, reader.length) - buffered.tell())


def _wait_for_bytes(sock: Any, needed: int) -> None:
    """Wait until `needed` bytes are queued on `sock` (or it reached EOF or failed): one wake-up,
    however many segments they come in. Returns at once when they are there already."""
    queued = bytearray(4)
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, queued)
        if int.from_bytes(queued, sys.byteorder) >= needed:
            return
        # The low-water mark counts what is queued already: readable once the whole rest is there.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, needed)
    except OSError:
        return  # the read that follows reports a broken socket
    try:
        wait_read(sock.fileno())
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


class _DeadlineReader:
    """Wraps a request body reader: every read must end before `deadline` (time.monotonic).

    While a read of a Content-Length body waits for at most MAX_RCVLOWAT more bytes, the socket's
    SO_RCVLOWAT is that count: a body trickled a few bytes at a time wakes the worker once (when it
    is complete, the client closes, or the deadline passes) instead of once per segment."""

    __slots__ = ("deadline", "reader", "request", "seconds")

    def __init__(self, reader: Any, request: Any, seconds: float) -> None:
        self.reader = reader
        self.request = request
        self.seconds = seconds
        self.deadline = monotonic() + seconds

    def _read(self, size: int) -> bytes:
        needed = _socket_bytes_needed(self.reader, size)
        if 1 < needed <= MAX_RCVLOWAT:
            _wait_for_bytes(self.reader.unreader.sock, needed)
        data: bytes = self.reader.read(size)
        return data

    def _timeout(self) -> RequestTimeout:
        self.request.force_close()  # the rest of the body is unread: the connection cannot be reused
        return RequestTimeout(f"the request body did not arrive within {self.seconds:g}s")

    def read(self, size: int) -> bytes:
        remaining = self.deadline - monotonic()
        if remaining <= 0:
            raise self._timeout()
        with gevent.Timeout(remaining, False):  # type: ignore[arg-type]  # False: end the block, raise nothing
            return self._read(size)
        raise self._timeout()  # reached only when the timer expired during the read


class _BatchAcceptServer(StreamServer):
    """gevent's StreamServer that keeps accepting up to MAX_ACCEPT queued connections per wake-up.

    gunicorn sets max_accept = 1 when there are several workers (to spread connections evenly);
    under a connection flood that makes each worker take one connection per turn of its event loop,
    and the listen queue grows while the pool has free slots (measured: 1,400 connections queued,
    900 free slots per worker). The pool-full check still applies to every accept.
    """

    @property
    def max_accept(self) -> int:
        return MAX_ACCEPT

    @max_accept.setter
    def max_accept(self, _value: int) -> None:
        pass


class LabGeventWorker(GeventWorker):
    """gunicorn's gevent worker with the bounds and the JSON rejections described above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = load_settings()
        self.body_timeout = settings.body_timeout_seconds
        self.keepalive_max_requests = settings.keepalive_max_requests
        self.pressure_connections = max(1, int(self.worker_connections * PRESSURE_SHARE))
        self.open_connections = 0

    def run(self) -> None:
        # GeventWorker.run builds its servers from this module-level name (worker process only).
        gunicorn.workers.ggevent.StreamServer = _BatchAcceptServer  # type: ignore[attr-defined]  # not in its stubs
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        self.open_connections += 1
        try:
            super().handle(listener, client, addr)
        finally:
            self.open_connections -= 1

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        if req.body is not None:
            req.body.reader = _DeadlineReader(req.body.reader, req, self.body_timeout)
        if req.req_number >= self.keepalive_max_requests or self.open_connections > self.pressure_connections:
            req.force_close()  # this response says Connection: close
        return super().handle_request(listener_name, req, sock, addr)

    def _metrics(self) -> Metrics | None:
        extensions = getattr(self.wsgi, "extensions", None)
        return extensions.get(ext.METRICS) if extensions else None

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        rejection = rejection_of(exc)
        if rejection is None:
            super().handle_error(req, client, addr, exc)
            return
        status, reason = rejection
        request = req if req is not None else getattr(exc, "req", None)
        method = getattr(request, "method", None) or ""
        client_id = None
        for name, value in getattr(request, "headers", None) or ():
            if name == "X-REQUEST-ID":
                client_id = value
        request_id = accept_request_id(client_id)
        message = (str(exc) or reason)[:200]
        metrics = self._metrics()
        if metrics is not None:
            metrics.count_rejected(method_label(method), status)
        access_logger.warning(
            "%s %s %d rejected by the HTTP parser: %s request_id=%s",
            method or "-",
            getattr(request, "path", None) or "-",
            status,
            message,
            request_id,
            extra={
                "method": method_label(method),
                "endpoint": "<rejected>",
                "status": status,
                "request_id": request_id,
                "error": type(exc).__name__,
                "detail": message,
            },
        )
        body = error_body(reason, message)
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{REQUEST_ID_HEADER}: {request_id}\r\n"
            f"Date: {util.http_date()}\r\n\r\n"
        )
        if method == "HEAD":
            body = b""  # Content-Length still says what a GET would have had
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            self.log.debug("Failed to send the rejection of a %s", type(exc).__name__)
