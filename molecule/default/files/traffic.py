"""Traffic for molecule verify: GET one URL at a steady pace until a stop file appears or enough requests went out.

    python traffic.py URL [--stop-file PATH] [--count N] [--seconds 120] [--interval 0.1]

Prints the count of each HTTP status as JSON when it stops (0 = no answer).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path


def hit(url: str) -> int:
    """One GET; the HTTP status, or 0 when the server did not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the scheme is checked in main()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--stop-file", type=Path, help="stop as soon as this file exists")
    parser.add_argument("--count", type=int, default=0, help="stop after this many requests (0 = no limit)")
    parser.add_argument("--seconds", type=float, default=120.0, help="stop after this long anyway")
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"not an http(s) URL: {args.url}")
    counts: dict[int, int] = {}
    deadline = time.monotonic() + args.seconds
    sent = 0
    while time.monotonic() < deadline and not (args.stop_file and args.stop_file.exists()):
        if args.count and sent >= args.count:
            break
        sent += 1
        status = hit(args.url)
        counts[status] = counts.get(status, 0) + 1
        time.sleep(args.interval)
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
