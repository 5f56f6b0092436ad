"""The local platform's kubelet, for probes only: GET the API's health endpoints on the pod's probe schedule.

    prober.py --base-url http://127.0.0.1:8000 --probe readiness=/health/readiness,5,2,2 [--probe ...]

Each --probe is NAME=PATH,PERIOD_SECONDS,TIMEOUT_SECONDS,FAILURE_THRESHOLD: the values of app_deploy_probes, the
same ones roles/app_deploy/templates/kubernetes/deployment.yaml.j2 gives the kubelet. As for the kubelet, a probe
succeeds on a status from 200 to 399 within the timeout, and turns "failed" after FAILURE_THRESHOLD failures in a
row (one success turns it "ok" again).

Why: on Kubernetes the kubelet's probes are requests the app counts (endpoint="/health/readiness"), and the rule
ApiNotReady fires on them when none answered 200 over lab_not_ready_window. Without a prober the local platform
had readiness requests only from the load test, at a random and low rate, so the alert came late or not at all.

It only probes and logs: one JSON line per change of a probe's state (the first result included) on stdout, which
supervisord writes to <lab_dir>/logs/prober.log. It neither restarts the API on a failed liveness probe (supervisord
restarts the API when it exits) nor removes it from a Service (the local platform has none).
Runs under supervisord with the API's Python (the lab's app virtualenv: python-json-logger); stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from pythonjsonlogger.json import JsonFormatter

LOG = logging.getLogger("prober")


@dataclass
class Probe:
    """One probe's settings and its state."""

    name: str
    path: str
    period_s: float
    timeout_s: float
    failure_threshold: int
    failures: int = 0
    state: str = ""  # "" until the first result; "pending" while failing below the threshold; "ok"; "failed"


def parse_probe(text: str) -> Probe:
    """NAME=PATH,PERIOD,TIMEOUT,THRESHOLD -> Probe (argparse type: a bad value exits 2 with the reason)."""
    try:
        name, rest = text.split("=", 1)
        path, period, timeout, threshold = rest.split(",")
        probe = Probe(name, path, float(period), float(timeout), int(threshold))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=PATH,PERIOD_SECONDS,TIMEOUT_SECONDS,FAILURE_THRESHOLD; got {text!r}"
        ) from None
    if not (name and path.startswith("/") and probe.period_s > 0 and probe.timeout_s > 0):
        raise argparse.ArgumentTypeError(
            f"a probe needs a name, a path starting with /, and positive times: {text!r}"
        )
    if probe.failure_threshold < 1:
        raise argparse.ArgumentTypeError(f"FAILURE_THRESHOLD must be at least 1: {text!r}")
    return probe


def check(url: str, timeout_s: float) -> tuple[bool, str]:
    """One probe request: (success, what it got)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (an http URL we built)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, reset
        return False, f"{type(exc).__name__}: {exc}"
    return 200 <= status < 400, f"HTTP {status}"


def record(probe: Probe, ok: bool, got: str) -> None:
    """Count the result; log when the probe's state changes."""
    probe.failures = 0 if ok else probe.failures + 1
    state = (
        "ok" if ok else ("failed" if probe.failures >= probe.failure_threshold else probe.state or "pending")
    )
    if state != probe.state:
        LOG.info(
            "%s probe %s (%s)",
            probe.name,
            state,
            got,
            extra={
                "probe": probe.name,
                "path": probe.path,
                "state": state,
                "got": got,
                "failures": probe.failures,
            },
        )
        probe.state = state


def run(base_url: str, probes: list[Probe], stop: threading.Event) -> None:
    """Probe on schedule until `stop` is set; a late probe starts its next period from now (no burst)."""
    due = [(time.monotonic(), i) for i in range(len(probes))]
    heapq.heapify(due)
    while not stop.is_set():
        at, i = heapq.heappop(due)
        if stop.wait(max(0.0, at - time.monotonic())):
            return
        probe = probes[i]
        record(probe, *check(base_url + probe.path, probe.timeout_s))
        heapq.heappush(due, (max(at + probe.period_s, time.monotonic()), i))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--probe", type=parse_probe, action="append", required=True, dest="probes")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    # The API's field names (app/labapi/logging_setup.py): timestamp, level, logger, message.
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    LOG.info("probing %s", args.base_url, extra={"probes": {p.name: p.path for p in args.probes}})
    run(args.base_url.rstrip("/"), args.probes, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
