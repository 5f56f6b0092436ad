"""Helm values: the merge of user values over chart defaults, dotted look-ups, and the pinned charts' defaults.

The defaults live in files/chart-defaults/<chart>-<version>/ (values.json, and values.schema.json where the chart
ships one; see its README). The static tests read them through this module too.
"""

from __future__ import annotations

import json
from typing import Any

from scripts.resource_budget.errors import BudgetError
from scripts.resource_budget.paths import CHART_DEFAULTS_DIR


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, a null deletes, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = deep_merge(base.get(key), value)
        return merged
    return override


def get(values: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """values["a"]["b"] for "a.b", or default when a part is missing."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def chart_defaults(key: str, version: str) -> dict[str, Any]:
    """The default values of a pinned chart version."""
    path = CHART_DEFAULTS_DIR / f"{key}-{version}" / "values.json"
    if not path.is_file():
        raise BudgetError(
            f"no chart defaults for {key} {version} at {path} (see files/chart-defaults/README.md)"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def chart_schema(key: str, version: str) -> dict[str, Any] | None:
    """The values schema of a pinned chart version, None when the chart ships none."""
    path = CHART_DEFAULTS_DIR / f"{key}-{version}" / "values.schema.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
