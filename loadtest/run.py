"""Run Locust headless on this machine and record the run's window (the local platform's runner).

``python -m loadtest.run --dir <report dir> --host URL [--processes N]`` with the ``LAB_*`` settings in the
environment. It adds ``start``, ``end`` and ``locust_exit_code`` to ``<dir>/run.json`` (written beforehand by the
role with the run's settings), writes Locust's output to ``<dir>/locust.log``, its CSV files to
``<dir>/locust_*.csv`` and its HTML report to ``<dir>/locust.html``.
Exit status: 0 when Locust ran to the end (its exit code 1 only means some requests failed, which the report
judges from Prometheus), Locust's own code otherwise.

``python -m loadtest.run --dir <report dir> --stop`` ends a run early (the drills' background load): it sends
SIGTERM to the Locust process recorded in run.json (``locust_pid``, only if that process is still Locust) and
waits until Locust has written its reports and the run's end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def locust_command(out: Path, host: str, processes: int, locustfile: Path = LOCUSTFILE) -> list[str]:
    """The headless Locust command line (the Kubernetes Job uses the same flags)."""
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--host",
        host,
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--stop-timeout",
        "10",
    ]
    if processes != 1:
        cmd += ["--processes", str(processes)]
    return cmd


def _write(run_file: Path, run: dict[str, Any]) -> None:
    """run.json in one step (a reader never sees half of it: --stop reads it while the run writes its end)."""
    tmp = run_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run, indent=2) + "\n")
    tmp.replace(run_file)


def _read(run_file: Path) -> dict[str, Any]:
    try:
        run: dict[str, Any] = json.loads(run_file.read_text())
        return run
    except (OSError, ValueError):  # a run.json written by an older version, caught mid-write
        return {}


def stop(run_dir: Path, timeout: float = 30.0) -> int:
    """End the run recorded in run_dir early: SIGTERM to its Locust, then wait for the run's end."""
    run_file = run_dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    pid = run.get("locust_pid")
    if "end" in run or not pid:
        return 0
    try:
        is_locust = b"locust" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        is_locust = False
    if not is_locust:
        print(f"process {pid} is not the run's Locust any more: nothing to stop")
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "end" in _read(run_file):
            return 0
        time.sleep(0.5)
    print(f"Locust (pid {pid}) did not end within {timeout:.0f}s of SIGTERM", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host")
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (-1 = one per core)")
    parser.add_argument("--stop", action="store_true", help="end the run in --dir early")
    args = parser.parse_args(argv)
    if args.stop:
        return stop(args.dir)
    if not args.host:
        parser.error("--host is required to start a run")
    run_file = args.dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    cmd = locust_command(args.dir, args.host, args.processes)
    run.update({"start": time.time(), "locust_command": cmd, "locust_csv_prefix": str(args.dir / "locust")})
    _write(run_file, run)
    with (args.dir / "locust.log").open("w") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            # LAB_TARGET_URL: the capacity shape finds the server's processes by the target's port (CPU split).
            env={**os.environ, "LAB_STEPS_FILE": str(args.dir / "steps.json"), "LAB_TARGET_URL": args.host},
        )
        run["locust_pid"] = proc.pid
        _write(run_file, run)
        code = proc.wait()
    stopped = code == -signal.SIGTERM  # ended early on purpose (--stop)
    run.update({"end": time.time(), "locust_exit_code": code, "stopped": stopped})
    _write(run_file, run)
    if code not in (0, 1) and not stopped:
        tail = (args.dir / "locust.log").read_text()[-2000:]
        print(f"Locust stopped with exit code {code}:\n{tail}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
