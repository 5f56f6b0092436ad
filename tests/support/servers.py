"""The tests' helpers around the API under gunicorn on loopback.

Starting and stopping it (start_app, Server, free ports, the fault document) is labtools.appserver, which the
benchmarks use too; it is re-exported here, so the tests import everything from this one module.
"""

from __future__ import annotations

import yaml

from labtools.appserver import (
    APP_DIR,
    APP_SPEC,
    GUNICORN_CONF,
    ROOT,
    Server,
    default_local_ports,
    free_port,
    start_app,
    wait_for_http,
    worker_pids,
    write_faults,
)

__all__ = [
    "APP_DIR",
    "APP_SPEC",
    "GUNICORN_CONF",
    "ROOT",
    "Server",
    "default_local_ports",
    "free_local_ports",
    "free_port",
    "lab_app_settings",
    "metric_samples",
    "start_app",
    "wait_for_http",
    "worker_pids",
    "write_faults",
]


def free_local_ports() -> dict[str, int]:
    """A `lab_local_ports` map with a free port for every program the local platform runs.

    The names come from group_vars/all/local.yml, the one place that lists them, so a new program there
    gets a port in every test without editing the tests.
    """
    return {name: free_port() for name in default_local_ports()}


def lab_app_settings() -> tuple[dict[str, str], dict[str, object]]:
    """The API's environment and baseline fault document as the lab deploys them (group_vars/all/app.yml:
    app_deploy_settings, app_deploy_faults), for `start_app(env=..., faults=...)`. The one templated value, the latency
    SLO threshold, is read from group_vars/all/slo.yml as Ansible would."""
    app = yaml.safe_load((ROOT / "group_vars" / "all" / "app.yml").read_text())
    slo = yaml.safe_load((ROOT / "group_vars" / "all" / "slo.yml").read_text())
    templated = {
        "{{ lab_slo.latency.threshold_seconds }}": str(slo["lab_slo"]["latency"]["threshold_seconds"])
    }
    env = {name: templated.get(str(value), str(value)) for name, value in app["app_deploy_settings"].items()}
    unresolved = [name for name, value in env.items() if "{{" in value]
    if unresolved:
        raise ValueError(f"lab_app_settings cannot resolve the templated settings {unresolved}")
    return env, dict(app["app_deploy_faults"])


def metric_samples(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of `url`/metrics, keyed by (sample name, frozenset of its labels)."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
