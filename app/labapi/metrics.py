"""The four metric families and the /metrics WSGI app (prometheus_client multiprocess mode).

The metric objects are not registered in any registry: in multiprocess mode each process writes
its values to memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and /metrics builds a fresh
registry with a MultiProcessCollector on every scrape that reads every process's files. Not
registering them also means several apps can be built in one process (tests) without
"duplicated timeseries" errors, and the app's metrics never appear twice in the output.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, values
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

UNMATCHED = "<unmatched>"
REJECTED = "<rejected>"  # requests gunicorn's HTTP parser rejected before the app saw them
OTHER_METHOD = "OTHER"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# An exact bucket at the 0.3 s latency SLO threshold, dense around it for useful percentiles.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# app_error_count error_type values (documented in docs/ARCHITECTURE.md).
ERROR_DB_FAILURE = "db_failure"  # one failed simulated query attempt (retried or not)
ERROR_DB_UNAVAILABLE = "db_unavailable"  # every attempt failed: the user got a 503
ERROR_CLIENT = "client_error"  # GET /api/error?type=client (400)
ERROR_SERVER = "server_error"  # GET /api/error (500)
ERROR_UNHANDLED = "unhandled_exception"  # any other exception turned into a JSON 500
ERROR_INJECTED = "injected_error"  # the users_error_rate fault answered GET /api/users with a 500


def multiprocess_mode_active() -> bool:
    """True when prometheus_client writes metric values to files (multiprocess mode)."""
    return values.ValueClass is not values.MutexValue


def method_label(method: str) -> str:
    """Bound the method label: clients can send any token as a method."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def latency_buckets(slo_seconds: float) -> tuple[float, ...]:
    """The standard buckets plus the configured SLO threshold (if it is not one of them)."""
    return tuple(sorted({*LATENCY_BUCKETS, slo_seconds}))


class Metrics:
    """The API's metric objects, with the label children cached for a cheap hot path."""

    def __init__(self, slo_seconds: float = 0.3) -> None:
        self.request_count = Counter(
            "app_request_count",
            "HTTP requests served by the API (health probes included, /metrics excluded)",
            ["endpoint", "method", "http_status"],
            registry=None,
        )
        self.request_latency = Histogram(
            "app_request_latency_seconds",
            "Time to produce the response, in seconds",
            ["endpoint", "method"],
            buckets=latency_buckets(slo_seconds),
            registry=None,
        )
        self.error_count = Counter(
            "app_error_count",
            "Errors by type (simulated database failures, deliberate errors, unhandled exceptions)",
            ["error_type", "endpoint"],
            registry=None,
        )
        self.active_requests = Gauge(
            "app_active_requests",
            "Requests in flight, summed over the live worker processes",
            registry=None,
            multiprocess_mode="livesum",
        )
        # (endpoint, method, status) -> (request counter child, latency histogram child)
        self._requests: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        # (endpoint, method, status) -> the value writers one request's observation makes (see observe_request)
        self._writers: dict[tuple[str, str, int], RequestWriters] = {}
        self._errors: dict[tuple[str, str], Counter] = {}
        # The in-flight gauge's own value: +1 when a request starts, -1 when it ends.
        self.active_add: ValueWriter = value_writer(self.active_requests)

    def request_children(self, endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled children a request is recorded in, looked up once per label set."""
        key = (endpoint, method, status)
        children = self._requests.get(key)
        if children is None:
            children = self._requests[key] = (
                self.request_count.labels(endpoint, method, str(status)),
                self.request_latency.labels(endpoint, method),
            )
        return children

    def request_writers(self, endpoint: str, method: str, status: int) -> RequestWriters:
        """The value writers of one label set (see RequestWriters), made once per label set."""
        key = (endpoint, method, status)
        writers = self._writers.get(key)
        if writers is None:
            writers = self._writers[key] = RequestWriters(*self.request_children(endpoint, method, status))
        return writers

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count the request and observe its latency: three value writes (counter, histogram sum, one bucket)."""
        writers = self._writers.get((endpoint, method, status)) or self.request_writers(
            endpoint, method, status
        )
        writers.count(1)
        writers.latency_sum(seconds)
        writers.buckets[bisect_left(writers.bounds, seconds)](1)

    def count_rejected(self, method: str, status: int) -> None:
        """A request the HTTP parser rejected (the app never saw it): counted, no latency."""
        self.request_count.labels(REJECTED, method, str(status)).inc()

    def count_error(self, error_type: str, endpoint: str) -> None:
        key = (error_type, endpoint)
        counter = self._errors.get(key)
        if counter is None:
            counter = self._errors[key] = self.error_count.labels(error_type, endpoint)
        counter.inc()


ValueWriter = Callable[[float], None]


def _value_of(metric: Counter | Gauge | Histogram, attribute: str) -> Any:
    """A value object of a labelled child (or of a metric without labels); a parent with labels has none."""
    value = getattr(metric, attribute, None)
    if value is None:
        raise ValueError(f"{metric!r} is missing label values: pass a child, metric.labels(...)")
    return value


def value_writer(metric: Counter | Gauge) -> ValueWriter:
    """The `inc` of the value behind a labelled child (or a metric without labels).

    The hot path calls it directly: `Counter.inc`/`Gauge.inc`/`Gauge.dec` check on every call that the metric
    has its label values and that the amount is valid, which the middleware guarantees once, when it caches the
    child. The value's own `inc` takes prometheus_client's lock and writes the memory-mapped file exactly as
    the public methods do (the exposition is the same; app/tests/test_labapi_metrics.py compares them, and
    fails if a prometheus_client upgrade renames these attributes).
    """
    return cast(ValueWriter, _value_of(metric, "_value").inc)


class RequestWriters:
    """The writers of one (endpoint, method, status): request counter, latency sum, latency buckets.

    `buckets[bisect_left(bounds, seconds)]` is the bucket `Histogram.observe` would increment (the first upper
    bound >= seconds; the last bound is +Inf). prometheus_client stores buckets non-cumulatively and adds them
    up at exposition, so one write per observation, as `observe` does.
    """

    __slots__ = ("bounds", "buckets", "count", "latency_sum")

    def __init__(self, counter: Counter, histogram: Histogram) -> None:
        self.count = value_writer(counter)
        self.latency_sum: ValueWriter = _value_of(histogram, "_sum").inc
        self.bounds: list[float] = list(histogram._upper_bounds)
        self.buckets: list[ValueWriter] = [bucket.inc for bucket in _value_of(histogram, "_buckets")]


class FaultMetrics:
    """The faults in effect (labapi.faults), per worker.

    Gauges in multiprocess mode `liveall`: one series per live worker (label `pid`), dropped when the
    worker exits (child_exit). A worker that has not applied a change yet therefore shows as a series
    with the old value, which is what a caller waiting for "in effect everywhere" must see; `max`,
    `min` or `mostrecent` would hide it. Dashboards aggregate with max by (fault).
    """

    def __init__(self, routes: Iterable[str], route_all: str) -> None:
        self.fault = Gauge(
            "app_fault",
            "Fault in effect in this worker (rate 0-1, extra latency in ms, force_unready 0/1)",
            ["fault"],
            registry=None,
            multiprocess_mode="liveall",
        )
        self.latency_route = Gauge(
            "app_fault_latency_route",
            "1 for the route extra_latency_ms applies to (all = every /api/* route), 0 for the others",
            ["route"],
            registry=None,
            multiprocess_mode="liveall",
        )
        self.applied = Gauge(
            "app_faults_applied_timestamp_seconds",
            "When this worker put its current fault document in effect (Unix time)",
            registry=None,
            multiprocess_mode="liveall",
        )
        self.reload_errors = Counter(
            "app_fault_reload_errors",
            "Fault documents rejected (invalid: bad YAML, key or value; unreadable: the file cannot be read)",
            ["reason"],
            registry=None,
        )
        self._routes = (route_all, *routes)
        self._route_all = route_all
        for reason in ("invalid", "unreadable"):
            self.reload_errors.labels(reason)  # present at 0: rate() and dashboards need the series

    def show(self, gauges: dict[str, float], route: str, applied_at: float) -> None:
        for name, value in gauges.items():
            self.fault.labels(name).set(value)
        selected = route or self._route_all
        for candidate in self._routes:
            self.latency_route.labels(candidate).set(1.0 if candidate == selected else 0.0)
        self.applied.set(applied_at)

    def count_reload_error(self, reason: str) -> None:
        self.reload_errors.labels(reason).inc()


def multiprocess_registry(path: Path) -> CollectorRegistry:
    """A fresh registry that aggregates every process's metric files in `path`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return registry


def metrics_wsgi_app(path: Path) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The /metrics endpoint: prometheus_client's WSGI app over a fresh registry per scrape."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body: Iterable[bytes] = make_wsgi_app(registry=multiprocess_registry(path))(environ, start_response)
        return body

    return app


class MetricsRoute:
    """Serves `GET`/`HEAD /metrics` (exactly that path) from `metrics_app`; every other request,
    `/metrics/anything` and other methods on `/metrics` included, goes to `app` (JSON 404/405)."""

    __slots__ = ("app", "metrics_app")

    def __init__(
        self,
        app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]],
        metrics_app: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]],
    ) -> None:
        self.app = app
        self.metrics_app = metrics_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/metrics":
            method = environ.get("REQUEST_METHOD")
            if method == "GET":
                return self.metrics_app(environ, start_response)
            if method == "HEAD":  # prometheus_client answers 405 to HEAD: a GET without its body
                body = self.metrics_app({**environ, "REQUEST_METHOD": "GET"}, start_response)
                if hasattr(body, "close"):
                    body.close()
                return []
        return self.app(environ, start_response)


def check_multiproc_dir(path: Path) -> str | None:
    """Readiness check of the metrics directory: None when usable, else why not."""
    if not path.is_dir():
        return f"{path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None
