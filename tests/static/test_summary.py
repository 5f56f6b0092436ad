"""The Kubernetes summary's text (roles/lab_summary/tasks/kubernetes.yml), rendered from a stand-in for the
pod listing (the first task, which needs a cluster): namespaces, pods' state, the exact commands, Grafana's login."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env

PODS = {
    "results": [
        {
            "item": "sre-lab",
            "resources": [
                {
                    "metadata": {"name": "flask-api-7d9-abcde", "namespace": "sre-lab"},
                    "status": {"phase": "Running", "containerStatuses": [{"ready": True, "restartCount": 1}]},
                }
            ],
        },
        {"item": "monitoring", "resources": []},
    ]
}


def summary(tmp_path: Path, *extra: str) -> str:
    tasks = yaml.safe_load((ROOT / "roles/lab_summary/tasks/kubernetes.yml").read_text())
    printer = [t for t in tasks if "ansible.builtin.debug" in t]
    assert len(printer) == 1
    play = [
        {
            "name": "Summary",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Stand in for the pod listing",
                    "ansible.builtin.set_fact": {"__lab_summary_k8s_pods": PODS},
                },
                *printer,
            ],
        }
    ]
    path = tmp_path / "summary.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory.yml"), str(path), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return " ".join(proc.stdout.split()).replace("''", "'")


def test_minikube_summary(tmp_path: Path) -> None:
    text = summary(tmp_path, "-e", "lab_platform=minikube")
    assert "Lab on Minikube profile sre-lab: namespaces sre-lab (API) and monitoring (monitoring)." in text
    assert "sre-lab/flask-api-7d9-abcde: Running, 1/1 ready, 1 restarts" in text
    assert "monitoring: no pods" in text
    # kubectl gets the profile's context explicitly: the commands work whatever context is current.
    assert "kubectl --context sre-lab -n sre-lab port-forward svc/flask-api 8000:8000" in text
    assert "minikube --profile sre-lab service flask-api -n sre-lab --url" in text
    assert "kubectl --context sre-lab -n monitoring port-forward svc/prometheus-server 9090:80" in text
    assert "kubectl --context sre-lab -n monitoring port-forward svc/grafana 3000:80" in text
    assert "Grafana login: user admin, password in" in text
    assert "credentials/grafana-kubernetes-admin-password" in text


@pytest.mark.parametrize("context", ["prod-cluster"])
def test_kubernetes_summary_names_the_context(tmp_path: Path, context: str) -> None:
    text = summary(tmp_path, "-e", "lab_platform=kubernetes", "-e", f"lab_kube_context={context}")
    assert f"the cluster of context {context}" in text
    assert f"kubectl --context {context} -n sre-lab port-forward svc/flask-api" in text
    assert "minikube --profile" not in text
    # The commands as typed (issue 19, item 11): make, with the platform the run was given.
    assert "Remove: make teardown ARGS='-e lab_platform=kubernetes'" in text
    assert "Load test: make stress ARGS='-e lab_platform=kubernetes'" in text
    assert "ansible-playbook" not in text


def test_minikube_chosen_by_auto_prints_plain_make_commands(tmp_path: Path) -> None:
    text = summary(tmp_path, "-e", "lab_platform=minikube", "-e", "lab_platform_fallback_reason=")
    assert "Load test: make stress Drill: make drill DRILL=db-outage" in text
    assert "back: make faults FAULTS=none" in text
    assert (
        "Remove: make teardown (the Minikube profile too: make teardown ARGS='-e minikube_reset_delete_profile=true')"
        in text
    )
    assert "ansible-playbook" not in text
