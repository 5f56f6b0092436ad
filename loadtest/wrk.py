"""The physical limit beside the capacity search: what wrk gets from the same API endpoint mix, in the same run.

``python -m loadtest.wrk --host URL --seconds 10 --connections 64 --out <dir>/wrk.json`` runs wrk (C, no per-request
Python) against the locustfile's /api/ mix (GET /api/users : POST /api/echo = 10 : 4; the health checks are left
out, as the server-side throughput counts /api/ requests only) and writes its requests/s. The report divides the
saturation throughput by it. Without wrk installed it writes why, and the report says what to install.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The locustfile's task weights for /api/ (users 10, echo 4): one request of 14 in this order.
SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  if counter % 14 < 10 then
    return wrk.format("GET", "/api/users")
  end
  return wrk.format("POST", "/api/echo", {["Content-Type"] = "application/json"}, '{"message": "hello", "n": 1}')
end
"""
_RPS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)


def parse(output: str) -> dict[str, Any]:
    """Requests/s, requests and non-2xx answers from wrk's summary."""
    rps = _RPS.search(output)
    if rps is None:
        raise ValueError(f"wrk printed no Requests/sec line: {output[-300:]!r}")
    total = _TOTAL.search(output)
    bad = _NON_2XX.search(output)
    return {
        "requests_per_second": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def measure(host: str, seconds: int, connections: int, threads: int = 2) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"error": "wrk is not installed (Debian/Ubuntu: apt-get install wrk): no physical-limit ratio"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(SCRIPT)
        script.flush()
        cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script.name, host]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if proc.returncode != 0:
        return {"error": f"wrk failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-300:]}"}
    return {
        **parse(proc.stdout),
        "seconds": seconds,
        "connections": connections,
        "threads": threads,
        "mix": "GET /api/users : POST /api/echo = 10 : 4",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.wrk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = measure(args.host.rstrip("/"), args.seconds, args.connections)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
