"""playbooks/stress.yml end to end on the local platform: the real API under gunicorn, a real Prometheus
scraping it (with the lab's rendered rules), Locust from the playbook; the report is checked against Prometheus.

The app and Prometheus come from the shared helpers; the playbook gets their URLs, a short run and a lab_dir in
tmp_path with -e, as the molecule scenario does after verify.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest

from loadtest.prom import Prometheus, url_fetcher
from tests.conftest import run_playbook
from tests.support.prometheus import start_prometheus, wait_for_series
from tests.support.servers import Server, free_port, start_app

# Ten stress.yml runs against one app and Prometheus: minutes.
pytestmark = [pytest.mark.slow, pytest.mark.long_running]

LABELS = {"app": "flask-api", "namespace": "sre-lab"}
SHORT_RUN = {
    "lab_platform": "local",
    "stress_test_shape": "steady",
    "stress_test_users": 8,
    "stress_test_spawn_rate": 8,
    "stress_test_duration": "12s",
    "stress_test_wait_min_seconds": 0.05,
    "stress_test_wait_max_seconds": 0.2,
    "stress_test_progress_interval": 4,
    "stress_test_grace_seconds": 40,
    "stress_test_settle_timeout": 30,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, rendered_dir: Path) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("stress-lab")
    # No simulated DB failures: a short run must pass deterministically (the errors profile breaches on purpose).
    app = start_app(tmp / "app", workers=2)
    rules_dir = rendered_dir / "monitoring" / "rules"
    rule_files = [
        p for p in (rules_dir / "recording_rules.yml", rules_dir / "alerting_rules.yml") if p.exists()
    ]
    prom = start_prometheus(
        tmp / "prometheus",
        scrape_targets=[app.url.removeprefix("http://")],
        rule_files=rule_files,
        labels=LABELS,
    )
    try:
        # Warm-up: every series the run will touch exists before it starts, so increase() over the run's window
        # counts all of its requests (Prometheus cannot see the first increment of a series that appears mid-run).
        for _ in range(3):
            for path in ("/api/users", "/api/error", "/api/error?type=client", "/health/liveness"):
                with contextlib.suppress(OSError):  # the error routes answer 4xx/5xx on purpose
                    urllib.request.urlopen(app.url + path, timeout=5).read()
            request = urllib.request.Request(
                app.url + "/api/echo", data=b'{"a": 1}', headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=5).read()
        wait_for_series(prom.url, 'up{app="flask-api"} == 1')
        time.sleep(2)
        yield app, prom
    finally:
        prom.stop()
        app.stop()


def stress(tmp_path: Path, app: Server, prom: Server, check: bool = True, **extra: object):
    settings = {
        **SHORT_RUN,
        "lab_dir": str(tmp_path / "lab"),
        "stress_test_target_url": app.url,
        "stress_test_prometheus_url": prom.url,
        **extra,
    }
    return run_playbook("stress.yml", "-e", json.dumps(settings), check=check)


def latest_report(tmp_path: Path) -> tuple[Path, dict]:
    latest = tmp_path / "lab" / "reports" / "latest"
    assert latest.is_symlink()
    return latest.resolve(), json.loads((latest / "report.json").read_text())


def test_short_steady_run_passes_and_matches_prometheus(tmp_path: Path, lab) -> None:
    app, prom_server = lab
    proc = stress(tmp_path, app, prom_server)
    run_dir, report = latest_report(tmp_path)

    # Progress lines while it ran, and the summary table at the end.
    assert proc.stdout.count(" running: users=") >= 1
    assert "verdict" in proc.stdout
    assert "PASS" in proc.stdout
    for name in ("run.json", "report.md", "locust.html", "locust_stats.csv", "locust_stats_history.csv"):
        assert (run_dir / name).is_file(), name
    assert report["verdict"] == "pass", report["breaches"]
    assert report["breaches"] == []

    # The report's figures are what Prometheus holds for the run's window.
    prom = Prometheus(url_fetcher(prom_server.url), prom_server.url)
    at = report["window"]["evaluated_at"]
    figures = report["prometheus_figures"]
    assert prom.scalar(report["queries"]["requests"], at) == pytest.approx(figures["requests"])
    assert prom.scalar(report["queries"]["p99"], at) == pytest.approx(figures["latency_p99_seconds"])
    # ... and independently: the counter's growth between the start and the evaluation time (no extrapolation).
    selector = '{app="flask-api",namespace="sre-lab",endpoint=~"/api/.+"}'
    before = prom.scalar(f"sum(app_request_count_total{selector})", report["window"]["start"]) or 0.0
    after = prom.scalar(f"sum(app_request_count_total{selector})", at)
    assert after is not None
    assert figures["requests"] == pytest.approx(after - before, rel=0.15)
    # ... which is also what Locust sent to /api/ (nothing else hits the API during the run).
    assert report["locust"]["api_requests"] == pytest.approx(after - before, rel=0.05)
    assert report["locust"]["failures"] == 0
    assert figures["requests"] > 50
    assert figures["error_ratio"] == 0
    assert figures["latency_under_threshold_ratio"] == pytest.approx(1.0)
    assert (
        0 < figures["latency_p50_seconds"] <= figures["latency_p95_seconds"] <= figures["latency_p99_seconds"]
    )
    run = json.loads((run_dir / "run.json").read_text())
    assert run["end"] - run["start"] == pytest.approx(report["window"]["duration_seconds"])
    assert 12 <= report["window"]["duration_seconds"] < 30


def test_errors_profile_breaches_and_fails_the_play_when_asked(tmp_path: Path, lab) -> None:
    app, prom_server = lab
    proc = stress(
        tmp_path, app, prom_server, check=False, stress_test_profile="errors", stress_test_fail_on_breach=True
    )
    assert proc.returncode != 0
    assert "SLO breached (breach): availability:" in proc.stdout
    _, report = latest_report(tmp_path)
    assert report["verdict"] == "breach"
    assert report["breaches"][0].startswith("availability:")
    # The deliberate 500s are about 3/18 * 3/4 of the calls: far above the 0.5% the SLO allows.
    ratio = report["prometheus_figures"]["error_ratio"]
    assert 0.05 < ratio < 0.30
    prom = Prometheus(url_fetcher(prom_server.url), prom_server.url)
    at = report["window"]["evaluated_at"]
    # The ratio is the availability recording rule's own expression over the run's window.
    assert "[" in report["queries"]["error_ratio"]
    assert prom.scalar(report["queries"]["error_ratio"], at) == pytest.approx(ratio)
    assert report["budget"]["availability"]["burn_rate"] > 10
    # Locust counted the deliberate errors as expected: no failures on its side.
    assert report["locust"]["failures"] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"stress_test_shape": "ramp"}, "stress_test_shape"),
        ({"stress_test_users": "lots"}, "stress_test_users"),
        ({"stress_test_duration": "soon"}, "duration (stress_test_duration) must be a duration"),
        (
            {"stress_test_fault_enabled": True, "stress_test_fault_duration": "1m"},
            "must close before the run ends",
        ),
        (
            {"stress_test_target_url": "http://127.0.0.1:{free}"},
            "is the lab up? Run `make lab`. (GET /health/liveness",
        ),
        ({"stress_test_prometheus_url": "http://127.0.0.1:{free}"}, "is the lab up? Run `make lab`."),
    ],
    ids=[
        "unknown-shape",
        "non-numeric-users",
        "bad-duration",
        "fault-window",
        "target-down",
        "prometheus-down",
    ],
)
def test_bad_settings_fail_before_any_load(tmp_path: Path, lab, extra: dict, message: str) -> None:
    app, prom_server = lab
    extra = {k: v.format(free=free_port()) if isinstance(v, str) else v for k, v in extra.items()}
    prom = Prometheus(url_fetcher(prom_server.url), prom_server.url)
    count = 'sum(app_request_count_total{app="flask-api",endpoint=~"/api/.+"})'
    before = prom.scalar(count, time.time())
    proc = stress(tmp_path, app, prom_server, check=False, **extra)
    assert proc.returncode != 0
    # The YAML callback folds messages over lines and doubles single quotes inside quoted scalars.
    assert message in " ".join((proc.stdout + proc.stderr).split()).replace("''", "'")
    assert not (tmp_path / "lab" / "reports").exists()  # stopped in the preflight
    time.sleep(2)
    assert prom.scalar(count, time.time()) == before  # no load was sent


def test_step_run_judges_each_step(tmp_path: Path, lab) -> None:
    app, prom_server = lab
    stress(
        tmp_path,
        app,
        prom_server,
        stress_test_shape="step",
        stress_test_users=12,
        stress_test_step_users=4,
        stress_test_step_seconds="6s",
        stress_test_duration="18s",
    )
    run_dir, report = latest_report(tmp_path)
    steps = report["phases"]
    assert [p["phase"] for p in steps][:3] == ["4 users", "8 users", "12 users"]
    assert all(p["meets_slo"] for p in steps[:3])
    assert report["first_failing_phase"] is None
    # More users, more traffic: each step carries more requests per second than the one before.
    assert steps[0]["throughput_rps"] < steps[1]["throughput_rps"] < steps[2]["throughput_rps"]
    assert "## Phases" in (run_dir / "report.md").read_text()


STEP_FIELDS = {
    "users",
    "duration_seconds",
    "requests",
    "server",
    "client",
    "generator_cpu_percent",
    "server_cpu_percent",
    "verdict",
    "reason",
}


def test_capacity_run_finds_where_it_breaks_and_its_report_renders(tmp_path: Path, lab) -> None:
    """A short capacity search (2 users, +2 per 4 s step: 1 s warm-up + 3 scrapes, ceiling 6), then report.html in Chromium.

    Every step in report.json has both views and the CPU split, and the verdict, the tables (report.md, the
    console, report.html) and the capacity chart's bars tell the same story.
    """
    from tests.support.browser import open_in_chromium

    app, prom_server = lab
    proc = stress(
        tmp_path,
        app,
        prom_server,
        stress_test_shape="capacity",
        stress_test_capacity_start_users=2,
        stress_test_capacity_step_users=2,
        stress_test_capacity_max_users=6,
        stress_test_capacity_step_seconds="4s",
        stress_test_capacity_warmup_seconds="1s",
        stress_test_capacity_min_scrapes=3,
        stress_test_scrape_interval="1s",
        stress_test_wrk_seconds=2,
        stress_test_wrk_connections=8,
    )
    run_dir, report = latest_report(tmp_path)
    steps = json.loads((run_dir / "steps.json").read_text())
    assert 1 <= len(steps["steps"]) <= 6  # 3 upward, then at most 2 refinement steps and a repeat
    assert steps["stopped"]["reason"] in ("breach", "ceiling", "refined")
    assert all(s["generator_cpu_percent"] > 0 for s in steps["steps"])  # Locust's own CPU over each step
    assert all(s["warmup_seconds"] == 1 for s in steps["steps"])
    assert report["shape"]["warmup_seconds"] == 1
    # Per step: users, duration, requests, the server's and the client's SLIs, generator and server CPU, verdict.
    records = report["steps"]
    assert len(records) == len(steps["steps"])
    for record, logged in zip(records, steps["steps"], strict=True):
        assert set(record) >= STEP_FIELDS, set(record)
        assert record["users"] == logged["users"]
        assert record["duration_seconds"] == pytest.approx(logged["end"] - logged["start"])
        assert 2 <= record["duration_seconds"] <= 5  # the measured part: after the 1 s warm-up
        assert record["requests"] > 0
        assert record["server"]["throughput_rps"] > 0
        assert record["server"]["p99_seconds"] > 0
        assert record["client"]["requests"] == logged["requests"] > 0
        assert record["client"]["p99_seconds"] > 0
        # both views count the same requests (the warm-up excluded on both sides), within a scrape's worth
        assert record["requests"] == pytest.approx(record["client"]["requests"], rel=0.5)
        assert record["generator_cpu_percent"] > 0
        assert (
            record["server_cpu_percent"] is not None
        )  # the gunicorn behind the target's port, found locally
        assert record["server_cpu_percent"] > 0
        assert record["verdict"] in ("held", "broke")
        assert record["verdict"] == ("held" if record["server"]["meets_slo"] else "broke")
        assert record["reason"]
    cap = report["capacity"]
    # Capacity by the SLO: the number of users below the fewest that broke it with the best mean server throughput.
    broke = min((r for r in records if r["verdict"] == "broke"), key=lambda r: r["users"], default=None)
    held = [r for r in records if r["verdict"] == "held" and (broke is None or r["users"] < broke["users"])]
    if held:
        levels: dict[int, list[float]] = {}
        for r in held:
            levels.setdefault(r["users"], []).append(r["server"]["throughput_rps"])
        best_users = max(levels, key=lambda u: sum(levels[u]) / len(levels[u]))
        assert cap["slo"]["users"] == best_users
        assert cap["slo"]["rps"] == pytest.approx(sum(levels[best_users]) / len(levels[best_users]))
        assert cap["slo"]["spread"]["measurements"] == len(levels[best_users])
    assert cap["slo"]["broke_at"] == (broke["label"] if broke else None)
    # wrk on the same /api/ mix before the search: the physical limit and the saturation ratio.
    assert cap["physical"]["wrk_rps"] > 0, cap["physical"]
    if cap["saturation"]["rps"]:
        assert cap["physical"]["ratio"] == pytest.approx(
            cap["saturation"]["rps"] / cap["physical"]["wrk_rps"]
        )
    # The phases (server-side SLO per step) say what the steps say.
    assert [p["meets_slo"] for p in report["phases"]] == [r["verdict"] == "held" for r in records]
    # The run's verdict is the steps' (one story with the table, the chart and the capacity).
    assert report["verdict_scope"] == "steps"
    assert report["verdict"] == ("breach" if any(r["verdict"] == "broke" for r in records) else "pass")
    # The console table and report.md carry the same verdicts and figures.
    assert "capacity by the SLO (server side)" in proc.stdout
    assert "capacity by the clients (Locust)" in proc.stdout
    md = (run_dir / "report.md").read_text()
    md_rows = [
        line.split(" | ")
        for line in md.splitlines()
        if line.startswith("| step ") and "| users |" not in line
    ]
    assert [row[12] for row in md_rows] == [
        r["verdict"] + (" (generator-limited)" if r["generator_limited"] else "") for r in records
    ]
    assert "the limit was the server" not in md
    for sentence in cap["story"]:
        assert sentence in md

    html = run_dir / "report.html"
    text = html.read_text()
    # Nothing to fetch: no script, stylesheet link, image source or href to a URL (xmlns URIs are names only).
    assert re.search(r"<script|<link|<img|src=|href=\"http|url\((?!#)", text) is None
    page = open_in_chromium(html, tmp_path)
    artifacts = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    kept = artifacts / f"stress-report-{report['run_id']}.png"
    kept.write_bytes(page.screenshot.read_bytes())
    print(f"\nreport screenshot: {kept}")
    assert page.console == [], page.console
    # report.html has the per-step table with the same verdicts and reasons, and the same window as report.md.
    html_rows = re.findall(r"<tr>((?:<td>.*?</td>)+)</tr>", page.dom, re.S)
    step_rows = [re.findall(r"<td>(.*?)</td>", row, re.S) for row in html_rows if row.startswith("<td>step ")]
    assert [cells[0] for cells in step_rows] == [r["label"] for r in records]
    assert [cells[12] for cells in step_rows] == [row[12] for row in md_rows]
    assert [unescape(cells[13]) for cells in step_rows] == [r["reason"] for r in records]
    window = next(line for line in md.splitlines() if line.startswith("- window: ")).removeprefix(
        "- window: "
    )
    assert unescape(window) in unescape(page.dom)
    charts = re.findall(
        r'<figure class="chart" data-key="([\w-]+)" data-series="(\d+)"(?: data-values="([^"]*)")?>(.*?)</figure>',
        page.dom,
        re.S,
    )
    keys = [k for k, _, _, _ in charts]
    for expected in (
        "load",
        "throughput",
        "errors",
        "latency",
        "slow",
        "burn-availability",
        "burn-latency",
        "inflight",
        "alerts",
        "capacity",
    ):
        assert expected in keys, keys
    for key, series, _, body in charts:
        assert int(series) > 0, f"empty panel {key}"
        assert "<svg" in body, f"panel {key} has no chart"
        assert body.count("<path") > 5, f"panel {key} drew nothing"
    # The capacity chart's bars: one per step, the server's throughput, red exactly where the verdict is "broke".
    bars = json.loads(unescape(next(values for key, _, values, _ in charts if key == "capacity")))
    assert [b["users"] for b in bars] == [r["users"] for r in records]
    assert [b["rps"] for b in bars] == pytest.approx([r["server"]["throughput_rps"] for r in records])
    assert [b["colour"] == "tab:red" for b in bars] == [r["verdict"] == "broke" for r in records]
    assert kept.stat().st_size > 20_000  # a real picture, not a blank page
