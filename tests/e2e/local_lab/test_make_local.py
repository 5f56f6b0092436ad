"""What the lab prints works on this machine, and `make faults` as the docs show it (issue 19, items 10 and 11).

Against the package's real local lab (conftest.py): the summary's every link is fetched and must answer 200, every
command it prints is a `make` target that exists (and amtool, when printed, runs); `make faults FAULTS=<document>`
then `make faults FAULTS=none` switch the running API and back to the baseline. The lab's test settings reach make
through ARGS='-e @settings.json' (the verbatim default run, no ARGS, is the acceptance test's).

Runs after test_drills_local.py and test_faults_local.py (file names): the fault window here fires nothing they wait
for, and the baseline is back when it ends.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env

pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def lab(local_lab: dict[str, Any]) -> dict[str, Any]:
    return local_lab


def settings_file(lab: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(lab["settings"]))
    return path


def summary_text(lab: dict[str, Any], tmp_path: Path) -> str:
    play = [
        {
            "name": "The summary site.yml prints last",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [{"name": "Print it", "ansible.builtin.include_role": {"name": "lab_summary"}}],
        }
    ]
    path = tmp_path / "summary.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory.yml"), str(path)]
    cmd += ["-e", f"@{settings_file(lab, tmp_path)}"]
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
    out = proc.stdout[proc.stdout.index("Print how to reach the local lab") :]
    return " ".join(out.split()).replace("''", "'")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def test_every_link_and_command_of_the_summary_works(lab: dict[str, Any], tmp_path: Path) -> None:
    text = summary_text(lab, tmp_path)
    urls = sorted(set(re.findall(r"http://127\.0\.0\.1:\d+[^\s,')]*", text)))
    assert len(urls) >= 5, text
    broken = {url: code for url in urls if (code := status(url)) != 200}
    assert not broken, f"links that do not open: {broken}\n{text}"
    # Prometheus' pages as this server serves them, and its version asked from the server itself.
    with urllib.request.urlopen(
        lab["urls"]["prometheus"] + "/api/v1/status/buildinfo", timeout=10
    ) as response:
        version = json.load(response)["data"]["version"]
    assert f"Prometheus {version}" in text
    assert re.search(r"Prometheus alerts http://127\.0\.0\.1:\d+/(classic/)?alerts", text), text
    # Debian's Alertmanager ships no UI: the summary says so and names what works instead.
    with urllib.request.urlopen(lab["urls"]["alertmanager"] + "/", timeout=10) as response:
        has_ui = "does not include a web application" not in " ".join(response.read().decode().split())
    if not has_ui:
        assert "no web UI in this build" in text
        assert f"Alertmanager API {lab['urls']['alertmanager']}/api/v2/alerts" in text
    assert "ansible-playbook" not in text
    commands = re.findall(r"\bmake ([a-z-]+)", text)
    assert {"stress", "teardown", "faults", "drill"} <= set(commands), text
    assert set(commands) <= make_targets(), commands
    amtool = re.search(r"amtool alert query --alertmanager\.url=[^\s']+", text)
    if amtool:
        proc = subprocess.run(shlex.split(amtool.group(0)), capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr


def db_failure_rates(lab: dict[str, Any]) -> set[float]:
    with urllib.request.urlopen(lab["urls"]["api"] + "/metrics", timeout=10) as response:
        body = response.read().decode()
    return {
        float(v) for v in re.findall(r'^app_fault\{fault="db_failure_rate"[^}]*\} (\S+)$', body, re.MULTILINE)
    }


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_faults_then_none_restores_the_baseline(lab: dict[str, Any], tmp_path: Path) -> None:
    args = f"ARGS=-e @{settings_file(lab, tmp_path)}"
    baseline = float(
        yaml.safe_load((ROOT / "group_vars/all/app.yml").read_text())["lab_baseline_faults"][
            "db_failure_rate"
        ]
    )
    try:
        proc = make("faults", 'FAULTS={"db_failure_rate": 0.5}', args)
        text = " ".join(proc.stdout.split())
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert db_failure_rates(lab) == {0.5}
        assert "Back to the baseline: make faults FAULTS=none" in text
    finally:
        proc = make("faults", "FAULTS=none", args)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert db_failure_rates(lab) == {baseline}
    assert "This is the baseline" in " ".join(proc.stdout.split())
