"""How far the load generator goes on this machine (a benchmark, not a test): ``python -m loadtest.bench``.

Starts the API under gunicorn on loopback, then drives its cheapest endpoint (GET /health/liveness) for the same
time with: one Locust process (FastHttpUser, no think time), Locust with one process per core (--processes -1),
and wrk. It prints the request rate each reaches and Locust's rate as a share of wrk's: wrk costs almost no CPU
per request, so the gap is roughly how much of the machine Locust itself takes. The API shares the machine's
cores with the generator, as it does on the local platform.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from labtools.appserver import start_app  # the same launcher the tests use

LOCUSTFILE = Path(__file__).resolve().parent / "bench_locustfile.py"
PATH = "/health/liveness"


@dataclass(frozen=True)
class Result:
    tool: str
    requests: int
    rps: float
    failures: int
    generator_cpu: float  # CPU seconds the generator used per second of its run (1.0 = one core busy)
    app_cpu: float  # the same for the API (gunicorn master and workers)


def _tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a live process and its live descendants (from /proc; Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def _run_measured(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Run cmd; return its stdout, the CPU seconds it and its waited-for children used, and the wall time."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return (
            out.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
            time.monotonic() - started,
        )


def run_locust(url: str, app_pid: int, users: int, seconds: int, processes: int, out: Path) -> Result:
    prefix = out / f"locust-p{processes}"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--loglevel",
        "WARNING",
    ]
    if processes != 1:
        cmd += ["--processes", str(processes)]
    app_before = _tree_cpu(app_pid)
    _, cpu, wall = _run_measured(cmd, seconds + 60)
    app_cpu = _tree_cpu(app_pid) - app_before
    with Path(f"{prefix}_stats.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    label = (
        "locust, 1 process" if processes == 1 else f"locust, --processes {processes} ({os.cpu_count()} cores)"
    )
    return Result(
        label,
        int(total["Request Count"]),
        float(total["Requests/s"]),
        int(total["Failure Count"]),
        cpu / wall,
        app_cpu / wall,
    )


def parse_wrk(output: str) -> tuple[int, float, int]:
    """(requests, requests/s, non-2xx or socket errors) from wrk's summary."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return requests, rps, errors


def run_wrk(url: str, app_pid: int, connections: int, seconds: int) -> Result:
    threads = max(1, min(os.cpu_count() or 1, connections))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", url + PATH]
    app_before = _tree_cpu(app_pid)
    out, cpu, wall = _run_measured(cmd, seconds + 30)
    app_cpu = _tree_cpu(app_pid) - app_before
    requests, rps, errors = parse_wrk(out)
    return Result(f"wrk -t{threads} -c{connections}", requests, rps, errors, cpu / wall, app_cpu / wall)


def table(results: list[Result], wrk_rps: float) -> str:
    head = f"{'generator':<36} {'requests':>9} {'req/s':>9} {'failed':>7} {'gen CPU':>8} {'API CPU':>8} {'vs wrk':>7}"
    lines = [head]
    for r in results:
        share = f"{r.rps / wrk_rps:.0%}" if wrk_rps else "n/a"
        lines.append(
            f"{r.tool:<36} {r.requests:>9} {r.rps:>9.0f} {r.failures:>7} {r.generator_cpu:>7.2f}c"
            f" {r.app_cpu:>7.2f}c {share:>7}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="length of each measurement")
    parser.add_argument("--users", type=int, default=64, help="Locust users / wrk connections")
    parser.add_argument("--app-workers", type=int, default=max(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="loadtest-bench-") as tmp:
        out = Path(tmp)
        env = {"APP_ACCESS_LOG_SAMPLE_RATE": "0", "APP_LOG_LEVEL": "WARNING"}
        with start_app(out / "app", workers=args.app_workers, env=env) as app:
            print(
                f"GET {PATH} on {app.url}: gunicorn with {args.app_workers} workers, {os.cpu_count()} CPU cores, "
                f"{args.seconds}s per run, {args.users} users/connections",
                flush=True,
            )
            results = [run_locust(app.url, app.pid, args.users, args.seconds, 1, out)]
            if (os.cpu_count() or 1) > 1:
                results.append(run_locust(app.url, app.pid, args.users, args.seconds, -1, out))
            wrk = run_wrk(app.url, app.pid, args.users, args.seconds)
            results.append(wrk)
    print(table(results, wrk.rps))
    print(
        "gen CPU / API CPU = CPU seconds the generator / the API used per second of the run (1.00c = one core busy;"
        f" this machine has {os.cpu_count()}c). Locust's share of wrk's rate shows what the generator costs."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
