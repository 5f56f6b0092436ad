"""Start a real Prometheus (the Debian package's binary) on loopback for tests, and query it.

    with start_prometheus(tmp_path, scrape_targets=[app.url.removeprefix("http://")],
                          rule_files=[rules / "recording_rules.yml"],
                          labels={"app": "flask-api", "namespace": "sre-lab"}) as prom:
        wait_for_series(prom.url, 'up{app="flask-api"}')
        query(prom.url, "sum(rate(app_request_count_total[1m]))")

The scrape job (`job="flask-api"`) attaches `labels` to every scraped series, as the local platform's
static scrape config does (docs/ARCHITECTURE.md, "The Prometheus contract"). The TSDB lives under tmp_path;
the process runs in its own process group and Server.stop() ends it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.servers import Server, free_port, wait_for_http

PROMETHEUS = "prometheus"


def prometheus_binary() -> str | None:
    """Path of the prometheus binary, or None when it is not installed."""
    return shutil.which(PROMETHEUS)


def require_binary(name: str) -> str:
    """Path of a system tool the tests need; fail (never skip) with what to install when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `scripts/system-deps.sh test` (make test does), which installs "
            "prometheus, promtool, alertmanager and wrk from the Debian packages",
            pytrace=False,
        )
    return path


def prometheus_config(
    *,
    scrape_targets: list[str],
    rule_files: list[Path],
    labels: dict[str, str],
    scrape_interval: str,
    evaluation_interval: str,
    alertmanager: str | None,
    extra_scrape_configs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The prometheus.yml used by start_prometheus (exposed for tests that want to inspect it)."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": labels.get("app", "app"),
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval if _seconds(scrape_interval) < 10 else "10s",
                "static_configs": [{"targets": list(scrape_targets), "labels": dict(labels)}],
            }
        ],
    }
    config["scrape_configs"] += list(extra_scrape_configs or [])
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    raise ValueError(f"unsupported duration {duration!r}")


def start_prometheus(
    tmp_path: Path,
    *,
    scrape_targets: list[str],
    rule_files: list[Path] | None = None,
    labels: dict[str, str] | None = None,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    alertmanager: str | None = None,
    port: int | None = None,
    timeout: float = 30.0,
    extra_scrape_configs: list[dict[str, Any]] | None = None,
) -> Server:
    """Start Prometheus on 127.0.0.1 scraping `scrape_targets` (host:port) and wait until it is ready.

    Raises RuntimeError with its log if it exits early or is not ready within `timeout`.
    """
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError(
            "prometheus is not installed (Debian package `prometheus`, see scripts/system-deps.sh)"
        )
    port = port or free_port()
    workdir = tmp_path / f"prometheus-{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config = prometheus_config(
        scrape_targets=scrape_targets,
        rule_files=list(rule_files or []),
        labels=dict(labels or {}),
        scrape_interval=scrape_interval,
        evaluation_interval=evaluation_interval,
        alertmanager=alertmanager,
        extra_scrape_configs=extra_scrape_configs,
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "prometheus.log"
    cmd = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--web.enable-lifecycle",
    ]
    log_file = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(url=f"http://127.0.0.1:{port}", proc=proc, log_path=log_path, _log_file=log_file)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"prometheus exited with code {proc.returncode}; log:\n{server.log_text()}")
        try:
            wait_for_http(server.url + "/-/ready", timeout=min(2.0, max(0.1, deadline - time.monotonic())))
            return server
        except TimeoutError:
            if time.monotonic() >= deadline:
                server.stop(timeout=5)
                raise RuntimeError(
                    f"prometheus not ready within {timeout:.0f}s; log:\n{server.log_text()}"
                ) from None


def api(url: str, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
    """GET <url>/api/v1/<path> and return its `data`; raise RuntimeError on an error status."""
    query_string = f"?{urllib.parse.urlencode(params)}" if params else ""
    full = f"{url}/api/v1/{path}{query_string}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
    if body.get("status") != "success":
        raise RuntimeError(f"{full}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(url: str, promql: str, *, time_: float | None = None) -> list[dict[str, Any]]:
    """Instant query; return the result list (vector/matrix items: {"metric": {...}, "value": [t, "v"]})."""
    params = {"query": promql}
    if time_ is not None:
        params["time"] = f"{time_:.3f}"
    data = api(url, "query", params)
    result = data["result"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": result}]
    return list(result)


def wait_for_series(
    url: str, promql: str, *, timeout: float = 30.0, min_results: int = 1
) -> list[dict[str, Any]]:
    """Poll `promql` until it returns at least `min_results` items; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = query(url, promql)
        if len(result) >= min_results:
            return result
        time.sleep(0.5)
    raise TimeoutError(
        f"{promql!r} returned {len(result)} result(s) after {timeout:.0f}s, wanted {min_results}"
    )


def rule_health(url: str) -> list[dict[str, Any]]:
    """Every loaded rule with its group name, health and last error (/api/v1/rules)."""
    rules: list[dict[str, Any]] = []
    for group in api(url, "rules")["groups"]:
        for rule in group["rules"]:
            rules.append({**rule, "group": group["name"]})
    return rules
