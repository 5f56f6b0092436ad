"""The budget as text: the plain report and the summary table of roles/monitoring/README.md."""

from __future__ import annotations

from typing import Any

from scripts.resource_budget.budget import SYSTEM_PODS


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
