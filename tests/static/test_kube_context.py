"""The lab talks to its own cluster only (issue 9, item 1).

A kubeconfig whose CURRENT context points at a local TCP listener that records every connection stands in for
"another cluster" the user switched kubectl to. A second listener stands in for the address of the Minikube
profile's context (named like the profile). Neither is a Kubernetes API server: they accept, record and close, so
every Kubernetes call fails. That is enough for what is tested here: which address the playbooks try to reach.
Nothing here tests a cluster; the playbooks may (and do) fail at their first Kubernetes call.

Every variant must be able to fail: stand-in `minikube`, `docker`, `kubectl` and `helm` commands on PATH (scripts that
answer what the Minikube preflight asks: the engine answers, the profile runs, its addons are enabled) take each
playbook past the preflights to its first real Kubernetes call, so a play without its module_defaults, or a helper
given another context, would connect to the current context and fail the test (shown by hand in issue 19's work:
removing module_defaults from any playbook, or passing lab_kube_context to the drill helper, makes its variant fail).
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env


@dataclass
class RecordingListener:
    """A TCP socket on 127.0.0.1 that accepts, records the peer and closes: a stand-in address, not a server."""

    sock: socket.socket = field(default_factory=socket.socket)
    connections: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(peer)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[RecordingListener, RecordingListener, Path]]:
    """(other, lab, kubeconfig): the kubeconfig's current context is the other listener; context sre-lab
    (the default lab_minikube_profile) is the lab's listener."""
    other, lab = RecordingListener(), RecordingListener()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "other", "cluster": {"server": f"https://127.0.0.1:{other.port}"}},
                    {"name": "lab", "cluster": {"server": f"https://127.0.0.1:{lab.port}"}},
                ],
                "users": [{"name": "someone", "user": {"token": "not-a-secret"}}],
                "contexts": [
                    {"name": "other-cluster", "context": {"cluster": "other", "user": "someone"}},
                    {"name": "sre-lab", "context": {"cluster": "lab", "user": "someone"}},
                ],
                "current-context": "other-cluster",
            }
        )
    )
    try:
        yield other, lab, kubeconfig
    finally:
        other.close()
        lab.close()


STAND_INS = {
    # The Minikube driver's engine answers (platform probe and Minikube preflight).
    "docker": 'echo "27.5.1"',
    "minikube": """case "$1 $2" in
  "profile list") echo '{"invalid": [], "valid": [{"Name": "sre-lab", "Status": "OK"}]}' ;;
  "status "*) echo '{"Name": "sre-lab", "Host": "Running", "Kubelet": "Running", "APIServer": "Running"}' ;;
  "addons list") echo '{"metrics-server": {"Status": "enabled"}}' ;;
esac""",
    "kubectl": 'echo "Client Version: v1.35.1"',
    "helm": 'echo "v3.19.0+g3d8990f"',
}


def stand_ins(home: Path) -> Path:
    """A directory of stand-in commands (not a cluster: they only answer the preflights' questions)."""
    bin_dir = home / "stand-in-bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STAND_INS.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def playbook(home: Path, kubeconfig: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = ansible_env()
    env["PATH"] = f"{stand_ins(home)}:{env['PATH']}"
    env["HOME"] = str(home)
    env["KUBECONFIG"] = str(kubeconfig)
    env["ANSIBLE_NOCOLOR"] = "1"
    cmd = [
        str(BIN / "ansible-playbook"),
        str(ROOT / "playbooks" / name),
        "-e",
        "lab_platform=minikube",
        "-e",
        f"lab_dir={home}/lab",
        "-e",
        "minikube_reset_fresh_start=false",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


RUNS = {
    "site": ("site.yml",),
    "site --tags app_deploy": ("site.yml", "--tags", "app_deploy"),
    "site --tags monitoring": ("site.yml", "--tags", "monitoring"),
    "stress": ("stress.yml",),
    "drill": ("drill.yml", "-e", "drill=db-outage"),
    "faults": ("faults.yml", "-e", '{"faults": {"db_failure_rate": 0.5}}'),
    "teardown": ("teardown.yml",),
}


@pytest.mark.parametrize("run", list(RUNS), ids=list(RUNS))
def test_minikube_platform_never_touches_the_current_context(tmp_path: Path, clusters, run: str) -> None:
    other, lab, kubeconfig = clusters
    proc = playbook(tmp_path, kubeconfig, *RUNS[run])
    out = proc.stdout + proc.stderr
    assert other.connections == [], (
        f"{run} connected {len(other.connections)} time(s) to the kubeconfig's current context "
        f"(another cluster):\n{out[-4000:]}"
    )
    assert "Traceback" not in out, out[-4000:]
    if lab.connections:
        # Whatever it reached, it reached through the profile's context, and said so at the start.
        assert "uses context 'sre-lab'" in " ".join(out.split()), out[-4000:]


def test_teardown_reaches_the_profiles_context_and_says_no_cluster_answers(tmp_path: Path, clusters) -> None:
    """The positive side: teardown does talk to the profile's context (the lab listener is reached), and as
    that is no API server, it says there is nothing to remove and succeeds, deleting nothing elsewhere."""
    other, lab, kubeconfig = clusters
    proc = playbook(tmp_path, kubeconfig, "teardown.yml")
    out = proc.stdout + proc.stderr
    text = " ".join(out.split())
    assert proc.returncode == 0, out[-4000:]
    assert other.connections == []
    assert lab.connections, "teardown never tried the Minikube profile's context"
    assert "Every Kubernetes call of this run uses context 'sre-lab'" in text
    assert "No cluster answers" in text


def test_no_set_fact_has_a_null_value() -> None:
    """A set_fact whose value YAML reads as null (e.g. a `# noqa` where the value should be) unsets the variable."""
    files = sorted(
        [
            *ROOT.glob("roles/*/tasks/**/*.yml"),
            *ROOT.glob("roles/*/handlers/*.yml"),
            *ROOT.glob("playbooks/**/*.yml"),
            *ROOT.glob("molecule/*/*.yml"),
        ]
    )
    assert files
    offenders = [f"{path.relative_to(ROOT)}: {task}" for path in files for task in null_set_facts(path)]
    assert not offenders, "set_fact with a null value:\n" + "\n".join(offenders)


def null_set_facts(path: Path) -> list[str]:
    """The '<task name> -> <key>' of every set_fact in the file (any nesting: blocks, plays) whose value is null."""
    found: list[str] = []

    def walk(node: object, name: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, name)
        elif isinstance(node, dict):
            here = str(node.get("name", name))
            for module in ("ansible.builtin.set_fact", "set_fact", "ansible.legacy.set_fact"):
                args = node.get(module)
                if isinstance(args, dict):
                    found.extend(f"{here} -> {key}" for key, value in args.items() if value is None)
            for value in node.values():
                walk(value, here)

    walk(yaml.safe_load(path.read_text()), "")
    return found


def test_the_null_check_sees_todays_defect(tmp_path: Path) -> None:
    """The checker catches the exact shape of the defect it guards against."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "- name: Point at the profile\n"
        "  ansible.builtin.set_fact:\n"
        '    lab_kube_context:  # noqa: var-naming[no-role-prefix] "{{ lab_minikube_profile }}"\n'
    )
    assert null_set_facts(bad) == ["Point at the profile -> lab_kube_context"]


def test_roles_set_only_their_own_facts() -> None:
    """A role's set_fact writes only <role>_* (or _<role>_*, __<role>_*): no role sets a lab-wide variable such as
    the context every playbook uses (minikube_reset used to set lab_kube_context)."""
    offenders: list[str] = []

    def walk(node: object, role: str, path: Path) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, role, path)
        elif isinstance(node, dict):
            for module in ("ansible.builtin.set_fact", "set_fact", "ansible.legacy.set_fact"):
                args = node.get(module)
                if isinstance(args, dict):
                    offenders.extend(
                        f"{path.relative_to(ROOT)}: {key}"
                        for key in args
                        if key != "cacheable" and not key.lstrip("_").startswith(f"{role}_")
                    )
            for value in node.values():
                walk(value, role, path)

    files = sorted(ROOT.glob("roles/*/tasks/**/*.yml"))
    assert files
    for path in files:
        walk(yaml.safe_load(path.read_text()), path.relative_to(ROOT).parts[1], path)
    assert not offenders, "set_fact of another owner's variable:\n" + "\n".join(offenders)


def test_kubernetes_platform_resolves_the_current_context_once_and_says_so(tmp_path: Path, clusters) -> None:
    """On the kubernetes platform without lab_kube_context the current context IS the chosen cluster: it is read
    once at the start and printed, and teardown's guard reaches exactly that one."""
    other, lab, kubeconfig = clusters
    proc = playbook(tmp_path, kubeconfig, "teardown.yml", "-e", "lab_platform=kubernetes")
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, text[-4000:]
    assert (
        "Every Kubernetes call of this run uses context 'other-cluster' (the current context when the run started)"
        in text
    )
    assert other.connections, "the current context was not used"
    assert lab.connections == []


def test_kubernetes_platform_with_a_named_context_ignores_the_current_one(tmp_path: Path, clusters) -> None:
    other, lab, kubeconfig = clusters
    proc = playbook(
        tmp_path,
        kubeconfig,
        "teardown.yml",
        "-e",
        "lab_platform=kubernetes",
        "-e",
        "lab_kube_context=sre-lab",
    )
    text = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, text[-4000:]
    assert "Every Kubernetes call of this run uses context 'sre-lab' (lab_kube_context)" in text
    assert other.connections == []
    assert lab.connections


def context_arguments(node: object) -> list[str]:
    """What follows every `--context` handed to a command: in an argv list, or in a list built in an expression."""
    found: list[str] = []
    if isinstance(node, list):
        found.extend(str(node[i + 1]) for i, item in enumerate(node[:-1]) if item == "--context")
        for item in node:
            found.extend(context_arguments(item))
    elif isinstance(node, dict):
        for value in node.values():
            found.extend(context_arguments(value))
    elif isinstance(node, str):
        found.extend(re.findall(r"""['"]--context['"]\s*,\s*([^\]\s,]+)""", node))
        found.extend(re.findall(r"""--context\s+(?:['"]\s*~\s*)?([A-Za-z_][\w]*|\{\{[^}]*\}\})""", node))
    return found


def test_every_helper_and_command_is_given_the_derived_context() -> None:
    """The drill and faults helpers, the stress proxy, kubectl hints: every `--context` they get is lab_k8s_context
    (issue 19, item 3: the drill preflight and the faults wait passed lab_kube_context, empty on Minikube = current).
    The faults wait is not reached by the recording-listener runs (the ConfigMap apply fails first), hence this walk."""
    files = sorted(
        [
            *ROOT.glob("roles/*/tasks/**/*.yml"),
            *ROOT.glob("playbooks/**/*.yml"),
            *ROOT.glob("molecule/*/*.yml"),
        ]
    )
    seen: dict[str, list[str]] = {}
    for path in files:
        for value in context_arguments(yaml.safe_load(path.read_text())):
            seen.setdefault(str(path.relative_to(ROOT)), []).append(value)
    for where in (
        "roles/drill/tasks/kubernetes/preflight.yml",
        "roles/app_deploy/tasks/kubernetes/faults.yml",
        "roles/stress_test/tasks/kubernetes/preflight.yml",
    ):
        assert where in seen, f"no --context found in {where}: the walk no longer sees it"
    wrong = {
        where: values for where, values in seen.items() if any("lab_k8s_context" not in v for v in values)
    }
    assert not wrong, f"--context given something else than lab_k8s_context: {wrong}"


def test_the_context_walk_sees_todays_defects() -> None:
    argv = {"argv": ["python", "ctl.py", "wait", "--context", "{{ lab_kube_context }}"]}
    built = "{{ ['--kubeconfig', lab_kubeconfig, '--context', lab_kube_context] }}"
    assert context_arguments([argv, built]) == ["{{ lab_kube_context }}", "lab_kube_context"]
