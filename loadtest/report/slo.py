"""The SLO objectives of a run, from the ``lab_slo`` spec the role copied into run.json.

The window the error budget covers is not read here: it comes from the recording rules (``sli.SliSource``),
the same place the alerts take it from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ReportError(RuntimeError):
    """The run's metadata or the query results do not allow a verdict."""


@dataclass(frozen=True)
class Slo:
    availability_objective: float  # ratio, e.g. 0.995
    latency_objective: float  # ratio, e.g. 0.99
    latency_threshold: float  # seconds, an exact bucket bound

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Slo:
        """From group_vars ``lab_slo`` (objectives in percent)."""
        try:
            availability = float(spec["availability"]["objective"]) / 100
            latency = float(spec["latency"]["objective"]) / 100
            threshold = float(spec["latency"]["threshold_seconds"])
        except (KeyError, ValueError, TypeError) as err:
            raise ReportError(f"lab_slo is incomplete or malformed ({err!r}): {spec!r}") from None
        for name, value in (("availability", availability), ("latency", latency)):
            if not 0 < value < 1:
                raise ReportError(
                    f"lab_slo.{name}.objective must be a percentage between 0 and 100; got {value * 100}"
                )
        return cls(availability, latency, threshold)

    def holds(self, error_ratio: float | None, under_threshold: float | None) -> bool | None:
        """Both SLOs met (None when there is no traffic to judge)."""
        if error_ratio is None or under_threshold is None:
            return None
        return error_ratio <= 1 - self.availability_objective and under_threshold >= self.latency_objective
