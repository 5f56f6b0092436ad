"""Peer 1: the original lab's own instrumentation (before_request / after_request hooks), made multiprocess-correct
as a user running it under gunicorn would have to: PROMETHEUS_MULTIPROC_DIR, a ``livesum`` in-flight gauge,
``/metrics`` from a fresh registry with the MultiProcessCollector. Kept as the original lab wrote it otherwise: the
``endpoint`` label is the raw ``request.path``, and the gauge leaks when a view raises (after_request is skipped).
The 0.3 s bucket is added so its latency SLI would be computable, as ours is.
"""

from __future__ import annotations

import time

from flask import Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from bench.bare import make_app

REQUEST_COUNT = Counter("app_request_count", "Requests", ["endpoint", "method", "http_status"])
REQUEST_LATENCY = Histogram(
    "app_request_latency_seconds",
    "Latency",
    ["endpoint", "method"],
    buckets=[0.01, 0.05, 0.1, 0.3, 0.5, 1, 2, 5],
)
ACTIVE_REQUESTS = Gauge("app_active_requests", "In flight", multiprocess_mode="livesum")

app = make_app("original-hooks")


@app.before_request
def _start() -> None:
    g.start = time.perf_counter()
    ACTIVE_REQUESTS.inc()


@app.after_request
def _record(response: Response) -> Response:
    elapsed = time.perf_counter() - g.start
    REQUEST_COUNT.labels(request.path, request.method, str(response.status_code)).inc()
    REQUEST_LATENCY.labels(request.path, request.method).observe(elapsed)
    ACTIVE_REQUESTS.dec()
    return response


@app.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
