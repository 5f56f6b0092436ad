"""Teardown's guard (roles/lab_common/tasks/teardown_decide.yml): it refuses to delete anything on a cluster whose
namespaces lack the lab's label, unless lab_teardown_force is passed.

This tests the refusal DECISION in Ansible, not a cluster: the decision task file runs for real, fed with
kubernetes.core.k8s_info results of the shape the module returns when looped over the lab's namespaces (a found
namespace with its labels, a missing one, a cluster that does not answer). The read itself (k8s_info through
lab_k8s_auth) needs a cluster and is covered only by tests/static/test_kube_context.py (which address it reaches).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env

LAB_LABEL = {"app.kubernetes.io/part-of": "sre-lab", "app.kubernetes.io/managed-by": "ansible"}


def found(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """One loop item of k8s_info (kind Namespace, name given) when the namespace exists."""
    return {
        "api_found": True,
        "changed": False,
        "failed": False,
        "item": name,
        "ansible_loop_var": "item",
        "resources": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "creationTimestamp": "2026-11-27T10:00:00Z",
                    "labels": {"kubernetes.io/metadata.name": name, **labels},
                    "name": name,
                    "resourceVersion": "4242",
                    "uid": "0b8e4f3e-1c1d-4f57-9a0e-5c3f2f0c1d2e",
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        ],
    }


def missing(name: str) -> dict[str, Any]:
    return {
        "api_found": True,
        "changed": False,
        "failed": False,
        "item": name,
        "ansible_loop_var": "item",
        "resources": [],
    }


def unreachable(name: str) -> dict[str, Any]:
    # failed_when: false keeps the run going; the module's own failure shape stays in the result.
    return {
        "changed": False,
        "failed": False,
        "failed_when_result": False,
        "item": name,
        "ansible_loop_var": "item",
        "msg": "Failed to get client due to HTTPSConnectionPool(host='127.0.0.1', port=6443): Max retries exceeded",
    }


def decide(tmp_path: Path, results: list[dict[str, Any]], *extra: str) -> subprocess.CompletedProcess[str]:
    play = [
        {
            "name": "The guard's decision",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Stand in for the namespaces read and the context resolved at the start",
                    "ansible.builtin.set_fact": {
                        "__lab_common_guard_namespaces": {
                            "changed": False,
                            "msg": "All items completed",
                            "results": results,
                        },
                        "lab_common_current_context": "someone-elses-cluster",
                    },
                },
                {
                    "name": "Decide",
                    "ansible.builtin.include_role": {
                        "name": "lab_common",
                        "tasks_from": "teardown_decide.yml",
                    },
                },
            ],
        }
    ]
    path = tmp_path / "decide.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory.yml"), str(path), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def text_of(proc: subprocess.CompletedProcess[str]) -> str:
    # The YAML callback folds messages over lines and doubles single quotes inside quoted scalars.
    return " ".join((proc.stdout + proc.stderr).split()).replace("''", "'")


KUBERNETES = ("-e", "lab_platform=kubernetes", "-e", "lab_kube_context=lab-cluster")


def test_refuses_when_a_namespace_lacks_the_labs_label(tmp_path: Path) -> None:
    proc = decide(tmp_path, [missing("sre-lab"), found("monitoring", {"team": "observability"})], *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "Teardown refused: it would act on context 'lab-cluster' (lab_kube_context)" in text
    assert "the namespaces monitoring (labels:" in text
    assert "lack the lab's label app.kubernetes.io/part-of=sre-lab" in text
    assert "The kubeconfig's current context is 'someone-elses-cluster'" in text
    assert "-e lab_teardown_force=true" in text


def test_refuses_a_label_with_another_value(tmp_path: Path) -> None:
    other = {"app.kubernetes.io/part-of": "payments"}
    proc = decide(tmp_path, [found("sre-lab", other), found("monitoring", LAB_LABEL)], *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "the namespaces sre-lab (labels:" in text
    assert "monitoring (labels" not in text


def test_refuses_on_minikube_too_naming_the_profile(tmp_path: Path) -> None:
    proc = decide(tmp_path, [found("sre-lab", {}), found("monitoring", {})], "-e", "lab_platform=minikube")
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "it would act on context 'sre-lab' (the Minikube profile sre-lab's context)" in text
    assert "the namespaces sre-lab (labels: " in text
    assert ", monitoring (labels: " in text


def test_the_override_lets_it_go_on_and_says_so(tmp_path: Path) -> None:
    results = [found("sre-lab", {}), found("monitoring", LAB_LABEL)]
    proc = decide(tmp_path, results, *KUBERNETES, "-e", "lab_teardown_force=true")
    text = text_of(proc)
    assert proc.returncode == 0, text[-3000:]
    assert (
        "lab_teardown_force is true: removing the lab's releases and namespaces on context 'lab-cluster'"
        in text
    )


@pytest.mark.parametrize(
    "results",
    [
        [found("sre-lab", LAB_LABEL), found("monitoring", LAB_LABEL)],
        [missing("sre-lab"), missing("monitoring")],
        [unreachable("sre-lab"), unreachable("monitoring")],
        [found("sre-lab", LAB_LABEL), missing("monitoring")],
    ],
    ids=["both-labelled", "none-there", "no-answer", "one-labelled-one-missing"],
)
def test_goes_on_for_the_labs_cluster(tmp_path: Path, results: list[dict[str, Any]]) -> None:
    proc = decide(tmp_path, results, *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode == 0, text[-3000:]
    assert "Teardown refused" not in text
    assert "lab_teardown_force is true" not in text


def test_teardown_runs_the_guard_before_it_deletes_anything() -> None:
    tasks = yaml.safe_load((ROOT / "playbooks" / "teardown.yml").read_text())[0]["tasks"]
    included = [
        (
            t["ansible.builtin.include_role"]["name"],
            t["ansible.builtin.include_role"].get("tasks_from", "main"),
        )
        for t in tasks
    ]
    guard = included.index(("lab_common", "teardown_guard.yml"))
    first_removal = min(i for i, (_role, part) in enumerate(included) if part == "teardown.yml")
    assert guard < first_removal, json.dumps(included)
    guard_tasks = yaml.safe_load((ROOT / "roles/lab_common/tasks/teardown_guard.yml").read_text())
    block = guard_tasks[0]["block"]
    read = block[0]["kubernetes.core.k8s_info"]
    assert read["kind"] == "Namespace"
    assert block[0]["register"] == "__lab_common_guard_namespaces"
    assert "context" not in read, "the connection comes from module_defaults only"
    assert "kubeconfig" not in read
