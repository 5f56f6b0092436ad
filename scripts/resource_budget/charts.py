"""The four chart models: which containers each Helm release creates, and the values key of their resources.

A component a model does not know (an enabled subchart, extra containers, caches) is a BudgetError, not a zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scripts.resource_budget.containers import MINIKUBE_NODES, Container, resources
from scripts.resource_budget.errors import BudgetError
from scripts.resource_budget.helm_values import chart_defaults, deep_merge, get


def _c(
    group: str, workload: str, name: str, values: dict[str, Any], key: str, count: int, init: bool = False
) -> Container:
    req, lim = resources(get(values, key), f"{workload}/{name} ({key})")
    return Container(group, workload, name, f"values {key}", count, req, lim, init)


def _must_be_empty(values: dict[str, Any], chart: str, *keys: str) -> None:
    for key in keys:
        if get(values, key):
            raise BudgetError(f"{chart}: {key} is set; the budget model does not know those containers")


# The prometheus chart's alertmanager dependency (its Chart.lock), whose defaults fill `alertmanager.*`.
ALERTMANAGER_SUBCHART = ("alertmanager", "1.42.0")


def alertmanager_containers(values: dict[str, Any]) -> list[Container]:
    """The alertmanager subchart's StatefulSet: Alertmanager, and its config reloader when enabled."""
    am = deep_merge(chart_defaults(*ALERTMANAGER_SUBCHART), values.get("alertmanager") or {})
    _must_be_empty(am, "prometheus (alertmanager)", "extraContainers", "extraInitContainers")
    replicas = int(get(am, "replicaCount", 1))
    out = [_c("monitoring", "alertmanager", "alertmanager", am, "resources", replicas)]
    if get(am, "configmapReload.enabled", False):
        out.append(
            _c("monitoring", "alertmanager", "config-reloader", am, "configmapReload.resources", replicas)
        )
    return out


def prometheus_containers(values: dict[str, Any]) -> list[Container]:
    for sub in ("kube-state-metrics", "prometheus-node-exporter", "prometheus-pushgateway"):
        if get(values, f"{sub}.enabled", True):
            raise BudgetError(
                f"prometheus: the {sub} subchart is enabled; the lab runs the server and Alertmanager"
            )
    _must_be_empty(values, "prometheus", "server.sidecarContainers", "server.extraInitContainers")
    replicas = int(get(values, "server.replicaCount", 1))
    out = [_c("monitoring", "prometheus-server", "prometheus-server", values, "server.resources", replicas)]
    if get(values, "alertmanager.enabled", True):
        out += alertmanager_containers(values)
    if get(values, "configmapReload.prometheus.enabled", True):
        out.append(
            _c(
                "monitoring",
                "prometheus-server",
                "config-reloader",
                values,
                "configmapReload.prometheus.resources",
                replicas,
            )
        )
    return out


def loki_containers(values: dict[str, Any]) -> list[Container]:
    if get(values, "deploymentMode") not in ("Monolithic", "SingleBinary"):
        raise BudgetError(
            f"loki: deploymentMode {get(values, 'deploymentMode')!r}; the lab models Monolithic only"
        )
    for part in ("read", "write", "backend"):
        if int(get(values, f"{part}.replicas", 0)):
            raise BudgetError(f"loki: {part}.replicas must be 0 in Monolithic mode")
    for part in ("chunksCache", "resultsCache", "minio"):
        if get(values, f"{part}.enabled", False):
            raise BudgetError(f"loki: {part} is enabled; the lab runs without it")
    _must_be_empty(values, "loki", "singleBinary.extraContainers", "singleBinary.initContainers")
    replicas = int(get(values, "singleBinary.replicas", 0))
    out = [_c("monitoring", "loki", "loki", values, "singleBinary.resources", replicas)]
    if get(values, "sidecar.rules.enabled", False) and get(values, "singleBinary.sidecar", False):
        out.append(_c("monitoring", "loki", "loki-sc-rules", values, "sidecar.resources", replicas))
    if get(values, "gateway.enabled", False):
        out.append(
            _c(
                "monitoring",
                "loki-gateway",
                "nginx",
                values,
                "gateway.resources",
                int(get(values, "gateway.replicas", 1)),
            )
        )
    if get(values, "lokiCanary.enabled", False):
        out.append(
            _c("monitoring", "loki-canary", "loki-canary", values, "lokiCanary.resources", MINIKUBE_NODES)
        )
    return out


def alloy_containers(values: dict[str, Any]) -> list[Container]:
    _must_be_empty(values, "alloy", "controller.extraContainers", "controller.initContainers")
    kind = get(values, "controller.type", "daemonset")
    count = MINIKUBE_NODES if kind == "daemonset" else int(get(values, "controller.replicas", 1))
    out = [_c("monitoring", f"alloy ({kind})", "alloy", values, "alloy.resources", count)]
    if get(values, "configReloader.enabled", True):
        out.append(
            _c("monitoring", f"alloy ({kind})", "config-reloader", values, "configReloader.resources", count)
        )
    return out


def grafana_containers(values: dict[str, Any]) -> list[Container]:
    _must_be_empty(values, "grafana", "extraContainers", "extraInitContainers")
    if get(values, "imageRenderer.enabled", False):
        raise BudgetError("grafana: imageRenderer is enabled; the lab runs without it")
    replicas = int(get(values, "replicas", 1))
    out = [_c("monitoring", "grafana", "grafana", values, "resources", replicas)]
    for sidecar in ("dashboards", "datasources", "alerts", "plugins", "notifiers"):
        if get(values, f"sidecar.{sidecar}.enabled", False):
            out.append(
                _c("monitoring", "grafana", f"sidecar-{sidecar}", values, "sidecar.resources", replicas)
            )
    if get(values, "persistence.enabled", False) and get(values, "initChownData.enabled", True):
        out.append(
            _c(
                "monitoring",
                "grafana",
                "init-chown-data",
                values,
                "initChownData.resources",
                replicas,
                init=True,
            )
        )
    dashboards = get(values, "dashboards", {}) or {}
    if any(
        isinstance(d, dict) and ({"url", "gnetId"} & set(d)) for p in dashboards.values() for d in p.values()
    ):
        out.append(
            _c(
                "monitoring",
                "grafana",
                "download-dashboards",
                values,
                "downloadDashboards.resources",
                replicas,
                init=True,
            )
        )
    return out


CHART_MODELS = {
    "prometheus": prometheus_containers,
    "loki": loki_containers,
    "alloy": alloy_containers,
    "grafana": grafana_containers,
}


def monitoring(rendered: Path) -> list[Container]:
    charts = yaml.safe_load((rendered / "monitoring" / "charts.yaml").read_text())
    out: list[Container] = []
    for key, model in CHART_MODELS.items():
        if key not in charts:
            raise BudgetError(f"{rendered}/monitoring/charts.yaml names no {key} release")
        version = str(charts[key]).rsplit("@", 1)[1]
        values = yaml.safe_load((rendered / "monitoring" / "values" / f"{key}.yaml").read_text()) or {}
        out.extend(model(deep_merge(chart_defaults(key, version), values)))
    return out
