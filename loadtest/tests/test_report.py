"""The verdict: queries over the run's window, breaches against lab_slo, budget, the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest import report
from loadtest.prom import Prometheus, PrometheusError, url_fetcher

SLO = {
    "window": "30d",
    "availability": {"objective": 99.5},
    "latency": {"objective": 99.0, "threshold_seconds": 0.3},
}
RUN = {
    "run_id": "20261124T010000Z",
    "platform": "local",
    "target": "http://127.0.0.1:18000",
    "app": "flask-api",
    "namespace": "sre-lab",
    "shape": {"name": "steady", "duration": 60},
    "profile": "normal",
    "slo": SLO,
    "start": 1000.0,
    "end": 1060.0,
}


class FakePrometheus:
    """Answers /api/v1/query from a table of {query name: value}; records what was asked."""

    def __init__(self, values: dict[str, float | None], alerts: list[dict[str, str]] | None = None) -> None:
        self.values = values
        self.alerts = alerts or []
        self.asked: list[tuple[str, str]] = []

    def fetch(self, path: str, params: dict[str, str]) -> dict:
        if path == "/api/v1/status/buildinfo":
            return {"status": "success", "data": {"version": "2.42.0"}}
        promql, at = params["query"], params["time"]
        self.asked.append((promql, at))
        queries = report.queries("flask-api", "sre-lab", 0.3, 65)
        if "ALERTS" in promql:
            firing = 'alertstate="firing"' in promql
            result = [{"metric": a, "value": [at, "1"]} for a in self.alerts if firing]
            return {"status": "success", "data": {"resultType": "vector", "result": result}}
        name = next((n for n, q in queries.items() if q.split("[")[0] == promql.split("[")[0]), None)
        value = self.values.get(name) if name else None
        result = [] if value is None else [{"metric": {}, "value": [at, str(value)]}]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}


def build(
    values: dict[str, float | None], alerts: list[dict[str, str]] | None = None
) -> tuple[dict, FakePrometheus]:
    fake = FakePrometheus(values, alerts)
    return report.build_report(Prometheus(fake.fetch, "fake"), RUN, eval_time=1065.0), fake


GOOD = {
    "requests": 10_000.0,
    "errors": 10.0,
    "latency_count": 10_000.0,
    "latency_good": 9_990.0,
    "p50": 0.012,
    "p95": 0.05,
    "p99": 0.11,
}


def test_queries_cover_the_run_window_at_the_evaluation_time() -> None:
    rep, fake = build(GOOD)
    assert rep["window"] == {"start": 1000.0, "end": 1060.0, "duration_seconds": 60.0, "evaluated_at": 1065.0}
    assert {at for _, at in fake.asked} == {"1065.000"}
    assert all("[65s]" in q for q, _ in fake.asked)
    q = rep["queries"]
    assert q["requests"] == (
        'sum(increase(app_request_count_total{app="flask-api",namespace="sre-lab",endpoint=~"/api/.+"}[65s]))'
    )
    assert 'http_status=~"5.."' in q["errors"]
    assert 'le="0.3"' in q["latency_good"]
    assert q["p99"].startswith(
        "histogram_quantile(0.99, sum by (le) (increase(app_request_latency_seconds_bucket{"
    )


def test_a_good_run_passes_with_its_figures_and_budget() -> None:
    rep, _ = build(GOOD)
    p = rep["prometheus_figures"]
    assert rep["verdict"] == "pass"
    assert rep["breaches"] == []
    assert p["requests"] == 10_000
    assert p["throughput_rps"] == pytest.approx(10_000 / 60)
    assert p["error_ratio"] == pytest.approx(0.001)
    assert p["latency_under_threshold_ratio"] == pytest.approx(0.999)
    assert p["latency_p99_seconds"] == pytest.approx(0.11)
    availability = rep["budget"]["availability"]
    assert availability["burn_rate"] == pytest.approx(0.001 / 0.005)
    assert availability["budget_consumed"] == pytest.approx(0.2 * 60 / (30 * 86400))
    assert rep["budget"]["latency"]["burn_rate"] == pytest.approx(0.001 / 0.01)


def test_errors_breach_availability() -> None:
    rep, _ = build({**GOOD, "errors": 600.0})
    assert rep["verdict"] == "breach"
    assert len(rep["breaches"]) == 1
    assert rep["breaches"][0].startswith("availability: 6.000% of API requests failed with a 5xx")
    assert rep["budget"]["availability"]["burn_rate"] == pytest.approx(12.0)


def test_slow_requests_breach_latency() -> None:
    rep, _ = build({**GOOD, "latency_good": 9_800.0})
    assert rep["verdict"] == "breach"
    assert rep["breaches"] == ["latency: 98.000% of API requests took under 0.3s, the SLO asks for 99.000%"]


def test_no_requests_is_no_data_not_a_pass() -> None:
    rep, _ = build({"p50": float("nan")})
    assert rep["verdict"] == "no_data"
    assert rep["prometheus_figures"]["error_ratio"] is None
    assert rep["prometheus_figures"]["latency_p50_seconds"] is None


def test_alerts_that_fired_are_listed() -> None:
    alerts = [{"alertname": "ApiAvailabilityFastBurn", "severity": "page", "slo": "availability"}]
    rep, _ = build({**GOOD, "errors": 600.0}, alerts)
    assert rep["alerts_fired"] == alerts
    assert rep["alerts_pending"] == []


def test_markdown_and_table_show_the_verdict() -> None:
    rep, _ = build({**GOOD, "errors": 600.0})
    page = report.markdown(rep)
    assert page.startswith("# Stress test 20261124T010000Z: BREACH")
    assert "| 5xx error ratio | 6.000% | <= 0.500% |" in page
    assert "## Breaches" in page
    assert "BREACH" in report.table(rep).splitlines()[-1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**SLO, "window": "30x"}, "lab_slo is incomplete"),
        ({**SLO, "availability": {}}, "lab_slo is incomplete"),
        ({**SLO, "availability": {"objective": 100}}, "between 0 and 100"),
    ],
)
def test_bad_slo_spec(spec: dict, message: str) -> None:
    with pytest.raises(report.ReportError, match=message):
        report.Slo.from_spec(spec)


def test_slo_windows() -> None:
    assert report.Slo.from_spec(SLO).window_seconds == 30 * 86400
    assert report.Slo.from_spec({**SLO, "window": "1d"}).window_seconds == 86400


def test_wait_for_final_scrape_returns_the_first_scrape_after_the_end() -> None:
    answers = iter([1059.0, 1059.0, 1061.5])
    clock = iter([2000.0, 2000.0, 2001.0, 2002.0])

    class Stub:
        where = "stub"

        def scalar(self, promql: str, at: float) -> float:
            assert promql == 'min(timestamp(up{app="flask-api",namespace="sre-lab"}))'
            return next(answers)

    got = report.wait_for_final_scrape(
        Stub(), "flask-api", "sre-lab", 1060.0, 10, clock=lambda: next(clock), sleep=lambda _: None
    )  # type: ignore[arg-type]
    assert got == 1061.5


def test_wait_for_final_scrape_times_out_with_a_message() -> None:
    class Stub:
        where = "stub"

        def scalar(self, promql: str, at: float) -> None:
            return None

    with pytest.raises(report.ReportError, match="has no scrape of the API"):
        report.wait_for_final_scrape(Stub(), "a", "b", 10.0, 0, sleep=lambda _: None)  # type: ignore[arg-type]


def test_locust_figures_from_its_csv(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%"
    rows = [
        "GET,/api/users,80,2,8.0,10,40,90",
        "POST,/api/echo,20,0,2.0,5,20,30",
        "GET,/health/liveness,5,0,0.5,1,2,2",
        ",Aggregated,105,2,10.5,9,38,88",
    ]
    (tmp_path / "locust_stats.csv").write_text("\n".join([header, *rows]) + "\n")
    figures = report.locust_figures(tmp_path / "locust")
    assert figures == {
        "requests": 105,
        "failures": 2,
        "api_requests": 100,
        "requests_per_second": 10.5,
        "p50_ms": 9.0,
        "p95_ms": 38.0,
        "p99_ms": 88.0,
    }
    assert report.locust_figures(tmp_path / "missing") is None


def test_unreachable_prometheus_is_a_clear_error() -> None:
    from tests.support.servers import free_port

    prom = Prometheus(url_fetcher(f"http://127.0.0.1:{free_port()}", timeout=2), "nowhere")
    with pytest.raises(PrometheusError, match="cannot be reached"):
        prom.check()
    with pytest.raises(PrometheusError, match="must start with http"):
        url_fetcher("127.0.0.1:9090")


def test_cli_check_fails_before_load_when_prometheus_is_down(capsys) -> None:
    from tests.support.servers import free_port

    code = report.main(["--check", "--prometheus-url", f"http://127.0.0.1:{free_port()}"])
    assert code == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_cli_writes_report_files(tmp_path: Path, monkeypatch, capsys) -> None:
    fake = FakePrometheus(GOOD)

    def scalar_up(path: str, params: dict[str, str]) -> dict:
        if params.get("query", "").startswith("min(timestamp(up"):
            return {"status": "success", "data": {"result": [{"metric": {}, "value": [0, "1061"]}]}}
        return fake.fetch(path, params)

    monkeypatch.setattr(report, "url_fetcher", lambda url: scalar_up)
    (tmp_path / "run.json").write_text(json.dumps(RUN))
    (tmp_path / "fault.json").write_text(json.dumps({"on": 1010.0, "off": 1030.0}))
    assert report.main(["--run", str(tmp_path / "run.json"), "--prometheus-url", "http://x"]) == 0
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["verdict"] == "pass"
    assert written["window"]["evaluated_at"] == 1061
    assert written["fault_window"] == {"on": 1010.0, "off": 1030.0}
    assert (tmp_path / "report.md").read_text().startswith("# Stress test")
    assert "verdict" in capsys.readouterr().out


def test_a_gap_between_prometheus_and_locust_is_noted(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%"
    (tmp_path / "locust_stats.csv").write_text(
        f"{header}\nGET,/api/users,12000,0,200,1,2,3\n,Aggregated,12000,0,200,1,2,3\n"
    )
    fake = FakePrometheus(GOOD)
    run = {**RUN, "locust_csv_prefix": str(tmp_path / "locust")}
    rep = report.build_report(Prometheus(fake.fetch, "fake"), run, eval_time=1065.0)
    assert rep["locust"]["api_requests"] == 12000
    assert len(rep["notes"]) == 1
    assert rep["notes"][0].startswith("Prometheus counted -17% API requests compared with Locust")
    assert "## Notes" in report.markdown(rep)
    rep_close = report.build_report(Prometheus(fake.fetch, "fake"), {**run, "locust_csv_prefix": ""}, 1065.0)
    assert rep_close["notes"] == []


def test_step_phases_follow_the_shape() -> None:
    shape = {"name": "step", "users": 25, "step_users": 10, "step_seconds": 20, "duration": 70}
    got = [(p["phase"], p["from"], p["to"]) for p in report.phases(shape, 70.4)]
    assert got == [("10 users", 0, 20), ("20 users", 20, 40), ("25 users", 40, 60), ("25 users", 60, 70.4)]
    assert report.phases({"name": "steady", "users": 5}, 60) == []


def test_spike_phases_are_before_during_and_after() -> None:
    shape = {"name": "spike", "users": 100, "base_users": 5, "spike_at": 20, "spike_seconds": 10}
    got = [(p["phase"], p["users"], p["from"], p["to"]) for p in report.phases(shape, 60)]
    assert got == [("before the spike", 5, 0, 20), ("spike", 100, 20, 30), ("recovery", 5, 30, 60)]


def test_each_step_is_judged_over_its_own_window() -> None:
    run = {
        **RUN,
        "shape": {"name": "step", "users": 20, "step_users": 10, "step_seconds": 30, "duration": 60},
    }
    fake = FakePrometheus({**GOOD, "errors": 600.0})
    rep = report.build_report(Prometheus(fake.fetch, "fake"), run, eval_time=1065.0)
    assert [p["phase"] for p in rep["phases"]] == ["10 users", "20 users"]
    assert {at for q, at in fake.asked if "[30s]" in q} == {"1030.000", "1060.000"}
    assert all(p["meets_slo"] is False for p in rep["phases"])
    assert rep["first_failing_phase"] == "10 users"
    assert "## Phases" in report.markdown(rep)
    good = report.build_report(Prometheus(FakePrometheus(GOOD).fetch, "fake"), run, eval_time=1065.0)
    assert [p["meets_slo"] for p in good["phases"]] == [True, True]
    assert good["first_failing_phase"] is None
