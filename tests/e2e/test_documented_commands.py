"""The documented commands, verbatim, with the defaults: what a new user types after `git clone`.

README.md and docs/drills.md tell a user to run `make lab`, then `make drill DRILL=...`, `make faults FAULTS=...`,
`make stress ...` and `make teardown`, with no `-e lab_platform` and the default intervals (15 s scrapes, the 1d SLO
window). This module runs exactly those command lines through bash from the repository root, in order, against one
lab, and checks each command's exit status, what it prints and what it writes. On this machine `lab_platform: auto`
resolves to `local` (no Minikube driver answers), so that is the lab it gets.

The only thing that differs from a user's shell is HOME: a temporary folder, so the lab's default `lab_dir`
(`~/.sre-lab`) is this test's own. The lab's default ports (group_vars/all/local.yml) must be free: free_port() never
hands them out to the other tests (tests/support/servers.py), and the test stops at once, naming the port, when
something else listens there. Whatever happens, the lab is removed at the end (`make teardown`, then supervisord's
PID if that failed).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import ROOT
from tests.support.prometheus import require_binary
from tests.support.servers import default_local_ports

pytestmark = [pytest.mark.slow, pytest.mark.long_running]

GROUP_VARS = ROOT / "group_vars" / "all"
DRILLS = {d["name"]: d for d in yaml.safe_load((GROUP_VARS / "drills.yml").read_text())["lab_drills"]}
BASELINE = yaml.safe_load((GROUP_VARS / "app.yml").read_text())["lab_baseline_faults"]
URL = re.compile(r"https?://127\.0\.0\.1:\d+[^\s'\"`),]*")


@dataclass
class Run:
    command: str
    returncode: int
    output: str
    seconds: float


@dataclass
class Lab:
    home: Path
    lab_dir: Path
    env: dict[str, str]
    ports: dict[str, int]
    runs: list[Run]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def run(self, command: str, timeout: float = 1800) -> Run:
        """`command` through bash in the repository root, as a user types it; its output is printed as it comes."""
        started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                lines.append(line)
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{command} ran over {timeout}s")
            proc.wait(timeout=60)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            raise
        run = Run(command, proc.returncode, "".join(lines), time.monotonic() - started)
        self.runs.append(run)
        print(f"\n$ {command}   [exit {run.returncode}, {run.seconds:.0f}s]\n{run.output[-3000:]}")
        return run


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def ok(run: Run) -> Run:
    assert run.returncode == 0, f"`{run.command}` exited {run.returncode}:\n{run.output[-6000:]}"
    return run


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    for tool in ("prometheus", "promtool", "prometheus-alertmanager"):
        require_binary(tool)
    ports = default_local_ports()
    taken = {name: port for name, port in ports.items() if _listening(port)}
    if taken:
        pytest.fail(f"the lab's default ports are in use here ({taken}): stop what listens there first")
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANSIBLE_", "LAB_"))}
    env.update(HOME=str(home), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    the_lab = Lab(home=home, lab_dir=home / ".sre-lab", env=env, ports=ports, runs=[])
    try:
        yield the_lab
    finally:
        if the_lab.lab_dir.joinpath("supervisor").exists():  # a test failed before `make teardown` ran
            the_lab.run("make teardown", timeout=600)
        pid_file = the_lab.lab_dir / "supervisor" / "supervisord.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


def printed_urls(text: str) -> list[str]:
    return sorted({u.rstrip(".") for u in URL.findall(text)})


def printed_make_commands(text: str) -> list[str]:
    """Every `make <target>` the output tells the user to run (the target word only)."""
    return sorted(set(re.findall(r"\bmake ([a-z][a-z-]*)\b", text)))


def open_link(url: str, tries: int = 3) -> requests.Response:
    """GET a printed link. The lab's baseline fault (db_failure_rate 0.05, one retry) answers 0.25% of
    GET /api/users with the documented 503 "database is unavailable" on purpose, so only that answer is asked
    again; any other status, or the same 503 three times in a row (odds 1 in 64 million), is the link's answer."""
    for _ in range(tries):
        answer = requests.get(url, timeout=10)
        baseline_fault = answer.status_code == 503 and "database is unavailable" in answer.text
        if not baseline_fault:
            return answer
    return answer


def check_printed_links(lab: Lab, run: Run) -> None:
    """Every link the command printed opens (not a 404, not the Alertmanager placeholder), every `make X` exists."""
    for url in printed_urls(run.output):
        answer = open_link(url)
        assert answer.status_code < 400, f"`{run.command}` printed {url}, which answers {answer.status_code}"
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for target in printed_make_commands(run.output):
        assert target in targets, f"`{run.command}` printed `make {target}`, which the Makefile does not have"
    printed = "\n".join(
        line for line in run.output.splitlines() if not line.startswith(".venv/bin/")
    )  # make's echo
    assert "ansible-playbook playbooks/" not in printed, (
        f"`{run.command}` tells the user to run ansible-playbook, which is not on their PATH: print the make command"
    )


def metric(lab: Lab, name: str, **labels: str) -> list[float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(lab.url("api") + "/metrics", timeout=10).text
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def drill_report(lab: Lab) -> dict[str, Any]:
    return json.loads((lab.lab_dir / "reports" / "drills" / "latest" / "report.json").read_text())


def wait_until_ready_for(lab: Lab, drill: str) -> Run:
    """`make drill DRILL=<drill>`; when the lab is too young for it, the drill says so at once and when it can run:
    wait until then (the wait docs/drills.md gives) and run the same command again."""
    first = lab.run(f"make drill DRILL={drill}")
    if first.returncode == 0:
        return first
    flat = " ".join(first.output.split())  # the callback folds long messages over several lines
    when = re.search(r"Run it at .*?\((\d\d):(\d\d):(\d\d) UTC\) or later", flat)
    assert when, f"`make drill DRILL={drill}` failed without saying when it can run:\n{first.output[-6000:]}"
    assert first.seconds < 120, f"a drill that cannot run yet must stop at once; it took {first.seconds:.0f}s"
    now = datetime.now(UTC)
    at = now.replace(hour=int(when[1]), minute=int(when[2]), second=int(when[3]), microsecond=0)
    if at < now - timedelta(hours=1):  # the clock time is tomorrow's
        at += timedelta(days=1)
    wait = (at - now).total_seconds()
    assert wait < 900, f"the drill asks for {wait:.0f}s more of a lab's data, more than docs/drills.md gives"
    print(f"{drill}: the drill says it can run at {at:%H:%M:%S} UTC; waiting {max(wait, 0):.0f}s", flush=True)
    time.sleep(max(0.0, wait) + 5)
    return ok(lab.run(f"make drill DRILL={drill}"))


def test_make_lab_brings_up_the_local_lab_and_prints_links_that_open(lab: Lab) -> None:
    run = ok(lab.run("make lab"))
    assert "LOCAL PLATFORM INSTEAD OF MINIKUBE" in run.output  # auto, and why
    assert lab.lab_dir.is_dir()
    assert (lab.lab_dir.stat().st_mode & 0o777) == 0o700
    assert requests.get(lab.url("api") + "/health/readiness", timeout=10).status_code == 200
    assert requests.get(lab.url("prometheus") + "/-/ready", timeout=10).status_code == 200
    check_printed_links(lab, run)
    help_text = ok(lab.run("make help")).output
    for name in DRILLS:
        assert name in help_text, f"make help does not list the drill {name}"
    assert "FAULTS=none" in help_text


@pytest.mark.parametrize("drill", ["db-outage", "none"])
def test_make_drill_runs_and_reports_its_times(lab: Lab, drill: str) -> None:
    run = wait_until_ready_for(lab, drill)
    assert "FAILED - RETRYING" not in run.output, (
        "a long wait prints progress lines, not a retry line per poll"
    )
    report = drill_report(lab)
    assert report["drill"]["name"] == drill
    assert report["verdict"] == "pass", report["failures"]
    for name in report["drill"]["expected"]:
        alert = report["alerts"][name]
        for key in ("time_to_detect_seconds", "time_to_notify_seconds", "time_to_resolve_seconds"):
            assert alert.get(key) is not None, f"{drill}: {name} has no {key}"
            assert alert[key] >= 0, f"{drill}: {name} {key} = {alert[key]}"
    if not DRILLS[drill]["expected"]:
        assert not any(a["fired"] for a in report["alerts"].values()), report["alerts"]
    check_printed_links(lab, run)


def test_make_faults_switches_the_running_api_and_none_restores_the_baseline(lab: Lab) -> None:
    ok(lab.run("""make faults FAULTS='{"db_failure_rate": 0.5}'"""))
    assert metric(lab, "app_fault", fault="db_failure_rate")
    assert set(metric(lab, "app_fault", fault="db_failure_rate")) == {0.5}
    statuses = [requests.get(lab.url("api") + "/api/users", timeout=10).status_code for _ in range(300)]
    share = statuses.count(503) / len(statuses)
    # One retry: a request fails when both attempts fail, 0.5 * 0.5 = 25% (docs: "Break it on purpose").
    assert 0.14 < share < 0.38, f"db_failure_rate 0.5 gave {share:.0%} 503s, expected about 25%"
    run = ok(lab.run("make faults FAULTS=none"))
    assert set(metric(lab, "app_fault", fault="db_failure_rate")) == {
        float(BASELINE.get("db_failure_rate", 0))
    }
    check_printed_links(lab, run)


def test_make_stress_steady_gives_a_verdict_and_a_report(lab: Lab) -> None:
    run = ok(lab.run("make stress ARGS='-e stress_test_shape=steady'"))
    latest = lab.lab_dir / "reports" / "latest"
    for name in ("report.md", "report.html", "report.json"):
        assert (latest / name).is_file(), f"make stress wrote no {name}"
    report = json.loads((latest / "report.json").read_text())
    assert report["verdict"] in ("pass", "breach"), report.get("verdict")
    assert re.search(r"\b(PASS|BREACH)\b", run.output)
    check_printed_links(lab, run)
    # The run had the API scraped every second by the stress-only job, whose series carry no app label: the app's
    # selector (the rules', the dashboards') counted each request once, not twice; the job is empty again.
    assert (report["scrape_job"], report["scrape_interval"]) == ("flask-api-stress", "1s")
    window = report["window"]
    seconds = int(window["end"] - window["start"])

    def value(promql: str) -> float:
        answer = requests.get(
            lab.url("prometheus") + "/api/v1/query",
            params={"query": promql, "time": window["end"]},
            timeout=10,
        ).json()["data"]["result"]
        assert len(answer) == 1, (promql, answer)
        return float(answer[0]["value"][1])

    by_app = value(f'sum(increase(app_request_count_total{{app="flask-api"}}[{seconds}s]))')
    by_stress_job = value(f'sum(increase(app_request_count_total{{job="flask-api-stress"}}[{seconds}s]))')
    assert by_stress_job > 100
    assert by_app == pytest.approx(by_stress_job, rel=0.25), "the app's selector counted the API twice"
    assert (
        value(f'count(last_over_time(up{{job="flask-api-stress",app=~".+"}}[{seconds}s])) or vector(0)') == 0
    )
    assert json.loads((lab.lab_dir / "prometheus" / "stress_targets.json").read_text()) == []


def test_make_teardown_removes_the_lab_and_keeps_the_reports(lab: Lab) -> None:
    ok(lab.run("make teardown"))
    assert not any(_listening(port) for port in lab.ports.values()), "something of the lab still listens"
    assert sorted(p.name for p in lab.lab_dir.iterdir()) == ["reports"]
    assert (lab.lab_dir / "reports" / "drills" / "latest" / "report.json").is_file()
    again = ok(lab.run("make teardown"))
    assert "changed=0" in again.output
