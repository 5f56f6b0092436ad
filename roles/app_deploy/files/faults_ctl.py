"""Controller side of the run-time faults (roles/app_deploy/tasks/faults.yml).

    faults_ctl.py validate DOCUMENT_JSON
        Validate a fault document with the app's own validator (app/labapi/faults.py) and print it
        normalised (every key present) as JSON; exit 2 naming every problem.
    faults_ctl.py wait DOCUMENT_JSON --written-at T --workers N --timeout S
                  (--metrics-url URL ... | --namespace NS --selector app=NAME [--kubeconfig F] [--context C])
        Poll every instance's /metrics until each of its N workers reports the document's values in
        app_fault / app_fault_latency_route; print {"effective_at": ..., "instances": ...} as JSON.
        effective_at = when the last worker applied it (app_faults_applied_timestamp_seconds), or the
        write time when the values were already in effect. Exit 1 naming the lagging instances/workers.

On Kubernetes each pod's /metrics is read through the API server's pod proxy (the kubeconfig the
playbook uses; no port-forward), so the answer is exact per pod and does not wait for a scrape.
Runs on the controller, on every platform, with ansible-playbook's Python (the lab's virtualenv, make venv):
labapi (installed from app/ by requirements/lab.txt) and PyYAML, and the kubernetes client on the Kubernetes
platforms (requirements/lab.txt).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

try:
    from labapi.faults import FAULT_KEYS, LATENCY_ROUTES, ROUTE_ALL, FaultDocumentError, Faults, validate
except ModuleNotFoundError as _exc:  # not the lab's virtualenv, or one made before labapi was installable
    sys.exit(
        f"faults_ctl.py needs the lab's Python package labapi ({_exc}) in {sys.executable}: run `make venv` "
        "(or pip install -r requirements/lab.txt from the repository root) and run ansible-playbook from .venv/bin."
    )

_SAMPLE = re.compile(
    r"^(app_fault|app_fault_latency_route|app_faults_applied_timestamp_seconds)\{([^}]*)\}\s+(\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Fetch = Callable[[], dict[str, str]]  # -> {instance name: /metrics text}


def normalise(document: object) -> Faults:
    return validate(document)


def expected_values(faults: Faults) -> dict[tuple[str, str], float]:
    """(family, label value) -> the value every worker must report."""
    values = {("app_fault", name): value for name, value in faults.gauges().items()}
    selected = faults.extra_latency_route or ROUTE_ALL
    for route in (ROUTE_ALL, *LATENCY_ROUTES):
        values[("app_fault_latency_route", route)] = 1.0 if route == selected else 0.0
    return values


def parse_workers(text: str) -> dict[str, dict[Any, float]]:
    """pid -> {(family, label) or "applied": value} from a /metrics text."""
    workers: dict[str, dict[Any, float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        family, raw_labels, raw_value = match.groups()
        labels = dict(_LABEL.findall(raw_labels))
        pid = labels.get("pid", "?")
        key: Any = (
            "applied"
            if family == "app_faults_applied_timestamp_seconds"
            else (family, labels.get("fault" if family == "app_fault" else "route", ""))
        )
        workers.setdefault(pid, {})[key] = float(raw_value)
    return workers


def lagging(
    workers: dict[str, dict[Any, float]], expected: dict[tuple[str, str], float], count: int
) -> list[str]:
    """What keeps an instance from "in effect": missing workers, or workers with other values."""
    problems = []
    if len(workers) < count:
        problems.append(f"{len(workers)} of {count} workers report app_fault")
    for pid, values in sorted(workers.items()):
        wrong = [
            f"{name if family == 'app_fault' else f'latency_route[{name}]'}={values.get((family, name))}"
            for (family, name), want in expected.items()
            if values.get((family, name)) != want
        ]
        if wrong:
            problems.append(f"worker {pid} still has {', '.join(wrong)}")
    return problems


def wait(
    fetch: Fetch,
    faults: Faults,
    written_at: float,
    workers: int,
    timeout: float,
    interval: float = 0.25,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    expected = expected_values(faults)
    deadline = time.monotonic() + timeout
    last: dict[str, list[str]] = {}
    while True:
        try:
            texts = fetch()
        except (
            Exception
        ) as exc:  # an instance between restarts, the API server busy: retry until the deadline
            texts, last = {}, {"(fetch)": [str(exc)]}
        if texts:
            per_instance = {name: parse_workers(text) for name, text in texts.items()}
            last = {name: lagging(w, expected, workers) for name, w in per_instance.items()}
            last = {name: problems for name, problems in last.items() if problems}
            if not last:
                applied = max(v.get("applied", 0.0) for w in per_instance.values() for v in w.values())
                return {
                    "effective_at": max(applied, written_at),
                    "confirmed_at": clock(),
                    "instances": {name: sorted(w) for name, w in per_instance.items()},
                }
        elif not last:
            last = {"(none)": ["no instance of the API found"]}
        if time.monotonic() >= deadline:
            detail = "; ".join(f"{name}: {', '.join(problems)}" for name, problems in sorted(last.items()))
            raise TimeoutError(
                f"the faults were not in effect on every worker within {timeout:.0f} s: {detail}"
            )
        time.sleep(interval)


def url_fetch(urls: list[str]) -> Fetch:
    def fetch() -> dict[str, str]:
        texts = {}
        for url in urls:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the lab's own loopback URL
                texts[url] = resp.read().decode()
        return texts

    return fetch


def pod_proxy_fetch(namespace: str, selector: str, kubeconfig: str, context: str, port: int) -> Fetch:
    from kubernetes import client, config  # imported here: the local platform does not need it

    api = client.CoreV1Api(
        config.new_client_from_config(config_file=kubeconfig or None, context=context or None)
    )

    def fetch() -> dict[str, str]:
        pods = api.list_namespaced_pod(namespace, label_selector=selector).items
        running = [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
        return {
            p.metadata.name: api.connect_get_namespaced_pod_proxy_with_path(
                f"{p.metadata.name}:{port}", namespace, "metrics"
            )
            for p in running
        }

    return fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("validate")
    check.add_argument("document")
    waiting = sub.add_parser("wait")
    waiting.add_argument("document")
    waiting.add_argument("--written-at", type=float, required=True)
    waiting.add_argument("--workers", type=int, required=True)
    waiting.add_argument("--timeout", type=float, required=True)
    waiting.add_argument("--metrics-url", action="append", default=[])
    waiting.add_argument("--namespace", default="")
    waiting.add_argument("--selector", default="")
    waiting.add_argument("--kubeconfig", default="")
    waiting.add_argument("--context", default="")
    waiting.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    try:
        faults = normalise(json.loads(args.document))
    except (ValueError, FaultDocumentError) as exc:
        print(f"bad fault document: {exc}", file=sys.stderr)
        return 2
    if args.command == "validate":
        print(json.dumps({k: getattr(faults, k) for k in FAULT_KEYS}))
        return 0
    if args.metrics_url:
        fetch = url_fetch(args.metrics_url)
    else:
        fetch = pod_proxy_fetch(args.namespace, args.selector, args.kubeconfig, args.context, args.port)
    try:
        result = wait(fetch, faults, args.written_at, args.workers, args.timeout)
    except TimeoutError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
