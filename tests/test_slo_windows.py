"""One owner of the SLO window math: labtools.slo_windows, which the rules render through filter_plugins/slo.py and
the drills use for their deadlines (the rendered rules themselves: tests/rules)."""

from __future__ import annotations

import importlib.util

import pytest
from ansible.errors import AnsibleFilterError

from labtools import slo_windows
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("lab_filter_slo", ROOT / "filter_plugins" / "slo.py")
assert _spec
assert _spec.loader
filter_slo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filter_slo)
FILTERS = filter_slo.FilterModule().filters()


@pytest.mark.parametrize("window", ["1d", "7d", "14d", "15d", "28d", "30d"])
def test_the_rules_filter_is_the_module(window: str) -> None:
    assert FILTERS["slo_windows"](window) == slo_windows.for_rules(window)


def test_the_windows_of_a_1d_slo_are_the_documented_ones() -> None:
    """group_vars/all/slo.yml: 1d gives 2m/1m, 12m/1m, 48m/4m, 144m/12m."""
    rules = slo_windows.for_rules("1d")
    assert [(p["long"], p["short"], p["factor"]) for p in rules["pairs"]] == [
        ("2m", "1m", 14.4),
        ("12m", "1m", 6),
        ("48m", "4m", 3),
        ("144m", "12m", 1),
    ]
    assert rules["windows"] == ["1m", "2m", "4m", "12m", "48m", "144m"]
    assert (rules["period"], rules["period_seconds"], rules["outage_window"]) == ("1d", 86400, "1m")


def test_a_30d_slo_has_the_workbook_windows() -> None:
    rules = slo_windows.for_rules("30d")
    assert [(p["long"], p["short"]) for p in rules["pairs"]] == [
        ("1h", "5m"),
        ("6h", "30m"),
        ("1d", "2h"),
        ("3d", "6h"),
    ]


@pytest.mark.parametrize("window", ["30", "1w", "0d", "", None])
def test_a_window_that_is_not_days_is_refused_by_the_filter(window: object) -> None:
    with pytest.raises(AnsibleFilterError, match=r"lab_slo\.window must be a number of days like 30d"):
        FILTERS["slo_windows"](window)
