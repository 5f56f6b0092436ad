"""What the app factory stores on the Flask app, each under one key, read back through typed accessors.

Flask keeps per-app state in two dicts, `app.config` and `app.extensions`; this module is the only place that
spells their keys. Import-light (types only under TYPE_CHECKING): the gunicorn worker class imports it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from labapi.config import Settings
    from labapi.db import SimulatedDatabase
    from labapi.faults import FaultState
    from labapi.metrics import Metrics

SETTINGS = "LABAPI_SETTINGS"  # in app.config: the validated Settings
METRICS = "labapi.metrics"  # the rest in app.extensions
DATABASE = "labapi.db"
FAULTS = "labapi.faults"
USERS_BODY = "labapi.users_body"  # GET /api/users's body, serialized once per app
CONTRACT = "labapi.contract"  # the OpenAPI document (labapi.contract), serialized once per app


def settings(app: Flask) -> Settings:
    value: Settings = app.config[SETTINGS]
    return value


def metrics(app: Flask) -> Metrics:
    value: Metrics = app.extensions[METRICS]
    return value


def database(app: Flask) -> SimulatedDatabase:
    value: SimulatedDatabase = app.extensions[DATABASE]
    return value


def faults(app: Flask) -> FaultState:
    value: FaultState = app.extensions[FAULTS]
    return value
