"""site.yml's preflight on a machine without Minikube (this one): it stops before changing anything, with a
message that says what to install or set, never a stack trace. The same for lab_platform=kubernetes without a
reachable cluster. HOME points at an empty folder, so no kubeconfig or earlier lab state is found."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env


def site(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = ansible_env()
    env["HOME"] = str(home)
    env.pop("KUBECONFIG", None)
    # Explicit minikube (a later -e lab_platform=... wins): the default `auto` would fall back to local here.
    cmd = [
        str(BIN / "ansible-playbook"),
        str(ROOT / "playbooks" / "site.yml"),
        "-e",
        "lab_platform=minikube",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    proc = subprocess.run(["docker", "version"], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0


def assert_helpful_failure(proc: subprocess.CompletedProcess[str], headline: str) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert headline in out, out[-3000:]
    assert "changed=0" in out, "the preflight must stop before anything changes"
    return " ".join(out.split())  # the message is wrapped over several lines


def test_minikube_preflight_says_what_is_missing(tmp_path: Path) -> None:
    if shutil.which("minikube"):
        pytest.skip("minikube is installed here: this test needs a machine without it")
    text = assert_helpful_failure(site(tmp_path), "The minikube platform cannot start here.")
    assert "missing tools: minikube (https://minikube.sigs.k8s.io/docs/start/)" in text
    assert "lab_install_tools: true" in text
    if not shutil.which("helm"):
        assert "helm 3.8+ or 4.x" in text
    if not docker_engine_answers():
        assert "the docker engine does not answer" in text
        assert "Install and start docker" in text
    assert "minikube_reset : Stop when something is missing" in text
    assert "make lab ARGS='-e lab_platform=local'" in text


def test_minikube_preflight_rejects_a_too_small_node(tmp_path: Path) -> None:
    text = assert_helpful_failure(site(tmp_path, "-e", "minikube_reset_cpus=1"), "Bad Minikube settings")
    assert "minikube_reset_cpus >= 2 (got 1)" in text


def test_kubernetes_preflight_without_a_cluster(tmp_path: Path) -> None:
    text = assert_helpful_failure(
        site(tmp_path, "-e", "lab_platform=kubernetes", "-e", f"lab_kubeconfig={tmp_path}/no-kubeconfig"),
        "The kubernetes platform cannot be used from here.",
    )
    assert "no Kubernetes cluster answers" in text
    assert f'kubeconfig "{tmp_path}/no-kubeconfig"' in text
    assert "app_image_registry is empty" in text
    if not shutil.which("helm"):
        assert "missing tools: helm" in text


def test_kubernetes_preflight_default_kubeconfig_and_registry_set(tmp_path: Path) -> None:
    text = assert_helpful_failure(
        site(tmp_path, "-e", "lab_platform=kubernetes", "-e", "app_image_registry=registry.example.com/lab"),
        "The kubernetes platform cannot be used from here.",
    )
    assert "no Kubernetes cluster answers with the current context of $KUBECONFIG or ~/.kube/config" in text
    assert "app_image_registry" not in text


def test_teardown_without_a_cluster_says_so_and_succeeds(tmp_path: Path) -> None:
    env = ansible_env()
    env["HOME"] = str(tmp_path)
    env.pop("KUBECONFIG", None)
    cmd = [
        str(BIN / "ansible-playbook"),
        str(ROOT / "playbooks" / "teardown.yml"),
        "-e",
        "lab_platform=minikube",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    text = " ".join(out.split())
    assert "No cluster answers" in text
    assert "nothing of monitoring to remove" in text
    assert "nothing of app_deploy to remove" in text
    assert "minikube_reset_delete_profile=true" in text
    assert "changed=0" in text


def test_a_failed_tool_install_says_what_to_do(tmp_path: Path) -> None:
    if shutil.which("minikube"):
        pytest.skip("minikube is installed here: nothing would be downloaded")
    # Downloads go to the reserved .invalid domain, so the test never fetches anything, even with network access.
    urls = {
        tool: {
            "url": f"https://downloads.invalid/{tool}-{{version}}-{{os}}-{{arch}}",
            "checksum": "https://downloads.invalid/sum",
        }
        for tool in ("minikube", "kubectl", "helm")
    }
    proc = site(
        tmp_path,
        "-e",
        "lab_install_tools=true",
        "-e",
        json.dumps({"_lab_shared_tool_urls": urls}),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out
    text = " ".join(out.split())
    assert "Could not install minikube" in text
    assert f"into {tmp_path}/.sre-lab/bin" in text
    assert "install them yourself: minikube (https://minikube.sigs.k8s.io/docs/start/)" in text
    assert not (tmp_path / ".sre-lab" / "bin" / "minikube").exists()


def test_a_latency_threshold_the_api_would_refuse_stops_before_anything_changes(tmp_path: Path) -> None:
    """The API's APP_LATENCY_SLO_SECONDS is derived from the SLO's threshold, and the API accepts 0.001-60 s:
    a threshold outside that range stops the run at the SLO check, not at the API's start-up in a pod."""
    slo = yaml.safe_load((ROOT / "group_vars" / "all" / "slo.yml").read_text())["lab_slo"]
    slo["latency"]["threshold_seconds"] = 100
    text = assert_helpful_failure(site(tmp_path, "-e", json.dumps({"lab_slo": slo})), "Bad SLO spec lab_slo")
    assert "latency.threshold_seconds from 0.001 to 60" in text
    assert "latency.threshold_seconds=100" in text
