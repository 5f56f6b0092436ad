"""render == apply: site.yml applies the very data render.yml writes. Both paths of app_deploy, alert_receiver and monitoring
build their objects in one shared task file from the templates; these tests hold the task files to that, and
check that nothing on the Kubernetes path shells out to kubectl to apply anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.static.helpers import ROOT

ROLES = ROOT / "roles"


def tasks(path: Path) -> list[dict[str, Any]]:
    """Every task of a task file, blocks flattened."""
    out: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for task in items or []:
            out.append(task)
            for key in ("block", "rescue", "always"):
                walk(task.get(key, []))

    walk(yaml.safe_load(path.read_text()))
    return out


def includes(path: Path) -> list[str]:
    return [
        t["ansible.builtin.include_tasks"]["file"]
        for t in tasks(path)
        if "ansible.builtin.include_tasks" in t
    ]


@pytest.mark.parametrize(
    ("role", "render", "shared", "fact"),
    [
        ("app_deploy", "render.yml", "kubernetes/manifests.yml", "__app_deploy_manifests"),
        ("alert_receiver", "render.yml", "kubernetes/manifests.yml", "__alert_receiver_manifests"),
        ("monitoring", "kubernetes/render.yml", "kubernetes/values.yml", "__monitoring_k8s_"),
    ],
)
def test_render_and_apply_include_the_same_builder(role: str, render: str, shared: str, fact: str) -> None:
    base = ROLES / role / "tasks"
    assert includes(base / render)[0] == shared
    assert includes(base / "kubernetes" / "main.yml")[0] == shared
    # Only the shared builder reads the templates: main.yml and the render tasks use its data as it is.
    for name in ("kubernetes/main.yml", render):
        text = (base / name).read_text()
        assert "ansible.builtin.template" not in text, f"{role}/{name} templates on its own"
        assert fact in text, f"{role}/{name} does not use {fact}*"


def test_app_deploy_applies_every_rendered_object() -> None:
    applied = [t for t in tasks(ROLES / "app_deploy/tasks/kubernetes/main.yml") if "kubernetes.core.k8s" in t]
    sources = " ".join(
        str(t.get("loop", "")) + str(t["kubernetes.core.k8s"].get("definition", "")) for t in applied
    )
    # One task applies everything but the Deployment, the other the Deployment (and waits): together all of them.
    assert "rejectattr('name', 'equalto', 'deployment')" in sources
    assert "selectattr('name', 'equalto', 'deployment')" in sources
    assert all(t["kubernetes.core.k8s"]["state"] == "present" for t in applied)


def test_monitoring_installs_the_rendered_values() -> None:
    (helm,) = [
        t for t in tasks(ROLES / "monitoring/tasks/kubernetes/main.yml") if "kubernetes.core.helm" in t
    ]
    assert helm["kubernetes.core.helm"]["values"] == "{{ __monitoring_k8s_values[item.key] }}"
    assert helm["loop"] == "{{ _monitoring_k8s_releases }}"
    assert helm["kubernetes.core.helm"]["wait"] is True
    assert "timeout" in helm["kubernetes.core.helm"]
    assert "wait_timeout" not in helm["kubernetes.core.helm"], (
        "deprecated in kubernetes.core 6.6.0: use timeout"
    )
    (written,) = [
        t
        for t in tasks(ROLES / "monitoring/tasks/kubernetes/render.yml")
        if "__monitoring_k8s_values" in str(t)
    ]
    assert written["loop"] == "{{ _monitoring_k8s_releases }}"
    assert "__monitoring_k8s_values[item.key]" in written["ansible.builtin.copy"]["content"]


def test_no_kubectl_on_the_kubernetes_path() -> None:
    files = sorted(ROLES.glob("*/tasks/kubernetes/*.yml")) + sorted(
        ROLES.glob("minikube_reset/tasks/**/*.yml")
    )
    assert files
    for path in files:
        for task in tasks(path):
            for module in ("ansible.builtin.command", "ansible.builtin.shell"):
                if module in task:
                    assert "kubectl" not in str(task[module]), (
                        f"{path}: {task.get('name')} shells out to kubectl"
                    )


def test_secrets_are_never_logged() -> None:
    for task in tasks(ROLES / "monitoring/tasks/kubernetes/main.yml"):
        if "Secret" in str(task) or "password" in str(task).lower():
            if "ansible.builtin.file" in task or "ansible.builtin.set_fact" in task:
                continue
            assert task.get("no_log") is True, task.get("name")
