"""The app's JSON provider gives the same bytes as Flask's default one (compact, unsorted)."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider
from labapi.json_provider import CompactJSONProvider

PAYLOADS = [
    {"status": "success", "data": {"b": 1, "a": [1, 2.5, None, True], "é": "ü\u2028"}},
    [{"id": 101, "name": "John Doe"}, {"id": 102}],
    "text",
    0,
    None,
    {"when": datetime.date(2026, 11, 24), "amount": decimal.Decimal("1.10"), "id": uuid.UUID(int=7)},
]


def _default_app() -> Flask:
    app = Flask("reference")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("payload", PAYLOADS)
def test_jsonify_bytes_are_the_default_providers(payload):
    reference = _default_app()
    app = Flask("compact")
    app.json = CompactJSONProvider(app)
    assert isinstance(reference.json, DefaultJSONProvider)
    with reference.app_context():
        expected = reference.json.response(payload)
    with app.app_context():
        got = app.json.response(payload)
    assert got.get_data() == expected.get_data()
    assert got.mimetype == expected.mimetype == "application/json"
    assert app.json.dumps(payload) == reference.json.dumps(payload)


def test_keyword_arguments_and_several_values_still_work():
    app = Flask("compact")
    app.json = CompactJSONProvider(app)
    with app.app_context():
        assert app.json.response(a=1, b=2).get_data() == b'{"a":1,"b":2}\n'
        assert app.json.response(1, 2).get_data() == b"[1,2]\n"


def test_the_app_uses_it(lab):
    assert isinstance(lab.app.json, CompactJSONProvider)
