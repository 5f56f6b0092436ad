"""Run Locust headless on this machine and record the run's window (the local platform's runner).

``python -m loadtest.run --dir <report dir> --host URL [--processes N]`` with the ``LAB_*`` settings in the
environment. It adds ``start``, ``end`` and ``locust_exit_code`` to ``<dir>/run.json`` (written beforehand by the
role with the run's settings), writes Locust's output to ``<dir>/locust.log``, its CSV files to
``<dir>/locust_*.csv`` and its HTML report to ``<dir>/locust.html``.
Exit status: 0 when Locust ran to the end (its exit code 1 only means some requests failed, which the report
judges from Prometheus), Locust's own code otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (-1 = one per core)")
    args = parser.parse_args(argv)
    run_file = args.dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    cmd = locust_command(args.dir, args.host, args.processes)
    run.update({"start": time.time(), "locust_command": cmd, "locust_csv_prefix": str(args.dir / "locust")})
    run_file.write_text(json.dumps(run, indent=2) + "\n")
    with (args.dir / "locust.log").open("w") as log:
        env = {**os.environ, "LAB_STEPS_FILE": str(args.dir / "steps.json")}
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    run.update({"end": time.time(), "locust_exit_code": code})
    run_file.write_text(json.dumps(run, indent=2) + "\n")
    if code not in (0, 1):
        tail = (args.dir / "locust.log").read_text()[-2000:]
        print(f"Locust stopped with exit code {code}:\n{tail}", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
