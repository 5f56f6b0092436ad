"""Static checks of files/dashboards/*.json and of the rendered Grafana provisioning."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from tests.dashboards.queries import (
    LOKI_UID,
    PROMETHEUS_UID,
    logql_problems,
    panels,
    queries,
    substitute,
    variable_as_promql,
    variable_queries,
)
from tests.rules.conftest import Render

# Metrics a dashboard may use: the API's families, the SLO recording rules, ALERTS, and cAdvisor's.
APP_METRICS = {
    "app_request_count_total",
    "app_request_latency_seconds_bucket",
    "app_request_latency_seconds_count",
    "app_active_requests",
    "app_fault",
    "app_faults_applied_timestamp_seconds",
}
CADVISOR_METRICS = {
    "container_cpu_usage_seconds_total",
    "container_spec_cpu_quota",
    "container_spec_cpu_period",
    "container_memory_working_set_bytes",
    "container_spec_memory_limit_bytes",
    "container_start_time_seconds",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL query reads (a __name__ regex is returned as "re:<regex>")."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(f"re:{matcher.value}")

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def test_uids_titles_descriptions_time(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids)), f"duplicate dashboard uids: {uids}"
    assert set(uids) == {"lab-api-overview", "lab-api-slo", "lab-api-logs"}
    for name, dashboard in dashboards.items():
        assert dashboard["title"], name
        assert len(dashboard["description"]) > 40, f"{name}: describe the dashboard"
        assert dashboard["time"]["from"].startswith("now-"), name
        assert dashboard["time"]["to"] == "now", name
        assert dashboard["refresh"] in {"10s", "30s", "1m", "5m"}, name
        assert "id" not in dashboard or dashboard["id"] is None, f"{name}: provisioned dashboards carry no id"
        panel_ids = [p["id"] for p in panels(dashboard)]
        assert len(panel_ids) == len(set(panel_ids)), f"{name}: duplicate panel ids"
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel.get("description"), f"{name}: panel {panel['title']!r} has no description"


def test_template_variables(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert "namespace" in variables, name
        assert variables["namespace"]["datasource"]["uid"] == PROMETHEUS_UID
        if name != "api-slo.json":
            assert variables["endpoint"]["includeAll"], name


def test_datasources_are_the_provisioned_uids(dashboards: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in dashboards.items():
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in {PROMETHEUS_UID, LOKI_UID}, f"{name}: {panel['title']}"
            for target in panel["targets"]:
                ds = target["datasource"]
                assert ds["uid"] in {PROMETHEUS_UID, LOKI_UID}
                assert ds["type"] == ("prometheus" if ds["uid"] == PROMETHEUS_UID else "loki")


def test_every_promql_parses_and_uses_known_metrics(
    dashboards: dict[str, dict[str, Any]], rules_default: Path
) -> None:
    records = {
        rule["record"]
        for file in ("recording_rules.yml",)
        for group in yaml.safe_load((rules_default / file).read_text())["groups"]
        for rule in group["rules"]
    }
    checked = 0
    for name, dashboard in dashboards.items():
        for query in [*queries(name, dashboard), *variable_queries(name, dashboard)]:
            if query.datasource != PROMETHEUS_UID:
                continue
            expr = substitute(query.expr)
            if query.panel.startswith("variable"):
                expr = variable_as_promql(expr)
            for metric in metric_names(expr):
                if metric.startswith("re:"):
                    pattern = metric.removeprefix("re:")
                    assert any(re.fullmatch(pattern, r) for r in records), (query.name, metric)
                elif metric.startswith("slo:"):
                    assert metric in records, f"{query.name}: {metric} is not a recording rule"
                else:
                    assert metric in APP_METRICS | CADVISOR_METRICS | {"ALERTS"}, f"{query.name}: {metric}"
            checked += 1
    assert checked >= 20


def test_every_logql_is_well_formed(dashboards: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, dashboard in dashboards.items():
        for query in queries(name, dashboard):
            if query.datasource != LOKI_UID:
                continue
            problems = logql_problems(substitute(query.expr))
            assert not problems, f"{query.name}: {problems} in {query.expr!r}"
            checked += 1
    assert checked >= 4


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ('{namespace="sre-lab", app="flask-api"', "unclosed"),
        ('{namespace="sre-lab", job="x"} | json', "unknown stream label 'job'"),
        ('sum(count_over_time({app="flask-api"} [1m])', "unclosed"),
        ('{app="flask-api} | json', "unterminated string"),
        ("rate(x[1m])", "no stream selector"),
    ],
)
def test_logql_checker_catches_mistakes(expr: str, problem: str) -> None:
    assert any(problem in p for p in logql_problems(expr))


def test_error_panels_link_to_logs_with_the_same_time_range(dashboards: dict[str, dict[str, Any]]) -> None:
    overview = dashboards["api-overview.json"]
    error_panels = [p for p in panels(overview) if "Error" in p["title"] or "slower" in p["title"]]
    assert error_panels
    for panel in error_panels:
        links = panel["fieldConfig"]["defaults"]["links"]
        assert any(
            "/d/lab-api-logs/" in link["url"] and "${__url_time_range}" in link["url"] for link in links
        ), panel["title"]


def test_slo_dashboard_shows_sli_objective_budget_burn_alerts(dashboards: dict[str, dict[str, Any]]) -> None:
    exprs = " ".join(q.expr for q in queries("api-slo.json", dashboards["api-slo.json"]))
    for needed in (
        "slo:sli:ratio_period",
        "slo:objective:ratio",
        "slo:error_budget_remaining:ratio",
        "slo:burn_rate:ratio_rate",
        "ALERTS",
    ):
        assert needed in exprs


def test_slo_dashboard_labels_the_budget_with_the_window_it_covers(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    """A young Prometheus (or one keeping less than the window) holds only part of the SLO window: every panel
    showing the SLI or the budget says so, and each SLO has a panel with the covered span and the window."""
    slo_panels = [p for p in panels(dashboards["api-slo.json"]) if p["type"] != "row"]
    budget_like = [
        p
        for p in slo_panels
        if any("error_budget_remaining" in t["expr"] or "sli:ratio_period" in t["expr"] for t in p["targets"])
    ]
    assert len(budget_like) == 5
    for panel in budget_like:
        assert "covered" in panel["title"], panel["title"]
        assert "covered by data" in panel["description"] or "cover" in panel["description"], panel["title"]
    for slo in ("availability", "latency"):
        coverage = [
            p
            for p in slo_panels
            if {t["expr"].split("{")[0] for t in p["targets"]}
            == {"slo:period_covered:seconds", "slo:period:seconds"}
            and all(f'slo="{slo}"' in t["expr"] for t in p["targets"])
        ]
        assert len(coverage) == 1, slo
        assert coverage[0]["title"].endswith("SLO window covered by data")
        assert coverage[0]["fieldConfig"]["defaults"]["unit"] == "dtdurations"


def test_overview_and_slo_dashboards_show_the_faults_in_effect(dashboards: dict[str, dict[str, Any]]) -> None:
    """A trainee sees when an incident started: a band of app_fault at the top, and an annotation per switch."""
    for name in ("api-overview.json", "api-slo.json"):
        dashboard = dashboards[name]
        top = min(panels(dashboard), key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
        assert top["type"] == "state-timeline", name
        assert "max by (fault) (app_fault{" in top["targets"][0]["expr"], name
        annotations = [a for a in dashboard["annotations"]["list"] if a.get("expr")]
        assert [a["name"] for a in annotations] == ["Fault switches"], name
        assert "app_faults_applied_timestamp_seconds" in annotations[0]["expr"]
        assert annotations[0]["enable"] is True
        assert annotations[0]["datasource"]["uid"] == PROMETHEUS_UID


def test_provisioning(provisioning_default: Path) -> None:
    datasources = yaml.safe_load((provisioning_default / "datasources.yml").read_text())
    by_uid = {d["uid"]: d for d in datasources["datasources"]}
    assert set(by_uid) == {PROMETHEUS_UID, LOKI_UID}
    assert by_uid[PROMETHEUS_UID]["type"] == "prometheus"
    assert by_uid[LOKI_UID]["type"] == "loki"
    assert by_uid[PROMETHEUS_UID]["url"] == "http://prometheus-server.monitoring.svc.cluster.local:80"
    assert by_uid[PROMETHEUS_UID]["isDefault"] is True
    providers = yaml.safe_load((provisioning_default / "dashboards.yml").read_text())
    assert providers["apiVersion"] == 1
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/lab"


def test_provisioning_urls_are_parameters(render_rules: Render) -> None:
    passed = (
        render_rules(
            _monitoring_grafana_prometheus_url="http://prom.example:9090",
            _monitoring_grafana_loki_url="http://loki.example:3100",
            _monitoring_grafana_dashboards_path="/srv/dashboards",
        )
        / "grafana"
    )
    by_uid = {d["uid"]: d for d in yaml.safe_load((passed / "datasources.yml").read_text())["datasources"]}
    assert by_uid[PROMETHEUS_UID]["url"] == "http://prom.example:9090"
    assert by_uid[LOKI_UID]["url"] == "http://loki.example:3100"
    providers = yaml.safe_load((passed / "dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/srv/dashboards"
