"""The burn-rate alert windows of the lab's SLOs: the Google SRE Workbook's pairs, scaled to the SLO window.

The one place this math lives. The rules are rendered from it (filter_plugins/slo.py, the filter ``slo_windows`` in
roles/monitoring/templates/rules/_slo.j2) and the drills derive their deadlines from it (drills/plan.py), so a
drill's deadline follows the rules the lab runs.

Google SRE Workbook, "Alerting on SLOs", Table 5-8 (+ the 1d/2h ticket of the chapter's example), for a 30d
window. For another window the windows are scaled by window/30d (same budget shares, same burn factors), rounded to
whole minutes (Python's round: half to even), never below 1m.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DAY_MINUTES = 1440
WORKBOOK_PERIOD_MINUTES = 30 * DAY_MINUTES


@dataclass(frozen=True)
class Pair:
    """A multiwindow burn-rate condition: both windows' burn rates above `factor` (windows in minutes)."""

    severity: str  # "page" or "ticket"
    long_minutes: int
    short_minutes: int
    factor: float


# For a 30d window. The factors keep their written form (14.4, 6, 3, 1): the rules print them as they are.
WORKBOOK: tuple[Pair, ...] = (
    Pair("page", 60, 5, 14.4),
    Pair("page", 360, 30, 6),
    Pair("ticket", 1440, 120, 3),
    Pair("ticket", 4320, 360, 1),
)
_WINDOW = re.compile(r"^([1-9][0-9]*)d$")


def period_minutes(window: object) -> int:
    """The SLO window (lab_slo.window, a number of days like 30d) in minutes; ValueError for anything else."""
    match = _WINDOW.match(str(window))
    if match is None:
        raise ValueError(f"lab_slo.window must be a number of days like 30d; got {window!r}")
    return int(match.group(1)) * DAY_MINUTES


def scale(minutes: int, period: int) -> int:
    """A Workbook window (minutes, for 30d) scaled to an SLO window of `period` minutes: whole minutes, at least 1."""
    return max(1, round(minutes * period / WORKBOOK_PERIOD_MINUTES))


def duration(minutes: int) -> str:
    """Minutes as a Prometheus duration in one unit: 1d, 6h, 12m."""
    if minutes % DAY_MINUTES == 0:
        return f"{minutes // DAY_MINUTES}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def pairs(window: object) -> list[Pair]:
    """The Workbook's pairs scaled to the SLO window `window` (e.g. "1d"), fast page first."""
    period = period_minutes(window)
    return [
        Pair(p.severity, scale(p.long_minutes, period), scale(p.short_minutes, period), p.factor)
        for p in WORKBOOK
    ]


def outage_minutes(window: object) -> int:
    """The near-total-outage condition's window: the short window of the fast page's pair."""
    return pairs(window)[0].short_minutes


def for_rules(window: object) -> dict[str, Any]:
    """What the rule templates need (roles/monitoring/templates/rules/_slo.j2), durations written for Prometheus."""
    period = period_minutes(window)
    scaled = pairs(window)
    minutes = sorted({m for p in scaled for m in (p.long_minutes, p.short_minutes)})
    return {
        "period_minutes": period,
        "period": duration(period),
        "period_seconds": period * 60,
        "pairs": [
            {
                "severity": p.severity,
                "long": duration(p.long_minutes),
                "short": duration(p.short_minutes),
                "factor": p.factor,
                "long_seconds": p.long_minutes * 60,
            }
            for p in scaled
        ],
        # Every window the alerts need, shortest first, without duplicates.
        "windows": [duration(m) for m in minutes],
        "outage_window": duration(outage_minutes(window)),
    }
