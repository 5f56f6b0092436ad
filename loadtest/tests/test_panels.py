"""Dashboard panel queries as the report uses them: Grafana's variables filled, missing panels a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.report import panels


def test_panel_queries_come_from_the_dashboard_with_variables_filled() -> None:
    panel = panels.panel("api-overview", "Latency p50")
    assert [t.legend for t in panel.targets] == ["p50", "p90", "p99"]
    expr = panels.substitute(
        panel.targets[2].expr, app="flask-api", namespace="sre-lab", rate="60s", range_seconds=90
    )
    assert expr == (
        "histogram_quantile(0.99, sum by (le) (rate(app_request_latency_seconds_bucket"
        '{app="flask-api", namespace="sre-lab", endpoint=~".+"}[60s])))'
    )
    burn = panels.panel("api-slo", "Latency (", containing="burn rate")
    assert "slo:burn_rate:ratio_rate" in burn.targets[0].expr


def test_a_missing_panel_or_unknown_variable_breaks_the_report(tmp_path: Path) -> None:
    broken = {"panels": [{"title": "Latency p50 / p99", "targets": [{"expr": 'rate(x{a="$cluster"}[5m])'}]}]}
    (tmp_path / "api-overview.json").write_text(json.dumps(broken))
    with pytest.raises(panels.PanelError, match="no panel titled 'In-flight"):
        panels.panel("api-overview", "In-flight", tmp_path)
    target = panels.panel("api-overview", "Latency p50", tmp_path).targets[0]
    with pytest.raises(panels.PanelError, match=r"cannot fill: \$cluster"):
        panels.substitute(target.expr, app="a", namespace="n", rate="1m", range_seconds=60)


def test_rate_interval_and_legends_follow_grafana() -> None:
    assert panels.rate_interval(15, 1) == "60s"
    assert panels.rate_interval(1, 10) == "11s"
    assert panels.legend(
        "{{endpoint}} {{http_status}}", {"endpoint": "/api/users", "http_status": "200"}
    ) == ("/api/users 200")
    assert panels.legend("__auto", {"alertname": "X", "__name__": "ALERTS"}) == "alertname=X"
