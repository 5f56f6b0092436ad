"""Fixtures for the API's tests.

prometheus_client picks multiprocess mode from PROMETHEUS_MULTIPROC_DIR when it is imported and
keeps each metric file open per process, so the whole in-process suite shares one metrics
directory, set here before anything imports prometheus_client. Tests compare values before and
after the traffic they send (the counters of earlier tests are still there).
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

_MULTIPROC_DIR = Path(tempfile.mkdtemp(prefix="labapi-test-metrics-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_MULTIPROC_DIR)

import pytest  # noqa: E402
from prometheus_client import values  # noqa: E402

if values.ValueClass is values.MutexValue:  # imported before this conftest ran: switch it now
    values.ValueClass = values.get_value_class()

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from labapi import create_app, extensions  # noqa: E402
from labapi.config import Settings  # noqa: E402
from labapi.faults import FaultState  # noqa: E402
from labapi.metrics import multiprocess_registry  # noqa: E402

MULTIPROC_DIR = _MULTIPROC_DIR


def make_settings(**overrides: object) -> Settings:
    """Test defaults: no faults, everything logged; override any field."""
    base = Settings(multiproc_dir=MULTIPROC_DIR, access_log_sample_rate=1.0)
    return replace(base, **overrides)  # type: ignore[arg-type]


class ClosingClient(FlaskClient):
    """A test client that consumes and closes every response, as gunicorn does (the metrics and
    access lines are written when the response is closed)."""

    def open(self, *args: object, **kwargs: object):  # type: ignore[override]
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


class LabApp:
    """An app built in-process, its test client and its captured log lines."""

    def __init__(
        self, settings: Settings, *, fast_db: bool = True, faults: dict[str, object] | None = None
    ) -> None:
        if faults is not None:
            path = Path(tempfile.mkdtemp(prefix="labapi-test-faults-")) / "faults.yaml"
            path.write_text(json.dumps(faults))
            settings = replace(settings, faults_file=path)
        self.settings = settings
        self.log = io.StringIO()
        self.app: Flask = create_app(settings, log_stream=self.log)
        self.app.testing = False  # exercise the real error handlers (no exception propagation)
        if fast_db:
            database = extensions.database(self.app)
            database.sleep = lambda _seconds: None
            database.rng = random.Random(1234)
        self.app.test_client_class = ClosingClient
        self.client: FlaskClient = self.app.test_client()

    @property
    def faults(self) -> FaultState:
        return extensions.faults(self.app)

    def set_faults(self, document: object) -> bool:
        """Replace the fault document (atomically, as the lab does) and re-read it now."""
        path = self.settings.faults_file
        assert path is not None, "build the app with faults={...} to give it a fault document"
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(document if isinstance(document, str) else json.dumps(document))
        temporary.replace(path)
        return self.faults.check()

    def log_lines(self) -> list[str]:
        return [line for line in self.log.getvalue().splitlines() if line.strip()]

    def json_logs(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log_lines()]

    def access_logs(self) -> list[dict[str, object]]:
        return [rec for rec in self.json_logs() if rec.get("logger") == "labapi.access"]


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., LabApp]]:
    built: list[LabApp] = []

    def factory(fast_db: bool = True, faults: dict[str, object] | None = None, **overrides: object) -> LabApp:
        lab = LabApp(make_settings(**overrides), fast_db=fast_db, faults=faults)
        built.append(lab)
        return lab

    yield factory
    for lab in built:  # stop the fault watchers (background threads) of this test's apps
        lab.faults.stop()


@pytest.fixture
def lab(lab_factory: Callable[..., LabApp]) -> LabApp:
    return lab_factory()


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample, aggregated over the processes' files (0 when absent)."""
    value = multiprocess_registry(MULTIPROC_DIR).get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@pytest.fixture
def metric() -> Callable[[str, dict[str, str] | None], float]:
    return sample
