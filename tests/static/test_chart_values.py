"""Every key of every rendered Helm values file exists in the pinned chart's defaults, and the merged values
pass the chart's values.schema.json where it ships one.

The chart defaults (files/chart-defaults/) are plain data with the charts' comments stripped, so a few places where
the lab legitimately goes below a chart default are listed in ALLOWED, each with the reason and its own check
(a Kubernetes type in strict mode, or the structure the chart passes through). Nothing else is skipped, and an
ALLOWED entry that the rendered values no longer use fails the test, so the list cannot rot.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scripts.resource_budget.helm_values import chart_defaults, chart_schema, deep_merge
from tests.static.helpers import jsonable, validate_k8s_fragment

Check = Callable[[Any], None]
RELEASES = ["prometheus", "loki", "alloy", "grafana"]


def _assert(condition: bool, message: str) -> None:
    assert condition, message


def k8s(type_name: str) -> Check:
    return lambda value: validate_k8s_fragment(value, f"io.k8s.api.core.v1.{type_name}")


def rule_file(value: Any) -> None:
    assert isinstance(value, dict), "a Prometheus rule file is {groups: [...]}"
    assert set(value) == {"groups"}, "a Prometheus rule file is {groups: [...]}"
    for group in value["groups"]:
        assert {"name", "rules"} <= set(group), group.get("name")
        for rule in group["rules"]:
            assert ("record" in rule) != ("alert" in rule), rule
            assert isinstance(rule["expr"], str | int | float), rule


def loki_schema_config(value: Any) -> None:
    configs = value["configs"]
    assert configs
    assert set(value) == {"configs"}
    for period in configs:
        assert set(period) <= {"from", "store", "object_store", "schema", "index", "row_shards", "chunks"}, (
            period
        )
        assert period["store"] == "tsdb"
        assert period["schema"] == "v13"
        assert period["object_store"] == "filesystem"
        assert set(period["index"]) == {"prefix", "period"}


# Loki 3's compactor block keys (docs: "compactor" in Loki's configuration reference) the lab may set.
LOKI_COMPACTOR_KEYS = {
    "working_directory",
    "retention_enabled",
    "delete_request_store",
    "compaction_interval",
}


def loki_compactor(value: Any) -> None:
    assert isinstance(value, dict), "loki.compactor is Loki's compactor block"
    assert set(value) <= LOKI_COMPACTOR_KEYS, set(value) - LOKI_COMPACTOR_KEYS
    # Loki applies limits_config.retention_period only when the compactor's retention is enabled, and
    # Loki 3 refuses retention without a store for delete requests.
    assert value["retention_enabled"] is True
    assert value["delete_request_store"] == "filesystem"
    assert str(value["working_directory"]).startswith("/var/loki/"), (
        "inside the data emptyDir (read-only root)"
    )


# The prometheus chart's alertmanager dependency (Chart.lock of prometheus 29.27.0: alertmanager 1.42.0).
ALERTMANAGER_SUBCHART = "1.42.0"


def alertmanager_subchart(value: Any) -> None:
    """The `alertmanager` subtree is the subchart's values (plus the parent's `enabled` condition): every key must
    exist in the subchart's defaults, and the merged values must pass the subchart's values.schema.json."""
    defaults = chart_defaults("alertmanager", ALERTMANAGER_SUBCHART)
    # Below these the subchart's defaults are empty or examples: each is checked as what it is instead (a
    # Kubernetes type; Alertmanager's own config, which test_alertmanager_config_passes_amtool checks).
    typed = {
        ("resources",): "ResourceRequirements",
        ("securityContext",): "SecurityContext",
        ("persistence", "emptyDir"): "EmptyDirVolumeSource",
    }
    plain = copy.deepcopy({k: v for k, v in value.items() if k not in ("enabled", "config")})
    for path, type_name in typed.items():
        parent = plain
        for part in path[:-1]:
            parent = parent[part]
        validate_k8s_fragment(parent.pop(path[-1]), f"io.k8s.api.core.v1.{type_name}")
    problems, _ = unknown_keys("alertmanager", plain, defaults)
    assert not problems, "\n".join(problems)
    assert set(value["config"]) == {"enabled", "route", "receivers"}
    schema = chart_schema("alertmanager", ALERTMANAGER_SUBCHART)
    assert schema is not None
    merged = deep_merge(defaults, {k: v for k, v in value.items() if k != "enabled"})
    errors = list(schema_validator(schema).iter_errors(merged))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def volume_source(value: Any) -> None:
    # dataVolumeParameters is the Volume's source, to which the chart adds the name.
    validate_k8s_fragment({"name": "storage", **value}, "io.k8s.api.core.v1.Volume")


def grafana_datasources(value: Any) -> None:
    assert value["apiVersion"] == 1
    assert {d["uid"] for d in value["datasources"]} == {"lab-prometheus", "lab-loki"}
    for ds in value["datasources"]:
        assert {"name", "type", "url", "access", "uid"} <= set(ds), ds
        assert ds["url"].startswith("http://"), ds["url"]
        assert ".svc" in ds["url"], ds["url"]


def grafana_providers(value: Any) -> None:
    assert value["apiVersion"] == 1
    for provider in value["providers"]:
        assert provider["type"] == "file"
        assert provider["options"]["path"] == f"/var/lib/grafana/dashboards/{provider['name']}"


def scrape_job(value: Any) -> None:
    _assert(isinstance(value, dict) and "job_name" not in value, "a scrape config whose job_name is its key")
    _assert(
        {"scrape_interval", "relabel_configs"} <= set(value),
        "a scrape config with its interval and relabeling",
    )


def string(value: Any) -> None:
    assert isinstance(value, str)
    assert value


def boolean(value: Any) -> None:
    assert isinstance(value, bool)


# (release, path) -> (why the key is not in the stripped chart defaults, how it is checked instead)
ALLOWED: dict[tuple[str, tuple[str, ...]], tuple[str, Check]] = {
    ("prometheus", ("serverFiles", "recording_rules.yml")): (
        "the chart's default is an empty map that holds a whole Prometheus rule file (promtool checks it elsewhere)",
        rule_file,
    ),
    ("prometheus", ("serverFiles", "alerting_rules.yml")): ("same as recording_rules.yml", rule_file),
    ("prometheus", ("scrapeConfigs", "flask-api-stress")): (
        "a job of the lab's own (lab_stress_scrape_job for the default lab_app_name): the chart turns every key of"
        " the scrapeConfigs map into a scrape job of that name (templates/cm.yaml); run by a real Prometheus in"
        " tests/static/test_stress_scrape_k8s.py",
        scrape_job,
    ),
    ("prometheus", ("server", "resources")): (
        "default {}: a Kubernetes ResourceRequirements",
        k8s("ResourceRequirements"),
    ),
    ("prometheus", ("server", "securityContext")): (
        "a Kubernetes PodSecurityContext; the default sets only the user/group fields",
        k8s("PodSecurityContext"),
    ),
    ("prometheus", ("server", "containerSecurityContext")): (
        "default {}: a SecurityContext",
        k8s("SecurityContext"),
    ),
    ("prometheus", ("configmapReload", "prometheus", "resources")): (
        "default {}: a Kubernetes ResourceRequirements",
        k8s("ResourceRequirements"),
    ),
    ("prometheus", ("configmapReload", "prometheus", "containerSecurityContext")): (
        "default {}: a SecurityContext",
        k8s("SecurityContext"),
    ),
    ("prometheus", ("alertmanager",)): (
        "the alertmanager subchart's values (the parent's defaults list only enabled/persistence/podSecurityContext):"
        " checked against the subchart's own defaults and schema (files/chart-defaults/alertmanager-1.42.0)",
        alertmanager_subchart,
    ),
    ("loki", ("loki", "schemaConfig")): (
        "default {}: Loki's schema_config block, copied into Loki's config (required unless useTestSchema)",
        loki_schema_config,
    ),
    ("loki", ("loki", "compactor")): (
        "default {}: Loki's compactor block, passed through (values.yaml: 'Optional compactor configuration')",
        loki_compactor,
    ),
    ("loki", ("loki", "limits_config", "retention_period")): (
        "loki.limits_config is passed through to Loki's limits_config (schema: additionalProperties); the"
        " chart's defaults do not list retention_period",
        lambda value: _assert(isinstance(value, str) and value, "a duration such as 24h"),
    ),
    ("loki", ("singleBinary", "resources")): (
        "default {}: a ResourceRequirements",
        k8s("ResourceRequirements"),
    ),
    ("loki", ("singleBinary", "persistence", "dataVolumeParameters")): (
        "default {}: the source of the /var/loki volume when persistence is off (templates/_pod.tpl)",
        volume_source,
    ),
    ("alloy", ("alloy", "resources")): ("default {}: a ResourceRequirements", k8s("ResourceRequirements")),
    ("alloy", ("alloy", "securityContext")): (
        "default {}: the Alloy container's SecurityContext",
        k8s("SecurityContext"),
    ),
    ("alloy", ("configReloader", "resources")): (
        "a ResourceRequirements; the default sets only requests",
        k8s("ResourceRequirements"),
    ),
    ("grafana", ("resources",)): ("default {}: a ResourceRequirements", k8s("ResourceRequirements")),
    ("grafana", ("datasources", "datasources.yaml")): (
        "default {}: a Grafana data source provisioning file, documented only in a comment of the chart",
        grafana_datasources,
    ),
    ("grafana", ("dashboardProviders", "dashboardproviders.yaml")): (
        "default {}: a Grafana dashboard provider file, documented only in a comment",
        grafana_providers,
    ),
    ("grafana", ("dashboardsConfigMaps", "lab")): ("default {}: provider name -> ConfigMap name", string),
    ("grafana", ("grafana.ini", "analytics", "reporting_enabled")): (
        "grafana.ini is Grafana's ini file as a map; [analytics] reporting_enabled is a Grafana setting the chart's"
        " defaults do not list",
        boolean,
    ),
}


def unknown_keys(
    release: str, rendered: Any, defaults: Any, path: tuple[str, ...] = ()
) -> tuple[list[str], set]:
    """Paths in `rendered` that the chart defaults do not have; also the ALLOWED entries met on the way."""
    problems: list[str] = []
    used: set[tuple[str, tuple[str, ...]]] = set()
    for key, value in rendered.items():
        here = (*path, key)
        if (release, here) in ALLOWED:
            used.add((release, here))
            continue
        shown = ".".join(here)
        if not isinstance(defaults, dict) or key not in defaults:
            problems.append(f"{release}: {shown} is not a key of the chart's values")
            continue
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict):
            sub_problems, sub_used = unknown_keys(release, value, default, here)
            problems += sub_problems
            used |= sub_used
        elif default is not None and isinstance(value, dict | list) != isinstance(default, dict | list):
            problems.append(
                f"{release}: {shown} is a {type(value).__name__}, the chart's default a {type(default).__name__}"
            )
    return problems, used


def schema_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """The schema's own draft; prometheus' "http://json-schema.org/schema#" names none, so draft-07 (Helm 3's)."""
    if "draft-07" in schema.get("$schema", "") or schema.get("$schema") == "http://json-schema.org/schema#":
        return jsonschema.Draft7Validator(schema)
    return jsonschema.validators.validator_for(schema)(schema)


def _subtree(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


@pytest.fixture(scope="module")
def values(rendered_dir: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    charts = yaml.safe_load((rendered_dir / "monitoring" / "charts.yaml").read_text())
    return {
        key: (
            str(charts[key]).rsplit("@", 1)[1],
            jsonable(yaml.safe_load((rendered_dir / "monitoring" / "values" / f"{key}.yaml").read_text())),
        )
        for key in RELEASES
    }


def test_charts_are_the_pinned_ones(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    versions = yaml.safe_load((Path(__file__).parents[2] / "group_vars/all/versions.yml").read_text())
    assert {k: v for k, (v, _) in values.items()} == {
        k: str(v) for k, v in versions["monitoring_chart_versions"].items()
    }


@pytest.mark.parametrize("release", RELEASES)
def test_every_key_exists_in_the_chart(release: str, values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    version, rendered = values[release]
    problems, used = unknown_keys(release, rendered, chart_defaults(release, version))
    assert not problems, "\n".join(problems)
    stale = [".".join(p) for (r, p) in ALLOWED if r == release and (r, p) not in used]
    assert not stale, f"ALLOWED entries no longer used by the {release} values: {stale}"
    for (r, path), (_why, check) in ALLOWED.items():
        if r == release:
            check(_subtree(rendered, path))


@pytest.mark.parametrize("release", RELEASES)
def test_merged_values_pass_the_chart_schema(
    release: str, values: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    version, rendered = values[release]
    schema = chart_schema(release, version)
    if schema is None:
        assert release in {"grafana", "alloy"}, f"{release} {version} should ship values.schema.json"
        return
    merged = deep_merge(chart_defaults(release, version), rendered)
    errors = sorted(schema_validator(schema).iter_errors(merged), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_key_check_catches_a_typo(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    version, rendered = values["prometheus"]
    typo = deep_merge(rendered, {"server": {"retentoin": "1d"}, "alertmanger": {"enabled": False}})
    problems, _ = unknown_keys("prometheus", typo, chart_defaults("prometheus", version))
    assert any("server.retentoin" in p for p in problems)
    assert any("alertmanger" in p for p in problems)


def test_the_schema_check_catches_a_bad_value(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    version, rendered = values["loki"]
    schema = chart_schema("loki", version)
    assert schema is not None
    bad = deep_merge(
        chart_defaults("loki", version), deep_merge(rendered, {"singleBinary": {"replicas": "one"}})
    )
    assert list(schema_validator(schema).iter_errors(bad))


def test_prometheus_values_match_the_original_lab(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    _, v = values["prometheus"]
    for sub in ("prometheus-pushgateway", "kube-state-metrics", "prometheus-node-exporter"):
        assert v[sub]["enabled"] is False, sub
    assert v["server"]["persistentVolume"]["enabled"] is False
    assert v["server"]["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "250m", "memory": "512Mi"},
    }
    assert v["server"]["global"]["scrape_interval"] == "15s"
    assert v["server"]["retention"]
    assert v["server"]["retentionSize"]
    # The API is scraped by the chart's annotation-driven kubernetes-pods job, which stays enabled.
    assert "kubernetes-pods" not in v.get("scrapeConfigs", {}) or v["scrapeConfigs"]["kubernetes-pods"].get(
        "enabled", True
    )
    assert set(v["serverFiles"]) == {"recording_rules.yml", "alerting_rules.yml"}


def test_loki_values_are_monolithic_and_small(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    _, v = values["loki"]
    assert v["deploymentMode"] == "Monolithic"
    assert v["loki"]["storage"]["type"] == "filesystem"
    assert v["loki"]["auth_enabled"] is False
    assert v["singleBinary"]["persistence"]["enabled"] is False
    for off in ("chunksCache", "resultsCache", "lokiCanary", "test", "gateway", "minio"):
        assert v[off]["enabled"] is False, off
    assert v["sidecar"]["rules"]["enabled"] is False
    assert all(v[p]["replicas"] == 0 for p in ("read", "write", "backend"))


def test_alertmanager_runs_on_kubernetes_with_the_shared_routing_file(
    values: dict[str, tuple[str, dict[str, Any]]], rendered_dir: Path
) -> None:
    """Alerts reach someone on Kubernetes too: the subchart is on, its config is the routing file every platform
    renders from roles/monitoring/templates/alertmanager.yml.j2, and pages/tickets go to the in-cluster receiver."""
    _, v = values["prometheus"]
    am = v["alertmanager"]
    assert am["enabled"] is True
    assert am["persistence"]["enabled"] is False
    assert am["resources"] == group_vars_resources()["monitoring_resources"]["alertmanager"]
    shared = yaml.safe_load((rendered_dir / "monitoring" / "alertmanager.yml").read_text())
    assert {k: x for k, x in am["config"].items() if k != "enabled"} == shared
    lab = yaml.safe_load((Path(__file__).parents[2] / "group_vars/all/lab.yml").read_text())
    base = (
        f"http://{lab['lab_alert_receiver_name']}.{lab['lab_app_namespace']}.svc.cluster.local:"
        f"{lab['lab_alert_receiver_port']}/alerts/"
    )
    urls = {r["name"]: [w["url"] for w in r["webhook_configs"]] for r in shared["receivers"]}
    assert urls == {name: [base + name] for name in ("page", "ticket", "other")}
    routes = {tuple(r["matchers"]): r["receiver"] for r in shared["route"]["routes"]}
    assert routes == {('severity="page"',): "page", ('severity="ticket"',): "ticket"}


def test_alertmanager_config_passes_amtool(rendered_dir: Path) -> None:
    """The routing file the chart gets is a valid Alertmanager config (Debian's amtool, the local platform's check)."""
    amtool = shutil.which("amtool")
    assert amtool, (
        "amtool is not installed: run `scripts/system-deps.sh test` (Debian's prometheus-alertmanager)"
    )
    proc = subprocess.run(
        [amtool, "check-config", str(rendered_dir / "monitoring" / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 receivers" in proc.stdout


def group_vars_resources() -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parents[2] / "group_vars/all/resources.yml").read_text())


def test_loki_deletes_logs_older_than_what_prometheus_keeps(
    values: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """Without compactor retention Loki keeps every log in its bounded emptyDir until the kubelet evicts it."""
    _, v = values["loki"]
    _, prometheus = values["prometheus"]
    compactor = v["loki"]["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"
    assert v["loki"]["limits_config"]["retention_period"] == prometheus["server"]["retention"]
    # The chart merges the lab's limits_config over its own: its defaults stay.
    merged = deep_merge(chart_defaults("loki", values["loki"][0]), v)
    assert merged["loki"]["limits_config"]["reject_old_samples"] is True


def test_alloy_ships_pod_logs_with_the_contract_labels(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    _, v = values["alloy"]
    content = v["alloy"]["configMap"]["content"]
    # The chart passes the content through Helm's tpl: a `{{` would be executed (or break the render).
    assert "{{" not in content
    assert 'loki.source.kubernetes "pods"' in content
    assert "local.file_match" not in content
    for label in ("namespace", "pod", "container", "app"):
        assert f'target_label  = "{label}"' in content, label
    assert "/loki/api/v1/push" in content
    assert "mounts" not in v["alloy"], "logs come through the Kubernetes API: no host log mounts"


def test_alloy_installs_no_podlogs_crd(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """The alloy chart 1.11.1 installs the podlogs.monitoring.grafana.com CRD through its `crds` subchart, whose
    Chart.yaml condition is `crds.create` (default true; grafana/alloy operations/helm/charts/alloy/Chart.yaml at
    66ebea85, chart 1.11.1). The lab never uses PodLogs and Helm never removes a CRD: the subchart stays off."""
    _, v = values["alloy"]
    assert chart_defaults("alloy", "1.11.1")["crds"] == {"create": True}, (
        "the chart's key moved: re-check the chart"
    )
    assert v["crds"] == {"create": False}


def test_grafana_values(values: dict[str, tuple[str, dict[str, Any]]]) -> None:
    _, v = values["grafana"]
    assert "adminPassword" not in v, "the password must not be in the values (it is generated into a Secret)"
    assert v["admin"]["existingSecret"]
    assert v["admin"]["passwordKey"] == "admin-password"
    providers = v["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    assert set(v["dashboardsConfigMaps"]) == {p["name"] for p in providers}
    assert v["persistence"]["enabled"] is False
