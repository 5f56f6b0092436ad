"""The filter ``slo_windows``: the SLO window's burn-rate alert windows, for the rule templates.

    {%- set w = lab_slo.window | slo_windows -%}   {# w.pairs, w.windows, w.period, w.outage_window, ... #}

The math is labtools.slo_windows (installed into the lab's virtualenv by requirements/lab.txt), which the drills use
too: roles/monitoring/templates/rules/_slo.j2 renders the rules from it. ansible.cfg (filter_plugins) and Molecule's
settings (.config/molecule/config.yml) point Ansible at this directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from labtools import slo_windows as _slo
except ModuleNotFoundError as _exc:  # a Python without the lab's packages: say how to get them
    _MISSING: str | None = (
        f"the filter slo_windows needs the lab's Python package labtools ({_exc}): run `make venv` (or pip install "
        "-r requirements/lab.txt from the repository root) and run ansible-playbook from .venv/bin"
    )
else:
    _MISSING = None


def slo_windows(window: object) -> dict[str, Any]:
    """lab_slo.window -> labtools.slo_windows.for_rules(window)."""
    if _MISSING is not None:
        raise AnsibleFilterError(_MISSING)
    try:
        return _slo.for_rules(window)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"slo_windows": slo_windows}
