"""Fixtures for the dashboard suites: the dashboards, and the rules/provisioning rendered from group_vars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.rules.conftest import render_rules, rules_default  # noqa: F401 - re-exported fixtures

DASHBOARD_DIR = ROOT / "files" / "dashboards"


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    """Every files/dashboards/*.json by file name."""
    found = {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}
    assert found, f"no dashboards in {DASHBOARD_DIR}"
    return found


@pytest.fixture(scope="session")
def provisioning_default(render_rules) -> Path:  # noqa: F811
    """The Grafana provisioning rendered with group_vars (Kubernetes platform defaults)."""
    return render_rules() / "grafana"
