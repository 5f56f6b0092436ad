#!/usr/bin/env python3
"""Sum the requests and limits of every container the lab runs on Kubernetes, from the rendered files.

Input: the folder `playbooks/render.yml` writes (default build/rendered; run `make render` first) and the pinned
charts' default values (tests/static/charts/). For each Helm release the rendered values are merged over the chart's
defaults the way Helm merges them, then every container that release creates is listed with the values key its
resources come from (sidecars and init containers included; Alertmanager from the prometheus chart's alertmanager
subchart, with that subchart's defaults). Components the model does not know (Loki caches, Grafana sidecars with no resources, extra containers, ...) are an error, not a silent zero.
The API's (with Alertmanager's webhook receiver, in the API's namespace) and the stress Job's containers come from
their rendered manifests.

The Minikube fit compares the sums, plus the requests of the pods Minikube itself runs (kubeadm's control plane,
CoreDNS, metrics-server: SYSTEM_PODS below), with the node size in group_vars/all/resources.yml.

Usage: scripts/resource_budget.py [--rendered build/rendered] [--json | --markdown] [--check]
--check exits 1 when the monitoring stack is over its target (1.5 GiB of memory limits, 0.6 CPU of requests)
or the lab does not fit the Minikube node.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = ROOT / "tests" / "static" / "charts"
MONITORING_MEMORY_LIMIT_TARGET_MI = 1536.0  # 1.5 GiB
MONITORING_CPU_REQUEST_TARGET_M = 600.0  # 0.6 CPU
MINIKUBE_NODES = 1  # DaemonSets (Alloy) run one pod per node

# Pods Minikube runs on its own node, with the requests/limits of their upstream manifests: the kubeadm static pods
# (kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m, etcd 100m/100Mi), CoreDNS
# (100m/70Mi, memory limit 170Mi), the metrics-server addon (100m/200Mi) and the CNI kindnet (100m/50Mi requests
# and limits): minikube v1.38.1 picks kindnet for a KIC driver (docker, podman) with a runtime other than docker,
# i.e. the lab's docker + containerd (pkg/minikube/cni/cni.go chooseDefault; the figures in
# pkg/minikube/cni/kindnet.go). kube-proxy and the storage provisioner set none. These are the manifests' figures,
# not read from a running cluster: check them with `kubectl describe node` on yours.
SYSTEM_PODS: dict[str, dict[str, dict[str, float]]] = {
    "kube-apiserver": {"requests": {"cpu": 250, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "kube-controller-manager": {"requests": {"cpu": 200, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "kube-scheduler": {"requests": {"cpu": 100, "memory": 0}, "limits": {"cpu": 0, "memory": 0}},
    "etcd": {"requests": {"cpu": 100, "memory": 100}, "limits": {"cpu": 0, "memory": 0}},
    "coredns": {"requests": {"cpu": 100, "memory": 70}, "limits": {"cpu": 0, "memory": 170}},
    "metrics-server": {"requests": {"cpu": 100, "memory": 200}, "limits": {"cpu": 0, "memory": 0}},
    "kindnet": {"requests": {"cpu": 100, "memory": 50}, "limits": {"cpu": 100, "memory": 50}},
}

# What no memory limit bounds on the node: the control plane's pods set requests only, and the node's own processes
# are no pods at all. The memory left beyond all limits is therefore an estimate of the margin, not a guarantee.
UNBOUNDED_MEMORY = ("kube-apiserver", "etcd", "kubelet", "containerd", "buildkitd")


class BudgetError(Exception):
    """The rendered files describe something this model cannot account for."""


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEM = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$")
_MEM_FACTORS = {
    None: 1 / 2**20,
    "Ki": 1 / 2**10,
    "Mi": 1.0,
    "Gi": 2**10,
    "Ti": 2**20,
    "k": 1e3 / 2**20,
    "K": 1e3 / 2**20,
    "M": 1e6 / 2**20,
    "G": 1e9 / 2**20,
    "T": 1e12 / 2**20,
}


def cpu_millis(value: Any) -> float:
    """Kubernetes CPU quantity -> millicores ("100m" -> 100, "0.5" -> 500, 1 -> 1000)."""
    match = _CPU.match(str(value).strip())
    if not match:
        raise BudgetError(f"not a CPU quantity: {value!r}")
    number = float(match.group(1))
    return number if match.group(2) else number * 1000


def memory_mib(value: Any) -> float:
    """Kubernetes memory quantity -> MiB ("128Mi" -> 128, "1Gi" -> 1024, "512M" -> 488.3)."""
    match = _MEM.match(str(value).strip())
    if not match:
        raise BudgetError(f"not a memory quantity: {value!r}")
    return float(match.group(1)) * _MEM_FACTORS[match.group(2)]


@dataclass
class Container:
    group: str  # monitoring | app | stress | system
    workload: str
    container: str
    source: str  # where its resources come from
    count: int
    requests: dict[str, float] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    init: bool = False


def _resources(res: Any, where: str) -> tuple[dict[str, float], dict[str, float]]:
    res = res or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    missing = [
        f"{kind}.{key}"
        for kind, d in (("requests", req), ("limits", lim))
        for key in ("cpu", "memory")
        if key not in d
    ]
    if missing:
        raise BudgetError(
            f"{where}: no {', '.join(missing)} (every container of the lab must have requests and limits)"
        )
    return (
        {"cpu": cpu_millis(req["cpu"]), "memory": memory_mib(req["memory"])},
        {"cpu": cpu_millis(lim["cpu"]), "memory": memory_mib(lim["memory"])},
    )


def deep_merge(base: Any, override: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, a null deletes, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = deep_merge(base.get(key), value)
        return merged
    return override


def get(values: dict[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def chart_defaults(key: str, version: str) -> dict[str, Any]:
    path = CHARTS_DIR / f"{key}-{version}" / "values.json"
    if not path.is_file():
        raise BudgetError(
            f"no chart defaults for {key} {version} at {path} (see tests/static/charts/README.md)"
        )
    return json.loads(path.read_text())


def _c(
    group: str, workload: str, name: str, values: dict[str, Any], key: str, count: int, init: bool = False
) -> Container:
    req, lim = _resources(get(values, key), f"{workload}/{name} ({key})")
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


_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet"}


def manifest_containers(group: str, files: list[Path]) -> list[Container]:
    out: list[Container] = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in _WORKLOADS:
                continue
            kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec") or {}
            pod = spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
            if kind == "Job":
                count = int(spec.get("parallelism", 1))
            elif kind == "DaemonSet":
                count = MINIKUBE_NODES
            elif kind == "Pod":
                count = 1
            else:
                count = int(spec.get("replicas", 1))
            for init, key in ((False, "containers"), (True, "initContainers")):
                for c in pod.get(key) or []:
                    req, lim = _resources(
                        c.get("resources"), f"{path.name}: {kind}/{name} container {c['name']}"
                    )
                    out.append(
                        Container(group, f"{kind}/{name}", c["name"], path.name, count, req, lim, init)
                    )
    return out


def pod_sums(containers: list[Container]) -> dict[str, dict[str, float]]:
    """Sum per the scheduler's rule: each pod needs max(sum of its containers, its largest init container)."""
    pods: dict[tuple[str, str], list[Container]] = {}
    for c in containers:
        pods.setdefault((c.group, c.workload), []).append(c)
    total = {"requests": {"cpu": 0.0, "memory": 0.0}, "limits": {"cpu": 0.0, "memory": 0.0}}
    for members in pods.values():
        count = max(c.count for c in members)  # sidecars run beside the main container in each pod
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                main = sum(getattr(c, kind)[res] for c in members if not c.init)
                init = max((getattr(c, kind)[res] for c in members if c.init), default=0.0)
                total[kind][res] += count * max(main, init)
    return total


def budget(rendered: Path) -> dict[str, Any]:
    mon = monitoring(rendered)
    # The API's namespace: the API, and Alertmanager's webhook receiver (rendered by the monitoring role).
    app = manifest_containers(
        "app",
        sorted((rendered / "app_deploy").glob("*.yaml"))
        + sorted((rendered / "monitoring" / "alert_receiver").glob("*.yaml")),
    )
    stress_files = (
        sorted((rendered / "stress_test").glob("*.yaml")) if (rendered / "stress_test").is_dir() else []
    )
    stress_variants = {p.stem: manifest_containers("stress", [p]) for p in stress_files}
    stress_sums = {k: pod_sums(v) for k, v in stress_variants.items()}
    biggest = max(stress_sums, key=lambda k: stress_sums[k]["requests"]["memory"], default=None)
    resources = yaml.safe_load((ROOT / "group_vars" / "all" / "resources.yml").read_text())
    node = {
        "cpu": float(resources["minikube_reset_cpus"]) * 1000,
        "memory": float(resources["minikube_reset_memory_mb"]),
    }
    system = {
        kind: {res: sum(p[kind][res] for p in SYSTEM_PODS.values()) for res in ("cpu", "memory")}
        for kind in ("requests", "limits")
    }
    sums = {"monitoring": pod_sums(mon), "app": pod_sums(app)}
    if biggest:
        sums[f"stress ({biggest})"] = stress_sums[biggest]
    sums["minikube system pods"] = system
    lab_total = {
        kind: {res: sum(s[kind][res] for s in sums.values()) for res in ("cpu", "memory")}
        for kind in ("requests", "limits")
    }
    checks = {
        "monitoring memory limits <= 1.5 GiB": sums["monitoring"]["limits"]["memory"]
        <= MONITORING_MEMORY_LIMIT_TARGET_MI,
        "monitoring CPU requests <= 0.6 CPU": sums["monitoring"]["requests"]["cpu"]
        <= MONITORING_CPU_REQUEST_TARGET_M,
        "all CPU requests fit the node": lab_total["requests"]["cpu"] <= node["cpu"],
        "all memory requests fit the node": lab_total["requests"]["memory"] <= node["memory"],
        "all memory limits fit the node": lab_total["limits"]["memory"] <= node["memory"],
    }
    return {
        "containers": [asdict(c) for c in mon + app + [c for v in stress_variants.values() for c in v]],
        "sums": sums,
        "stress_variants": stress_sums,
        "total": lab_total,
        "node": node,
        "checks": checks,
        "memory_margin_estimate": {
            "mib": node["memory"] - lab_total["limits"]["memory"],
            "excludes": list(UNBOUNDED_MEMORY),
        },
    }


def _fmt(d: dict[str, float]) -> str:
    return f"{d['cpu']:.0f}m CPU, {d['memory']:.0f}Mi"


def report(result: dict[str, Any]) -> str:
    lines = ["Containers (count x requests / limits):"]
    for c in result["containers"]:
        tag = " [init]" if c["init"] else ""
        lines.append(
            f"  {c['group']:<10} {c['workload']:<32} {c['container'] + tag:<24} x{c['count']}  "
            f"{_fmt(c['requests'])} / {_fmt(c['limits'])}   ({c['source']})"
        )
    lines.append("Sums (requests / limits):")
    for name, s in result["sums"].items():
        lines.append(f"  {name:<28} {_fmt(s['requests'])} / {_fmt(s['limits'])}")
    t, n = result["total"], result["node"]
    lines.append(f"  {'total':<28} {_fmt(t['requests'])} / {_fmt(t['limits'])}")
    lines.append(f"Minikube node (group_vars/all/resources.yml): {n['cpu']:.0f}m CPU, {n['memory']:.0f}Mi")
    for name, ok in result["checks"].items():
        lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}")
    lines.append(margin_sentence(result))
    return "\n".join(lines)


def margin_sentence(result: dict[str, Any]) -> str:
    margin = result["memory_margin_estimate"]
    return (
        f"Memory margin (an estimate): {margin['mib']:.0f} MiB of the node beyond all memory limits, for what no limit "
        f"bounds: {', '.join(margin['excludes'])}."
    )


def markdown(result: dict[str, Any]) -> str:
    """The summary table of roles/monitoring/README.md (the tests check the README still says this)."""

    def cpu(v: float) -> str:
        return f"{v:.0f}m"

    def mem(v: float) -> str:
        return f"{v:.0f} MiB"

    lines = [
        "| part | containers | CPU requests | memory requests | CPU limits | memory limits |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    groups = {"monitoring": "monitoring stack", "app": "API and alert receiver", "stress": "stress Job"}
    counted = {g: sum(c["count"] for c in result["containers"] if c["group"] == g) for g in groups}
    for name, s in result["sums"].items():
        group = name.split(" ")[0]
        if group == "stress":
            variant = name[name.index("(") + 1 : -1]
            n = sum(c["count"] for c in result["containers"] if c["source"] == f"{variant}.yaml")
            label = f"stress Job ({variant}, the larger variant)"
        elif name == "minikube system pods":
            n, label = (
                len(SYSTEM_PODS),
                "Minikube's own pods (control plane, CoreDNS, metrics-server, kindnet)",
            )
        else:
            n, label = counted[group], groups[group]
        req, lim = s["requests"], s["limits"]
        lines.append(
            f"| {label} | {n} | {cpu(req['cpu'])} | {mem(req['memory'])} | {cpu(lim['cpu'])} | {mem(lim['memory'])} |"
        )
    t, node = result["total"], result["node"]
    lines.append(
        f"| **total** | | **{cpu(t['requests']['cpu'])}** | **{mem(t['requests']['memory'])}** "
        f"| {cpu(t['limits']['cpu'])} | **{mem(t['limits']['memory'])}** |"
    )
    lines.append(
        f"| Minikube node (`--cpus={node['cpu'] / 1000:g} --memory={node['memory']:.0f}m`) | | {cpu(node['cpu'])} "
        f"| {mem(node['memory'])} | | {mem(node['memory'])} |"
    )
    lines += ["", margin_sentence(result)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rendered", type=Path, default=ROOT / "build" / "rendered", help="render.yml's output folder"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--markdown", action="store_true", help="print the summary table of the monitoring README"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target or the Minikube fit fails")
    args = parser.parse_args(argv)
    if not (args.rendered / "monitoring" / "charts.yaml").is_file():
        print(
            f"error: {args.rendered} holds no rendered lab: run `make render` (playbooks/render.yml) first",
            file=sys.stderr,
        )
        return 2
    try:
        result = budget(args.rendered)
    except BudgetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.markdown:
        print(markdown(result))
    else:
        print(report(result))
    return 1 if args.check and not all(result["checks"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
