"""Where the machine's CPU went during a capacity step: the load generator, the server, everything else.

The local platform runs Locust and the API on the same cores, so a capacity figure means little without the split.
``CpuSampler(port).sample()`` reads cumulative CPU seconds (psutil): the whole machine's busy time, this process's
own, and the server's (the process listening on the target's port and its children: gunicorn's master and
workers). ``split(before, after)`` turns two samples into percentages of one core. In a Kubernetes pod the server
is not visible: its share is then None and counts under "others".
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import psutil  # a Locust dependency


@dataclass(frozen=True)
class CpuSample:
    at: float  # time.monotonic()
    machine_busy: float  # CPU seconds of all cores, not idle
    own: float  # this process and its children (Locust's forked workers with --processes)
    server: float | None  # the server's processes (None when not found)
    load1: float


def _busy() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _tree_seconds(pids: list[int]) -> float | None:
    total, found = 0.0, False
    seen: set[int] = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for member in [proc, *proc.children(recursive=True)]:
                if member.pid in seen:
                    continue
                seen.add(member.pid)
                with contextlib.suppress(psutil.Error):
                    cpu = member.cpu_times()
                    total += cpu.user + cpu.system
                    found = True
    return total if found else None


def _root(pid: int) -> int:
    """The topmost ancestor running the same command line (a gunicorn worker's master), else ``pid`` itself."""
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        parent = proc.parent()
        while parent is not None and parent.cmdline() == cmdline:
            proc, parent = parent, parent.parent()
        return int(proc.pid)
    return pid


def listening_pids(port: int) -> list[int]:
    """Processes serving TCP ``port``: the listeners, each raised to its master (psutil names one process per
    socket, e.g. one gunicorn worker of the socket they all share); empty when none is visible."""
    pids = set()
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                pids.add(_root(conn.pid))
    return sorted(pids)


class CpuSampler:
    """Cumulative CPU figures of the machine, this process and the server listening on ``port``."""

    def __init__(self, port: int | None) -> None:
        self.server_pids = [p for p in (listening_pids(port) if port else []) if p != os.getpid()]
        self.cores = psutil.cpu_count() or 1

    def sample(self, at: float) -> CpuSample:
        return CpuSample(
            at=at,
            machine_busy=_busy(),
            own=_tree_seconds([os.getpid()]) or 0.0,
            server=_tree_seconds(self.server_pids) if self.server_pids else None,
            load1=os.getloadavg()[0],
        )


def split(before: CpuSample, after: CpuSample, cores: int) -> dict[str, float | None]:
    """Percent of one core over the interval: machine (all cores), the generator (this process and its forked
    workers), the server, others; load and cores."""
    seconds = max(after.at - before.at, 1e-9)
    machine = (after.machine_busy - before.machine_busy) / seconds * 100
    generator_percent = (after.own - before.own) / seconds * 100
    server = (
        (after.server - before.server) / seconds * 100
        if after.server is not None and before.server is not None
        else None
    )
    others = max(0.0, machine - generator_percent - (server or 0.0))
    return {
        "cores": float(cores),
        "machine_cpu_percent": machine,
        "generator_total_cpu_percent": generator_percent,
        "server_cpu_percent": server,
        "others_cpu_percent": others,
        "load1": after.load1,
    }
