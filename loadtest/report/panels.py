"""Panel queries of the Grafana dashboards (files/dashboards/*.json), ready for a Prometheus range query.

The visual report draws a panel from the dashboard's own targets, so it shows what Grafana would, and a
broken dashboard query breaks the report too. Grafana's variables are replaced the way Grafana would:
``$app`` / ``$namespace`` by the run's labels, ``$endpoint`` by "all", ``$__rate_interval`` by
max(4 x scrape interval, range step + scrape interval) and ``$__range`` by the run's length.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "files" / "dashboards"


class PanelError(LookupError):
    """The dashboard or the panel the report draws is missing."""


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    targets: list[Target]


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in items:
        found.append(item)
        found.extend(_panels(item.get("panels", [])))
    return found


def panel(dashboard: str, title_prefix: str, directory: Path = DASHBOARDS, *, containing: str = "") -> Panel:
    """The first panel of ``<dashboard>.json`` whose title starts with ``title_prefix`` (and contains ``containing``)."""
    path = directory / f"{dashboard}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PanelError(f"cannot read the dashboard {path}: {err}") from None
    for item in _panels(data.get("panels", [])):
        title = str(item.get("title", ""))
        if title.startswith(title_prefix) and containing in title and item.get("targets"):
            targets = [Target(t["expr"], t.get("legendFormat", "")) for t in item["targets"] if t.get("expr")]
            return Panel(dashboard, item["title"], targets)
    raise PanelError(f"the dashboard {path.name} has no panel titled {title_prefix!r}...{containing!r}")


def rate_interval(scrape_seconds: float, step_seconds: float) -> str:
    """Grafana's $__rate_interval: max(4 x scrape interval, step + scrape interval)."""
    return f"{math.ceil(max(4 * scrape_seconds, step_seconds + scrape_seconds))}s"


def substitute(expr: str, *, app: str, namespace: str, rate: str, range_seconds: float) -> str:
    values = {
        "$__rate_interval": rate,
        "$__range": f"{max(1, math.ceil(range_seconds))}s",
        "$namespace": namespace,
        "$endpoint": ".+",
        "$app": app,
    }
    for name, value in values.items():  # longest names first: $__rate_interval before $app
        expr = expr.replace(name, value)
    leftover = re.findall(r"\$\w+", expr)
    if leftover:
        raise PanelError(f"the panel query uses variables the report cannot fill: {', '.join(leftover)}")
    return expr


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's legendFormat: ``{{label}}`` replaced by the series' labels."""
    if not template or template == "__auto":
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template).strip()
