"""Throughput and latency of the API on loopback, against a bare Flask app under the same gunicorn
settings (app/gunicorn.conf.py: gevent workers). Not a test: it prints figures and the targets.

    .venv/bin/python -m app.bench [--seconds 4] [--rounds 3] [--total 100000]

1. POST /api/echo throughput as a share of the bare app's (default logging; every request logged)
2. GET /api/users at 128 connections as a share of the bare app's trivial endpoint, with its p99
3. GET /metrics p99 after 100,000 requests over every route with 4 workers
4. GET /api/users at 128 connections under the original lab's serving (1 worker, 2 threads)
5. POST /api/echo against the peers a user would pick, same gunicorn settings: bare Flask, the prometheus_client
   multiprocess write floor, the original lab's before/after_request hooks (multiprocess-correct),
   prometheus-flask-exporter's GunicornPrometheusMetrics, and ours: server CPU per request and throughput ratios.
   Every contender serves labapi's own echo view (bench/bare.py), so they differ only in instrumentation; the
   original lab's unchecked echo (request.get_json()) is a reference row. Ratios to bare: per round, then the median

The servers being compared run side by side and are measured in alternation, round after round,
and each figure is the median over the rounds, so that a busy neighbour on a shared machine
skews both sides of a ratio alike instead of one of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.bench.wrk import WrkResult, run_wrk
from labtools.appserver import Server, start_app

HERE = Path(__file__).resolve().parent
POST_ECHO = HERE / "post_echo.lua"
MIXED = HERE / "mixed.lua"
BARE_SPEC = "bench.bare:app"


BASELINE_FAULTS = {"db_failure_rate": 0.05}


@contextmanager
def server(tmp: Path, name: str, **kwargs: object) -> Iterator[Server]:
    # The lab's baseline faults (5% simulated query failures), re-read at the production interval.
    kwargs.setdefault("faults", BASELINE_FAULTS)
    kwargs["env"] = {"APP_FAULTS_POLL_SECONDS": "1", **(kwargs.get("env") or {})}  # type: ignore[dict-item]
    srv = start_app(tmp / name, **kwargs)  # type: ignore[arg-type]
    try:
        yield srv
    finally:
        srv.stop()


def rounds(
    cases: dict[str, tuple[Server, str, Path | None]], *, connections: int, seconds: float, count: int
) -> dict[str, list[WrkResult]]:
    """Measure every case once per round, in alternation; a short warm-up first."""
    for srv, path, script in cases.values():
        run_wrk(srv.url + path, connections=connections, seconds=1, script=script)
    results: dict[str, list[WrkResult]] = {name: [] for name in cases}
    for _ in range(count):
        for name, (srv, path, script) in cases.items():
            results[name].append(
                run_wrk(
                    srv.url + path,
                    connections=connections,
                    seconds=seconds,
                    script=script,
                    server_pid=srv.pid,
                )
            )
    return results


def median_rps(results: list[WrkResult]) -> float:
    return statistics.median(r.requests_per_second for r in results)


def median_ratio(ours: list[WrkResult], base: list[WrkResult]) -> float:
    return statistics.median(
        o.requests_per_second / b.requests_per_second for o, b in zip(ours, base, strict=True)
    )


def median_cpu_ratio(ours: list[WrkResult], base: list[WrkResult]) -> float:
    """Median over the rounds of (our CPU per request / the baseline's in the same round): a burst of load from
    elsewhere hits one round of both sides, so it moves one ratio, not the median."""
    return statistics.median(
        o.cpu_us_per_request / b.cpu_us_per_request for o, b in zip(ours, base, strict=True)
    )


def loadavg() -> str:
    """/proc/loadavg's three load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_per_request(results: list[WrkResult]) -> float:
    """Server CPU microseconds per request over all rounds."""
    return sum(r.server_cpu_seconds for r in results) / max(1, sum(r.requests for r in results)) * 1e6


def line(results: list[WrkResult]) -> str:
    p99s = sorted(r.p99 for r in results)
    return (
        f"{cpu_per_request(results):5.0f} us CPU/request, "
        f"{median_rps(results):7.0f} req/s (median of {len(results)}: "
        f"{', '.join(f'{r.requests_per_second:.0f}' for r in results)}), p99 median "
        f"{statistics.median(p99s) * 1000:.0f} ms, non-2xx {sum(r.non_2xx for r in results)}, "
        f"socket errors {sum(r.socket_errors for r in results)}"
    )


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def compare_echo(tmp: Path, seconds: int, count: int) -> None:
    with ExitStack() as stack:
        bare = stack.enter_context(server(tmp, "bare-echo", app_spec=BARE_SPEC))
        ours = stack.enter_context(server(tmp, "default-echo"))
        log_all = stack.enter_context(server(tmp, "log-all", env={"APP_ACCESS_LOG_SAMPLE_RATE": "1.0"}))
        echo = rounds(
            {
                "bare": (bare, "/api/echo", POST_ECHO),
                "ours": (ours, "/api/echo", POST_ECHO),
                "log_all": (log_all, "/api/echo", POST_ECHO),
            },
            connections=64,
            seconds=seconds,
            count=count,
        )
    ratio_default = median_ratio(echo["ours"], echo["bare"])
    ratio_all = median_ratio(echo["log_all"], echo["bare"])
    cpu_bare = cpu_per_request(echo["bare"])
    print("\n(1) POST /api/echo, 64 connections")
    print(f"    bare Flask:                         {line(echo['bare'])}")
    print(f"    labapi, default logging (0.01):     {line(echo['ours'])}")
    print(f"    labapi, every request logged (1.0): {line(echo['log_all'])}")
    print(
        f"    throughput ratio to bare, default logging: {ratio_default:.2f} (target >= 0.90: {verdict(ratio_default >= 0.9)})"
    )
    print(f"    throughput ratio to bare, every request logged: {ratio_all:.2f}")
    print(
        f"    CPU-cost ratio (bare CPU per request / ours): default logging {cpu_bare / cpu_per_request(echo['ours']):.2f},"
        f" every request logged {cpu_bare / cpu_per_request(echo['log_all']):.2f}",
        flush=True,
    )


def compare_users(tmp: Path, seconds: int, count: int) -> list[WrkResult]:
    with ExitStack() as stack:
        bare = stack.enter_context(server(tmp, "bare-trivial", app_spec=BARE_SPEC))
        ours = stack.enter_context(server(tmp, "default-users"))
        users = rounds(
            {"bare_trivial": (bare, "/trivial", None), "users": (ours, "/api/users", None)},
            connections=128,
            seconds=seconds,
            count=count,
        )
    ratio = median_ratio(users["users"], users["bare_trivial"])
    p99 = statistics.median(r.p99 for r in users["users"])
    cpu_ratio = cpu_per_request(users["bare_trivial"]) / cpu_per_request(users["users"])
    print(
        "\n(2) GET /api/users, 128 connections (simulated query 1-10 ms, 5% 40-120 ms; 5% failures, 1 retry)"
    )
    print(f"    bare Flask GET /trivial: {line(users['bare_trivial'])}")
    print(f"    labapi GET /api/users:   {line(users['users'])}")
    print(
        f"    throughput ratio to the bare trivial endpoint: {ratio:.2f} (target >= 0.80: {verdict(ratio >= 0.8)})"
    )
    print(f"    p99 {p99 * 1000:.0f} ms (target < 300 ms: {verdict(p99 < 0.3)})")
    print(f"    CPU-cost ratio (bare trivial CPU per request / ours): {cpu_ratio:.2f}", flush=True)
    return users["users"]


def scrape_after_traffic(tmp: Path, total: int) -> None:
    with server(tmp, "metrics", workers=4) as four:
        sent, t0 = 0, time.monotonic()
        while sent < total:
            sent += run_wrk(four.url + "/", connections=64, seconds=5, script=MIXED).requests
        mixed_seconds = time.monotonic() - t0
        scrape = run_wrk(four.url + "/metrics", connections=1, threads=1, seconds=5, server_pid=four.pid)
        size = len(_get(four.url + "/metrics"))
    print(f"\n(3) GET /metrics, 4 workers, after {sent} requests over every route ({mixed_seconds:.0f} s)")
    print(f"    one scraper: {scrape.summary()}")
    print(f"    {size} bytes, {scrape.cpu_us_per_request / 1000:.2f} ms of server CPU per scrape")
    print(f"    p99 {scrape.p99 * 1000:.2f} ms (target < 10 ms: {verdict(scrape.p99 < 0.010)})", flush=True)


def original_serving(tmp: Path, seconds: int, users: list[WrkResult] | None) -> None:
    with server(tmp, "original", workers=1, args=["--worker-class", "gthread", "--threads", "2"]) as orig:
        original = rounds(
            {"original": (orig, "/api/users", None)}, connections=128, seconds=seconds, count=1
        )["original"]
    print("\n(4) GET /api/users, 128 connections, the original lab's serving (--workers 1 --threads 2)")
    print(f"    {line(original)}")
    if users:
        print(
            f"    this app's gevent serving: {median_rps(users) / median_rps(original):.1f}x the throughput, "
            f"p99 {statistics.median(r.p99 for r in users) * 1000:.0f} ms "
            f"vs {statistics.median(r.p99 for r in original) * 1000:.0f} ms"
        )


PEERS = {
    "bare Flask": "bench.bare:app",
    "bare Flask, original lab's unchecked echo (reference)": "bench.bare:original_echo_app",
    "prometheus_client floor": "bench.floor:app",
    "original lab's hooks (multiprocess)": "bench.original_hooks:app",
    "prometheus-flask-exporter": "bench.flask_exporter:app",
    "labapi (ours)": "",
}


UNINSTRUMENTED = (
    "bare Flask",
    "bare Flask, original lab's unchecked echo (reference)",
    "prometheus_client floor",
)


def compare_peers(tmp: Path, seconds: int, count: int) -> None:
    """Every contender side by side, measured in alternation; CPU per request and ratios, with the load average."""
    with ExitStack() as stack:
        cases = {}
        for name, spec in PEERS.items():
            kwargs = {"app_spec": spec} if spec else {}
            srv = stack.enter_context(server(tmp, f"peer-{len(cases)}", **kwargs))  # type: ignore[arg-type]
            cases[name] = (srv, "/api/echo", POST_ECHO)
        load_before = loadavg()
        results = rounds(cases, connections=64, seconds=seconds, count=count)
        load_after = loadavg()
    cpu = {name: cpu_per_request(r) for name, r in results.items()}
    bare, floor = cpu["bare Flask"], cpu["prometheus_client floor"]
    paired = {name: median_cpu_ratio(runs, results["bare Flask"]) for name, runs in results.items()}
    print(
        f"\n(5) POST /api/echo, 64 connections, peers under the same gunicorn settings ({count} alternating rounds; "
        f"/proc/loadavg {load_before} -> {load_after}: a shared machine, these figures are noisy)"
    )
    print(
        "    | contender | server CPU us/request | vs bare | vs bare, median of rounds | above the floor "
        "| req/s (median) | throughput vs bare |"
    )
    print("    |---|---|---|---|---|---|---|")
    for name, runs in results.items():
        above = (
            "-" if name in UNINSTRUMENTED else f"{cpu[name] - floor:+.0f} us ({cpu[name] / floor - 1:+.0%})"
        )
        print(
            f"    | {name} | {cpu[name]:.0f} | {cpu[name] / bare:.2f}x | {paired[name]:.2f}x | {above} | "
            f"{median_rps(runs):.0f} | {median_ratio(runs, results['bare Flask']):.2f} |"
        )
    instrumented = {k: v for k, v in paired.items() if k not in UNINSTRUMENTED}
    cheapest = min(instrumented, key=lambda k: instrumented[k])
    gap = paired["labapi (ours)"] - 1
    print(
        f"    least CPU per request among the instrumented apps (median of per-round ratios to bare): {cheapest} "
        f"(target: ours; {verdict(cheapest == 'labapi (ours)')}); ours vs bare {gap:+.0%} "
        f"(target < +15%: {verdict(gap < 0.15)}); floor vs bare {paired['prometheus_client floor'] - 1:+.0%}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=4, help="duration of each measured wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison")
    parser.add_argument("--total", type=int, default=100_000, help="requests before the /metrics measurement")
    parser.add_argument("--parts", default="1,2,3,4,5", help="which measurements to run (comma-separated)")
    args = parser.parse_args(argv)
    parts = {int(p) for p in args.parts.split(",")}
    started = time.monotonic()
    print(
        f"labapi benchmark: wrk on loopback, {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f}), "
        "gunicorn with app/gunicorn.conf.py (2 gevent workers unless said otherwise)"
    )
    users: list[WrkResult] | None = None
    with tempfile.TemporaryDirectory(prefix="labapi-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if 1 in parts:
            compare_echo(tmp, args.seconds, args.rounds)
        if 2 in parts:
            users = compare_users(tmp, args.seconds, args.rounds)
        if 3 in parts:
            scrape_after_traffic(tmp, args.total)
        if 4 in parts:
            original_serving(tmp, args.seconds, users)
        if 5 in parts:
            compare_peers(tmp, args.seconds, args.rounds)
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s (load average now {os.getloadavg()[0]:.1f})")
    return 0


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.read()


if __name__ == "__main__":
    sys.exit(main())
