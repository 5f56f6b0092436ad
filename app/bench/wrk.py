"""Run wrk and parse its report."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    p50: float
    p99: float
    non_2xx: int
    socket_errors: int
    server_cpu_seconds: float = 0.0  # CPU time the server's processes used during the run

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_seconds / max(1, self.requests) * 1e6

    def summary(self) -> str:
        return (
            f"{self.requests_per_second:8.0f} req/s  p50 {self.p50 * 1000:6.1f} ms  p99 {self.p99 * 1000:6.1f} ms"
            f"  ({self.requests} requests, {self.non_2xx} non-2xx, {self.socket_errors} socket errors)"
        )


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and total and p50 and p99):
        raise ValueError(f"cannot parse wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        requests=int(total.group(1)),
        p50=_seconds(p50.group(1)),
        p99=_seconds(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU time of a process and its children (gunicorn master and workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat_path.parent.name)
        if pid == root_pid or int(fields[1]) == root_pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    threads: int = 2,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: str = "10s",
    server_pid: int | None = None,
) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    cmd = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        f"--timeout={timeout}",
    ]
    if script is not None:
        cmd += ["-s", str(script)]
    cpu_before = process_tree_cpu_seconds(server_pid) if server_pid else 0.0
    proc = subprocess.run(
        [*cmd, url], capture_output=True, text=True, timeout=seconds + 120, env=env, check=False
    )
    cpu = process_tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    return dataclasses.replace(parse(proc.stdout), server_cpu_seconds=cpu)
