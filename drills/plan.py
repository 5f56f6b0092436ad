"""A drill's plan: validate the ``lab_drills`` data and derive each expected alert's deadline from the rules.

The burn-rate alerts are generated from ``lab_slo`` (roles/monitoring/templates/rules/_slo.j2) with the Workbook
windows scaled to the SLO window by labtools.slo_windows; the deadlines here use the same module, so a deadline
follows the rules the lab runs. The other alerts' windows and ``for:`` durations are in ``OTHER_ALERTS``
(tests/e2e/local_lab/test_drills_local.py checks them against the rules Prometheus runs).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from labapi.faults import FAULT_KEYS, FaultDocumentError, validate

from labtools import slo_windows

PLATFORMS = ("minikube", "kubernetes", "local")
SLO_ALERTS = {
    "ApiAvailabilityFastBurn": ("availability", "page"),
    "ApiLatencyFastBurn": ("latency", "page"),
    "ApiAvailabilitySlowBurn": ("availability", "ticket"),
    "ApiLatencySlowBurn": ("latency", "ticket"),
}
# Alerts that are not burn rates: (severity, longest range in the expression in seconds, for: in seconds).
# ApiNotReady's range is monitoring_not_ready_window (passed in); None marks it.
OTHER_ALERTS: dict[str, tuple[str, int | None, int]] = {
    "ApiNotReady": ("page", None, 0),
    "ApiTargetDown": ("page", 0, 120),
    "ApiNoTraffic": ("ticket", 300, 600),
    "ApiSaturation": ("ticket", 120, 120),
}
KNOWN_ALERTS = {**{k: v[1] for k, v in SLO_ALERTS.items()}, **{k: v[0] for k, v in OTHER_ALERTS.items()}}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class PlanError(ValueError):
    """The drill data or the settings do not make a drill; the message says what to change."""


def seconds(value: object, what: str) -> int:
    """A duration: an integer number of seconds, or 90s / 5m / 1h30m."""
    if isinstance(value, bool):
        raise PlanError(f"{what} must be a duration (seconds, or 90s / 5m / 1h30m); got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise PlanError(f"{what} must not be negative; got {value!r}")
        return math.ceil(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or match is None:
        raise PlanError(f"{what} must be a duration (seconds, or 90s / 5m / 1h30m); got {value!r}")
    hours, minutes, secs = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


@dataclass(frozen=True)
class Branch:
    """One condition of a burn-rate alert: the error ratio over `long_s` and `short_s` above `ratio`."""

    long_s: int
    short_s: int
    ratio: float
    # The pairs are silent until slo:period_covered:seconds reaches their long window (alerting_rules.yml.j2);
    # the near-total-outage branch is not gated.
    gated: bool = True

    def gate_s(self) -> int:
        """Seconds of data (slo:period_covered:seconds) the branch needs before it can fire."""
        return self.long_s if self.gated else 0


@dataclass(frozen=True)
class Rules:
    """What the deadlines depend on: the SLO spec, Prometheus's intervals, ApiNotReady's window."""

    slo: dict[str, Any]
    scrape_s: int
    eval_s: int
    not_ready_window_s: int

    def pairs(self) -> list[slo_windows.Pair]:
        """The Workbook's pairs scaled to lab_slo.window, as the rules have them (labtools.slo_windows)."""
        try:
            return slo_windows.pairs(self.slo["window"])
        except ValueError as exc:
            raise PlanError(str(exc)) from None

    def budget(self, slo: str) -> float:
        return 1 - float(self.slo[slo]["objective"]) / 100

    def branches(self, slo: str, severity: str) -> list[Branch]:
        """The alert's conditions: the scaled pairs of its severity (and, on the page, the near-total outage)."""
        budget = self.budget(slo)
        pairs = self.pairs()
        found = [
            Branch(p.long_minutes * 60, p.short_minutes * 60, p.factor * budget)
            for p in pairs
            if p.severity == severity
        ]
        if severity == "page":  # the near-total-outage branch over the 14.4x pair's short window
            fast = pairs[0]
            outage = max(float(self.slo["outage_error_ratio"]), fast.factor * budget)
            found.append(Branch(fast.short_minutes * 60, fast.short_minutes * 60, outage, gated=False))
        return found

    def lag_s(self) -> int:
        """Scrape, rate() and evaluation lag between the fault and a rule seeing it."""
        return 2 * self.scrape_s + self.eval_s + 10

    def branch_times(self, alert: str, bad_share: float) -> list[tuple[Branch, float]]:
        """Each branch of a burn-rate alert that `bad_share` can trip, with the seconds it needs to fire.

        With a clean history the error ratio over a window W, t seconds into the fault, is bad_share * t / W:
        a branch fires when its long window crosses the threshold (the short one crosses it first).
        """
        slo, severity = SLO_ALERTS[alert]
        if not 0 < bad_share <= 1:
            raise PlanError(f"bad_share must be in (0, 1] for {alert}; got {bad_share!r}")
        return [
            (b, b.ratio * b.long_s / bad_share) for b in self.branches(slo, severity) if bad_share > b.ratio
        ]

    def coverage_needed(self, alert: str, bad_share: float) -> int:
        """Seconds of data Prometheus must hold at the fault so that `alert` waits for errors, not for data.

        Below it every branch that `bad_share` can trip is still silent when its error ratio crosses the threshold
        (its long window is not covered yet): the alert would fire late, only once enough data exists.
        """
        branch = self.data_bound_branch(alert, bad_share)
        return 0 if branch is None else math.ceil(max(0.0, branch[0].gate_s() - branch[1]))

    def data_bound_branch(self, alert: str, bad_share: float) -> tuple[Branch, float] | None:
        """The branch (and its seconds to fire) that needs the least data to fire on time; None: not a burn rate."""
        times = self.branch_times(alert, bad_share) if alert in SLO_ALERTS else []
        return min(times, key=lambda bt: max(0.0, bt[0].gate_s() - bt[1])) if times else None

    def detect_within(self, alert: str, bad_share: float, covered_s: float = math.inf) -> int:
        """Seconds after the fault is in effect by which `alert` fires, at `bad_share` bad SLI requests."""
        if alert in SLO_ALERTS:
            times = [max(t, b.gate_s() - covered_s) for b, t in self.branch_times(alert, bad_share)]
            if not times:
                slo, severity = SLO_ALERTS[alert]
                need = min(b.ratio for b in self.branches(slo, severity))
                raise PlanError(
                    f"{alert} cannot fire at bad_share {bad_share:g}: its lowest threshold is an error ratio of "
                    f"{need:.4g} (lab_slo)"
                )
            return math.ceil(min(times)) + self.lag_s()
        _severity, window, hold = OTHER_ALERTS[alert]
        window = self.not_ready_window_s if window is None else window
        return window + hold + self.lag_s()

    def resolve_within(self, alert: str, bad_share: float, fault_s: int, covered_s: float = math.inf) -> int:
        """Seconds after the fault is off by which `alert` resolves, when the fault lasted up to `fault_s`.

        Only the branches that fire within `fault_s` matter (with `covered_s` of data at the fault, a pair whose
        long window is not covered by then stays silent); each resolves once its short window forgets the fault.
        """
        if alert in SLO_ALERTS:
            fired = [
                b for b, t in self.branch_times(alert, bad_share) if max(t, b.gate_s() - covered_s) <= fault_s
            ]
            window = max((b.short_s for b in fired), default=0)
        else:
            _severity, rng, _hold = OTHER_ALERTS[alert]
            window = self.not_ready_window_s if rng is None else rng
        return window + self.lag_s() + 20


@dataclass(frozen=True)
class Drill:
    """One drill, resolved for a platform: what to break, what must fire, by when."""

    name: str
    description: str
    faults: dict[str, Any]
    expected: list[str]
    allowed: list[str]
    strict: bool
    bad_share: float | None
    deadline_s: int
    resolve_deadline_s: int
    runbooks: dict[str, str] = field(default_factory=dict)
    coverage_needed_s: int = 0  # data Prometheus must hold at the fault (a young lab's pairs are silent)
    covered_s: float | None = None  # data Prometheus held at the plan (None: not asked)
    warmup_s: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "faults": self.faults,
            "expected": self.expected,
            "allowed": self.allowed,
            "strict": self.strict,
            "bad_share": self.bad_share,
            "deadline_seconds": self.deadline_s,
            "resolve_deadline_seconds": self.resolve_deadline_s,
            "runbooks": self.runbooks,
            "coverage_needed_seconds": self.coverage_needed_s,
            "covered_seconds": self.covered_s,
            "warmup_seconds": self.warmup_s,
            "takes_at_most_seconds": self.takes_at_most_s(),
        }

    def takes_at_most_s(self) -> int:
        """Warm-up, the detect deadline, the resolve deadline: the longest the drill runs (plus two fault switches)."""
        return self.warmup_s + self.deadline_s + self.resolve_deadline_s


def check_faults(doc: object, where: str) -> dict[str, Any]:
    """The fault document of a drill, checked by the app's own validator (labapi.faults; roles/app_deploy/README.md,
    "Faults at run time")."""
    if not isinstance(doc, dict):
        raise PlanError(
            f"{where}.faults must be a mapping of faults (keys: {', '.join(FAULT_KEYS)}); got {doc!r}"
        )
    try:
        validate(doc)
    except FaultDocumentError as exc:
        raise PlanError(f"{where}.faults: {exc}") from None
    return dict(doc)


def _alert_list(value: object, where: str, platform: str) -> list[str]:
    """Names from a list of names or of {alert, platforms}; only those that apply to `platform`."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PlanError(f"{where} must be a list of alert names or of {{alert, platforms}}; got {value!r}")
    names = []
    for item in value:
        entry = {"alert": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or set(entry) - {"alert", "platforms"} or "alert" not in entry:
            raise PlanError(f"{where}: each entry is an alert name or {{alert, platforms}}; got {item!r}")
        if entry["alert"] not in KNOWN_ALERTS:
            raise PlanError(
                f"{where}: unknown alert {entry['alert']!r}; the lab's alerts: {', '.join(KNOWN_ALERTS)}"
            )
        platforms = entry.get("platforms", list(PLATFORMS))
        if not isinstance(platforms, list) or not set(platforms) <= set(PLATFORMS):
            raise PlanError(f"{where}: platforms must be a list of {', '.join(PLATFORMS)}; got {platforms!r}")
        if platform in platforms:
            names.append(entry["alert"])
    return names


_KEYS = {
    "name",
    "description",
    "faults",
    "expected",
    "allowed",
    "strict",
    "bad_share",
    "deadline",
    "resolve_deadline",
}


def validate_all(drills: object) -> list[dict[str, Any]]:
    """Check the shape of every drill of ``lab_drills`` (names unique, known keys)."""
    if not isinstance(drills, list) or not drills:
        raise PlanError("lab_drills must be a non-empty list of drills (group_vars/all/drills.yml)")
    seen: set[str] = set()
    for i, drill in enumerate(drills):
        where = f"lab_drills[{i}]"
        if not isinstance(drill, dict):
            raise PlanError(f"{where} must be a mapping; got {drill!r}")
        name = drill.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise PlanError(f"{where}.name must be lowercase letters, digits and '-'; got {name!r}")
        if name in seen:
            raise PlanError(f"lab_drills: the name {name!r} is used twice")
        seen.add(name)
        unknown = set(drill) - _KEYS
        if unknown:
            raise PlanError(
                f"lab_drills {name!r}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_KEYS))}"
            )
        if not isinstance(drill.get("description"), str) or not drill["description"].strip():
            raise PlanError(f"lab_drills {name!r}: description (text) is required")
        check_faults(drill.get("faults", {}), f"lab_drills {name!r}")
        for platform in PLATFORMS:
            _alert_list(drill.get("expected"), f"lab_drills {name!r}: expected", platform)
            _alert_list(drill.get("allowed"), f"lab_drills {name!r}: allowed", platform)
    return drills


class NotYet(PlanError):
    """The lab's Prometheus holds too little data for the drill's alerts to fire by their deadline: wait."""


def clock(t: float) -> str:
    """A moment as the local clock time with its zone, and UTC: 13:02:10 CET (12:02:10 UTC)."""
    local = datetime.fromtimestamp(t).astimezone()
    utc = datetime.fromtimestamp(t, UTC)
    day = "" if local.date() == datetime.now().astimezone().date() else local.strftime(" on %Y-%m-%d")
    return f"{local.strftime('%H:%M:%S %Z')}{day} ({utc.strftime('%H:%M:%S')} UTC)"


def span(value: float) -> str:
    """Seconds as 48m, 13m43s, 45s."""
    total = max(0, math.ceil(value))
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def _one(raw: dict[str, Any], platform: str, rules: Rules, max_s: int, covered_s: float) -> Drill:
    """The drill `raw` (already validated) for `platform`, with data covering `covered_s` at the fault."""
    name = raw["name"]
    where = f"lab_drills {name!r}"
    expected = _alert_list(raw.get("expected"), f"{where}: expected", platform)
    allowed = [a for a in _alert_list(raw.get("allowed"), f"{where}: allowed", platform) if a not in expected]
    bad_share = raw.get("bad_share")
    if bad_share is not None and (isinstance(bad_share, bool) or not isinstance(bad_share, int | float)):
        raise PlanError(f"{where}: bad_share must be a number in (0, 1]; got {bad_share!r}")
    deadline = raw.get("deadline", "auto")
    if deadline == "auto":
        if not expected:
            raise PlanError(f"{where}: a drill that expects no alert needs a deadline (how long to watch)")
        if any(a in SLO_ALERTS for a in expected) and bad_share is None:
            raise PlanError(
                f"{where}: deadline auto for a burn-rate alert needs bad_share (the share of bad SLI requests)"
            )
        full_s = max(rules.detect_within(a, float(bad_share or 0)) for a in expected)
        deadline_s = max(rules.detect_within(a, float(bad_share or 0), covered_s) for a in expected)
    else:
        full_s = deadline_s = seconds(deadline, f"{where}: deadline")
    resolve = raw.get("resolve_deadline", "auto")
    if resolve == "auto":
        resolve_s = max(
            [rules.resolve_within(a, float(bad_share or 0), deadline_s, covered_s) for a in expected] or [0]
        )
    else:
        resolve_s = seconds(resolve, f"{where}: resolve_deadline")
    if deadline_s < 1:
        raise PlanError(f"{where}: the deadline must be at least 1 second")
    if full_s + resolve_s > max_s:
        raise PlanError(
            f"{where}: the drill needs {full_s}s to detect and {resolve_s}s to resolve with these rules "
            f"(lab_slo.window {rules.slo['window']}), more than drill_max_seconds ({max_s}s). Bring the lab up "
            "with a shorter SLO window (lab_slo.window: 1d) or raise drill_max_seconds."
        )
    need = max([rules.coverage_needed(a, float(bad_share)) for a in expected if bad_share is not None] or [0])
    return Drill(
        name=name,
        description=raw["description"].strip(),
        faults=dict(raw.get("faults") or {}),
        expected=expected,
        allowed=allowed,
        strict=bool(raw.get("strict", False)),
        bad_share=None if bad_share is None else float(bad_share),
        deadline_s=deadline_s,
        resolve_deadline_s=resolve_s,
        coverage_needed_s=need,
    )


def plan(
    drills: object,
    name: str,
    platform: str,
    rules: Rules,
    runbook_base: str,
    max_s: int,
    covered_s: float | None = None,
    warmup_s: int = 0,
    now: float | None = None,
) -> Drill:
    """The drill `name` for `platform`, with its deadlines; PlanError says what is wrong.

    `covered_s` is how much of the SLO window Prometheus's data covers now (slo:period_covered:seconds); the fault
    comes `warmup_s` later. When that is too little for the expected alerts to fire by their deadline (a pair is
    silent until the data covers its long window), NotYet says when the drill can run and which drills can now.
    """
    available = validate_all(drills)
    if platform not in PLATFORMS:
        raise PlanError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    by_name = {d["name"]: d for d in available}
    if name not in by_name:
        raise PlanError(
            f"unknown drill {name!r}; the drills of lab_drills (group_vars/all/drills.yml): {', '.join(by_name)}"
        )
    at_fault = math.inf if covered_s is None else covered_s + warmup_s
    drill = _one(by_name[name], platform, rules, max_s, at_fault)
    if covered_s is not None and at_fault < drill.coverage_needed_s:
        now = time.time() if now is None else now
        wait = drill.coverage_needed_s - at_fault
        why = []
        for alert in drill.expected:
            found = rules.data_bound_branch(alert, drill.bad_share or 0)
            if found and rules.coverage_needed(alert, drill.bad_share or 0) > at_fault:
                branch, fire_s = found
                why.append(
                    f"{alert} fires {span(fire_s)} into the fault at the earliest (its {span(branch.long_s)}/"
                    f"{span(branch.short_s)} pair), and only once Prometheus's data covers its {span(branch.long_s)} "
                    "window (each burn-rate pair is silent until then)"
                )
        ready = []
        for other in available:
            try:
                if _one(other, platform, rules, max_s, at_fault).coverage_needed_s <= at_fault:
                    ready.append(other["name"])
            except PlanError:
                continue
        raise NotYet(
            f"drill {name} cannot succeed yet: {'; '.join(why)}. Prometheus holds {span(covered_s)} of data now "
            f"({span(at_fault)} at the fault, after the {span(warmup_s)} warm-up; lab_slo.window "
            f"{rules.slo['window']}): the lab must have run {span(wait)} longer. Run it at {clock(now + wait)} "
            "or later. "
            + (f"Drills that can run now: {', '.join(ready)}." if ready else "No drill can run yet.")
        )
    return Drill(
        **{
            **drill.__dict__,
            "runbooks": {a: f"{runbook_base.rstrip('/')}/{a}.md" for a in drill.expected + drill.allowed},
            "covered_s": covered_s,
            "warmup_s": warmup_s,
        }
    )
