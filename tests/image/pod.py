"""The rendered Deployment's API container as a `docker run`: the same image, environment, user, security
settings, writable mounts, resource limits and probes.

Everything is read from what playbooks/render.yml wrote (app_deploy/*.yaml), nothing is restated: a new
ConfigMap key, env entry, emptyDir or configMap volume reaches the container without a change here. A pod field
this translation does not know how to reproduce raises PodSpecError naming it, so the test fails rather than run
something the cluster would not.

Differences that are intended (the engine here has no bridge network and no registry):
- `--network host`: the API binds 127.0.0.1:<free port> (APP_BIND), the probes and the tests use that port;
- `--pull never`: the image must be in the local engine.
The run is `docker create` then `docker start`: with the vfs storage driver, creating the container copies the
image's whole filesystem, which in a cluster happens before the container starts and its probes count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

APP_DEPLOY = "app_deploy"


class PodSpecError(ValueError):
    """The rendered pod uses something this translation cannot reproduce faithfully."""


@dataclass(frozen=True)
class Probe:
    path: str
    period: float
    timeout: float
    failure_threshold: int
    initial_delay: float = 0.0

    @property
    def budget(self) -> float:
        """Seconds the kubelet waits for a success before it gives up (restart / not ready)."""
        return self.initial_delay + self.period * self.failure_threshold


@dataclass(frozen=True)
class PodRun:
    """What the test needs to run the container as the Deployment does."""

    image: str
    env: dict[str, str]
    user: str
    grace_seconds: int
    probes: dict[str, Probe]
    options: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)  # container paths that are writable mounts
    mount_points: list[str] = field(default_factory=list)  # every volumeMount's path (writable or not)
    files: dict[Path, str] = field(
        default_factory=dict
    )  # host files to write before the run (configMap volumes)

    def docker_args(self, name: str, labels: dict[str, str] | None = None) -> list[str]:
        """`docker create` arguments (then `docker start`: the kubelet's clocks start when the container does)."""
        env_args = [arg for key, value in sorted(self.env.items()) for arg in ("--env", f"{key}={value}")]
        label_args = [
            arg for key, value in sorted((labels or {}).items()) for arg in ("--label", f"{key}={value}")
        ]
        return [
            "create",
            "--pull",
            "never",
            "--name",
            name,
            *label_args,
            *self.options,
            *env_args,
            self.image,
        ]


def _docs(rendered: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted((rendered / APP_DEPLOY).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d]
    return docs


def _quantity_bytes(value: str | int) -> int:
    units = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    match = re.fullmatch(r"(\d+)([kMG]i?|Ki)?", str(value))
    if not match:
        raise PodSpecError(f"unsupported quantity {value!r}")
    return int(match.group(1)) * units[match.group(2) or ""]


def _cpus(value: str | int | float) -> str:
    text = str(value)
    return f"{int(text[:-1]) / 1000:g}" if text.endswith("m") else f"{float(text):g}"


def _probe(spec: dict[str, Any], ports: dict[str, int]) -> Probe:
    http = spec.get("httpGet")
    if not http:
        raise PodSpecError(f"only httpGet probes are reproduced, not {sorted(spec)}")
    port = http["port"]
    if isinstance(port, str) and port not in ports:
        raise PodSpecError(f"probe port {port!r} names no container port")
    return Probe(
        path=http["path"],
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        failure_threshold=int(spec.get("failureThreshold", 3)),
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
    )


def pod_run(rendered: Path, *, port: int, config_dir: Path, container: str = "api") -> PodRun:
    """The Deployment's `container` as a docker run on the host network, listening on 127.0.0.1:`port`.

    configMap volumes are written as files under `config_dir` and bind-mounted read-only.
    """
    docs = _docs(rendered)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    if len(deployments) != 1:
        raise PodSpecError(f"expected one Deployment under {rendered / APP_DEPLOY}, found {len(deployments)}")
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    pod = deployments[0]["spec"]["template"]["spec"]
    spec = next((c for c in pod["containers"] if c["name"] == container), None)
    if spec is None:
        raise PodSpecError(f"the Deployment has no container named {container!r}")
    if pod.get("initContainers") or len(pod["containers"]) > 1:
        raise PodSpecError("init/sidecar containers are not reproduced")

    def configmap(name: str) -> dict[str, str]:
        if name not in configmaps:
            raise PodSpecError(f"ConfigMap {name!r} is not among the rendered manifests")
        return configmaps[name]

    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" not in source:
            raise PodSpecError(f"envFrom source {sorted(source)} is not reproduced")
        prefix = source.get("prefix", "")
        env.update(
            {prefix + key: str(value) for key, value in configmap(source["configMapRef"]["name"]).items()}
        )
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = str(configmap(ref["name"])[ref["key"]])
        else:
            raise PodSpecError(f"env {item['name']}: only value and configMapKeyRef are reproduced")
    env["APP_BIND"] = f"127.0.0.1:{port}"  # host network: loopback, on a free port

    pod_sc = pod.get("securityContext", {})
    sc = {**pod_sc, **spec.get("securityContext", {})}
    uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
    if uid is None or gid is None:
        raise PodSpecError("the pod does not pin runAsUser and runAsGroup")
    options = ["--network", "host", "--user", f"{uid}:{gid}"]
    if "fsGroup" in pod_sc:
        options += ["--group-add", str(pod_sc["fsGroup"])]
    if sc.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if sc.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    if sc.get("privileged"):
        raise PodSpecError("a privileged container is not reproduced")
    caps = sc.get("capabilities", {})
    options += [arg for cap in caps.get("drop", []) for arg in ("--cap-drop", cap)]
    options += [arg for cap in caps.get("add", []) for arg in ("--cap-add", cap)]
    seccomp = sc.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if seccomp != "RuntimeDefault":  # docker's default profile is the runtime default
        raise PodSpecError(f"seccomp profile {seccomp!r} is not reproduced")

    limits = spec.get("resources", {}).get("limits", {})
    if "memory" in limits:
        options += ["--memory", str(_quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        options += ["--cpus", _cpus(limits["cpu"])]

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts: list[str] = []
    mount_points: list[str] = []
    files: dict[Path, str] = {}
    for mount in spec.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        target = mount["mountPath"]
        mount_points.append(target)
        if mount.get("subPath"):
            raise PodSpecError(f"volumeMount {mount['name']}: subPath is not reproduced")
        if "emptyDir" in volume:
            # An emptyDir is an empty, world-writable directory (0777), sized by sizeLimit.
            tmpfs = f"type=tmpfs,destination={target},tmpfs-mode=0777"
            if volume["emptyDir"].get("sizeLimit"):
                tmpfs += f",tmpfs-size={_quantity_bytes(volume['emptyDir']['sizeLimit'])}"
            options += ["--mount", tmpfs]
            mounts.append(target)
        elif "configMap" in volume:
            data = configmap(volume["configMap"]["name"])
            items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in data]
            source = config_dir / mount["name"]
            for item in items:
                files[source / item["path"]] = str(data[item["key"]])
            options += ["--mount", f"type=bind,source={source},destination={target},readonly"]
        else:
            raise PodSpecError(f"volume {mount['name']}: only emptyDir and configMap volumes are reproduced")

    ports = {p["name"]: p["containerPort"] for p in spec.get("ports", []) if "name" in p}
    probes = {
        kind: _probe(spec[f"{kind}Probe"], ports)
        for kind in ("startup", "liveness", "readiness")
        if f"{kind}Probe" in spec
    }
    return PodRun(
        image=spec["image"],
        env=env,
        user=f"{uid}:{gid}",
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
        probes=probes,
        options=options,
        mounts=mounts,
        mount_points=mount_points,
        files=files,
    )
