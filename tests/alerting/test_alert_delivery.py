"""Pages and tickets reach someone: the real Alertmanager (Debian's package) with the lab's routing file
(roles/monitoring/templates/alertmanager.yml.j2, rendered for the local platform by tests/rules/render_rules.yml)
routes each to the lab's webhook receiver (labapi.alert_receiver under gunicorn, as the supervisord program and
the Kubernetes Deployment run it), which logs one JSON line per notification. Everything runs on 127.0.0.1 on
free ports and is stopped by its PID at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT
from tests.rules.conftest import render_playbook
from tests.support.servers import Server, free_local_ports, wait_for_http


def alertmanager_binary() -> str:
    for name in ("alertmanager", "prometheus-alertmanager"):
        if path := shutil.which(name):
            return path
    pytest.fail(
        "alertmanager is not installed: run `scripts/system-deps.sh test` (make test does), which installs "
        "Debian's prometheus-alertmanager",
        pytrace=False,
    )


def start(
    cmd: list[str],
    log: Path,
    url: str,
    ready: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Server:
    log_file = log.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Server(url=url, proc=proc, log_path=log, _log_file=log_file)
    try:
        wait_for_http(url + ready, timeout=30)
    except TimeoutError:
        server.stop()
        raise
    return server


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ports = free_local_ports()
    out = tmp_path / "rendered"
    proc = render_playbook(out, {"lab_platform": "local", "lab_local_ports": ports})
    assert proc.returncode == 0, proc.stdout[-3000:]
    config = out / "alertmanager.yml"
    receiver = start(
        [
            str(BIN / "gunicorn"),
            "--config",
            "python:labapi.alert_receiver_gunicorn",
            "labapi.alert_receiver:create_app()",
        ],
        tmp_path / "receiver.log",
        f"http://127.0.0.1:{ports['alert_receiver']}",
        "/health",
        env={**os.environ, "ALERT_RECEIVER_BIND": f"127.0.0.1:{ports['alert_receiver']}"},
        cwd=ROOT / "app",
    )
    try:
        am = start(
            [
                alertmanager_binary(),
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
            f"http://127.0.0.1:{ports['alertmanager']}",
            "/-/ready",
        )
    except BaseException:
        receiver.stop()
        raise
    try:
        yield {"config": yaml.safe_load(config.read_text()), "receiver": receiver, "alertmanager": am}
    finally:
        am.stop()
        receiver.stop()


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        url + "/api/v2/alerts", data=json.dumps(alerts).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def notifications(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "alert_notification":
                lines.append(entry)
    return lines


def test_the_routing_file_sends_pages_and_tickets_to_the_local_receiver(lab: dict[str, Any]) -> None:
    config = lab["config"]
    port = lab["receiver"].url.rsplit(":", 1)[1]
    routes = {r["matchers"][0]: r["receiver"] for r in config["route"]["routes"]}
    assert routes == {'severity="page"': "page", 'severity="ticket"': "ticket"}
    urls = {r["name"]: [w["url"] for w in r["webhook_configs"]] for r in config["receivers"]}
    assert urls == {name: [f"http://127.0.0.1:{port}/alerts/{name}"] for name in ("page", "ticket", "other")}


def test_a_page_and_a_ticket_each_log_one_line_at_the_receiver(lab: dict[str, Any]) -> None:
    base = {"namespace": "sre-lab", "app": "flask-api"}
    post_alerts(
        lab["alertmanager"].url,
        [
            {
                "labels": {
                    **base,
                    "alertname": "ApiAvailabilityFastBurn",
                    "severity": "page",
                    "slo": "availability",
                },
                "annotations": {"summary": "flask-api: availability error budget burning fast (41x)"},
            },
            {
                "labels": {**base, "alertname": "ApiLatencySlowBurn", "severity": "ticket", "slo": "latency"},
                "annotations": {"summary": "flask-api: latency error budget burning (3.2x)"},
            },
        ],
    )
    # group_wait is 10 s in the routing file: both notifications arrive within ~10-15 s.
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and len(notifications(lab["receiver"])) < 2:
        time.sleep(0.5)
    got = notifications(lab["receiver"])
    assert len(got) == 2, lab["receiver"].log_text()[-3000:] + lab["alertmanager"].log_text()[-3000:]
    by_route = {n["route"]: n for n in got}
    assert set(by_route) == {"page", "ticket"}
    assert by_route["page"]["receiver"] == "page"
    assert by_route["page"]["status"] == "firing"
    assert [a["alertname"] for a in by_route["page"]["alerts"]] == ["ApiAvailabilityFastBurn"]
    assert [a["alertname"] for a in by_route["ticket"]["alerts"]] == ["ApiLatencySlowBurn"]
    assert by_route["ticket"]["alerts"][0]["summary"].startswith("flask-api: latency")
    # And Alertmanager's own API lists both, with the receiver each went to (what the trainee sees in its UI).
    with urllib.request.urlopen(lab["alertmanager"].url + "/api/v2/alerts", timeout=10) as response:
        listed = {a["labels"]["alertname"]: [r["name"] for r in a["receivers"]] for a in json.load(response)}
    assert listed == {"ApiAvailabilityFastBurn": ["page"], "ApiLatencySlowBurn": ["ticket"]}
