"""The rendered Kubernetes manifests: strict schema validation at the pinned Kubernetes version, and the API's
contract (labels, probes, graceful shutdown, security context, scrape annotations, config checksum)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import run_playbook
from tests.static.helpers import ROOT, group_vars, kubernetes_version, manifests


def _by_kind(rendered: Path, folder: str) -> dict[str, dict[str, Any]]:
    """kind -> object; a second object of a kind (the API's faults ConfigMap) as "<kind>/<name>"."""
    found: dict[str, dict[str, Any]] = {}
    for _path, doc in manifests(rendered / folder):
        found[doc["kind"] if doc["kind"] not in found else f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def test_render_writes_every_file(rendered_dir: Path) -> None:
    assert set(_by_kind(rendered_dir, "app_deploy")) == {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "ConfigMap/flask-api-faults",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    assert {p.name for p in (rendered_dir / "monitoring" / "values").iterdir()} == {
        "prometheus.yaml",
        "loki.yaml",
        "alloy.yaml",
        "grafana.yaml",
    }
    assert set(_by_kind(rendered_dir, "monitoring/manifests")) == {"Namespace", "ConfigMap"}
    assert set(_by_kind(rendered_dir, "monitoring/alert_receiver")) == {
        "Deployment",
        "Service",
        "NetworkPolicy",
    }


def test_alert_receiver_contract(rendered_dir: Path, api: dict[str, dict[str, Any]]) -> None:
    """Alertmanager's webhook receiver: the API's image and namespace, the Service the routing file posts to,
    restricted like the API, reachable only from the monitoring namespace, resources from group_vars."""
    objs = _by_kind(rendered_dir, "monitoring/alert_receiver")
    lab, resources = group_vars("lab"), group_vars("resources")
    name, ns = lab["lab_alert_receiver_name"], lab["lab_app_namespace"]
    assert {o["metadata"]["namespace"] for o in objs.values()} == {ns}
    assert {o["metadata"]["name"] for o in objs.values()} == {name}
    dep, svc, pol = objs["Deployment"], objs["Service"], objs["NetworkPolicy"]
    pod = dep["spec"]["template"]
    container = pod["spec"]["containers"][0]
    api_container = api["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == api_container["image"]
    assert container["command"][0] == "gunicorn"
    assert "labapi.alert_receiver:create_app()" in container["command"]
    assert "python:labapi.alert_receiver_gunicorn" in container["command"]
    assert container["resources"] == resources["alert_receiver_resources"]
    assert container["securityContext"] == api_container["securityContext"]
    assert pod["metadata"]["labels"]["app"] == name
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["port"] == lab["lab_alert_receiver_port"]
    port = container["ports"][0]
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ALERT_RECEIVER_BIND"].endswith(f":{port['containerPort']}")
    assert pol["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (rule,) = pol["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": lab["lab_monitoring_namespace"]}
            }
        }
    ]
    # Not the API's: its NetworkPolicy, PDB and Service select app=<lab_app_name> only.
    assert api["Service"]["spec"]["selector"]["app"] != name


def test_every_manifest_validates_strictly(rendered_dir: Path) -> None:
    found = manifests(rendered_dir)
    assert len(found) >= 9, [p.name for p, _ in found]
    errors = []
    for path, doc in found:
        try:
            kubernetes_validate.validate(doc, kubernetes_version(), strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{path.relative_to(rendered_dir)} {doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)


def test_strict_validation_rejects_an_unknown_field(rendered_dir: Path) -> None:
    deployment = copy.deepcopy(_by_kind(rendered_dir, "app_deploy")["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_version(), strict=True)


@pytest.fixture(scope="module")
def api(rendered_dir: Path) -> dict[str, dict[str, Any]]:
    return _by_kind(rendered_dir, "app_deploy")


def test_api_objects_live_in_the_lab_namespace(api: dict[str, dict[str, Any]]) -> None:
    lab = group_vars("lab")
    assert api["Namespace"]["metadata"]["name"] == lab["lab_app_namespace"]
    assert api["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for kind, doc in api.items():
        if kind != "Namespace":
            assert doc["metadata"]["namespace"] == lab["lab_app_namespace"], kind


def test_deployment_contract(api: dict[str, dict[str, Any]]) -> None:
    lab, resources = group_vars("lab"), group_vars("resources")
    dep = api["Deployment"]
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert dep["spec"]["replicas"] == resources["app_deploy_replicas"] == 2
    # The Prometheus contract: the pod label `app` becomes the series label rules select on.
    assert pod["metadata"]["labels"]["app"] == lab["lab_app_name"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["startupProbe"]["httpGet"]["path"] == "/health/liveness"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
    assert container["resources"] == resources["app_deploy_resources"]
    assert container["envFrom"] == [{"configMapRef": {"name": api["ConfigMap"]["metadata"]["name"]}}]


def test_the_pods_listen_on_every_interface_explicitly(api: dict[str, dict[str, Any]]) -> None:
    # the app's own default bind is 127.0.0.1:8000; in a pod the kubelet probes and the Service reach the pod IP
    assert api["ConfigMap"]["data"]["APP_BIND"] == "0.0.0.0:8000"
    ports = api["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [p["containerPort"] for p in ports] == [8000]


def test_graceful_termination_covers_drain_and_graceful_timeout(api: dict[str, dict[str, Any]]) -> None:
    env = api["ConfigMap"]["data"]
    grace = api["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(env["APP_SHUTDOWN_DRAIN_SECONDS"]) + int(env["APP_GRACEFUL_TIMEOUT"])
    strategy = api["Deployment"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_restricted_security_context(api: dict[str, dict[str, Any]]) -> None:
    spec = api["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert spec["automountServiceAccountToken"] is False
    assert api["ServiceAccount"]["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    # The only writable path is the /tmp emptyDir, which holds PROMETHEUS_MULTIPROC_DIR; the fault document is read-only.
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "faults", "mountPath": "/etc/labapi/faults", "readOnly": True},
    ]
    assert spec["volumes"][0]["emptyDir"]["sizeLimit"]
    assert api["ConfigMap"]["data"]["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


def test_settings_reach_the_configmap_and_faults_the_faults_configmap(api: dict[str, dict[str, Any]]) -> None:
    app = group_vars("app")
    data = api["ConfigMap"]["data"]
    # The latency threshold has one owner, the SLO spec: the app's setting is derived from it.
    threshold = group_vars("slo")["lab_slo"]["latency"]["threshold_seconds"]
    expected = dict(app["app_deploy_settings"], APP_LATENCY_SLO_SECONDS=str(threshold))
    for name, value in expected.items():
        assert data[name] == str(value), name
    assert all(isinstance(v, str) for v in data.values())
    # No fault is a start-up setting any more (the app refuses the retired variables).
    assert not {"APP_DB_FAILURE_RATE", "APP_EXTRA_LATENCY_MS", "APP_FORCE_UNREADY"} & set(data)
    faults_cm = api["ConfigMap/flask-api-faults"]
    assert faults_cm["metadata"]["namespace"] == api["Deployment"]["metadata"]["namespace"]
    assert set(faults_cm["data"]) == {"faults.yaml"}
    assert yaml.safe_load(faults_cm["data"]["faults.yaml"]) == {
        "db_failure_rate": app["app_deploy_faults"]["db_failure_rate"],
        "extra_latency_ms": app["app_deploy_faults"]["extra_latency_ms"],
        "extra_latency_route": app["app_deploy_faults"]["extra_latency_route"],
        "force_unready": app["app_deploy_faults"]["force_unready"],
        "users_error_rate": app["app_deploy_faults"]["users_error_rate"],
    }


def test_the_fault_document_is_a_configmap_volume_the_app_reads(api: dict[str, dict[str, Any]]) -> None:
    spec = api["Deployment"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["faults"]["configMap"]["name"] == api["ConfigMap/flask-api-faults"]["metadata"]["name"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "faults"]
    # A subPath mount is never refreshed by the kubelet: the document must come through a directory mount.
    assert "subPath" not in mount
    assert mount["readOnly"] is True
    assert api["ConfigMap"]["data"]["APP_FAULTS_FILE"] == f"{mount['mountPath']}/faults.yaml"
    # Faults are not environment: nothing in env/envFrom refers to the faults ConfigMap.
    assert "flask-api-faults" not in json.dumps(container.get("env", [])) + json.dumps(container["envFrom"])


def test_service_pdb_and_networkpolicy_select_the_pods(api: dict[str, dict[str, Any]]) -> None:
    labels = api["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert api["Service"]["spec"]["selector"].items() <= labels.items()
    assert api["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    # Annotating the Service too would make the chart's kubernetes-service-endpoints job scrape every pod twice.
    assert not any(k.startswith("prometheus.io/") for k in api["Service"]["metadata"].get("annotations", {}))
    assert api["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert api["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_image_is_tagged_with_the_source_hash(api: dict[str, dict[str, Any]]) -> None:
    """The tag is a hash of exactly the files the image is built from (app/.dockerignore's allow-list), so a
    change to them rolls the pods and a change elsewhere in app/ (tests, README) does not rebuild."""
    image = api["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    app = ROOT / "app"
    kept = sorted(
        rel
        for rel in (p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file())
        if re.match(r"^(Dockerfile|\.dockerignore|requirements\.txt|gunicorn\.conf\.py|labapi/.*)$", rel)
        and not re.search(r"(__pycache__/|\.py[co]$)", rel)
    )
    assert "Dockerfile" in kept
    assert any(rel.startswith("labapi/") for rel in kept)
    lines = "\n".join(f"{rel} {hashlib.sha1((app / rel).read_bytes()).hexdigest()}" for rel in kept)
    assert image == f"flask-api:src-{hashlib.sha256(lines.encode()).hexdigest()[:12]}"


def test_dashboards_configmap_holds_every_dashboard(rendered_dir: Path) -> None:
    cm = _by_kind(rendered_dir, "monitoring/manifests")["ConfigMap"]
    files = sorted((ROOT / "files" / "dashboards").glob("*.json"))
    assert sorted(cm.get("data") or {}) == [f.name for f in files]
    for f in files:
        assert json.loads(cm["data"][f.name]) == json.loads(f.read_text()), f.name


def test_only_a_settings_change_rolls_the_pods_never_a_fault_change(
    rendered_dir: Path, tmp_path: Path
) -> None:
    """The pod template's checksum/config covers the start-up settings only: changing every fault leaves the
    Deployment byte-identical (no rollout) and changes only the faults ConfigMap; changing a setting rolls."""
    faults = {
        "db_failure_rate": 1,
        "extra_latency_ms": 250,
        "extra_latency_route": "/api/users",
        "force_unready": True,
        "users_error_rate": 0.5,
    }
    settings = dict(group_vars("app")["app_deploy_settings"], APP_LOG_LEVEL="DEBUG")
    # ... and the SLO's latency threshold, which the app's APP_LATENCY_SLO_SECONDS follows (1: a new bucket)
    slo = copy.deepcopy(group_vars("slo")["lab_slo"])
    slo["latency"]["threshold_seconds"] = 1
    again, faulty, reset = tmp_path / "again", tmp_path / "faulty", tmp_path / "reset"
    # Each run renders only the parts it is compared on (render.yml's --tags; the prelude always runs): the API's
    # manifests, and for the determinism check the monitoring stack's too (the stress Job's are not compared).
    run_playbook(
        "render.yml",
        "-e",
        f"lab_render_dir={again}",
        "-e",
        "lab_platform=minikube",
        "--tags",
        "app_deploy,monitoring",
    )
    for where, extra in (
        (faulty, {"app_deploy_faults": faults}),
        (reset, {"app_deploy_settings": settings, "lab_slo": slo}),
    ):
        run_playbook(
            "render.yml",
            "-e",
            f"lab_render_dir={where}",
            "-e",
            "lab_platform=minikube",
            "-e",
            json.dumps(extra),
            "--tags",
            "app_deploy",
        )

    def template(root: Path) -> dict[str, Any]:
        return _by_kind(root, "app_deploy")["Deployment"]["spec"]["template"]

    def checksum(root: Path) -> str:
        return template(root)["metadata"]["annotations"]["checksum/config"]

    assert checksum(again) == checksum(rendered_dir)
    assert checksum(faulty) == checksum(rendered_dir)
    assert template(faulty) == template(rendered_dir)
    assert checksum(reset) != checksum(rendered_dir)
    reset_data = _by_kind(reset, "app_deploy")["ConfigMap"]["data"]
    assert reset_data["APP_LOG_LEVEL"] == "DEBUG"
    assert reset_data["APP_LATENCY_SLO_SECONDS"] == "1"
    faulty_cm = _by_kind(faulty, "app_deploy")["ConfigMap/flask-api-faults"]
    assert yaml.safe_load(faulty_cm["data"]["faults.yaml"]) == faults
    # Only the faults ConfigMap differs between the baseline and the faulty render.
    differ = sorted(
        p.name
        for p in (rendered_dir / "app_deploy").glob("*.yaml")
        if (faulty / "app_deploy" / p.name).read_text() != p.read_text()
    )
    assert differ == ["03-faults-configmap.yaml"]
    # Rendering is deterministic: a second run writes byte-identical files.
    for path in sorted((rendered_dir / "app_deploy").glob("*.yaml")) + sorted(
        (rendered_dir / "monitoring" / "values").glob("*.yaml")
    ):
        twin = again / path.relative_to(rendered_dir)
        assert twin.read_text() == path.read_text(), path.name


def test_a_bad_fault_document_stops_the_render_naming_the_problem(tmp_path: Path) -> None:
    result = run_playbook(
        "render.yml",
        "-e",
        f"lab_render_dir={tmp_path / 'bad'}",
        "-e",
        "lab_platform=minikube",
        "-e",
        json.dumps({"app_deploy_faults": {"db_failure_rate": 2, "APP_FORCE_UNREADY": "true"}}),
        "--tags",
        "app_deploy",  # the fault document is the API's: its part of the render checks it
        check=False,
    )
    assert result.returncode != 0
    assert "db_failure_rate: 2 is not a number from 0 to 1" in result.stdout
    assert "unknown key 'APP_FORCE_UNREADY'" in result.stdout
    assert not (tmp_path / "bad" / "app_deploy").exists()


def test_rendered_files_are_plain_yaml(rendered_dir: Path) -> None:
    for path in sorted((rendered_dir / "monitoring").rglob("*.yaml")) + sorted(
        (rendered_dir / "app_deploy").glob("*.yaml")
    ):
        assert yaml.safe_load(path.read_text()) is not None, path


def test_kubernetes_platform_pulls_from_the_named_registry(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    run_playbook(
        "render.yml",
        "-e",
        f"lab_render_dir={out}",
        "-e",
        "lab_platform=kubernetes",
        "-e",
        "app_image_registry=registry.example.com/sre-lab",
        "--tags",
        "app_deploy",
    )
    image = _by_kind(out, "app_deploy")["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"registry\.example\.com/sre-lab/flask-api:src-[0-9a-f]{12}", image), image
