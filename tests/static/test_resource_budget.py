"""The resource-efficiency claim: the monitoring stack's summed requests and limits (every container, sidecars
included), computed from the rendered values by scripts/resource_budget/, stay within 1.5 GiB of memory limits
and 0.6 CPU of requests, the whole lab fits the Minikube size in group_vars, and roles/monitoring/README.md
states the very figures the script computes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.resource_budget import budget as rb_budget
from scripts.resource_budget import quantities, text
from scripts.resource_budget.errors import BudgetError
from scripts.resource_budget.helm_values import deep_merge
from scripts.resource_budget.paths import CHART_DEFAULTS_DIR
from tests.static.helpers import ROOT


def test_monitoring_stack_within_target_and_lab_fits_minikube(rendered_dir: Path) -> None:
    result = rb_budget.budget(rendered_dir)
    failed = [name for name, ok in result["checks"].items() if not ok]
    assert not failed, text.report(result)
    mon = result["sums"]["monitoring"]
    assert mon["limits"]["memory"] <= 1536
    assert mon["requests"]["cpu"] <= 600


def test_every_container_of_the_stack_is_counted(rendered_dir: Path) -> None:
    names = {
        (c["workload"], c["container"])
        for c in rb_budget.budget(rendered_dir)["containers"]
        if c["group"] == "monitoring"
    }
    assert names == {
        ("prometheus-server", "prometheus-server"),
        ("prometheus-server", "config-reloader"),
        ("alertmanager", "alertmanager"),
        ("loki", "loki"),
        ("alloy (daemonset)", "alloy"),
        ("alloy (daemonset)", "config-reloader"),
        ("grafana", "grafana"),
    }


def test_minikube_cni_kindnet_is_counted(rendered_dir: Path) -> None:
    # minikube v1.38.1 with the docker driver and containerd runs kindnet (pkg/minikube/cni/cni.go chooseDefault),
    # whose DaemonSet asks for 100m/50Mi and is limited to the same (pkg/minikube/cni/kindnet.go).
    resources = yaml.safe_load((ROOT / "group_vars" / "all" / "kubernetes.yml").read_text())
    assert resources["minikube_reset_driver"] == "docker"
    assert resources["minikube_reset_container_runtime"] == "containerd"
    assert rb_budget.SYSTEM_PODS["kindnet"] == {
        "requests": {"cpu": 100, "memory": 50},
        "limits": {"cpu": 100, "memory": 50},
    }
    system = rb_budget.budget(rendered_dir)["sums"]["minikube system pods"]
    without = {name: pod for name, pod in rb_budget.SYSTEM_PODS.items() if name != "kindnet"}
    assert system["requests"]["memory"] == sum(p["requests"]["memory"] for p in without.values()) + 50
    assert system["limits"]["cpu"] == sum(p["limits"]["cpu"] for p in without.values()) + 100


def test_the_memory_margin_is_an_estimate_naming_what_it_excludes(rendered_dir: Path) -> None:
    result = rb_budget.budget(rendered_dir)
    margin = result["memory_margin_estimate"]
    assert margin["mib"] == result["node"]["memory"] - result["total"]["limits"]["memory"]
    assert set(margin["excludes"]) >= {"kube-apiserver", "etcd", "kubelet", "containerd", "buildkitd"}
    sentence = text.margin_sentence(result)
    assert sentence.startswith("Memory margin (an estimate):")
    assert sentence in text.markdown(result)
    assert sentence in text.report(result)


def test_readme_states_the_computed_figures(rendered_dir: Path) -> None:
    table = text.markdown(rb_budget.budget(rendered_dir))
    readme = (ROOT / "roles" / "monitoring" / "README.md").read_text()
    assert table in readme, (
        "roles/monitoring/README.md no longer states the computed budget; replace its table with the output of "
        "`make render && .venv/bin/python -m scripts.resource_budget --markdown`:\n" + table
    )


def test_cli(rendered_dir: Path, tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "scripts.resource_budget"]
    ok = subprocess.run(
        [*cli, "--rendered", str(rendered_dir), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert ok.returncode == 0, ok.stderr
    assert "[ok] monitoring memory limits <= 1.5 GiB" in ok.stdout
    missing = subprocess.run([*cli, "--rendered", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2
    assert "run `make render`" in missing.stderr


@pytest.fixture
def rendered_copy(rendered_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "rendered"
    shutil.copytree(rendered_dir, copy)
    return copy


def _edit_values(root: Path, release: str, patch: dict) -> None:
    path = root / "monitoring" / "values" / f"{release}.yaml"
    path.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(path.read_text()), patch)))


def test_an_unaccounted_sidecar_is_an_error(rendered_copy: Path) -> None:
    _edit_values(rendered_copy, "grafana", {"sidecar": {"dashboards": {"enabled": True}}})
    with pytest.raises(BudgetError, match=r"sidecar\.resources"):
        rb_budget.budget(rendered_copy)


def test_an_enabled_subchart_is_an_error(rendered_copy: Path) -> None:
    _edit_values(rendered_copy, "prometheus", {"kube-state-metrics": {"enabled": True}})
    with pytest.raises(BudgetError, match="kube-state-metrics"):
        rb_budget.budget(rendered_copy)


def test_alertmanager_and_the_alert_receiver_are_counted(rendered_dir: Path, rendered_copy: Path) -> None:
    """Alertmanager (the prometheus chart's subchart) is in the monitoring sum with its values' resources, the
    webhook receiver in the API's namespace with the API; a reloader sidecar without resources is an error."""
    containers = rb_budget.budget(rendered_dir)["containers"]
    am = [c for c in containers if c["workload"] == "alertmanager"]
    assert [(c["group"], c["container"], c["limits"]["memory"]) for c in am] == [
        ("monitoring", "alertmanager", 64)
    ]
    receiver = [c for c in containers if c["workload"] == "Deployment/alert-receiver"]
    assert [(c["group"], c["container"], c["count"]) for c in receiver] == [("app", "receiver", 1)]
    _edit_values(rendered_copy, "prometheus", {"alertmanager": {"configmapReload": {"enabled": True}}})
    with pytest.raises(BudgetError, match=r"configmapReload\.resources"):
        rb_budget.budget(rendered_copy)


def test_over_budget_is_reported(rendered_copy: Path) -> None:
    _edit_values(rendered_copy, "grafana", {"resources": {"limits": {"memory": "1Gi"}}})
    result = rb_budget.budget(rendered_copy)
    assert result["checks"]["monitoring memory limits <= 1.5 GiB"] is False


@pytest.mark.parametrize(("quantity", "millis"), [("100m", 100), ("0.5", 500), (2, 2000), ("1.5", 1500)])
def test_cpu_quantities(quantity: object, millis: float) -> None:
    assert quantities.cpu_millis(quantity) == millis


@pytest.mark.parametrize(
    ("quantity", "mib"), [("128Mi", 128), ("1Gi", 1024), ("512Ki", 0.5), ("1048576", 1), ("1G", 1e9 / 2**20)]
)
def test_memory_quantities(quantity: str, mib: float) -> None:
    assert quantities.memory_mib(quantity) == pytest.approx(mib)


def test_bad_quantity_is_an_error() -> None:
    with pytest.raises(BudgetError):
        quantities.memory_mib("lots")


def test_the_script_reads_no_test_data() -> None:
    """The chart defaults the script and the tests share live outside tests/, and the script names no test file."""
    assert "tests" not in CHART_DEFAULTS_DIR.relative_to(ROOT).parts
    assert (CHART_DEFAULTS_DIR / "README.md").is_file()
    package = ROOT / "scripts" / "resource_budget"
    assert [p.name for p in package.glob("*.py") if "tests/" in p.read_text()] == []
