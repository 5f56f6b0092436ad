"""Faults switched at run time: the fault document, its validation, and the per-worker watcher.

The document (YAML; JSON is valid YAML) lives at APP_FAULTS_FILE: a file under lab_dir on the local
platform, a ConfigMap volume on Kubernetes. Each worker re-reads it every APP_FAULTS_POLL_SECONDS in
a background thread (a greenlet under gunicorn's gevent workers, which patch threading and
time.sleep) and puts it in effect when its bytes changed.

Why poll the content from a background greenlet:
- content, not mtime/inode: a ConfigMap volume updates by swapping the `..data` symlink, so the path's
  own stat may not move, and a same-second rewrite can keep the mtime; reading < 1 KiB once a second
  per worker costs nothing measurable;
- in the background, not on the request path: an idle worker still applies the change and reports it
  in app_fault (a drill waits for every worker), and the hot path stays free of file I/O;
- polling, not inotify: inotify misses symlink swaps unless the directory is watched, is not
  available on every filesystem, and adds a dependency for no gain at a 1 s interval.

A bad document (unknown key, wrong type, out of range, not YAML, unreadable file) changes nothing: the
worker keeps its last good faults. One line per instance is logged and counted
(app_fault_reload_errors_total): the first worker to see a given bad document claims it with an
exclusive marker file in the metrics directory (per instance, wiped at start-up), the others stay quiet.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger("labapi.faults")

# Routes extra_latency_route may name ("" = every /api/* route). Bounded, so it can be a metric label.
LATENCY_ROUTES: tuple[str, ...] = ("/api/users", "/api/echo", "/api/error")
ROUTE_ALL = "all"  # the app_fault_latency_route label value for extra_latency_route ""
MAX_DOCUMENT_BYTES = 64 * 1024

REASON_INVALID = "invalid"
REASON_UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults in effect. The defaults are "no fault"."""

    db_failure_rate: float = 0.0
    extra_latency_ms: int = 0
    extra_latency_route: str = ""
    force_unready: bool = False
    users_error_rate: float = 0.0

    def gauges(self) -> dict[str, float]:
        """The numeric faults, as app_fault{fault=...} values."""
        return {
            "db_failure_rate": self.db_failure_rate,
            "extra_latency_ms": float(self.extra_latency_ms),
            "force_unready": 1.0 if self.force_unready else 0.0,
            "users_error_rate": self.users_error_rate,
        }

    def latency_applies_to(self, route: str | None) -> bool:
        """True when extra latency is added to a request of `route` (a route template)."""
        return self.extra_latency_ms > 0 and (
            not self.extra_latency_route or self.extra_latency_route == route
        )


NO_FAULTS = Faults()
FAULT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Faults))


class FaultDocumentError(ValueError):
    """The fault document cannot be used; `reason` is "invalid" or "unreadable"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _rate(key: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
        or math.isnan(value)
    ):
        raise ValueError(f"{key}: {value!r} is not a number from 0 to 1")
    return float(value)


def _milliseconds(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60000:
        raise ValueError(f"{key}: {value!r} is not an integer number of ms from 0 to 60000")
    return value


def _route(key: str, value: object) -> str:
    # null is refused like any other value that is not "" or a route: "" is the one "every route"
    # (roles/app_deploy/README.md), and a bare `extra_latency_route:` in YAML is more likely a slip.
    if not isinstance(value, str) or value not in ("", *LATENCY_ROUTES):
        raise ValueError(
            f'{key}: {value!r} is not "" (every /api/* route) or one of {", ".join(LATENCY_ROUTES)}'
        )
    return value


def _flag(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not true or false")
    return value


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "db_failure_rate": _rate,
    "extra_latency_ms": _milliseconds,
    "extra_latency_route": _route,
    "force_unready": _flag,
    "users_error_rate": _rate,
}


def validate(document: object) -> Faults:
    """The Faults of a decoded document, or FaultDocumentError("invalid") listing every problem."""
    if document is None:
        return NO_FAULTS
    if not isinstance(document, Mapping):
        raise FaultDocumentError(
            REASON_INVALID, f"the document is a {type(document).__name__}, not a mapping"
        )
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in document.items():
        parse = _PARSERS.get(key) if isinstance(key, str) else None
        if parse is None:
            problems.append(f"unknown key {key!r} (known: {', '.join(FAULT_KEYS)})")
            continue
        try:
            values[key] = parse(key, value)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise FaultDocumentError(REASON_INVALID, "; ".join(problems))
    return Faults(**values)


def parse(content: bytes) -> Faults:
    """Decode and validate a fault document (YAML, so JSON too)."""
    try:
        document = yaml.load(content, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise FaultDocumentError(REASON_INVALID, f"not YAML: {' '.join(str(exc).split())}") from None
    return validate(document)


def read(path: Path) -> bytes:
    """The document's bytes (following symlinks), or FaultDocumentError("unreadable")."""
    try:
        with path.open("rb") as stream:
            content = stream.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise FaultDocumentError(REASON_UNREADABLE, f"cannot read it: {exc.strerror or exc}") from None
    if len(content) > MAX_DOCUMENT_BYTES:
        raise FaultDocumentError(REASON_INVALID, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    return content


class FaultState:
    """The faults in effect in this worker, the document watcher, and what it reports.

    `current` is an immutable Faults replaced as a whole, so readers on the request path need no lock.
    `on_apply(faults)` is called in the applying thread for every change (metrics, the database).
    `on_reject(reason)` is called once per instance for every bad document (the error counter).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        claim_dir: Path,
        poll_seconds: float = 1.0,
        on_apply: Callable[[Faults], None] = lambda _faults: None,
        on_reject: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self.path = path
        self.poll_seconds = poll_seconds
        self.current: Faults = NO_FAULTS
        self.applied_at: float = time.time()
        self._claim_dir = claim_dir
        self._on_apply = on_apply
        self._on_reject = on_reject
        self._seen: object = None  # the last content looked at (bytes), or the last error's key
        self._good_identity: str = ""  # the file identity of the last good document
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading -------------------------------------------------------------------------------
    def load_initial(self) -> None:
        """At start-up: a missing document means no faults; a bad one is rejected (no faults kept)."""
        self._on_apply(self.current)
        if self.path is None:
            logger.info("no fault document (APP_FAULTS_FILE is not set): no faults")
            return
        if not self.path.exists():
            self._seen = ("missing",)
            logger.info("no fault document at %s yet: no faults until it appears", self.path)
            return
        self.check()

    def check(self) -> bool:
        """Re-read the document; apply it when it changed and is good. True when the faults changed."""
        if self.path is None:
            return False
        try:
            content = read(self.path)
        except FaultDocumentError as exc:
            if isinstance(self._seen, tuple) and self._seen[0] == "missing" and not self.path.exists():
                return False  # missing since start-up: still no document, nothing to report
            key = ("error", exc.reason, str(exc), self._good_identity)
            if key != self._seen:
                self._seen = key
                self._reject(exc, key)
            return False
        if content == self._seen:
            return False
        self._seen = content
        try:
            faults = parse(content)
        except FaultDocumentError as exc:
            self._reject(exc, (content, self._identity()))
            return False
        self._good_identity = self._identity()
        if faults == self.current:
            return False
        self.current = faults
        self.applied_at = time.time()
        self._on_apply(faults)
        logger.info(
            "faults now in effect: %s",
            ", ".join(f"{k}={v!r}" for k, v in asdict(faults).items()),
            extra={"faults": asdict(faults), "pid": os.getpid()},
        )
        return True

    def _identity(self) -> str:
        try:
            st = os.stat(self.path) if self.path is not None else None
        except OSError:
            return ""
        return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}" if st else ""

    def _reject(self, exc: FaultDocumentError, key: object) -> None:
        """Log and count a bad document once per instance: the first worker to claim it does."""
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
        try:
            fd = os.open(
                self._claim_dir / f"faults-rejected-{digest}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600
            )
        except FileExistsError:
            return  # another worker of this instance reported it
        except OSError:
            pass  # no claim possible (directory gone): report from every worker rather than never
        else:
            os.close(fd)
        self._on_reject(exc.reason)
        logger.error(
            "fault document %s rejected (%s), keeping the faults in effect: %s",
            self.path,
            exc.reason,
            exc,
            extra={"error_type": "fault_document", "reason": exc.reason},
        )

    # -- watching ------------------------------------------------------------------------------
    def start(self) -> None:
        """Watch the document in the background (a greenlet under gevent)."""
        if self.path is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._watch, name="labapi-faults", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # the watcher must survive anything; the request path is unaffected
                logger.exception("fault watcher: unexpected error, retrying in %ss", self.poll_seconds)
