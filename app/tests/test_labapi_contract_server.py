"""The API's contract (GET /openapi.json) against the API as the lab serves it: gunicorn with app/gunicorn.conf.py,
the lab's worker class (labapi.worker.LabGeventWorker), its settings and baseline fault document
(group_vars/all/app.yml: 2 workers x 1,000 connections, 5% of simulated queries failing), on loopback.

- schemathesis (its CLI, so its own summary is printed) runs every phase (examples, coverage, fuzzing) and every
  check over every operation of the document the server serves: 0 failures.
- The contract's page (GET /docs, Swagger UI) opens in headless Chromium with every operation shown and nothing on
  the console.
- The contract's routes answer with X-Request-ID and are counted outside the SLIs (endpoint!~"/api/.+").

One server for the module (module-scoped fixture): it starts once (about 2 s).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from labapi.contract import DESIGNED_FAILURE

from tests.support.browser import open_url_in_chromium
from tests.support.servers import lab_app_settings, metric_samples, start_app

pytestmark = pytest.mark.slow

# Test cases per operation in the fuzzing phase. The coverage phase adds its own boundary and negative cases for every
# parameter, header and body (content types included), the examples phase one per documented example. The 29
# operations are not alike: POST /api/echo takes any JSON body, where the edge cases are (types, nesting, sizes,
# unicode); GET/HEAD /api/error one free-form query parameter; the rest only a free-form X-Request-ID header, where
# hypothesis runs out of distinct cases early. Chosen for about 60 s on the 2-core development machine (measured in
# app/README.md, "The contract"; 100 for every operation took 64-80 s, with fewer cases where they matter).
EXAMPLES_WITH_BODY = 400
EXAMPLES_WITH_PARAMETERS = 100
EXAMPLES_OTHERWISE = 30
# A hang is a failure too: no answer may take longer (the lab's slowest designed answer is a double slow simulated
# query, 0.24 s; a body that stalls is cut at APP_BODY_TIMEOUT_SECONDS, 10 s).
MAX_RESPONSE_SECONDS = 5
# schemathesis's default for positive_data_acceptance (valid data must not be rejected with another 4xx).
POSITIVE_DATA_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
SLI_ENDPOINTS = re.compile(r"/api/.+")  # the SLIs' selector: endpoint=~"/api/.+"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env, faults = lab_app_settings()
    with start_app(
        tmp_path_factory.mktemp("contract"), workers=int(env["APP_WORKERS"]), env=env, faults=faults
    ) as app:
        yield app


def schemathesis_config(document: dict) -> str:
    """schemathesis's configuration (TOML), from the document: the examples per operation (above), and the error
    statuses the document marks x-designed-failure (the simulated errors, the database fault, the readiness report)
    let through, on top of schemathesis's defaults and nothing more: any other 5xx is a server error, any other 4xx
    for valid data a rejection."""
    blocks = [f"[generation]\nmax-examples = {EXAMPLES_OTHERWISE}\n"]
    for item in document["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            lines = []
            if "requestBody" in operation:
                lines.append(f"generation.max-examples = {EXAMPLES_WITH_BODY}")
            elif any(
                "name" in parameter for parameter in operation["parameters"]
            ):  # not only the $ref X-Request-ID
                lines.append(f"generation.max-examples = {EXAMPLES_WITH_PARAMETERS}")
            designed = [
                code for code, answer in operation["responses"].items() if answer.get(DESIGNED_FAILURE)
            ]
            if designed:
                server_errors = ["2xx", "3xx", "4xx", *(code for code in designed if code.startswith("5"))]
                accepted = [*POSITIVE_DATA_ACCEPTED, *(code for code in designed if code.startswith("4"))]
                lines.append(f"checks.not_a_server_error.expected-statuses = {json.dumps(server_errors)}")
                lines.append(f"checks.positive_data_acceptance.expected-statuses = {json.dumps(accepted)}")
            if lines:
                blocks.append(
                    "\n".join(
                        ["[[operations]]", f'include-operation-id = "{operation["operationId"]}"', *lines, ""]
                    )
                )
    return "\n".join(blocks)


def schemathesis_command(url: str, config: Path, report: Path) -> list[str]:
    return [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-response-time",
        str(MAX_RESPONSE_SECONDS),
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-dir",
        str(report),
    ]


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_failure_in_any_operation(server, tmp_path):
    document = requests.get(server.url + "/openapi.json", timeout=10).json()
    config = tmp_path / "schemathesis.toml"
    config.write_text(schemathesis_config(document))
    command = schemathesis_command(server.url, config, tmp_path / "report")
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=tmp_path)
    elapsed = time.monotonic() - started
    print(f"\n$ {' '.join(command)}\n(config {config}:)\n{config.read_text()}\n{run.stdout}{run.stderr}")
    print(f"schemathesis: {elapsed:.1f} s wall time, exit code {run.returncode}")
    assert run.returncode == 0, "schemathesis found failures (summary above)"
    # Every operation was tested, but the one that served the document schemathesis loaded (it leaves that out).
    junit = next((tmp_path / "report").glob("junit-*.xml")).read_text()
    tested = set(re.findall(r'testcase name="([A-Z]+) ([^"]+)"', junit))
    assert tested == operations(document) - {("GET", "/openapi.json")}
    assert "Traceback" not in server.log_text()


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


@pytest.mark.timeout(180)
def test_the_contract_page_shows_every_operation_in_chromium(server, tmp_path):
    document = requests.get(server.url + "/openapi.json", timeout=10).json()
    page = open_url_in_chromium(server.url + "/docs", tmp_path, name="docs")
    assert page.console == []
    shown = set(re.findall(r'opblock-summary-method">([A-Z]+)<.*?data-path="([^"]+)"', page.dom))
    assert shown == operations(document)
    assert "labapi: the SRE lab" in page.dom
    assert page.screenshot.stat().st_size > 10_000


@pytest.mark.timeout(60)
def test_the_contract_routes_carry_a_request_id_and_stay_outside_the_slis(server):
    answers = {
        "/openapi.json": "application/json",
        "/docs": "text/html",
        "/docs/swagger-ui.css": "text/css",
        "/docs/swagger-ui-bundle.js": "text/javascript",
        "/docs/nothing.js": "application/json",  # the 404 is JSON
    }
    for path, media_type in answers.items():
        response = requests.get(server.url + path, headers={"X-Request-ID": "contract-1"}, timeout=10)
        assert response.headers["X-Request-ID"] == "contract-1", path
        assert response.headers["Content-Type"].split(";")[0] == media_type, path
    counted = {
        dict(labels)["endpoint"]
        for (name, labels), _ in metric_samples(server.url).items()
        if name == "app_request_count_total"
    }
    contract_endpoints = {"/openapi.json", "/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"}
    assert contract_endpoints <= counted  # counted under their own routes ...
    assert not [
        endpoint for endpoint in contract_endpoints if SLI_ENDPOINTS.fullmatch(endpoint)
    ]  # ... not SLIs
