"""The Kubernetes path of the stress test, statically: the rendered Locust Job(s) and ConfigMap.

Nothing here pretends a cluster ran them; schema validation of every rendered manifest is in tests/static.
This checks what the stress_test role relies on: the image is the locust pin, the pods are restricted, the
ConfigMap holds the current loadtest files and they work side by side without the repository (as mounted).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def docs(rendered_dir: Path, name: str) -> list[dict]:
    path = rendered_dir / "stress_test" / name
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_kind(items: list[dict], kind: str) -> list[dict]:
    return [d for d in items if d["kind"] == kind]


def pin() -> str:
    match = re.search(r"^locust==(\S+)", (ROOT / "loadtest" / "requirements.txt").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def test_standalone_is_one_job_and_its_locustfile(rendered_dir: Path) -> None:
    items = docs(rendered_dir, "locust-standalone.yaml")
    assert sorted(d["kind"] for d in items) == ["ConfigMap", "Job"]
    job = by_kind(items, "Job")[0]
    assert job["metadata"]["namespace"] == "sre-lab"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == f"docker.io/locustio/locust:{pin()}"
    script = container["args"][0]
    assert container["command"] == ["sh", "-c"]
    assert 'locust -f /mnt/locust/locustfile.py --headless --host "$LAB_TARGET"' in script
    assert "--master" not in script
    for marker in ("LAB_START", "LAB_END", "LAB_FILES_BEGIN", "LAB_FILES_END"):
        assert marker in script  # what loadtest.collect parses
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["LAB_TARGET"] == "http://flask-api.sre-lab.svc.cluster.local:8000"
    # `make stress` is the capacity search by default; the scrape interval sets the shortest step: the stress-only
    # 1 s job (roles/monitoring's prometheus values), which the run switches on for the lab's own API, 20 scrapes.
    assert env["LAB_SHAPE"] == "capacity"
    assert {"LAB_CAPACITY_START_USERS", "LAB_CAPACITY_MAX_USERS", "LAB_SPAWN_RATE", "LAB_PROFILE"} <= set(env)
    assert (env["LAB_SCRAPE_INTERVAL"], env["LAB_CAPACITY_MIN_SCRAPES"]) == ("1s", "20")
    assert (env["LAB_SLO_AVAILABILITY"], env["LAB_SLO_LATENCY"], env["LAB_SLO_LATENCY_THRESHOLD"]) == (
        "99.5",
        "99.0",
        "0.3",
    )
    assert env["LAB_STEPS_FILE"] == "/reports/steps.json"  # collected with the report files


@pytest.mark.parametrize("name", ["locust-standalone.yaml", "locust-distributed.yaml"])
def test_pods_are_restricted_and_limited(rendered_dir: Path, name: str) -> None:
    for job in by_kind(docs(rendered_dir, name), "Job"):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/mnt/locust", "/tmp"} <= mounts


def test_distributed_mode_has_a_master_its_service_and_workers(rendered_dir: Path) -> None:
    items = docs(rendered_dir, "locust-distributed.yaml")
    assert sorted(d["kind"] for d in items) == ["ConfigMap", "Job", "Job", "Service"]
    master = next(j for j in by_kind(items, "Job") if not j["metadata"]["name"].endswith("-workers"))
    workers = next(j for j in by_kind(items, "Job") if j["metadata"]["name"].endswith("-workers"))
    service = by_kind(items, "Service")[0]
    script = master["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert "--master --master-bind-port 5557 --expect-workers 2" in script
    assert workers["spec"]["parallelism"] == 2
    assert workers["spec"]["completions"] == 2
    worker_args = workers["spec"]["template"]["spec"]["containers"][0]["args"]
    assert worker_args[worker_args.index("--master-host") + 1] == service["metadata"]["name"]
    assert "--worker" in worker_args
    # The same capacity shape in distributed mode: the master runs the shape and judges the steps (it holds
    # the aggregated stats and the workers' CPU), the workers only run users with the same settings.
    master_env = {e["name"]: e["value"] for e in master["spec"]["template"]["spec"]["containers"][0]["env"]}
    worker_env = {e["name"]: e["value"] for e in workers["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert master_env["LAB_SHAPE"] == worker_env["LAB_SHAPE"] == "capacity"
    assert master_env["LAB_STEPS_FILE"] == "/reports/steps.json"
    assert "LAB_STEPS_FILE" not in worker_env
    labels = master["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert not all(
        workers["spec"]["template"]["metadata"]["labels"].get(k) == v
        for k, v in service["spec"]["selector"].items()
    )


def test_configmap_holds_the_current_loadtest_files(rendered_dir: Path) -> None:
    configmap = by_kind(docs(rendered_dir, "locust-standalone.yaml"), "ConfigMap")[0]
    assert set(configmap["data"]) == {"locustfile.py", "shapes.py", "checks.py", "capacity.py", "machine.py"}
    for name, text in configmap["data"].items():
        assert text.strip() == (ROOT / "loadtest" / name).read_text().strip()


def run_from_mount(configmap: dict, tmp_path: Path, lab_env: dict[str, str], code: str) -> str:
    """As in the pod: the ConfigMap's files side by side in a folder, the loadtest package not importable
    (no PYTHONPATH, the repository not the working directory); `code` runs with that folder as sys.argv[1]
    and the LAB_* variables `lab_env`. Returns its standard output."""
    mount = tmp_path / "mnt-locust"
    mount.mkdir()
    for name, text in configmap["data"].items():
        (mount / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(lab_env)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(mount)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_mounted_files_work_without_the_repository(rendered_dir: Path, tmp_path: Path) -> None:
    """As in the pod: the files side by side in /mnt/locust, the loadtest package not importable."""
    configmap = by_kind(docs(rendered_dir, "locust-standalone.yaml"), "ConfigMap")[0]
    lab_env = {"LAB_SHAPE": "spike", "LAB_USERS": "20", "LAB_SPAWN_RATE": "5", "LAB_DURATION": "60"}
    lab_env.update({"LAB_SPIKE_BASE_USERS": "2", "LAB_SPIKE_AT": "10", "LAB_SPIKE_SECONDS": "10"})
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import locustfile, shapes;"
        "assert 'loadtest' not in sys.modules; print(locustfile.SHAPE.tick(15), locustfile.LabShape().tick())"
    )
    assert run_from_mount(configmap, tmp_path, lab_env, code).strip() == "(20, 20.0) (2, 5.0)"


def test_mounted_capacity_shape_loads_its_limits_without_the_repository(
    rendered_dir: Path, tmp_path: Path
) -> None:
    """The capacity shape imports capacity.py beside it and reads the SLO limits the role rendered."""
    items = docs(rendered_dir, "locust-distributed.yaml")
    configmap = by_kind(items, "ConfigMap")[0]
    master = next(j for j in by_kind(items, "Job") if not j["metadata"]["name"].endswith("-workers"))
    rendered_env = {e["name"]: e["value"] for e in master["spec"]["template"]["spec"]["containers"][0]["env"]}
    lab_env = {k: v for k, v in rendered_env.items() if k.startswith("LAB_") and k != "LAB_STEPS_FILE"}
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import locustfile;"
        "assert 'loadtest' not in sys.modules; s = locustfile.SHAPE;"
        "print(s.step_seconds, s.steps, locustfile.LIMITS.latency_threshold_ms, locustfile.ApiUser.wait_time(None))"
    )
    step_seconds, steps, threshold_ms, wait = run_from_mount(configmap, tmp_path, lab_env, code).split()
    assert int(step_seconds) >= 25  # the 5 s warm-up + 20 x the stress-only job's 1 s scrape interval
    assert int(steps) == 12  # 50 -> 600 users by 50
    assert float(threshold_ms) == 300
    assert float(wait) == 0  # no think time
