"""Render the rule files (and the Grafana provisioning) with chosen settings, without a cluster."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, ansible_env

RENDER_PLAYBOOK = ROOT / "tests" / "rules" / "render_rules.yml"
# The runbook base the promtool unit tests expect in runbook_url.
TEST_RUNBOOK_BASE = "https://runbooks.test"
DEFAULT_SLO = {
    "window": "1d",
    "availability": {"objective": 99.5},
    "latency": {"objective": 99.0, "threshold_seconds": 0.3},
    "outage_error_ratio": 0.2,
}

# The 30d window needs a Prometheus that keeps 30 days (lab_common refuses it with the default retention).
SLO_30D = {**DEFAULT_SLO, "window": "30d"}
RETENTION_30D = {"monitoring_prometheus_retention": "30d"}

Render = Callable[..., Path]


def render_playbook(out: Path, extra_vars: dict[str, object]) -> subprocess.CompletedProcess[str]:
    """Run tests/rules/render_rules.yml into `out` with extra vars (JSON), return the finished process."""
    cmd = [
        str(BIN / "ansible-playbook"),
        str(RENDER_PLAYBOOK),
        "-e",
        json.dumps({"out_dir": str(out), **extra_vars}),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def render_rules(tmp_path_factory: pytest.TempPathFactory) -> Render:
    """render_rules(**extra_vars) -> directory holding rules/ and grafana/ (cached per distinct settings)."""
    cache: dict[str, Path] = {}

    def render(**extra_vars: object) -> Path:
        key = json.dumps(extra_vars, sort_keys=True)
        if key not in cache:
            out = tmp_path_factory.mktemp("rendered-rules")
            proc = render_playbook(out, extra_vars)
            if proc.returncode != 0:
                pytest.fail(
                    f"render_rules.yml failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
                )
            cache[key] = out
        return cache[key]

    return render


@pytest.fixture(scope="session")
def rules_default(render_rules: Render) -> Path:
    """The rules exactly as group_vars renders them (1d window, file:// runbook links)."""
    return render_rules() / "rules"


@pytest.fixture(scope="session")
def rules_30d(render_rules: Render) -> Path:
    """A 30d window (and a 30d retention), runbook links on https://runbooks.test (what the tests expect)."""
    return render_rules(lab_runbook_base_url=TEST_RUNBOOK_BASE, lab_slo=SLO_30D, **RETENTION_30D) / "rules"


@pytest.fixture(scope="session")
def rules_1d(render_rules: Render) -> Path:
    """The same spec with a 1-day SLO window."""
    return render_rules(lab_runbook_base_url=TEST_RUNBOOK_BASE, lab_slo=DEFAULT_SLO) / "rules"
