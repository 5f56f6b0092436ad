"""Where the budget reads from: the repository, and the pinned charts' defaults in it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# files/chart-defaults/<chart>-<version>/: values.json, and values.schema.json where the chart ships one.
CHART_DEFAULTS_DIR = ROOT / "files" / "chart-defaults"
