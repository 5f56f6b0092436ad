"""One progress line of a running Locust test, from its ``<prefix>_stats_history.csv`` (local platform).

``python -m loadtest.progress --dir <report dir> --interval 10 --until <epoch>`` waits up to ``--interval``
seconds (less if ``--until`` comes first or the run ends), then prints the latest aggregated line.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any


def latest_line(history: Path) -> dict[str, str] | None:
    """The last Aggregated row of Locust's stats history, None before the first one is written."""
    if not history.exists():
        return None
    last = None
    with history.open() as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                last = row
    return last


def format_line(row: dict[str, str] | None, elapsed: float, finished: bool) -> str:
    state = "finished" if finished else "running"
    if row is None:
        return f"t={elapsed:.0f}s {state}: Locust has no stats yet"
    return (
        f"t={elapsed:.0f}s {state}: users={row['User Count']} rps={float(row['Requests/s']):.1f} "
        f"fail/s={float(row['Failures/s']):.1f} p50={row['50%']}ms p95={row['95%']}ms p99={row['99%']}ms "
        f"requests={row['Total Request Count']} failures={row['Total Failure Count']}"
    )


def _run(run_file: Path) -> dict[str, Any]:
    try:
        run: dict[str, Any] = json.loads(run_file.read_text())
        return run
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--until", type=float, default=0.0, help="epoch seconds; 0 = no limit")
    args = parser.parse_args(argv)
    run_file = args.dir / "run.json"
    deadline = time.time() + args.interval
    if args.until:
        deadline = min(deadline, args.until)
    while time.time() < deadline and "end" not in _run(run_file):
        time.sleep(min(0.5, max(0.0, deadline - time.time())))
    run = _run(run_file)
    started = float(run.get("start", time.time()))
    print(
        format_line(latest_line(args.dir / "locust_stats_history.csv"), time.time() - started, "end" in run)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
