"""The containers of rendered Kubernetes manifests (the API, the alert receiver, the stress Job)."""

from __future__ import annotations

from pathlib import Path

import yaml

from scripts.resource_budget.containers import MINIKUBE_NODES, Container, resources

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
                    req, lim = resources(
                        c.get("resources"), f"{path.name}: {kind}/{name} container {c['name']}"
                    )
                    out.append(
                        Container(group, f"{kind}/{name}", c["name"], path.name, count, req, lim, init)
                    )
    return out
