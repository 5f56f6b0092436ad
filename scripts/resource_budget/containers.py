"""One container of the lab with its requests and limits, and the parsing of a `resources:` block."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scripts.resource_budget.errors import BudgetError
from scripts.resource_budget.quantities import cpu_millis, memory_mib

MINIKUBE_NODES = 1  # DaemonSets (Alloy) run one pod per node


@dataclass
class Container:
    group: str  # monitoring | app | stress | system
    workload: str
    container: str
    source: str  # where its resources come from
    count: int
    requests: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    init: bool = False


def resources(res: Any, where: str) -> tuple[dict[str, float], dict[str, float]]:
    """A container's `resources:` as (requests, limits) in millicores and MiB; every one must be set."""
    res = res or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    missing = [
        f"{kind}.{key}"
        for kind, d in (("requests", req), ("limits", lim))
        for key in ("cpu", "memory")
        if key not in d
    ]
    if missing:
        raise BudgetError(
            f"{where}: no {', '.join(missing)} (every container of the lab must have requests and limits)"
        )
    return (
        {"cpu": cpu_millis(req["cpu"]), "memory": memory_mib(req["memory"])},
        {"cpu": cpu_millis(lim["cpu"]), "memory": memory_mib(lim["memory"])},
    )
