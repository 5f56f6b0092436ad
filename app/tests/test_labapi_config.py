"""Configuration from the environment: defaults, validation, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from labapi.config import ENV_VARS, ConfigError, Settings, load_settings

BASE = {"PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics"}


def test_defaults_match_the_contract():
    settings = load_settings(BASE)
    assert settings == Settings(
        multiproc_dir=Path("/tmp/metrics"),
        log_format="json",
        log_level="INFO",
        access_log_sample_rate=0.01,
        latency_slo_seconds=0.3,
        max_body_bytes=65536,
        db_retries=1,
        faults_file=None,
        faults_poll_seconds=1.0,
        bind="127.0.0.1:8000",  # loopback unless told otherwise: the image and manifests set 0.0.0.0
        workers=2,
        worker_connections=1000,
        graceful_timeout=30,
        shutdown_drain_seconds=5.0,
        body_timeout_seconds=10.0,
        keepalive_seconds=2,
        keepalive_max_requests=100,
    )


def test_every_contract_variable_is_read():
    assert set(ENV_VARS) == {
        "APP_LOG_FORMAT",
        "APP_BODY_TIMEOUT_SECONDS",
        "APP_KEEPALIVE_SECONDS",
        "APP_KEEPALIVE_MAX_REQUESTS",
        "APP_LOG_LEVEL",
        "APP_ACCESS_LOG_SAMPLE_RATE",
        "APP_LATENCY_SLO_SECONDS",
        "APP_MAX_BODY_BYTES",
        "APP_DB_RETRIES",
        "APP_FAULTS_FILE",
        "APP_FAULTS_POLL_SECONDS",
        "APP_BIND",
        "APP_WORKERS",
        "APP_WORKER_CONNECTIONS",
        "APP_GRACEFUL_TIMEOUT",
        "APP_SHUTDOWN_DRAIN_SECONDS",
        "PROMETHEUS_MULTIPROC_DIR",
    }


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("APP_LOG_FORMAT", "TEXT", "log_format", "text"),
        ("APP_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("APP_ACCESS_LOG_SAMPLE_RATE", "1.0", "access_log_sample_rate", 1.0),
        ("APP_ACCESS_LOG_SAMPLE_RATE", "0", "access_log_sample_rate", 0.0),
        ("APP_LATENCY_SLO_SECONDS", "0.5", "latency_slo_seconds", 0.5),
        ("APP_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("APP_DB_RETRIES", "0", "db_retries", 0),
        ("APP_FAULTS_FILE", "/run/lab/faults.yaml", "faults_file", Path("/run/lab/faults.yaml")),
        ("APP_FAULTS_POLL_SECONDS", "0.25", "faults_poll_seconds", 0.25),
        ("APP_BIND", "127.0.0.1:18000", "bind", "127.0.0.1:18000"),
        ("APP_BIND", "[::]:8000", "bind", "[::]:8000"),
        ("APP_BIND", "unix:/run/app.sock", "bind", "unix:/run/app.sock"),
        ("APP_WORKERS", "4", "workers", 4),
        ("APP_WORKER_CONNECTIONS", "50", "worker_connections", 50),
        ("APP_GRACEFUL_TIMEOUT", "10", "graceful_timeout", 10),
        ("APP_SHUTDOWN_DRAIN_SECONDS", "0", "shutdown_drain_seconds", 0.0),
        ("APP_SHUTDOWN_DRAIN_SECONDS", "2.5", "shutdown_drain_seconds", 2.5),
    ],
)
def test_valid_values(name, value, field, expected):
    assert getattr(load_settings({**BASE, name: value}), field) == expected


@pytest.mark.parametrize(
    ("name", "value", "accepts"),
    [
        ("APP_LOG_FORMAT", "xml", "json, text"),
        ("APP_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
        ("APP_ACCESS_LOG_SAMPLE_RATE", "1.5", "from 0 to 1"),
        ("APP_ACCESS_LOG_SAMPLE_RATE", "-0.1", "from 0 to 1"),
        ("APP_ACCESS_LOG_SAMPLE_RATE", "half", "from 0 to 1"),
        ("APP_LATENCY_SLO_SECONDS", "0", "0.001 to 60"),
        ("APP_MAX_BODY_BYTES", "64k", "integer"),
        ("APP_MAX_BODY_BYTES", "0", "integer from 1"),
        ("APP_DB_RETRIES", "-1", "0 to 5"),
        ("APP_DB_RETRIES", "1.5", "0 to 5"),
        ("APP_FAULTS_FILE", "faults.yaml", "absolute file path"),
        ("APP_FAULTS_FILE", "/tmp", "not a directory"),
        ("APP_FAULTS_POLL_SECONDS", "0", "0.1 to 60"),
        ("APP_FAULTS_POLL_SECONDS", "often", "0.1 to 60"),
        ("APP_BIND", "8000", "HOST:PORT"),
        ("APP_BIND", "0.0.0.0:99999", "HOST:PORT"),
        ("APP_BIND", "host:port", "HOST:PORT"),
        ("APP_WORKERS", "0", "1 to 64"),
        ("APP_WORKERS", "two", "1 to 64"),
        ("APP_WORKER_CONNECTIONS", "0", "1 to 100000"),
        ("APP_GRACEFUL_TIMEOUT", "0", "1 to 3600"),
        ("APP_SHUTDOWN_DRAIN_SECONDS", "-1", "0 to 300"),
        ("PROMETHEUS_MULTIPROC_DIR", "  ", "directory"),
    ],
)
def test_invalid_values_name_the_variable_and_what_it_accepts(name, value, accepts):
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, name: value})
    message = str(info.value)
    assert f"{name}={value!r}" in message
    assert accepts in message


def test_multiproc_dir_is_required():
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR is not set"):
        load_settings({})


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, "APP_WORKERS": "0", "APP_LOG_FORMAT": "xml"})
    assert "APP_WORKERS" in str(info.value)
    assert "APP_LOG_FORMAT" in str(info.value)


def test_empty_values_mean_the_default():
    assert load_settings({**BASE, "APP_WORKERS": "", "APP_LOG_LEVEL": " "}).workers == 2


def test_app_refuses_a_metrics_dir_prometheus_client_does_not_write_to(lab_factory, tmp_path):
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR"):
        lab_factory(multiproc_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("APP_DB_FAILURE_RATE", "db_failure_rate"),
        ("APP_EXTRA_LATENCY_MS", "extra_latency_ms"),
        ("APP_FORCE_UNREADY", "force_unready"),
    ],
)
def test_retired_fault_settings_stop_the_start_and_point_at_the_fault_document(name, key):
    with pytest.raises(ConfigError) as excinfo:
        load_settings({**BASE, name: "0"})
    message = str(excinfo.value)
    assert f"{name} is no longer a setting" in message
    assert f"APP_FAULTS_FILE, key {key}" in message
