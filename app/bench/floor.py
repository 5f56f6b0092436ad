"""The floor: the least any multiprocess-correct Prometheus instrumentation writes per request with
prometheus_client: one counter increment and one histogram observation (mmap'd files under
PROMETHEUS_MULTIPROC_DIR), in one WSGI middleware, with no labels computed from the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from bench.bare import make_app

REQUESTS = Counter("floor_requests", "Requests")
LATENCY = Histogram("floor_latency_seconds", "Latency", buckets=[0.01, 0.05, 0.1, 0.3, 0.5, 1, 2, 5])

app = make_app("floor")
_inner = app.wsgi_app


def _instrumented(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    started = time.perf_counter()
    try:
        return _inner(environ, start_response)
    finally:
        REQUESTS.inc()
        LATENCY.observe(time.perf_counter() - started)


app.wsgi_app = _instrumented  # type: ignore[method-assign]
