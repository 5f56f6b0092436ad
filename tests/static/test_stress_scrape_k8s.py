"""The Kubernetes stress-only 1 s scrape job: the rendered prometheus values' job, run by a real Prometheus.

roles/monitoring's prometheus values add a pod-discovery job (`lab_stress_scrape_job`) that keeps only the API's pods
annotated `lab_k8s_stress_scrape_annotation`="true"; roles/stress_test adds that annotation to the running pods for a
run (a JSON merge patch) and removes it after (the same patch with null).

No cluster runs here, so the discovery itself is not tested. What is: the job exactly as render.yml writes it, with
its `kubernetes_sd_configs` swapped for a file_sd file whose targets carry the meta labels the pod role gives a pod
(Prometheus's documented `__meta_kubernetes_pod_*` labels), run by the real Prometheus binary: which pods it keeps,
the address and path it scrapes, and the labels the series get (no `app`, so the rules never count the API twice).
And the patch task's annotations expression, rendered by Ansible's own templating for both switches.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.static.helpers import ROOT, group_vars
from tests.support.prometheus import api, query, start_prometheus

LAB = group_vars("lab")
APP = LAB["lab_app_name"]
NAMESPACE = LAB["lab_app_namespace"]
ANNOTATION = LAB["lab_k8s_stress_scrape_annotation"]
JOB = LAB["lab_stress_scrape_job"].replace("{{ lab_app_name }}", APP)


def meta_annotation(name: str) -> str:
    """The meta label Prometheus's pod role gives an annotation (any character outside [a-zA-Z0-9_] becomes _)."""
    return "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def stress_job(rendered_dir: Path) -> dict[str, Any]:
    values = yaml.safe_load((rendered_dir / "monitoring" / "values" / "prometheus.yaml").read_text())
    jobs = values["scrapeConfigs"]
    assert JOB in jobs, f"no {JOB} job in the prometheus values' scrapeConfigs: {sorted(jobs)}"
    return jobs[JOB]


def pod_target(
    name: str,
    port: int,
    *,
    app: str = APP,
    container: str = "api",
    phase: str = "Running",
    stress: str | None,
) -> dict[str, Any]:
    """A file_sd target group as the pod role discovers one container port of a pod (address podIP:containerPort)."""
    labels = {
        "__meta_kubernetes_namespace": NAMESPACE,
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_label_app": app,
        "__meta_kubernetes_pod_labelpresent_app": "true",
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_container_init": "false",
        # app_deploy's Deployment annotates its pods for the chart's kubernetes-pods job; the stress job reuses them.
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(port),
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
    }
    if stress is not None:
        labels[meta_annotation(ANNOTATION)] = stress
        labels[meta_annotation(ANNOTATION).replace("_annotation_", "_annotationpresent_", 1)] = "true"
    return {"targets": ["127.0.0.1:9"], "labels": labels}


def test_the_job_scrapes_every_second_and_is_a_pod_discovery_job(rendered_dir: Path) -> None:
    job = stress_job(rendered_dir)
    assert job["scrape_interval"] == job["scrape_timeout"] == LAB["lab_stress_scrape_interval"] == "1s"
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [NAMESPACE]}}]
    assert "enabled" not in job or job["enabled"] is True
    # No labelmap of the pod labels: `app` would put the API's series under the rules' selector twice.
    assert all(rule.get("action") != "labelmap" for rule in job["relabel_configs"])


def test_a_real_prometheus_keeps_exactly_the_annotated_api_pods(rendered_dir: Path, tmp_path: Path) -> None:
    job = copy.deepcopy(stress_job(rendered_dir))
    del job["kubernetes_sd_configs"]
    targets = tmp_path / "pods.json"
    job |= {"job_name": JOB, "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}]}
    prom = start_prometheus(tmp_path, scrape_targets=[], extra_scrape_configs=[job])
    try:
        # Prometheus scrapes its own /metrics in place of the API: the kept pod's address is podIP:<prometheus.io/port>.
        port = int(prom.url.rsplit(":", 1)[1])
        groups = [
            pod_target(f"{APP}-7d9f-a", port, stress="true"),  # kept
            pod_target(f"{APP}-7d9f-b", port, stress=None),  # not annotated (another run's leftover removed)
            pod_target(f"{APP}-7d9f-c", port, stress="false"),
            pod_target(f"{APP}-7d9f-d", port, stress="true", phase="Pending"),
            pod_target(f"{APP}-7d9f-a", 15090, stress="true", container="istio-proxy"),  # a sidecar's port
            pod_target("alert-receiver-5c6b-x", port, app="alert-receiver", stress="true"),
            pod_target("stress-20261206t190000z-abcde", port, app="locust", stress="true"),
        ]
        targets.write_text(json.dumps(groups))
        deadline = time.monotonic() + 30
        while True:
            found = api(prom.url, "targets", {"state": "any"})
            active = [t for t in found["activeTargets"] if t["labels"].get("job") == JOB]
            if (active and all(t["health"] == "up" for t in active)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [t["labels"] for t in active] == [
            {
                "container": "api",
                "instance": f"127.0.0.1:{port}",
                "job": JOB,
                "namespace": NAMESPACE,
                "pod": f"{APP}-7d9f-a",
            }
        ], active
        assert active[0]["health"] == "up", active[0].get("lastError")
        assert active[0]["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
        assert active[0]["scrapeInterval"] == "1s"
        dropped = [t for t in found["droppedTargets"] if t["discoveredLabels"].get("job") == JOB]
        assert len(dropped) == len(groups) - 1
        # The series carry no app label: the rules, alerts and dashboards (app="<app>") do not see this job.
        assert query(prom.url, f'count(up{{job="{JOB}"}} == 1)')[0]["value"][1] == "1"
        assert query(prom.url, f'up{{app="{APP}",job="{JOB}"}}') == []
    finally:
        prom.stop()


def _patch_task() -> dict[str, Any]:
    tasks = yaml.safe_load((ROOT / "roles/stress_test/tasks/kubernetes/stress_scrape.yml").read_text())
    (task,) = [t for t in tasks if "kubernetes.core.k8s" in t]
    return task


@pytest.mark.parametrize(("switch", "value"), [(True, "true"), (False, None)])
def test_the_pod_patch_sets_and_removes_exactly_that_annotation(switch: bool, value: str | None) -> None:
    """What the API server receives: PATCH pods/<name> as a JSON merge patch (RFC 7386: null deletes the key),
    `{"metadata": {"annotations": {"<annotation>": "true" | null}}}`, the key being the annotation's name, not a
    template (Ansible does not template mapping keys); only pods with the label the job keeps."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    task = _patch_task()
    module = task["kubernetes.core.k8s"]
    assert (module["state"], module["merge_type"], module["api_version"], module["kind"]) == (
        "patched",
        "merge",
        "v1",
        "Pod",
    )
    templar = Templar(
        loader=DataLoader(),
        variables={"lab_k8s_stress_scrape_annotation": ANNOTATION, "_stress_test_scrape_on": switch},
    )
    annotations = templar.template(trust_as_template(module["definition"]["metadata"]["annotations"]))
    assert annotations == {ANNOTATION: value}
    assert json.dumps({"metadata": {"annotations": annotations}}) == (
        f'{{"metadata": {{"annotations": {{"{ANNOTATION}": {json.dumps(value)}}}}}}}'
    )
    tasks = yaml.safe_load((ROOT / "roles/stress_test/tasks/kubernetes/stress_scrape.yml").read_text())
    (find,) = [t for t in tasks if "kubernetes.core.k8s_info" in t]
    assert find["kubernetes.core.k8s_info"]["label_selectors"] == ["app={{ lab_app_name }}"]
