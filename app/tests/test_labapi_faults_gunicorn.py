"""Run-time faults under a real gunicorn with several gevent workers: a change reaches every worker
without a restart (same master, same workers, counters keep counting), and bad documents change nothing.

The propagation time is printed (pytest -n 0 -s shows it): from the atomic rename of the document to the
moment every worker reports the new values in app_fault, at the default APP_FAULTS_POLL_SECONDS (1 s).
"""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import start_app, worker_pids

pytestmark = pytest.mark.slow

WORKERS = 4
STATED_PROPAGATION_SECONDS = 10.0  # the documented bound on the local platform (target of the issue)


def fault_series(url: str) -> dict[str, dict[int, float]]:
    """app_fault and friends as {name/fault: {pid: value}} from one scrape."""
    text = requests.get(url + "/metrics", timeout=10).text
    out: dict[str, dict[int, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "app_fault":
                out.setdefault(s.labels["fault"], {})[int(s.labels["pid"])] = s.value
            elif s.name == "app_faults_applied_timestamp_seconds":
                out.setdefault("applied", {})[int(s.labels["pid"])] = s.value
            elif s.name in ("app_fault_reload_errors_total", "app_request_count_total"):
                key = s.name + "/" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out.setdefault(key, {})[0] = s.value
    return out


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def every_worker_has(url: str, pids: set[int], expected: dict[str, float]) -> bool:
    series = fault_series(url)
    return all(
        set(series.get(name, {})) == pids and set(series[name].values()) == {v}
        for name, v in expected.items()
    )


USERS_200 = "app_request_count_total/endpoint=/api/users,http_status=200,method=GET"


@pytest.mark.timeout(120)
def test_a_fault_change_reaches_every_worker_without_a_restart(tmp_path):
    env = {"APP_FAULTS_POLL_SECONDS": "1"}  # the default: the measured time is the production one
    with start_app(tmp_path, workers=WORKERS, env=env, faults={"db_failure_rate": 0}) as server:
        pids = wait_for(lambda: (p := worker_pids(server.pid)) and len(p) == WORKERS and p, 20, "the workers")
        wait_for(
            lambda: every_worker_has(server.url, pids, {"db_failure_rate": 0.0}), 10, "every worker's gauges"
        )
        for _ in range(40):
            assert requests.get(server.url + "/api/users", timeout=10).status_code == 200
        served_before = fault_series(server.url)[USERS_200][0]
        assert served_before == 40

        timings = []
        for document, expected in [
            ({"db_failure_rate": 1, "force_unready": True}, {"db_failure_rate": 1.0, "force_unready": 1.0}),
            (
                {"extra_latency_ms": 50, "users_error_rate": 0.25},
                {
                    "db_failure_rate": 0.0,
                    "force_unready": 0.0,
                    "extra_latency_ms": 50.0,
                    "users_error_rate": 0.25,
                },
            ),
            ({}, {"extra_latency_ms": 0.0, "users_error_rate": 0.0}),
        ]:
            written = time.time()
            server.set_faults(document)
            wait_for(
                lambda e=expected: every_worker_has(server.url, pids, e),
                30,
                f"every worker to apply {document}",
            )
            seen = time.time() - written
            applied = max(fault_series(server.url)["applied"].values()) - written
            timings.append((seen, applied))
            print(
                f"\nfault change {document}: in effect in all {WORKERS} workers {applied:.2f} s after the rename "
                f"(seen in /metrics after {seen:.2f} s; APP_FAULTS_POLL_SECONDS=1)"
            )
            if document.get("db_failure_rate") == 1:
                # every worker serves the outage: /api/users and readiness fail with the fault named
                for _ in range(20):
                    assert requests.get(server.url + "/api/users", timeout=10).status_code == 503
                    readiness = requests.get(server.url + "/health/readiness", timeout=10)
                    assert readiness.status_code == 503
                    assert readiness.json()["failing"] == ["database", "forced"]

        assert max(applied for _seen, applied in timings) <= STATED_PROPAGATION_SECONDS
        # no restart: the same master, the same workers, counters kept counting
        assert server.proc.poll() is None
        assert worker_pids(server.pid) == pids
        assert fault_series(server.url)[USERS_200][0] >= served_before
        assert "Booting worker" not in server.log_text().split("faults now in effect", 1)[1]


@pytest.mark.timeout(120)
def test_bad_documents_keep_the_last_good_faults_in_every_worker(tmp_path):
    env = {"APP_FAULTS_POLL_SECONDS": "0.2"}
    with start_app(tmp_path, workers=WORKERS, env=env, faults={"db_failure_rate": 0.5}) as server:
        pids = wait_for(lambda: (p := worker_pids(server.pid)) and len(p) == WORKERS and p, 20, "the workers")
        good = {"db_failure_rate": 0.5, "force_unready": 0.0}
        wait_for(lambda: every_worker_has(server.url, pids, good), 10, "the first document everywhere")

        def errors(reason: str) -> float:
            return fault_series(server.url)[f"app_fault_reload_errors_total/reason={reason}"][0]

        bad_documents = [
            (
                '{"db_failure_rate": 0.5, "force_unready": true, "surprise": 1}',
                "invalid",
                "unknown key 'surprise'",
            ),
            ('{"db_failure_rate": 2}', "invalid", "db_failure_rate: 2 is not a number from 0 to 1"),
            (None, "unreadable", "cannot read it"),
        ]
        for count, (bad, reason, named) in enumerate(bad_documents, start=1):
            before = errors(reason)
            if bad is None:
                server.faults_path.unlink()
            else:
                server.set_faults(bad)
            wait_for(lambda r=reason, b=before: errors(r) > b, 10, f"the {reason} document to be counted")
            time.sleep(1.0)  # five more polls of every worker: still one error
            assert errors(reason) - before == 1
            assert every_worker_has(server.url, pids, good)
            lines = [line for line in server.log_text().splitlines() if "rejected" in line and named in line]
            assert len(lines) == 1, (named, lines)
            assert sum("rejected" in line for line in server.log_text().splitlines()) == count

        server.set_faults({"force_unready": True})  # a good document again
        wait_for(
            lambda: every_worker_has(server.url, pids, {"db_failure_rate": 0.0, "force_unready": 1.0}),
            10,
            "it",
        )
        assert worker_pids(server.pid) == pids
