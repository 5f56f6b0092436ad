"""The SLO recording rules and alerts: rendered from group_vars, valid for promtool, unit-tested with promtool.

The promtool unit tests (tests/rules/*.test.yml) hold the behaviour: a full outage pages within 2 minutes,
a 2x burn does not page, slow burns open tickets, recovery resolves, rest fires nothing, the 1d window.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.conftest import ROOT
from tests.rules.conftest import DEFAULT_SLO, RETENTION_30D, SLO_30D, Render, render_playbook
from tests.support.prometheus import require_binary

HERE = Path(__file__).resolve().parent
RULE_FILES = ("recording_rules.yml", "alerting_rules.yml")
ALERTS = {
    "ApiAvailabilityFastBurn": ("page", "availability"),
    "ApiLatencyFastBurn": ("page", "latency"),
    "ApiAvailabilitySlowBurn": ("ticket", "availability"),
    "ApiLatencySlowBurn": ("ticket", "latency"),
    "ApiTargetDown": ("page", None),
    "ApiNotReady": ("page", None),
    "ApiNoTraffic": ("ticket", None),
    "ApiSaturation": ("ticket", None),
}
RECORD_NAME = re.compile(
    r"^slo:(sli_error:ratio_rate\d+[mhd]|burn_rate:ratio_rate\d+[mhd]|objective:ratio|sli:ratio_period"
    r"|error_budget_remaining:ratio|evaluation:timestamp_seconds|period:seconds|period_covered:seconds)$"
)


@pytest.fixture(autouse=True, scope="module")
def _needs_promtool() -> None:
    require_binary("promtool")


def promtool(*args: str, cwd: Path | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def load_rules(rules_dir: Path) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for name in RULE_FILES:
        for group in yaml.safe_load((rules_dir / name).read_text())["groups"]:
            rules.extend({**rule, "group": group["name"]} for rule in group["rules"])
    return rules


def run_unit_tests(rules_dir: Path, test_file: str, tmp_path: Path) -> None:
    for name in RULE_FILES:
        shutil.copy(rules_dir / name, tmp_path / name)
    shutil.copy(HERE / test_file, tmp_path / test_file)
    proc = promtool("test", "rules", test_file, cwd=tmp_path)
    assert proc.returncode == 0, f"promtool test rules {test_file}:\n{proc.stdout}\n{proc.stderr}"
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("fixture", ["rules_default", "rules_30d", "rules_1d"])
def test_promtool_check_rules(fixture: str, request: pytest.FixtureRequest) -> None:
    rules_dir: Path = request.getfixturevalue(fixture)
    proc = promtool("check", "rules", *(str(rules_dir / name) for name in RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


@pytest.mark.parametrize("window", ["7d"])
def test_other_windows_render_valid_rules(window: str, render_rules: Render) -> None:
    rules_dir = (
        render_rules(lab_slo={**DEFAULT_SLO, "window": window}, monitoring_prometheus_retention=window)
        / "rules"
    )
    proc = promtool("check", "rules", *(str(rules_dir / name) for name in RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"slo:sli_error:ratio_rate{window}" in (rules_dir / "recording_rules.yml").read_text()


@pytest.mark.parametrize("test_file", ["slo_30d_fast.test.yml", "slo_30d_slow.test.yml"])
def test_promtool_unit_tests_30d(test_file: str, rules_30d: Path, tmp_path: Path) -> None:
    run_unit_tests(rules_30d, test_file, tmp_path)


def test_promtool_unit_tests_1d(rules_1d: Path, tmp_path: Path) -> None:
    run_unit_tests(rules_1d, "slo_1d.test.yml", tmp_path)


def test_young_prometheus_at_the_default_spec(rules_default: Path, tmp_path: Path) -> None:
    """On a Prometheus minutes old, at the spec of group_vars: a full outage pages within 2 minutes and
    resolves within 10 minutes of recovery; a one-minute blip 40 minutes in opens no ticket."""
    run_unit_tests(rules_default, "slo_default_young.test.yml", tmp_path)


def test_every_pair_waits_for_data_covering_its_long_window(rules_default: Path, rules_30d: Path) -> None:
    """A range longer than the data behaves like a short one: each burn-rate pair is ANDed with
    slo:period_covered:seconds >= its long window, and only the outage branch (a short window) is not."""
    for rules_dir, longs in (
        (rules_default, {120, 720, 2880, 8640}),
        (rules_30d, {3600, 21600, 86400, 259200}),
    ):
        alerts = {r["alert"]: r["expr"] for r in load_rules(rules_dir) if "alert" in r}
        for name in (
            "ApiAvailabilityFastBurn",
            "ApiLatencyFastBurn",
            "ApiAvailabilitySlowBurn",
            "ApiLatencySlowBurn",
        ):
            gates = re.findall(r'slo:period_covered:seconds\{slo="(\w+)"\} >= (\d+)', alerts[name])
            assert len(gates) == 2, (name, alerts[name])
            assert {slo for slo, _ in gates} == {ALERTS[name][1]}
            assert {int(s) for _, s in gates} <= longs
        found = {
            int(s)
            for e in alerts.values()
            for s in re.findall(r"period_covered:seconds\{[^}]*\} >= (\d+)", e)
        }
        assert found == longs


def test_no_rule_range_is_longer_than_the_slo_window(rules_default: Path, rules_30d: Path) -> None:
    """The SLO window is the longest range in the rules: the retention check of lab_common holds them all."""
    units = {"m": 60, "h": 3600, "d": 86400}
    for rules_dir, window in ((rules_default, 86400), (rules_30d, 30 * 86400)):
        ranges = [
            int(n) * units[u]
            for r in load_rules(rules_dir)
            for n, u in re.findall(r"\[(\d+)([mhd])\]", r["expr"])
        ]
        assert max(ranges) == window


def test_outage_condition_is_what_pages_within_two_minutes(render_rules: Render, tmp_path: Path) -> None:
    """Without the near-total-outage branch (outage_error_ratio 1 = never), the Workbook pairs alone page
    too late and the 2-minute assertions of slo_30d_fast.test.yml fail."""
    rules_dir = (
        render_rules(
            lab_runbook_base_url="https://runbooks.test",
            lab_slo={**SLO_30D, "outage_error_ratio": 1},
            **RETENTION_30D,
        )
        / "rules"
    )
    for name in RULE_FILES:
        shutil.copy(rules_dir / name, tmp_path / name)
    shutil.copy(HERE / "slo_30d_fast.test.yml", tmp_path / "slo_30d_fast.test.yml")
    proc = promtool("test", "rules", "slo_30d_fast.test.yml", cwd=tmp_path)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "time: 6h1m" in output, output
    assert "time: 6h2m" in output, output


def test_windows_are_scaled(rules_30d: Path, rules_1d: Path) -> None:
    def records(rules_dir: Path) -> set[str]:
        return {r["record"] for r in load_rules(rules_dir) if "record" in r}

    burn_30d = {r.removeprefix("slo:burn_rate:ratio_rate") for r in records(rules_30d) if "burn_rate" in r}
    burn_1d = {r.removeprefix("slo:burn_rate:ratio_rate") for r in records(rules_1d) if "burn_rate" in r}
    assert burn_30d == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
    assert burn_1d == {"1m", "2m", "4m", "12m", "48m", "144m"}
    assert "slo:sli_error:ratio_rate30d" in records(rules_30d)
    assert "slo:sli_error:ratio_rate1d" in records(rules_1d)


def test_rule_names_labels_and_promql(rules_default: Path) -> None:
    rules = load_rules(rules_default)
    records = [r for r in rules if "record" in r]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert records
    for rule in records:
        assert RECORD_NAME.match(rule["record"]), rule["record"]
        # Set on the SLI rules; the rules derived from them select one SLO and keep its label.
        slo = rule.get("labels", {}).get("slo") or re.search(r'\{slo="(\w+)"\}', rule["expr"]).group(1)
        assert slo in {"availability", "latency"}
    for rule in rules:
        promql_parser.parse(rule["expr"])  # raises on a syntax error
    assert set(alerts) == set(ALERTS)
    for name, (severity, slo) in ALERTS.items():
        rule = alerts[name]
        assert rule["labels"]["severity"] == severity
        if slo:
            assert rule["labels"]["slo"] == slo
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert "$value" in rule["annotations"]["description"] or slo is None


def test_sli_selects_api_routes_only(rules_default: Path) -> None:
    """Every SLI selector: the app label, the /api/ routes; 5xx bad for availability; le=0.3 for latency."""
    for rule in load_rules(rules_default):
        if not rule.get("record", "").startswith("slo:sli_error:"):
            continue
        selectors: list[promql_parser.VectorSelector] = []
        promql_parser.walk(
            promql_parser.parse(rule["expr"]),
            lambda node, found=selectors: (
                found.append(node) if isinstance(node, promql_parser.VectorSelector) else None
            ),
        )
        assert selectors
        for selector in selectors:
            matchers = {m.name: m.value for m in selector.matchers.matchers}
            assert matchers["app"] == "flask-api"
            assert matchers["endpoint"] == "/api/.+"
        names = {s.name for s in selectors}
        if rule["labels"]["slo"] == "availability":
            assert names == {"app_request_count_total"}
            assert any(
                m.value == "5.." for s in selectors for m in s.matchers.matchers if m.name == "http_status"
            )
        else:
            assert names == {"app_request_latency_seconds_count", "app_request_latency_seconds_bucket"}
            assert any(m.value == "0.3" for s in selectors for m in s.matchers.matchers if m.name == "le")


def test_runbook_links_point_at_existing_runbooks(rules_default: Path) -> None:
    for rule in load_rules(rules_default):
        if "alert" not in rule:
            continue
        url = rule["annotations"]["runbook_url"]
        assert url == f"file://{ROOT}/docs/runbooks/{rule['alert']}.md"
        runbook = Path(url.removeprefix("file://"))
        assert runbook.is_file(), f"{rule['alert']}: missing runbook {runbook}"
        text = runbook.read_text()
        assert rule["alert"] in text
        assert "## Dashboard" in text, f"{runbook} must say which dashboard to look at"
        assert "## Logs" in text, f"{runbook} must give the log queries"


def test_rendered_by_render_playbook(rendered_dir: Path) -> None:
    """playbooks/render.yml (the Kubernetes platform's render) writes the same rule files."""
    rules_dir = rendered_dir / "monitoring" / "rules"
    proc = promtool("check", "rules", *(str(rules_dir / name) for name in RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({**DEFAULT_SLO, "window": "5d"}, "window must be one of: 1d, 7d, 14d, 28d, 30d, got: 5d"),
        ({**DEFAULT_SLO, "outage_error_ratio": 1.5}, "outage_error_ratio in (0, 1]"),
        ({**DEFAULT_SLO, "availability": {"objective": 100}}, "strictly between 0 and 100"),
        (
            {**DEFAULT_SLO, "latency": {"objective": 0, "threshold_seconds": 0.3}},
            "strictly between 0 and 100",
        ),
    ],
)
def test_bad_slo_spec_is_refused(slo: dict[str, Any], message: str, tmp_path: Path) -> None:
    proc = render_playbook(tmp_path, {"lab_slo": slo})
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not (tmp_path / "rules").exists()


@pytest.mark.parametrize(
    ("extra", "variable", "file"),
    [
        # Kubernetes: the chart's Prometheus keeps 24h on an emptyDir.
        ({"lab_slo": SLO_30D}, "monitoring_prometheus_retention=24h", "group_vars/all/resources.yml"),
        (
            {"lab_slo": {**DEFAULT_SLO, "window": "7d"}},
            "monitoring_prometheus_retention=24h",
            "resources.yml",
        ),
        ({"monitoring_prometheus_retention": "12h"}, "monitoring_prometheus_retention=12h", "resources.yml"),
        # Local: 7d.
        (
            {"lab_platform": "local", "lab_slo": SLO_30D},
            "monitoring_local_retention=7d",
            "group_vars/all/local.yml",
        ),
    ],
)
def test_window_longer_than_the_retention_is_refused(
    extra: dict[str, Any], variable: str, file: str, tmp_path: Path
) -> None:
    proc = render_playbook(tmp_path, extra)
    assert proc.returncode != 0, proc.stdout[-2000:]
    out = " ".join(proc.stdout.split())
    for needed in ("lab_slo.window=", variable, file):
        assert needed in out, out[-2000:]
    assert "Set lab_slo.window (group_vars/all/slo.yml) to at most the retention" in out
    assert not (tmp_path / "rules").exists()


@pytest.mark.parametrize(
    "extra",
    [
        {},  # the defaults: 1d window, 24h on Kubernetes
        {"lab_platform": "local", "lab_slo": {**DEFAULT_SLO, "window": "7d"}},  # 7d fits the local 7d
        {"lab_slo": SLO_30D, "monitoring_prometheus_retention": "4w2d"},
    ],
)
def test_window_within_the_retention_is_accepted(extra: dict[str, Any], render_rules: Render) -> None:
    # render_rules fails the test when the playbook fails; {} shares the run of rules_default (the same settings)
    assert (render_rules(**extra) / "rules" / "recording_rules.yml").is_file()
