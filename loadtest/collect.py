"""Collect a Kubernetes Locust run from its pod log (the Job's container prints what it produced).

The Job's container (roles/stress_test/templates/kubernetes/locust.yaml.j2) prints ``LAB_START <epoch>`` before
Locust starts, ``LAB_END <epoch> <exit code>`` after it stops, then its report directory as a base64 tar.gz
between ``LAB_FILES_BEGIN`` and ``LAB_FILES_END``. No exec into the pod or extra RBAC is needed, and the Job
still ends on its own. ``python -m loadtest.collect --log <file> --dir <report dir>`` unpacks the files into the
report directory and adds start, end and the exit code to run.json.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

_START = re.compile(r"^LAB_START (\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_END = re.compile(r"^LAB_END (\d+(?:\.\d+)?) (\d+)\s*$", re.MULTILINE)
_FILES = re.compile(r"^LAB_FILES_BEGIN\s*$(.*?)^LAB_FILES_END\s*$", re.MULTILINE | re.DOTALL)


class CollectError(RuntimeError):
    """The pod log does not hold a complete run."""


def parse_log(text: str) -> dict[str, Any]:
    start, end, files = _START.search(text), _END.search(text), _FILES.search(text)
    if not start:
        raise CollectError("the pod log has no LAB_START line: Locust never started")
    if not end:
        raise CollectError("the pod log has no LAB_END line: Locust did not finish (killed or timed out?)")
    return {
        "start": float(start.group(1)),
        "end": float(end.group(1)),
        "locust_exit_code": int(end.group(2)),
        "archive": "".join(files.group(1).split()) if files else None,
    }


def unpack(archive_b64: str, out: Path) -> list[str]:
    """Extract the base64 tar.gz into ``out`` (regular files only, no paths outside it)."""
    try:
        data = base64.b64decode(archive_b64, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CollectError(f"the report archive in the pod log is not valid base64: {err}") from None
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if not member.isfile() or not name:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            (out / name).write_bytes(source.read())
            names.append(name)
    return sorted(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        parsed = parse_log(args.log.read_text(errors="replace"))
        files = unpack(parsed.pop("archive"), args.dir) if parsed.get("archive") else []
    except (CollectError, OSError, tarfile.TarError) as err:
        print(f"collect: {err}", file=sys.stderr)
        return 2
    run_file = args.dir / "run.json"
    run = json.loads(run_file.read_text()) if run_file.exists() else {}
    run.update(parsed)
    run["locust_csv_prefix"] = str(args.dir / "locust")
    run_file.write_text(json.dumps(run, indent=2) + "\n")
    print(json.dumps({"files": files, **parsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
