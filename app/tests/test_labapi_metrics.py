"""Metric names, labels and values after known traffic; cardinality; the in-flight gauge."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from labapi.metrics import (
    LATENCY_BUCKETS,
    UNMATCHED,
    Metrics,
    RequestWriters,
    latency_buckets,
    multiprocess_registry,
    value_writer,
)
from labapi.observability import AccessLog, ObservabilityMiddleware
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families


def count(metric, endpoint: str, method: str, status: str) -> float:
    return metric("app_request_count_total", {"endpoint": endpoint, "method": method, "http_status": status})


def test_requests_are_counted_by_route_method_and_status(lab, metric):
    before = {
        "users": count(metric, "/api/users", "GET", "200"),
        "echo": count(metric, "/api/echo", "POST", "200"),
        "echo400": count(metric, "/api/echo", "POST", "400"),
        "client": count(metric, "/api/error", "GET", "400"),
        "server": count(metric, "/api/error", "GET", "500"),
        "live": count(metric, "/health/liveness", "GET", "200"),
        "ready": count(metric, "/health/readiness", "GET", "200"),
        "lat_users": metric("app_request_latency_seconds_count", {"endpoint": "/api/users", "method": "GET"}),
    }
    for _ in range(3):
        lab.client.get("/api/users")
    for _ in range(2):
        lab.client.post("/api/echo", data=json.dumps({"a": 1}), content_type="application/json")
    lab.client.post("/api/echo", data="x", content_type="text/plain")
    lab.client.get("/api/error?type=client")
    lab.client.get("/api/error")
    lab.client.get("/api/error")
    lab.client.get("/health/liveness")
    lab.client.get("/health/readiness")
    assert count(metric, "/api/users", "GET", "200") == before["users"] + 3
    assert count(metric, "/api/echo", "POST", "200") == before["echo"] + 2
    assert count(metric, "/api/echo", "POST", "400") == before["echo400"] + 1
    assert count(metric, "/api/error", "GET", "400") == before["client"] + 1
    assert count(metric, "/api/error", "GET", "500") == before["server"] + 2
    assert count(metric, "/health/liveness", "GET", "200") == before["live"] + 1
    assert count(metric, "/health/readiness", "GET", "200") == before["ready"] + 1
    assert (
        metric("app_request_latency_seconds_count", {"endpoint": "/api/users", "method": "GET"})
        == before["lat_users"] + 3
    )


def test_errors_are_counted_by_type(lab_factory, metric):
    def errors(error_type: str, endpoint: str) -> float:
        return metric("app_error_count_total", {"error_type": error_type, "endpoint": endpoint})

    before = (
        errors("client_error", "/api/error"),
        errors("server_error", "/api/error"),
        errors("db_failure", "/api/users"),
        errors("db_unavailable", "/api/users"),
    )
    lab = lab_factory()
    lab.client.get("/api/error?type=client")
    lab.client.get("/api/error")
    lab.client.get("/api/error")
    down = lab_factory(faults={"db_failure_rate": 1.0}, db_retries=1)
    down.client.get("/api/users")  # two failed attempts, one user-visible failure
    assert errors("client_error", "/api/error") == before[0] + 1
    assert errors("server_error", "/api/error") == before[1] + 2
    assert errors("db_failure", "/api/users") == before[2] + 2
    assert errors("db_unavailable", "/api/users") == before[3] + 1


def test_metrics_endpoint_exposes_the_four_families_and_is_not_counted(lab, metric):
    lab.client.get("/api/users")
    before = sum(
        metric("app_request_count_total", {"endpoint": e, "method": "GET", "http_status": "200"})
        for e in ("/metrics", UNMATCHED)
    )
    response = lab.client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["X-Request-ID"]
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert families["app_request_count"].type == "counter"
    assert families["app_request_latency_seconds"].type == "histogram"
    assert families["app_error_count"].type == "counter"
    assert families["app_active_requests"].type == "gauge"
    users = [
        s
        for s in families["app_request_count"].samples
        if s.labels.get("endpoint") == "/api/users" and s.name == "app_request_count_total"
    ]
    assert users
    assert set(users[0].labels) == {"endpoint", "method", "http_status"}
    lab.client.get("/metrics")
    after = sum(
        metric("app_request_count_total", {"endpoint": e, "method": "GET", "http_status": "200"})
        for e in ("/metrics", UNMATCHED)
    )
    assert after == before  # /metrics is mounted outside the instrumented app


def test_latency_histogram_has_the_slo_bucket(lab):
    lab.client.get("/api/users")
    text = lab.client.get("/metrics").get_data(as_text=True)
    assert 'app_request_latency_seconds_bucket{endpoint="/api/users",le="0.3",method="GET"}' in text
    assert 0.3 in LATENCY_BUCKETS
    around = [b for b in LATENCY_BUCKETS if 0.1 <= b <= 0.5]
    assert len(around) >= 7  # enough resolution around the threshold for percentiles
    assert latency_buckets(0.3) == LATENCY_BUCKETS
    assert 0.42 in latency_buckets(0.42)  # a non-default SLO threshold gets its own bucket


def test_latency_is_observed_in_the_right_bucket(lab_factory, metric):
    lab = lab_factory(faults={"extra_latency_ms": 120})
    labels = {"endpoint": "/api/error", "method": "GET"}
    below = metric("app_request_latency_seconds_bucket", {**labels, "le": "0.1"})
    within = metric("app_request_latency_seconds_bucket", {**labels, "le": "0.15"})
    lab.client.get("/api/error?type=client")
    assert metric("app_request_latency_seconds_bucket", {**labels, "le": "0.1"}) == below
    assert metric("app_request_latency_seconds_bucket", {**labels, "le": "0.15"}) == within + 1


def test_random_paths_add_at_most_one_series(lab):
    before = _request_count_series(lab)
    for i in range(300):
        lab.client.get(f"/random/{i}/x{i * 7}?q={i}")
        lab.client.get(f"/api/users/{i}")
    after = _request_count_series(lab)
    added = after - before
    assert len(added) <= 1
    assert frozenset({("endpoint", UNMATCHED), ("method", "GET"), ("http_status", "404")}) in after
    assert not any(
        "random" in dict(s)["endpoint"] or dict(s)["endpoint"].startswith("/api/users/") for s in after
    )


def test_arbitrary_methods_do_not_create_series(lab):
    for method in ("FOO", "BAR", "PROPFIND", "X" * 40):
        response = lab.client.open("/api/users", method=method)
        assert response.status_code == 405
    series = _request_count_series(lab)
    methods = {dict(s)["method"] for s in series}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}
    assert "OTHER" in methods


def _request_count_series(lab) -> set[frozenset]:
    text = lab.client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {
        frozenset(s.labels.items())
        for s in families["app_request_count"].samples
        if s.name == "app_request_count_total"
    }


def test_active_requests_is_one_during_a_request_and_zero_after(lab_factory, metric):
    lab = lab_factory()
    seen = []

    @lab.app.get("/api/peek")
    def peek():
        seen.append(metric("app_active_requests", {}))
        return {"ok": True}

    baseline = metric("app_active_requests", {})
    lab.client.get("/api/peek")
    assert seen == [baseline + 1]
    assert metric("app_active_requests", {}) == baseline


def test_active_requests_returns_to_zero_after_an_exception(lab_factory, metric):
    lab = lab_factory()

    @lab.app.get("/api/boom")
    def boom():
        raise RuntimeError("boom")

    baseline = metric("app_active_requests", {})
    assert lab.client.get("/api/boom").status_code == 500
    assert metric("app_active_requests", {}) == baseline


def test_middleware_decrements_when_the_app_itself_raises(metric):
    metrics = Metrics()

    def broken_app(environ, start_response):
        raise KeyboardInterrupt  # even a BaseException escaping the WSGI app

    middleware = ObservabilityMiddleware(broken_app, metrics, AccessLog(0.0, 0.3))
    baseline = metric("app_active_requests", {})
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}
    with pytest.raises(KeyboardInterrupt):
        middleware(environ, lambda *a: None)
    assert metric("app_active_requests", {}) == baseline


def test_middleware_counts_a_500_when_the_app_fails_before_answering(metric):
    metrics = Metrics()

    def failing_app(environ, start_response):
        raise RuntimeError("no response")

    middleware = ObservabilityMiddleware(failing_app, metrics, AccessLog(0.0, 0.3))
    labels = {"endpoint": UNMATCHED, "method": "OTHER", "http_status": "500"}
    before = metric("app_request_count_total", labels)
    baseline = metric("app_active_requests", {})
    with pytest.raises(RuntimeError):
        middleware({"REQUEST_METHOD": "BREW", "PATH_INFO": "/x"}, lambda *a: None)
    assert metric("app_request_count_total", labels) == before + 1
    assert metric("app_active_requests", {}) == baseline


def test_label_cache_returns_the_same_children_and_counts_stay_exact(metric):
    metrics = Metrics()
    first = metrics.request_children("/api/cache-test", "GET", 200)
    assert metrics.request_children("/api/cache-test", "GET", 200) is first
    assert first[0] is metrics.request_count.labels("/api/cache-test", "GET", "200")
    assert first[1] is metrics.request_latency.labels("/api/cache-test", "GET")
    other = metrics.request_children("/api/cache-test", "GET", 500)
    assert other[0] is not first[0]
    assert other[1] is first[1]  # the histogram has no status label
    labels = {"endpoint": "/api/cache-test", "method": "GET", "http_status": "200"}
    latency = {"endpoint": "/api/cache-test", "method": "GET"}
    before = metric("app_request_count_total", labels)
    before_latency = metric("app_request_latency_seconds_count", latency)
    for _ in range(1000):
        metrics.observe_request("/api/cache-test", "GET", 200, 0.001)
    metrics.observe_request("/api/cache-test", "GET", 500, 0.001)
    assert metric("app_request_count_total", labels) == before + 1000
    assert metric("app_request_latency_seconds_count", latency) == before_latency + 1001


def _latency_samples(endpoint: str) -> dict[tuple[str, str], float]:
    families = {f.name: f for f in text_string_to_metric_families(_exposition())}
    return {
        (s.name, s.labels.get("le", "")): s.value
        for s in families["app_request_latency_seconds"].samples
        if s.labels.get("endpoint") == endpoint and not s.name.endswith("_created")
    }


def _exposition() -> str:
    return generate_latest(multiprocess_registry(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))).decode()


def test_hot_path_writers_record_exactly_what_the_public_api_records(metric):
    """observe_request writes the values directly (no per-call checks): the exposition must be what
    Counter.inc and Histogram.observe give for the same observations, bucket boundaries included."""
    metrics = Metrics(slo_seconds=0.3)
    observations = [0.0, 0.0049, 0.005, 0.0051, 0.3, 0.30000001, 0.2999, 1.0, 9.99, 10.0, 10.5, 1e6]
    for seconds in observations:
        metrics.observe_request("/api/writers-fast", "GET", 200, seconds)
        counter, histogram = metrics.request_children("/api/writers-public", "GET", 200)
        counter.inc()
        histogram.observe(seconds)
    fast = _latency_samples("/api/writers-fast")
    public = _latency_samples("/api/writers-public")
    assert fast == public
    assert fast[("app_request_latency_seconds_count", "")] == len(observations)
    assert fast[("app_request_latency_seconds_bucket", "0.3")] == 6  # 0.3 itself is in le="0.3"
    assert fast[("app_request_latency_seconds_bucket", "+Inf")] == len(observations)
    assert fast[("app_request_latency_seconds_sum", "")] == pytest.approx(sum(observations))
    labels = {"method": "GET", "http_status": "200"}
    assert metric("app_request_count_total", {"endpoint": "/api/writers-fast", **labels}) == len(observations)
    assert metric("app_request_count_total", {"endpoint": "/api/writers-public", **labels}) == len(
        observations
    )


def test_a_value_writer_needs_a_labelled_child():
    metrics = Metrics()
    with pytest.raises(ValueError, match="missing label values"):
        value_writer(metrics.request_count)  # the parent, not a child
    with pytest.raises(ValueError, match="missing label values"):
        RequestWriters(metrics.request_count.labels("/x", "GET", "200"), metrics.request_latency)
