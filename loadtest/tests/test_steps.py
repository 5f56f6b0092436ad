"""The capacity story from synthetic per-step data: verdict by the server-side SLIs, the client-server gap, both
capacity figures, saturation and generator-limited steps (no Prometheus needed: the analysis is pure)."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.report.charts import capacity_bars
from loadtest.report.markdown import capacity_lines, summary_rows
from loadtest.report.slo import Slo
from loadtest.report.steps import capacity_summary, saturation, step_record

SLO = Slo(availability_objective=0.995, latency_objective=0.99, latency_threshold=0.3)
SECONDS = 30.0


def step(
    n: int,
    users: int,
    server_rps: float,
    *,
    server_under: float = 0.9995,
    server_p99: float = 0.19,
    client_under: float = 0.9995,
    client_p99_ms: float = 200.0,
    cpu: float = 40.0,
    sent_share: float = 1.0,
    errors: float = 0.0,
) -> dict[str, Any]:
    """One report.json step; Locust sent ``sent_share`` of what its users would at the latency they saw."""
    mean_ms = users * SECONDS / (server_rps * SECONDS) * 1000
    requests = int(server_rps * SECONDS * sent_share)
    phase = {
        "phase": f"step {n}: {users} users",
        "users": users,
        "from": (n - 1) * SECONDS,
        "to": n * SECONDS,
        "generator": {
            "requests": requests,
            "failures": 0,
            "throughput_rps": requests / SECONDS,
            "failure_ratio": 0.0,
            "under_threshold_ratio": client_under,
            "p99_ms": client_p99_ms,
            "mean_ms": mean_ms,
            "generator_cpu_percent": cpu,
            "cpu": {"cores": 2.0, "server_cpu_percent": 120.0, "others_cpu_percent": 5.0, "load1": 2.2},
            "breaches": [],
        },
    }
    server = {
        "requests": server_rps * SECONDS,
        "throughput_rps": server_rps,
        "error_ratio": errors,
        "latency_under_threshold_ratio": server_under,
        "latency_p99_seconds": server_p99,
    }
    return step_record(n, phase, server, SLO, cpu_limit=90.0)


def test_the_quiet_machine_run_of_the_issue_tells_one_story() -> None:
    """Flat throughput from 50 users; at 450 users the clients breach (98.34%) while the server holds (99.927%)."""
    rates = [2875.0, 3050.0, 3120.0, 3150.0, 3180.0, 3160.0, 3170.0, 3175.0, 3140.0]
    steps = [
        step(i + 1, 50 * (i + 1), r, server_under=0.99927 if i == 8 else 0.9995, client_p99_ms=180.0 + 20 * i)
        for i, r in enumerate(rates)
    ]
    steps[-1] = step(
        9, 450, 3140.0, server_under=0.99927, server_p99=0.21, client_under=0.9834, client_p99_ms=420.0
    )
    cap = capacity_summary(steps, {"reason": "breach", "step": 8})
    assert steps[-1]["verdict"] == "held"
    assert steps[-1]["p99_gap_seconds"] == pytest.approx(0.21)
    assert "latency (client side)" in steps[-1]["reason"]
    assert "+210.0 ms" not in steps[-1]["reason"]  # the gap is a duration, printed as such
    assert "210.0 ms" in steps[-1]["reason"]
    # Two figures: the SLO never broke (a lower bound at the best step), the clients broke at 450 users.
    assert cap["slo"]["rps"] == 3180.0
    assert cap["slo"]["at_least"] is True
    assert cap["slo"]["broke_at"] is None
    assert cap["client"]["broke_at"] == "step 9: 450 users"
    assert cap["client"]["rps"] == 3180.0
    assert cap["client"]["at_least"] is False
    # Saturated from the start: 2,875 is within 10% but not 5% of 3,180; 3,050 at 100 users is.
    assert cap["saturation"]["reached"] is True
    assert cap["saturation"]["users"] == 100
    story = " ".join(cap["story"])
    assert "not a server-side one" in story
    assert (
        f"At {cap['client']['broke_at']} the clients breached" in story
    )  # the table's step, the story's step
    assert "the limit was the server" not in story
    # The chart: no red bar (the SLO held everywhere); the client-side breach is named, with its side.
    bars = capacity_bars(steps)
    assert [b["colour"] for b in bars] == ["tab:green"] * 9
    assert bars[-1]["label"] == "latency (client)"


def test_a_server_side_breach_breaks_the_slo_and_the_red_bar_names_it() -> None:
    steps = [step(1, 50, 700.0), step(2, 100, 770.0, server_under=0.97, server_p99=0.45, client_under=0.95)]
    cap = capacity_summary(steps, {"reason": "breach", "step": 1})
    assert [s["verdict"] for s in steps] == ["held", "broke"]
    assert steps[1]["reason"].startswith("latency (server side): 97.000% within 0.3 s")
    assert cap["slo"] == {
        "rps": 700.0,
        "users": 50,
        "step": "step 1: 50 users",
        "spread": {"measurements": 1, "min_rps": 700.0, "max_rps": 700.0, "relative": 0.0},
        "at_least": False,
        "at_least_because": [],
        "broke_at": "step 2: 100 users",
        "broke_by": ["latency (server side)"],
    }
    assert cap["client"]["broke_at"] == "step 2: 100 users"
    bars = capacity_bars(steps)
    assert [(b["colour"], b["label"]) for b in bars] == [("tab:green", ""), ("tab:red", "latency (server)")]
    # The table and the summary say the same as report.json.
    lines = capacity_lines({"capacity": cap, "steps": steps})
    assert [
        line.split(" | ")[12] for line in lines if line.startswith("| step ") and "| users |" not in line
    ] == [
        "held",
        "broke",
    ]


def test_the_first_issue_run_is_not_a_break_when_the_server_held() -> None:
    """The busy-machine run: step 2 had p99 198.7 ms and 99.865% under 0.3 s on the server: it held."""
    steps = [
        step(1, 50, 771.7, server_p99=0.1928),
        step(2, 100, 760.0, server_p99=0.1987, server_under=0.99865, client_under=0.985, client_p99_ms=350.0),
    ]
    cap = capacity_summary(steps, {"reason": "breach", "step": 1})
    assert [s["verdict"] for s in steps] == ["held", "held"]
    assert cap["slo"]["broke_at"] is None
    assert cap["client"]["broke_at"] == "step 2: 100 users"
    assert [b["colour"] for b in capacity_bars(steps)] == ["tab:green", "tab:green"]


def test_the_refined_search_gives_capacity_with_its_spread_over_two_measurements() -> None:
    """Upward to a server-side break at 150 users, a bisection (125 held, 137 broke), then 125 users again."""
    broke = {"server_under": 0.97, "server_p99": 0.5, "client_under": 0.95}
    steps = [
        step(1, 50, 600.0),
        step(2, 100, 800.0),
        step(3, 150, 820.0, **broke),
        step(4, 125, 830.0),
        step(5, 137, 835.0, **broke),
        step(6, 125, 810.0),
    ]
    cap = capacity_summary(steps, {"reason": "refined", "step": 5})
    slo = cap["slo"]
    assert (slo["users"], slo["broke_at"], slo["at_least"]) == (125, "step 5: 137 users", False)
    assert slo["rps"] == pytest.approx(820.0)  # the mean of the two measurements at 125 users
    assert slo["spread"] == {
        "measurements": 2,
        "min_rps": 810.0,
        "max_rps": 830.0,
        "relative": pytest.approx(20 / 820),
    }
    assert "2 measurements, 810.0-830.0 requests/s, spread 2.4%" in " ".join(cap["story"])
    # Saturation reads the steps by users (the mean of each number of users), whatever order the search ran them in.
    assert saturation(steps)["users"] == 100
    # The client view broke first at 137 users (the refinement), not at the 150 users the upward search met first.
    assert cap["client"]["broke_at"] == "step 5: 137 users"


def test_on_a_plateau_the_figure_is_the_repeated_level_with_its_spread() -> None:
    """A server saturated from the start (an idle-machine run): 150 users measured best once, its repeat lower, and
    200 users measured once in between. The figure is the level measured twice, with its spread, not the noise."""
    client_broke = {"client_under": 0.95, "client_p99_ms": 450.0}
    steps = [
        step(1, 50, 3000.0),
        step(2, 100, 3100.0),
        step(3, 150, 3200.0),
        step(4, 200, 3183.0),
        step(5, 437, 3150.0, **client_broke),
        step(6, 150, 3100.0),
    ]
    slo = capacity_summary(steps, {"reason": "refined", "step": 6})["slo"]
    assert (slo["users"], slo["spread"]["measurements"]) == (150, 2)
    assert slo["rps"] == pytest.approx(3150.0)
    assert (slo["spread"]["min_rps"], slo["spread"]["max_rps"]) == (3100.0, 3200.0)


def test_generator_limited_steps_make_the_figure_a_lower_bound() -> None:
    busy = step(2, 100, 900.0, cpu=95.0)
    starved = step(3, 150, 900.0, sent_share=0.5)  # Locust sent half of what its users would at that latency
    assert busy["generator_limited"] is True
    assert "95% of a core" in busy["reason"]
    assert starved["generator_limited"] is True
    assert "would send" in starved["reason"]
    assert step(1, 50, 600.0)["generator_limited"] is False
    cap = capacity_summary([step(1, 50, 600.0), busy], {"reason": "breach", "step": 1})
    assert cap["slo"]["at_least"] is True
    assert any("generator limited step 2" in why for why in cap["slo"]["at_least_because"])
    assert cap["generator_limited_steps"] == ["step 2: 100 users"]


def test_saturation_is_where_throughput_stops_growing_with_users() -> None:
    growing = [step(i + 1, 10 * (i + 1), 100.0 * (i + 1)) for i in range(4)]
    assert saturation(growing)["reached"] is False
    levelled = [step(1, 10, 100.0), step(2, 20, 190.0), step(3, 30, 200.0), step(4, 40, 198.0)]
    found = saturation(levelled)
    assert (found["reached"], found["rps"], found["users"]) == (True, 200.0, 20)


def test_summary_rows_give_both_capacities_saturation_and_the_cpu_split() -> None:
    steps = [step(1, 50, 700.0), step(2, 100, 720.0, client_under=0.95, client_p99_ms=500.0)]
    report = {
        "prometheus_figures": {
            "requests": 1.0,
            "throughput_rps": 1.0,
            "error_ratio": 0.0,
            "latency_under_threshold_ratio": 1.0,
            "latency_p50_seconds": 0.1,
            "latency_p95_seconds": 0.1,
            "latency_p99_seconds": 0.1,
        },
        "slo": {"availability_objective": 0.995, "latency_objective": 0.99, "latency_threshold_seconds": 0.3},
        "budget": {},
        "alerts_fired": [],
        "phases": [],
        "verdict": "pass",
        "steps": steps,
        "capacity": capacity_summary(steps, {"reason": "breach", "step": 1}),
    }
    rows = {a: (b, c) for a, b, c in summary_rows(report)}
    assert rows["capacity by the SLO (server side)"] == (
        "at least 720.0/s",
        "step 2: 100 users (one measurement)",
    )
    assert rows["capacity by the clients (Locust)"] == ("700.0/s", "step 1: 50 users (one measurement)")
    assert rows["clients breached at"][0] == "step 2: 100 users"
    assert "p99 gap client - server +310.0 ms" in rows["clients breached at"][1]
    assert rows["saturation"] == ("720.0/s", "at 50 users")
    assert rows["CPU at the last step"][0] == "generator 40%, server 120%, others 5% of 2 cores"


def test_the_cpu_split_puts_what_is_neither_generator_nor_server_under_others() -> None:
    from loadtest.machine import CpuSample, split

    before = CpuSample(at=0.0, machine_busy=100.0, own=10.0, server=20.0, load1=1.0)
    after = CpuSample(at=10.0, machine_busy=118.0, own=19.0, server=27.0, load1=1.8)
    assert split(before, after, 2) == {
        "cores": 2.0,
        "machine_cpu_percent": pytest.approx(180.0),
        "generator_total_cpu_percent": pytest.approx(90.0),
        "server_cpu_percent": pytest.approx(70.0),
        "others_cpu_percent": pytest.approx(20.0),
        "load1": 1.8,
    }
    unseen = split(before, CpuSample(10.0, 118.0, 19.0, None, 1.8), 2)
    assert unseen["server_cpu_percent"] is None
    assert unseen["others_cpu_percent"] == pytest.approx(90.0)


def test_the_server_is_found_by_its_port_up_to_the_master_of_its_workers() -> None:
    """A listener that forks a worker sharing its socket (as gunicorn does): the master is the server's root."""
    import os
    import signal
    import subprocess
    import sys

    from loadtest.machine import listening_pids

    code = (
        "import os, socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
        " print(s.getsockname()[1], flush=True); os.fork(); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert listening_pids(port) == [proc.pid]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the master and its forked worker
        proc.wait()


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:18000
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    45.10ms   10.21ms 120.00ms   70.00%
    Req/Sec   700.12     50.00   800.00     68.00%
  14012 requests in 10.01s, 9.80MB read
  Non-2xx or 3xx responses: 12
Requests/sec:   1399.80
Transfer/sec:      0.98MB
"""


def test_wrk_gives_the_physical_limit_and_the_saturation_ratio() -> None:
    from loadtest import wrk

    measured = wrk.parse(WRK_OUTPUT)
    assert measured == {"requests_per_second": 1399.8, "requests": 14012, "non_2xx": 12}
    with pytest.raises(ValueError, match="Requests/sec"):
        wrk.parse("connection refused")
    levelled = [step(1, 10, 600.0), step(2, 20, 700.0), step(3, 30, 690.0)]
    cap = capacity_summary(
        levelled, {"reason": "ceiling", "step": 2}, {**measured, "connections": 64, "seconds": 10}
    )
    assert cap["physical"]["wrk_rps"] == 1399.8
    assert cap["physical"]["ratio"] == pytest.approx(700.0 / 1399.8)
    assert "saturation / wrk = 50%" in " ".join(cap["story"])
    missing = capacity_summary(levelled, None, {"error": "wrk is not installed (apt-get install wrk)"})
    assert missing["physical"]["ratio"] is None
    assert "No physical-limit ratio: wrk is not installed" in " ".join(missing["story"])
