"""Kubernetes CPU and memory quantities, as millicores and MiB."""

from __future__ import annotations

import re
from typing import Any

from scripts.resource_budget.errors import BudgetError

_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$")
_MEM_FACTORS = {
    None: 1 / 2**20,
    "Ki": 1 / 2**10,
    "Mi": 1.0,
    "Gi": 2**10,
    "Ti": 2**20,
    "k": 1e3 / 2**20,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
    "T": 1e12 / 2**20,
}


def cpu_millis(value: Any) -> float:
    """Kubernetes CPU quantity -> millicores ("100m" -> 100, "0.5" -> 500, 1 -> 1000)."""
    match = _CPU.match(str(value).strip())
    if not match:
        raise BudgetError(f"not a CPU quantity: {value!r}")
    number = float(match.group(1))
    return number if match.group(2) else number * 1000


def memory_mib(value: Any) -> float:
    """Kubernetes memory quantity -> MiB ("128Mi" -> 128, "1Gi" -> 1024, "512M" -> 488.3)."""
    match = _MEM.match(str(value).strip())
    if not match:
        raise BudgetError(f"not a memory quantity: {value!r}")
    return float(match.group(1)) * _MEM_FACTORS[match.group(2)]
