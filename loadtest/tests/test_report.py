"""The verdict from a real Prometheus holding known data, with the lab's rules rendered for two thresholds.

The data is written with ``promtool tsdb create-blocks-from openmetrics`` (a 10-minute window, a sample every
15 s), then a real Prometheus serves it with the rendered recording and alert rules loaded: the report reads
its SLI queries from those rules, so these tests check that the rules and the report agree, including a
whole-number threshold written ``le="1.0"`` as Prometheus 3 writes it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.prom import Prometheus, PrometheusError, url_fetcher
from loadtest.report import cli, markdown, phases, verdict
from loadtest.report.locust_csv import locust_figures
from loadtest.report.sli import SliSource, scrape_job_only, split_ratio
from loadtest.report.slo import ReportError, Slo
from tests.conftest import run_playbook
from tests.support.prometheus import require_binary, start_prometheus
from tests.support.servers import free_port

SLO = {
    "window": "7d",  # not the 1d default: the report must take the window from the rules; fits the local 7d retention
    "availability": {"objective": 99.5},
    "latency": {"objective": 99.0, "threshold_seconds": 0.3},
    "outage_error_ratio": 0.2,
}
# Per 15 s: 100 GET /api/users 200s and 1 500; of the 101, 50 under 0.1 s, 95 under 0.3 s, 100 under 1 s.
PER_STEP = {"ok": 100, "err": 1, "le": {"0.1": 50, "0.3": 95, "1.0": 100, "+Inf": 101}}
STEPS = 40  # 10 minutes
T0 = int(time.time()) // 60 * 60 - 3 * 3600  # inside the 1d retention start_prometheus keeps


CADVISOR = [
    ("flask-api-7d9f-a", "api", 0.75),
    ("flask-api-7d9f-b", "api", 0.25),
    ("flask-api-7d9f-a", "POD", 0.5),
    ("stress-20261206t190000z-x", "locust", 1.0),
]


def openmetrics() -> str:
    base = 'app="flask-api",namespace="sre-lab",endpoint="/api/users",method="GET"'
    lines = [
        "# TYPE app_request_count counter",
        "# TYPE app_request_latency_seconds histogram",
        "# TYPE app_active_requests gauge",
        "# TYPE container_cpu_usage_seconds counter",
    ]
    for i in range(STEPS + 1):
        t = T0 + 15 * i
        lines.append(f'app_request_count_total{{{base},http_status="200"}} {PER_STEP["ok"] * i} {t}')
        lines.append(f'app_request_count_total{{{base},http_status="500"}} {PER_STEP["err"] * i} {t}')
        for le, n in PER_STEP["le"].items():
            lines.append(f'app_request_latency_seconds_bucket{{{base},le="{le}"}} {n * i} {t}')
        lines.append(f"app_request_latency_seconds_count{{{base}}} {PER_STEP['le']['+Inf'] * i} {t}")
        lines.append(f"app_request_latency_seconds_sum{{{base}}} {10.0 * i} {t}")
        lines.append(f'app_active_requests{{app="flask-api",namespace="sre-lab",instance="a"}} 3 {t}')
        # cAdvisor (Kubernetes): the API's two pods use 0.75 and 0.25 of a core; neither the pause container (POD)
        # nor the Locust pod in the same namespace is the server.
        for pod, container, cores in CADVISOR:
            lines.append(
                f'container_cpu_usage_seconds_total{{namespace="sre-lab",pod="{pod}",container="{container}"}} '
                f"{cores * 15 * i} {t}"
            )
    return "\n".join(lines) + "\n# EOF\n"


def rendered_rules(tmp: Path, threshold: float) -> list[Path]:
    out = tmp / f"rendered-{threshold:g}"
    settings = {
        "lab_render_dir": str(out),
        "lab_platform": "local",
        "lab_slo": {**SLO, "latency": {**SLO["latency"], "threshold_seconds": threshold}},
    }
    # the rule files are part of the monitoring stack's render: only that part runs
    run_playbook("render.yml", "-e", json.dumps(settings), "--tags", "monitoring")
    rules = sorted((out / "monitoring").rglob("*_rules.yml"))
    assert {p.name for p in rules} == {"recording_rules.yml", "alerting_rules.yml"}, rules
    return rules


@pytest.fixture(scope="module", params=[0.3, 1.0], ids=["threshold-0.3", "threshold-1"])
def prom(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Prometheus, float]]:
    threshold = request.param
    tmp = tmp_path_factory.mktemp(f"prom-{threshold:g}")
    promtool = require_binary("promtool")
    rules = rendered_rules(tmp, threshold)
    port = free_port()
    data = tmp / f"prometheus-{port}" / "data"
    data.mkdir(parents=True)
    (tmp / "data.om").write_text(openmetrics())
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(tmp / "data.om"), str(data)],
        check=True,
        capture_output=True,
    )
    server = start_prometheus(tmp, scrape_targets=[], rule_files=rules, port=port)
    try:
        yield Prometheus(url_fetcher(server.url), server.url), threshold
    finally:
        server.stop()


def run(**extra: object) -> dict:
    return {
        "run_id": "known-data",
        "platform": "local",
        "target": "http://127.0.0.1:1",
        "app": "flask-api",
        "namespace": "sre-lab",
        "shape": {"name": "steady", "duration": 600},
        "profile": "normal",
        "slo": {**SLO},
        "start": float(T0),
        "end": float(T0 + 15 * STEPS),
        **extra,
    }


def test_rules_and_report_agree_on_the_sli(prom: tuple[Prometheus, float]) -> None:
    client, threshold = prom
    the_run = run(slo={**SLO, "latency": {**SLO["latency"], "threshold_seconds": threshold}})
    rep = verdict.build_report(client, the_run, eval_time=the_run["end"])
    figures = rep["prometheus_figures"]
    total = (PER_STEP["ok"] + PER_STEP["err"]) * STEPS
    assert figures["requests"] == pytest.approx(total, rel=0.01)
    assert figures["error_ratio"] == pytest.approx(1 / 101, rel=0.01)
    good = PER_STEP["le"]["0.3" if threshold == 0.3 else "1.0"]
    assert figures["latency_under_threshold_ratio"] == pytest.approx(good / 101, rel=0.001)
    # The report's queries are the rules' expressions over the run's window (le="1.0" matched by the rule).
    assert "[600s]" in rep["queries"]["latency_error_ratio"]
    if threshold == 1.0:
        assert (
            "1\\\\.0" in rep["queries"]["latency_error_ratio"]
            or "1\\.0" in rep["queries"]["latency_error_ratio"]
        )
    assert 0.1 < figures["latency_p50_seconds"] <= 0.3
    # 1/101 errors > 0.5%: availability breaches; latency breaches at 0.3 (94%) and holds at 1 (99.0%).
    assert rep["verdict"] == "breach"
    assert [b.split(":")[0] for b in rep["breaches"]] == (
        ["availability", "latency"] if threshold == 0.3 else ["availability"]
    )


def test_error_budget_is_labelled_with_the_rules_window(prom: tuple[Prometheus, float]) -> None:
    client, _ = prom
    sli = SliSource.load(client)
    assert sli.period == "7d"
    assert sli.period_seconds == 7 * 86400
    assert {14.4, 6.0} <= set(sli.burn_thresholds["page"])  # plus the outage rule's burn
    assert 1.0 in sli.burn_thresholds["ticket"]
    rep = verdict.build_report(client, run(), eval_time=float(T0 + 600), sli=sli)
    burn = rep["budget"]["availability"]["burn_rate"]
    assert burn == pytest.approx((1 / 101) / 0.005, rel=0.01)
    assert rep["budget"]["availability"]["budget_consumed"] == pytest.approx(
        burn * 600 / (7 * 86400), rel=0.01
    )
    assert rep["slo"]["window"] == "7d"
    assert "availability budget used (of the 7d SLO window)" in markdown.markdown(rep)


def test_each_step_is_judged_over_its_own_window(prom: tuple[Prometheus, float]) -> None:
    client, _ = prom
    shape = {"name": "step", "users": 20, "step_users": 10, "step_seconds": 300, "duration": 600}
    rep = verdict.build_report(client, run(shape=shape), eval_time=float(T0 + 600))
    assert [p["phase"] for p in rep["phases"]] == ["10 users", "20 users"]
    assert [p["requests"] for p in rep["phases"]] == pytest.approx([101 * 20, 101 * 20], rel=0.05)
    assert all(p["meets_slo"] is False for p in rep["phases"])  # 1% 5xx
    assert rep["first_failing_phase"] == "10 users"
    assert "## Phases" in markdown.markdown(rep)


RELAXED = {
    **SLO,
    "availability": {"objective": 98.0},
    "latency": {"objective": 90.0, "threshold_seconds": 1.0},
}


def capacity_report(client: Prometheus, tmp_path: Path, steps: list[dict], stopped: dict) -> dict:
    (tmp_path / "steps.json").write_text(json.dumps({"steps": steps, "stopped": stopped}))
    return verdict.build_report(
        client,
        run(shape={"name": "capacity"}, slo=RELAXED, steps_file=str(tmp_path / "steps.json")),
        float(T0 + 600),
    )


def locust_step(i: int, **extra: object) -> dict:
    """Locust's record of step i (200 s each): 20 users that saw 1,340 requests, all fast and fine."""
    return {
        "index": i,
        "users": 10 * (i + 1),
        "start": T0 + 200.0 * i,
        "end": T0 + 200.0 * (i + 1),
        "requests": 1340,
        "failures": 0,
        "throughput_rps": 6.7,
        "failure_ratio": 0.0,
        "under_threshold_ratio": 1.0,
        "p99_ms": 400.0,
        # users with no think time: requests = users x seconds / mean latency (a generator that kept up)
        "mean_ms": 10 * (i + 1) * 200 / 1340 * 1000,
        "generator_cpu_percent": 30.0,
        "cpu": {
            "cores": 2.0,
            "machine_cpu_percent": 150.0,
            "server_cpu_percent": 90.0,
            "others_cpu_percent": 30.0,
            "load1": 1.5,
        },
        "breaches": [],
        **extra,
    }


def test_capacity_verdict_joins_locust_steps_with_prometheus(
    prom: tuple[Prometheus, float], tmp_path: Path
) -> None:
    client, _ = prom
    steps = [
        locust_step(0),
        locust_step(1),
        locust_step(2, generator_cpu_percent=110.0, breaches=["generator: Locust used 110% of a core"]),
    ]
    rep = capacity_report(client, tmp_path, steps, {"reason": "breach", "step": 2})
    cap = rep["capacity"]
    # The server's throughput, from Prometheus: the SLO held at every step (relaxed objectives).
    assert [s["verdict"] for s in rep["steps"]] == ["held", "held", "held"]
    assert cap["slo"]["rps"] == pytest.approx(101 / 15, rel=0.05)
    assert cap["slo"]["broke_at"] is None
    # The generator ran out of CPU at step 3: that step is generator-limited and the figure a lower bound.
    assert [s["generator_limited"] for s in rep["steps"]] == [False, False, True]
    assert cap["generator_limited_steps"] == ["step 3: 30 users"]
    assert cap["slo"]["at_least"] is True
    # Per step: users, duration, requests, both views, CPU, verdict and reason.
    first = rep["steps"][0]
    assert first["users"] == 10
    assert first["duration_seconds"] == 200
    assert first["requests"] == pytest.approx(101 * 200 / 15, rel=0.05)
    assert first["client"]["requests"] == 1340
    assert first["client"]["p99_seconds"] == 0.4
    assert first["server_cpu_percent"] == 90.0
    assert first["generator_cpu_percent"] == 30.0
    assert "Capacity by the SLO" in markdown.markdown(rep)


def test_on_kubernetes_the_servers_cpu_is_cadvisors_figure_for_the_apis_containers(
    prom: tuple[Prometheus, float], tmp_path: Path
) -> None:
    """In a pod the generator cannot see the server's processes (server_cpu_percent None): the step's server CPU is
    then the dashboard's cAdvisor query over the step, summed over the API's pods, and says where it came from."""
    client, _ = prom
    in_a_pod = {"cores": 2.0, "machine_cpu_percent": 150.0, "server_cpu_percent": None, "load1": 1.5}
    rep = capacity_report(client, tmp_path, [locust_step(0, cpu=in_a_pod)], {"reason": "ceiling"})
    step = rep["steps"][0]
    assert step["server_cpu_percent"] == pytest.approx(100.0, rel=0.02)
    assert step["server_cpu_source"] == "cadvisor"
    assert "server 100% (cAdvisor)" in markdown.cpu_split(step)
    # Where the generator saw the server's processes (local platform), its figure stands.
    local = capacity_report(client, tmp_path, [locust_step(0)], {"reason": "ceiling"})["steps"][0]
    assert (local["server_cpu_percent"], local["server_cpu_source"]) == (90.0, "processes")
    assert "(cAdvisor)" not in markdown.cpu_split(local)


def test_a_client_side_breach_while_the_server_holds_is_reported_as_such(
    prom: tuple[Prometheus, float], tmp_path: Path
) -> None:
    """Today's contradiction (issue 20): Locust's share under the threshold breached, the server's SLI held.

    The step held the SLO as defined (the server-side SLIs the alerts use); the clients breached; the report
    says so with the measured gap, gives both capacity figures and never blames the server.
    """
    client, _ = prom
    steps = [
        locust_step(0),
        locust_step(
            1,
            under_threshold_ratio=0.85,
            p99_ms=1500.0,
            breaches=["latency: 85.00% within 1000 ms (objective 90.00%)"],
        ),
    ]
    rep = capacity_report(client, tmp_path, steps, {"reason": "breach", "step": 1})
    md = markdown.markdown(rep)
    table = markdown.table(rep)
    assert "the limit was the server" not in md + table
    assert "the clients breached while the server held its SLOs" in md
    assert "not a server-side one" in md
    second = rep["steps"][1]
    assert second["verdict"] == "held"
    assert second["server"]["meets_slo"] is True
    assert second["client"]["meets_slo"] is False
    assert "latency (client side)" in second["reason"]
    # The gap: client p99 1500 ms - server p99 (the histogram's 1 s bucket bound).
    assert second["p99_gap_seconds"] == pytest.approx(1.5 - second["server"]["p99_seconds"])
    assert second["p99_gap_seconds"] > 0
    gap_ms = f"{second['p99_gap_seconds'] * 1000:.1f} ms"
    assert gap_ms in md
    # Two capacity figures: by the SLO (held to the end: a lower bound) and by the clients (step 1).
    cap = rep["capacity"]
    assert cap["slo"]["broke_at"] is None
    assert cap["slo"]["at_least"] is True
    assert cap["client"]["broke_at"] == "step 2: 20 users"
    assert cap["client"]["step"] == "step 1: 10 users"
    assert cap["client"]["broke_by"] == ["latency (client side)"]
    assert "capacity by the SLO (server side)" in table
    assert "capacity by the clients (Locust)" in table
    # One verdict everywhere: each phase's meets_slo is its step's verdict, the table rows carry it.
    assert [p["meets_slo"] for p in rep["phases"]] == [s["verdict"] == "held" for s in rep["steps"]]
    rows = [line for line in md.splitlines() if line.startswith("| step ") and "| users |" not in line]
    assert [r.split(" | ")[12] for r in rows] == ["held", "held"]
    assert rep["verdict"] == "pass"
    assert rep["breaches"] == []


def test_a_capacity_runs_verdict_is_its_steps(prom: tuple[Prometheus, float], tmp_path: Path) -> None:
    """One story: the run's verdict is the steps' (server side), in the title, the table and the breaches; a step
    that broke names itself. With the strict SLO every step of the known data breaks availability (1 of 101 is a
    5xx, the SLO allows 0.5%)."""
    client, _ = prom
    (tmp_path / "steps.json").write_text(
        json.dumps({"steps": [locust_step(0), locust_step(1)], "stopped": {"reason": "breach", "step": 0}})
    )
    rep = verdict.build_report(
        client, run(shape={"name": "capacity"}, steps_file=str(tmp_path / "steps.json")), float(T0 + 600)
    )
    assert [s["verdict"] for s in rep["steps"]] == ["broke", "broke"]
    assert rep["verdict"] == "breach"
    assert rep["verdict_scope"] == "steps"
    assert [b.split(":")[0] for b in rep["breaches"]] == ["step 1 (10 users)", "step 2 (20 users)"]
    assert all("availability (server side)" in b for b in rep["breaches"])
    assert (
        "| verdict | BREACH | broke at step 1 (10 users), step 2 (20 users) (server side) |"
        in markdown.markdown(rep)
    )
    # A step without data is no evidence: with no judged step the whole window's verdict (and breaches) stand.
    (tmp_path / "steps.json").write_text(
        json.dumps({"steps": [locust_step(0, start=T0 - 7200.0, end=T0 - 7000.0)], "stopped": None})
    )
    unjudged = verdict.build_report(
        client, run(shape={"name": "capacity"}, steps_file=str(tmp_path / "steps.json")), float(T0 + 600)
    )
    assert [s["verdict"] for s in unjudged["steps"]] == ["no_data"]
    assert unjudged["verdict"] == "breach"
    assert "verdict_scope" not in unjudged
    assert unjudged["breaches"]
    assert all(
        b.startswith(("availability: ", "latency: ")) for b in unjudged["breaches"]
    )  # the window's, not steps'
    # With objectives the data meets, every step held: the verdict says so.
    held = capacity_report(client, tmp_path, [locust_step(0), locust_step(1)], {"reason": "ceiling"})
    assert (held["verdict"], held["breaches"]) == ("pass", [])
    assert "| verdict | PASS | every step held (server side) |" in markdown.markdown(held)


def test_a_stress_run_reads_its_scrape_job_only() -> None:
    """The local stress run scrapes the API twice (15 s and the 1 s stress job): the SLIs read the stress job."""
    ratio = (
        'sum by (namespace, app) (rate(app_request_count_total{app="flask-api",http_status=~"5.."}[5m])) '
        '/ sum by (namespace, app) (rate(app_request_count_total{app="flask-api"}[5m]))'
    )
    latency = (
        'sum by (namespace, app) (rate(app_request_latency_seconds_bucket{app="flask-api",le="0.3"}[5m])) '
        '/ sum by (namespace, app) (rate(app_request_latency_seconds_count{app="flask-api"}[5m]))'
    )
    records = [
        {"name": "slo:sli_error:ratio_rate5m", "labels": {"slo": "availability"}, "query": ratio},
        {"name": "slo:sli_error:ratio_rate5m", "labels": {"slo": "latency"}, "query": latency},
        {"name": "slo:sli:ratio_period", "query": "1 - slo:sli_error:ratio_rate1d"},
    ]
    source = SliSource.from_rules(records, [])
    assert source.for_job("") is source
    stress = source.for_job("flask-api-stress")
    for name, sli in stress.slis.items():
        for expr, original in (
            (sli.error_ratio, source.slis[name].error_ratio),
            (sli.total, source.slis[name].total),
        ):
            # The stress job's series carry no app label: each app matcher becomes the job matcher, nothing else moves.
            assert 'app="flask-api"' not in expr
            assert expr == original.replace('app="flask-api"', 'job="flask-api-stress"')
    assert '_bucket{namespace="sre-lab",job="flask-api-stress"}' in stress.slis["latency"].latency_buckets(
        "30s", "sre-lab"
    )


def test_only_the_apis_own_series_are_switched_to_the_stress_job() -> None:
    """Dashboard panels mix the API's metrics with recorded series (which aggregate the app's job away): only the
    former move to the stress job; the recorded ones keep their app matcher, or the burn-rate charts come out empty."""
    panel = (
        'sum by (endpoint) (rate(app_request_count_total{app="$app", namespace="$namespace", http_status=~"5.."}[1m]))'
        ' / on() group_left {__name__=~"slo:burn_rate:ratio_rate.+", app="$app", slo="latency"}'
        ' + slo:objective:ratio{app="$app"} + up{app="$app"}'
    )
    assert scrape_job_only(panel, "") == panel
    assert scrape_job_only(panel, "flask-api-stress") == (
        'sum by (endpoint) (rate(app_request_count_total{job="flask-api-stress", namespace="$namespace", http_status=~"5.."}[1m]))'
        ' / on() group_left {__name__=~"slo:burn_rate:ratio_rate.+", app="$app", slo="latency"}'
        ' + slo:objective:ratio{app="$app"} + up{app="$app"}'
    )


def test_split_ratio_respects_nesting() -> None:
    assert split_ratio('(a / b) / sum(rate(x{l="/"}[5m]))') == ("(a / b)", 'sum(rate(x{l="/"}[5m]))')


def test_rules_missing_is_a_clear_error() -> None:
    from loadtest.report.sli import SliError

    with pytest.raises(SliError, match="has not loaded the lab's SLO recording rules"):
        SliSource.from_rules([], [])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**SLO, "availability": {}}, "lab_slo is incomplete"),
        ({**SLO, "availability": {"objective": 100}}, "between 0 and 100"),
    ],
)
def test_bad_slo_spec(spec: dict, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        Slo.from_spec(spec)


def test_wait_for_final_scrape_returns_the_first_scrape_after_the_end() -> None:
    answers = iter([1059.0, 1059.0, 1061.5])
    clock = iter([2000.0, 2000.0, 2001.0, 2002.0])

    class Clocked:
        where = "clocked"

        def scalar(self, promql: str, at: float) -> float:
            assert promql == 'min(timestamp(up{app="flask-api",namespace="sre-lab"}))'
            return next(answers)

    got = cli.wait_for_final_scrape(
        Clocked(), "flask-api", "sre-lab", 1060.0, 10, clock=lambda: next(clock), sleep=lambda _: None
    )  # type: ignore[arg-type]
    assert got == 1061.5


def test_locust_figures_from_its_csv(tmp_path: Path) -> None:
    header = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%"
    rows = [
        "GET,/api/users,80,2,8.0,10,40,90",
        "POST,/api/echo,20,0,2.0,5,20,30",
        ",Aggregated,105,2,10.5,9,38,88",
    ]
    (tmp_path / "locust_stats.csv").write_text("\n".join([header, *rows]) + "\n")
    figures = locust_figures(tmp_path / "locust")
    assert figures is not None
    assert (figures["requests"], figures["api_requests"], figures["p99_ms"]) == (105, 100, 88.0)
    assert locust_figures(tmp_path / "missing") is None


def test_unreachable_prometheus_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    prom = Prometheus(url_fetcher(f"http://127.0.0.1:{free_port()}", timeout=2), "nowhere")
    with pytest.raises(PrometheusError, match="cannot be reached"):
        prom.check()
    assert cli.main(["--check", "--prometheus-url", f"http://127.0.0.1:{free_port()}"]) == 2
    assert "cannot be reached" in capsys.readouterr().err


def test_spike_phases_are_before_during_and_after() -> None:
    shape = {"name": "spike", "users": 100, "base_users": 5, "spike_at": 20, "spike_seconds": 10}
    got = [(p["phase"], p["users"], p["from"], p["to"]) for p in phases.shape_phases(shape, 60)]
    assert got == [("before the spike", 5, 0, 20), ("spike", 100, 20, 30), ("recovery", 5, 30, 60)]
