"""Live: the real API under a short load, a real Prometheus (Debian 2.42) scraping it with the lab's rules.

Every PromQL panel query and template variable of every dashboard returns data, every recording rule
produces a value, nothing fires at rest, and traffic to /api/error fires the fast-burn page (which fills
the SLO dashboard's alerts table). A fault switched at run time during the run gives the fault annotation its data.
A second test shows one run-time fault (db_failure_rate) paging too.

Known exceptions (no cAdvisor on loopback): the queries reading cAdvisor's container_* metrics, listed in
CADVISOR_QUERIES; test_dashboards.py checks that they parse and use only metrics the Prometheus chart's
cAdvisor job scrapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.dashboards.queries import (
    PROMETHEUS_UID,
    Query,
    queries,
    substitute,
    variable_as_promql,
    variable_queries,
)
from tests.dashboards.test_dashboards import CADVISOR_METRICS, metric_names
from tests.support.prometheus import PROMETHEUS, query, require_binary, start_prometheus, wait_for_series
from tests.support.servers import Server, start_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("_needs_prometheus"),
]


@pytest.fixture(scope="module")
def _needs_prometheus() -> None:
    require_binary(PROMETHEUS)


LABELS = {"app": "flask-api", "namespace": "sre-lab"}
# (dashboard file, panel title, refId) of every query that needs cAdvisor (Kubernetes only).
CADVISOR_QUERIES = {
    ("api-overview.json", "CPU against the limit (cAdvisor)", "A"),
    ("api-overview.json", "CPU against the limit (cAdvisor)", "B"),
    ("api-overview.json", "Memory against the limit (cAdvisor)", "A"),
    ("api-overview.json", "Memory against the limit (cAdvisor)", "B"),
    ("api-overview.json", "Restarts in the time range", "B"),
}
# Range variables for a run of a few tens of seconds scraped every second.
LIVE_VALUES = {"__rate_interval": "20s", "__interval": "20s", "__auto": "20s", "__range": "1m"}


class Load:
    """The stress test's default mix in the background: mostly /api/users, some /api/echo, a few probes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.sent = 0
        self.errors: list[str] = []
        self._threads: list[threading.Thread] = []

    def _worker(self, index: int) -> None:
        session = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                if n % 10 == 0:
                    session.post(f"{self.url}/api/echo", json={"n": n, "worker": index}, timeout=5)
                elif n % 25 == 0:
                    session.get(f"{self.url}/health/readiness", timeout=5)
                elif n % 40 == 0:
                    session.get(f"{self.url}/api/error", params={"type": "client"}, timeout=5)
                else:
                    session.get(f"{self.url}/api/users", timeout=5)
                self.sent += 1
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
            time.sleep(0.01)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(6)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Server]:
    server = start_app(
        tmp_path / "app",
        workers=2,
        env={"APP_LOG_FORMAT": "json", "APP_SHUTDOWN_DRAIN_SECONDS": "0"},
        faults={},
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus(tmp_path: Path, app: Server, rules_default: Path) -> Iterator[Server]:
    server = start_prometheus(
        tmp_path,
        scrape_targets=[app.url.removeprefix("http://")],
        rule_files=[rules_default / "recording_rules.yml", rules_default / "alerting_rules.yml"],
        labels=LABELS,
    )
    try:
        yield server
    finally:
        server.stop()


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(item.get("value") or item.get("values") for item in result)


def test_every_panel_query_and_recording_rule_has_data(
    dashboards: dict[str, dict[str, Any]], rules_default: Path, app: Server, prometheus: Server
) -> None:
    prom_queries: list[Query] = [
        q
        for name, dashboard in dashboards.items()
        for q in [*queries(name, dashboard), *variable_queries(name, dashboard)]
        if q.datasource == PROMETHEUS_UID
    ]
    cadvisor = {
        (q.dashboard, q.panel, q.ref)
        for q in prom_queries
        if not q.panel.startswith("variable") and metric_names(substitute(q.expr)) & CADVISOR_METRICS
    }
    assert cadvisor == CADVISOR_QUERIES, "the cAdvisor exceptions changed: update CADVISOR_QUERIES"
    alerts_queries = [q for q in prom_queries if "ALERTS" in q.expr]
    assert alerts_queries

    with Load(app.url) as load:
        wait_for_series(prometheus.url, 'up{app="flask-api"} == 1', timeout=30)
        # Enough samples for the 20s rate windows and a few rule evaluations.
        # (1d window by default: the longest burn-rate window is 144m.)
        wait_for_series(prometheus.url, 'slo:burn_rate:ratio_rate144m{slo="latency"}', timeout=30)
        # A harmless fault switch (1 ms extra latency): the "Fault switches" annotation has something to show.
        app.set_faults({"extra_latency_ms": 1})
        wait_for_series(prometheus.url, 'min(app_fault{fault="extra_latency_ms"}) == 1', timeout=30)
        time.sleep(8)

        missing = []
        for q in prom_queries:
            if (q.dashboard, q.panel, q.ref) in CADVISOR_QUERIES or q in alerts_queries:
                continue
            # An annotation is a range query with a step: at one instant, look back over a minute for the switch.
            expr = substitute(
                q.expr, {**LIVE_VALUES, "__interval": "1m"} if q.ref == "annotation" else LIVE_VALUES
            )
            if q.panel.startswith("variable"):
                expr = variable_as_promql(expr)
            if not has_data(query(prometheus.url, expr)):
                missing.append(f"{q.name}: {expr}")
        assert not missing, "panel queries without data:\n" + "\n".join(missing)

        records = [
            rule["record"]
            for group in yaml.safe_load((rules_default / "recording_rules.yml").read_text())["groups"]
            for rule in group["rules"]
        ]
        no_value = [r for r in records if not has_data(query(prometheus.url, f'{{__name__="{r}"}}'))]
        assert not no_value, f"recording rules without a value: {no_value}"

        # At rest (default faults, default mix): nothing fires.
        firing = query(prometheus.url, 'ALERTS{alertstate="firing"}')
        assert not firing, f"alerts firing at rest: {[a['metric'] for a in firing]}"
        assert load.sent > 200, f"load too small ({load.sent} requests; errors {load.errors[:3]})"

        # Traffic to /api/error: the availability fast-burn page fires, the SLO dashboard's table has it.
        # The error share of the window depends on how fast the background mix runs on this machine, so
        # the errors keep coming (bounded by the wait's timeout) until the page fires, not a fixed count.
        stop_errors = threading.Event()

        def send_errors() -> None:
            with requests.Session() as session:
                while not stop_errors.is_set():
                    session.get(f"{app.url}/api/error", timeout=5)

        with ThreadPoolExecutor(max_workers=6) as pool:
            senders = [pool.submit(send_errors) for _ in range(6)]
            try:
                fired = wait_for_series(
                    prometheus.url,
                    'ALERTS{alertname="ApiAvailabilityFastBurn", alertstate="firing"}',
                    timeout=60,
                )
            finally:
                stop_errors.set()
            for sender in senders:
                sender.result()
        assert fired[0]["metric"]["severity"] == "page"
        for q in alerts_queries:
            assert has_data(query(prometheus.url, substitute(q.expr, LIVE_VALUES))), q.name


def test_db_failure_fault_fires_the_fast_burn_page(tmp_path: Path, rules_default: Path) -> None:
    """One fault switched on at run time (db_failure_rate 0.9: 81% of /api/users fail after the retry) pages."""
    env = {"APP_SHUTDOWN_DRAIN_SECONDS": "0"}
    with (
        start_app(tmp_path / "app", workers=2, env=env, faults={}) as app,
        start_prometheus(
            tmp_path,
            scrape_targets=[app.url.removeprefix("http://")],
            rule_files=[rules_default / "recording_rules.yml", rules_default / "alerting_rules.yml"],
            labels=LABELS,
        ) as prom,
        Load(app.url),
    ):
        app.set_faults({"db_failure_rate": 0.9})
        fired = wait_for_series(
            prom.url, 'ALERTS{alertname="ApiAvailabilityFastBurn", alertstate="firing"}', timeout=45
        )
        assert fired[0]["metric"]["slo"] == "availability"
        # The near-total-outage window of the default 1d spec is 1m.
        ratio = query(prom.url, 'slo:sli_error:ratio_rate1m{slo="availability"}')
        assert float(ratio[0]["value"][1]) > 0.2
        # Only availability is broken: the latency SLO does not page.
        assert not query(prom.url, 'ALERTS{alertname="ApiLatencyFastBurn", alertstate="firing"}')
