"""One home for the app's per-app state keys (labapi/extensions.py) and one name for the app factory."""

from __future__ import annotations

import re
from pathlib import Path

import labapi
import labapi.factory
from labapi import extensions

PACKAGE = Path(labapi.__file__).resolve().parent
# app.config / app.extensions indexed by a string literal; Flask's own MAX_CONTENT_LENGTH is Flask's key.
LITERAL_KEY = re.compile(
    r"""\b(?:config|extensions)(?:\[|\.get\(|\.setdefault\()\s*["'](?!MAX_CONTENT_LENGTH)"""
)


def test_no_module_but_extensions_spells_a_key():
    spelled = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "extensions.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if LITERAL_KEY.search(line)
    ]
    assert spelled == []


def test_the_factory_stores_what_the_accessors_read(lab):
    assert extensions.settings(lab.app) is lab.app.config[extensions.SETTINGS]
    assert extensions.database(lab.app).ping()
    assert extensions.faults(lab.app).current is not None
    assert extensions.metrics(lab.app) is lab.app.extensions[extensions.METRICS]
    assert lab.app.extensions[extensions.USERS_BODY] == lab.client.get("/api/users").get_data()


def test_one_name_for_the_app_factory():
    assert labapi.create_app is labapi.factory.create_app
    assert not hasattr(labapi.factory, "build_app")
