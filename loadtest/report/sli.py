"""The one source of each SLI: the recording rules Prometheus has loaded (rendered from rules/_slo.j2).

The report does not build SLI selectors of its own. It asks Prometheus for its recording rules
(``/api/v1/rules``), takes the shortest-window ``slo:sli_error:ratio_rate<w>`` rule of each SLO (label ``slo``),
and re-evaluates that expression over the window it needs by replacing ``[<w>]``. The error budget's window is
the one ``slo:sli:ratio_period`` is built on, and the page/ticket burn-rate thresholds are read from the alert
rules' ``slo:burn_rate:ratio_rate<w>{slo=...} > <factor>`` comparisons. So a threshold written ``le="1.0"``,
a changed selector or a changed SLO window reach the report exactly as they reach the alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from loadtest.prom import Prometheus

SLOS = ("availability", "latency")
_SLI_RULE = re.compile(r"^slo:sli_error:ratio_rate(\w+)$")
_PERIOD_REF = re.compile(r"slo:sli_error:ratio_rate(\w+)")
_BURN_CMP = re.compile(r"slo:burn_rate:ratio_rate(\w+)\{[^}]*\}\s*>\s*([0-9.]+)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_API_SELECTOR = re.compile(r"\b(app_\w+)\{([^}]*)\}")
_APP_MATCHER = re.compile(r'\bapp\s*=\s*"[^"]*"')


class SliError(RuntimeError):
    """Prometheus has not loaded the lab's SLO rules, so there is no SLI to evaluate."""


def seconds(duration: str) -> float:
    """Seconds of a Prometheus duration such as ``5m``, ``1h30m``, ``30d``."""
    parts = _DURATION_PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise SliError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def scrape_job_only(expr: str, job: str) -> str:
    """``expr`` over one scrape job's series of the API: in every selector of the API's own metrics (``app_*``) the
    ``app`` matcher becomes ``job="<job>"``. The stress-only scrape job's series carry no ``app`` label (so the rules,
    alerts and dashboards, which select ``app``, never count the API twice); recorded series (``slo:*``) and other
    selectors are left as they are. ``job`` empty: ``expr`` unchanged."""
    if not job:
        return expr

    matcher = f'job="{job}"'

    def swap(match: re.Match[str]) -> str:
        return match.group(1) + "{" + _APP_MATCHER.sub(lambda _: matcher, match.group(2)) + "}"

    return _API_SELECTOR.sub(swap, expr)


def split_ratio(expr: str) -> tuple[str, str]:
    """(numerator, denominator) of ``a / b`` split at the last top-level ``/`` (outside (), {}, [] and quotes)."""
    depth, quote, cut = 0, "", -1
    for i, char in enumerate(expr):
        if quote:
            if char == quote and expr[i - 1] != "\\":
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "/" and depth == 0:
            cut = i
    if cut < 0:
        raise SliError(f"the SLI rule is not a ratio: {expr}")
    return expr[:cut].strip(), expr[cut + 1 :].strip()


@dataclass(frozen=True)
class Sli:
    """One SLO's error-ratio expression, with ``{range}`` where the rule had its window."""

    name: str
    error_ratio: str
    total: str  # the denominator: a rate() of all eligible events

    def ratio(self, range_: str) -> str:
        return self.error_ratio.replace("{range}", range_)

    def count(self, range_: str) -> str:
        """All eligible events over the range (the denominator with increase() for rate())."""
        return self.total.replace("rate(", "increase(").replace("{range}", range_)

    def latency_buckets(self, range_: str, namespace: str) -> str:
        """``sum by (le)`` of the latency histogram's buckets over the range, with the SLI's own selector."""
        match = re.search(r"(\w+)_count\{([^}]*)\}", self.total)
        if match is None:
            raise SliError(f"the {self.name} SLI does not count a histogram: {self.total}")
        metric, selector = match.groups()
        return f'sum by (le) (increase({metric}_bucket{{namespace="{namespace}",{selector}}}[{range_}]))'


@dataclass(frozen=True)
class SliSource:
    slis: dict[str, Sli]
    period: str  # the SLO window the error budget covers, as the rules spell it (e.g. "30d")
    burn_thresholds: dict[str, list[float]]  # severity -> burn-rate factors of the alert rules

    @property
    def period_seconds(self) -> float:
        return seconds(self.period)

    @classmethod
    def from_rules(cls, records: list[dict[str, Any]], alerts: list[dict[str, Any]]) -> SliSource:
        best: dict[str, tuple[float, str, str]] = {}
        period = ""
        for rule in records:
            name, labels = rule.get("name", ""), rule.get("labels") or {}
            match = _SLI_RULE.match(name)
            if match and labels.get("slo") in SLOS:
                window = match.group(1)
                length = seconds(window)
                if labels["slo"] not in best or length < best[labels["slo"]][0]:
                    best[labels["slo"]] = (length, window, rule["query"])
            if name == "slo:sli:ratio_period" and not period:
                ref = _PERIOD_REF.search(rule.get("query", ""))
                period = ref.group(1) if ref else ""
        missing = [s for s in SLOS if s not in best]
        if missing or not period:
            raise SliError(
                "Prometheus has not loaded the lab's SLO recording rules (slo:sli_error:ratio_rate<window> for "
                f"{', '.join(missing) or 'each SLO'}, slo:sli:ratio_period): deploy the monitoring role first"
            )
        slis = {}
        for slo, (_, window, query) in best.items():
            expr = query.replace(f"[{window}]", "[{range}]")
            _, total = split_ratio(expr)
            slis[slo] = Sli(slo, expr, total)
        thresholds: dict[str, list[float]] = {}
        for rule in alerts:
            severity = (rule.get("labels") or {}).get("severity", "")
            for _window, factor in _BURN_CMP.findall(rule.get("query", "")):
                thresholds.setdefault(severity, [])
                if float(factor) not in thresholds[severity]:
                    thresholds[severity].append(float(factor))
        return cls(slis, period, {k: sorted(v, reverse=True) for k, v in thresholds.items()})

    def for_job(self, job: str) -> SliSource:
        """The same SLIs over one scrape job's series only (see ``scrape_job_only``).

        A stress run against the lab's own API and Prometheus has the API scraped every second by the stress-only
        job, whose series carry no ``app`` label: the report reads that job, so each step has its 1 s samples.
        """
        if not job:
            return self
        slis = {
            name: Sli(sli.name, scrape_job_only(sli.error_ratio, job), scrape_job_only(sli.total, job))
            for name, sli in self.slis.items()
        }
        return SliSource(slis, self.period, self.burn_thresholds)

    @classmethod
    def load(cls, prom: Prometheus) -> SliSource:
        return cls.from_rules(prom.rules("record"), prom.rules("alert"))


def series_value(result: list[dict[str, Any]], app: str, namespace: str) -> float | None:
    """The value of the series for this app and namespace (the rules aggregate by namespace, app)."""
    for item in result:
        metric = item.get("metric", {})
        if metric.get("app", app) == app and metric.get("namespace", namespace) == namespace:
            return float(item["value"][1])
    return None
