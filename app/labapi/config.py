"""Settings from the environment, validated once at start-up.

Every setting is an environment variable (the names are part of the lab's contract, see
docs/ARCHITECTURE.md). A bad value raises ConfigError with one line per offending variable,
naming it, quoting the value and saying what it accepts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_BIND_RE = re.compile(r"^(unix:/\S+|(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5})$")


class ConfigError(ValueError):
    """One or more environment variables have invalid values."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The API's whole configuration (see app/README.md for the table)."""

    multiproc_dir: Path
    log_format: str = "json"
    log_level: str = "INFO"
    access_log_sample_rate: float = 0.01
    latency_slo_seconds: float = 0.3
    max_body_bytes: int = 65536
    db_retries: int = 1
    faults_file: Path | None = None
    faults_poll_seconds: float = 1.0
    bind: str = "127.0.0.1:8000"  # the image and the manifests set 0.0.0.0:8000 explicitly
    workers: int = 2
    worker_connections: int = 1000
    graceful_timeout: int = 30
    shutdown_drain_seconds: float = 5.0
    body_timeout_seconds: float = 10.0
    keepalive_seconds: int = 2
    keepalive_max_requests: int = 100


def _number[T](cast: Callable[[str], T], low: float, high: float, what: str) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(what) from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(what)
        return value

    return parse


def _choice(choices: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return value

    return parse


def _bind(raw: str) -> str:
    value = raw.strip()
    if not _BIND_RE.match(value) or (not value.startswith("unix:") and int(value.rsplit(":", 1)[1]) > 65535):
        raise ValueError("HOST:PORT (e.g. 127.0.0.1:8000, 0.0.0.0:8000, [::]:8000) or unix:/path")
    return value


def _directory(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("a directory path (required; the process must be able to write to it)")
    return Path(raw.strip())


def _file(raw: str) -> Path:
    path = Path(raw.strip())
    if not path.is_absolute():
        raise ValueError("an absolute file path (the fault document; it need not exist yet)")
    if path.is_dir():
        raise ValueError("a file path, not a directory (the fault document)")
    return path


# Former settings, now keys of the fault document (labapi.faults): refusing them at start-up keeps an
# old configuration from silently losing its faults.
RETIRED: dict[str, str] = {
    "APP_DB_FAILURE_RATE": "db_failure_rate",
    "APP_EXTRA_LATENCY_MS": "extra_latency_ms",
    "APP_FORCE_UNREADY": "force_unready",
}


# variable name -> (Settings field, parser). Parsers raise ValueError("<what is accepted>").
_SPEC: dict[str, tuple[str, Callable[[str], object]]] = {
    "APP_LOG_FORMAT": ("log_format", _choice(LOG_FORMATS)),
    "APP_LOG_LEVEL": ("log_level", _choice(LOG_LEVELS, upper=True)),
    "APP_ACCESS_LOG_SAMPLE_RATE": ("access_log_sample_rate", _number(float, 0, 1, "a number from 0 to 1")),
    "APP_LATENCY_SLO_SECONDS": (
        "latency_slo_seconds",
        _number(float, 0.001, 60, "a number of seconds from 0.001 to 60"),
    ),
    "APP_MAX_BODY_BYTES": (
        "max_body_bytes",
        _number(int, 1, 100 * 1024 * 1024, "an integer from 1 to 104857600"),
    ),
    "APP_DB_RETRIES": ("db_retries", _number(int, 0, 5, "an integer from 0 to 5")),
    "APP_FAULTS_FILE": ("faults_file", _file),
    "APP_FAULTS_POLL_SECONDS": (
        "faults_poll_seconds",
        _number(float, 0.1, 60, "a number of seconds from 0.1 to 60"),
    ),
    "APP_BIND": ("bind", _bind),
    "APP_WORKERS": ("workers", _number(int, 1, 64, "an integer from 1 to 64")),
    "APP_WORKER_CONNECTIONS": ("worker_connections", _number(int, 1, 100000, "an integer from 1 to 100000")),
    "APP_GRACEFUL_TIMEOUT": (
        "graceful_timeout",
        _number(int, 1, 3600, "an integer number of seconds from 1 to 3600"),
    ),
    "APP_SHUTDOWN_DRAIN_SECONDS": (
        "shutdown_drain_seconds",
        _number(float, 0, 300, "a number of seconds from 0 to 300"),
    ),
    "APP_BODY_TIMEOUT_SECONDS": (
        "body_timeout_seconds",
        _number(float, 0.1, 300, "a number of seconds from 0.1 to 300"),
    ),
    "APP_KEEPALIVE_SECONDS": (
        "keepalive_seconds",
        _number(int, 1, 300, "an integer number of seconds from 1 to 300"),
    ),
    "APP_KEEPALIVE_MAX_REQUESTS": (
        "keepalive_max_requests",
        _number(int, 1, 1000000, "an integer from 1 to 1000000"),
    ),
    "PROMETHEUS_MULTIPROC_DIR": ("multiproc_dir", _directory),
}

ENV_VARS: tuple[str, ...] = tuple(_SPEC)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError listing every bad variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    errors: list[str] = []
    for name, (field, parse) in _SPEC.items():
        raw = env.get(name)
        if raw is None or (raw.strip() == "" and name != "PROMETHEUS_MULTIPROC_DIR"):
            if name == "PROMETHEUS_MULTIPROC_DIR":
                errors.append(
                    f"{name} is not set: it is required (a writable directory for the metric files)"
                )
            continue
        try:
            values[field] = parse(raw)
        except ValueError as exc:
            errors.append(f"{name}={raw!r} is invalid: expected {exc}")
    for name, key in RETIRED.items():
        if name in env:
            errors.append(
                f"{name} is no longer a setting: faults are switched at run time in the fault document "
                f"(APP_FAULTS_FILE, key {key}; see app/README.md)"
            )
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return Settings(**values)  # type: ignore[arg-type]
