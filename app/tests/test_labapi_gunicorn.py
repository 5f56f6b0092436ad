"""The API under a real gunicorn (gevent workers) on loopback: multiprocess metrics, worker
crashes, graceful shutdown, start-up validation."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.servers import APP_DIR, APP_SPEC, GUNICORN_CONF, metric_samples, start_app, worker_pids

pytestmark = pytest.mark.slow

USERS = {"endpoint": "/api/users", "method": "GET", "http_status": "200"}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.timeout(120)
def test_counts_across_workers_equal_the_traffic_sent(tmp_path):
    with start_app(tmp_path, workers=3) as server:
        wait_until(lambda: len(worker_pids(server.pid)) == 3, 20, "three workers")

        def users(_i: int) -> int:
            return requests.get(server.url + "/api/users", timeout=10).status_code

        def echo(i: int) -> int:
            return requests.post(server.url + "/api/echo", json={"i": i}, timeout=10).status_code

        def client_error(_i: int) -> int:
            return requests.get(server.url + "/api/error", params={"type": "client"}, timeout=10).status_code

        with ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(users, range(240)))
            statuses += list(pool.map(echo, range(120)))
            statuses += list(pool.map(client_error, range(60)))
        assert statuses.count(200) == 360
        assert statuses.count(400) == 60

        samples = metric_samples(server.url)
        assert value(samples, "app_request_count_total", **USERS) == 240
        assert (
            value(samples, "app_request_count_total", endpoint="/api/echo", method="POST", http_status="200")
            == 120
        )
        assert (
            value(samples, "app_request_count_total", endpoint="/api/error", method="GET", http_status="400")
            == 60
        )
        assert value(samples, "app_request_latency_seconds_count", endpoint="/api/users", method="GET") == 240
        assert value(samples, "app_error_count_total", error_type="client_error", endpoint="/api/error") == 60
        wait_until(lambda: value(metric_samples(server.url), "app_active_requests") == 0, 10, "an idle gauge")
        # the traffic really was spread over several processes
        files = {p.name for p in (tmp_path / "prometheus-multiproc").glob("counter_*.db")}
        assert len(files) >= 2, files
        # one JSON object per line on stdout, gunicorn's own lines included
        lines = [line for line in server.log_text().splitlines() if line.strip()]
        assert any("Booting worker" in line for line in lines)
        for line in lines:
            record = json.loads(line)
            assert {"timestamp", "level", "logger", "message"} <= set(record)


@pytest.mark.timeout(120)
def test_a_killed_worker_never_makes_counters_go_backwards(tmp_path):
    with start_app(tmp_path, workers=2, faults={"extra_latency_ms": 100}) as server:
        stop = threading.Event()
        outcomes: list[int | str] = []
        totals: list[float] = []
        gauges: list[float] = []

        def load() -> None:
            while not stop.is_set():
                try:
                    outcomes.append(requests.get(server.url + "/api/users", timeout=10).status_code)
                except requests.RequestException as exc:
                    outcomes.append(type(exc).__name__)

        def watch() -> None:
            while not stop.is_set():
                try:
                    samples = metric_samples(server.url)
                except requests.RequestException:  # the scrape itself hit the killed worker
                    continue
                totals.append(value(samples, "app_request_count_total", **USERS))
                gauges.append(value(samples, "app_active_requests"))
                time.sleep(0.05)

        threads = [threading.Thread(target=load) for _ in range(12)] + [threading.Thread(target=watch)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(totals) > 5 and max(gauges) > 0, 20, "load in flight")
            victim = sorted(worker_pids(server.pid))[0]
            os.kill(victim, signal.SIGKILL)
            wait_until(
                lambda: victim not in worker_pids(server.pid) and len(worker_pids(server.pid)) == 2,
                20,
                "the master to replace the killed worker",
            )
            time.sleep(1.5)  # more traffic on the new worker
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert all(later >= earlier for earlier, later in itertools.pairwise(totals)), totals
        assert totals[-1] > totals[0]
        wait_until(
            lambda: value(metric_samples(server.url), "app_active_requests") == 0,
            10,
            "the in-flight gauge to be 0",
        )
        ok = outcomes.count(200)
        assert ok > 50
        final = value(metric_samples(server.url), "app_request_count_total", **USERS)
        assert final >= ok  # every successful response was counted (the dead worker's counts stay)
        assert not [o for o in outcomes if isinstance(o, int) and o != 200]


@pytest.mark.timeout(120)
def test_sigterm_drains_then_finishes_in_flight_requests(tmp_path):
    drain = 2.0
    env = {"APP_SHUTDOWN_DRAIN_SECONDS": str(drain), "APP_GRACEFUL_TIMEOUT": "20"}
    server = start_app(tmp_path, workers=2, env=env, faults={"extra_latency_ms": 400})
    stop = threading.Event()
    # (started, ended, outcome): keeps sending until the server stops accepting connections
    eager: list[tuple[float, float, int | str]] = []
    polite: list[int] = []  # stops as soon as readiness says 503
    readiness_seen: list[int] = []

    def eager_client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                outcome: int | str = requests.get(server.url + "/api/users", timeout=30).status_code
            except requests.ConnectionError as exc:
                outcome = f"connection error: {exc}"
            eager.append((started, time.monotonic(), outcome))
            if isinstance(outcome, str):
                return

    def polite_client() -> None:
        while not stop.is_set():
            ready = requests.get(server.url + "/health/readiness", timeout=10).status_code
            readiness_seen.append(ready)
            if ready == 503:
                return
            polite.append(requests.get(server.url + "/api/users", timeout=30).status_code)

    threads = [threading.Thread(target=eager_client) for _ in range(10)]
    threads.append(threading.Thread(target=polite_client))
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(eager) >= 10 and len(polite) >= 2, 20, "traffic before SIGTERM")
        sent_term = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        exit_code = server.proc.wait(timeout=40)
        elapsed = time.monotonic() - sent_term
    finally:
        stop.set()
        for thread in threads:
            thread.join(40)
        server.stop()
    assert exit_code == 0, server.log_text()[-3000:]
    assert drain <= elapsed < drain + 20
    # the polite client saw readiness go 503 and never got a failure
    assert readiness_seen[-1] == 503
    assert polite
    assert set(polite) == {200}
    # no request ever got an error response; every request started before the end of the drain
    # (in flight when the workers were told to stop, or sent while draining) completed with 200;
    # only requests sent once the listener was closing may fail, at the connection level
    assert not [o for _, _, o in eager if isinstance(o, int) and o != 200]
    early = [(start - sent_term, o) for start, _, o in eager if start < sent_term + drain - 0.2]
    assert all(o == 200 for _, o in early), early
    finished_after_drain = [end for _, end, o in eager if o == 200 and end > sent_term + drain]
    assert finished_after_drain, "no request was in flight when the workers stopped"
    log = server.log_text()
    assert "draining for 2.0s" in log


@pytest.mark.timeout(60)
def test_oversized_chunked_body_is_a_json_413(tmp_path):
    with start_app(tmp_path, workers=1, env={"APP_MAX_BODY_BYTES": "1000"}) as server:

        def chunks():
            yield b'{"k": "'
            for _ in range(10):
                yield b"v" * 500
            yield b'"}'

        response = requests.post(
            server.url + "/api/echo", data=chunks(), headers={"Content-Type": "application/json"}, timeout=10
        )
        assert response.status_code == 413
        assert response.json()["status"] == "error"
        small = requests.post(
            server.url + "/api/echo",
            data=iter([b'{"a":', b"1}"]),
            headers={"Content-Type": "application/json"},
        )
        assert small.json() == {"status": "success", "data": {"a": 1}}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"APP_WORKERS": "zero"}, "APP_WORKERS='zero' is invalid: expected an integer from 1 to 64"),
        (
            {"APP_FAULTS_POLL_SECONDS": "0"},
            "APP_FAULTS_POLL_SECONDS='0' is invalid: expected a number of seconds from 0.1",
        ),
        ({"APP_DB_FAILURE_RATE": "0.5"}, "APP_DB_FAILURE_RATE is no longer a setting"),
        ({"PROMETHEUS_MULTIPROC_DIR": None}, "PROMETHEUS_MULTIPROC_DIR is not set"),
    ],
)
def test_gunicorn_refuses_to_start_with_a_bad_setting(tmp_path, env, expected):
    full_env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m"), "APP_BIND": "127.0.0.1:0"}
    for name, val in env.items():
        if val is None:
            full_env.pop(name, None)
        else:
            full_env[name] = val
    gunicorn = Path(sys.executable).parent / "gunicorn"
    proc = subprocess.run(
        [str(gunicorn), "--config", str(GUNICORN_CONF), "--chdir", str(APP_DIR), APP_SPEC],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert expected in proc.stderr
