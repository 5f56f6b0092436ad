"""The command line: `python -m scripts.resource_budget [--rendered DIR] [--json | --markdown] [--check]`.

--check exits 1 when the monitoring stack is over its target (1.5 GiB of memory limits, 0.6 CPU of requests)
or the lab does not fit the Minikube node; 2 when the rendered files are missing or cannot be accounted for.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scripts.resource_budget.budget import budget
from scripts.resource_budget.errors import BudgetError
from scripts.resource_budget.paths import ROOT
from scripts.resource_budget.text import markdown, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Sum the requests and limits of every container the lab runs on Kubernetes."
    )
    parser.add_argument(
        "--rendered", type=Path, default=ROOT / "build" / "rendered", help="render.yml's output folder"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--markdown", action="store_true", help="print the summary table of the monitoring README"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target or the Minikube fit fails")
    args = parser.parse_args(argv)
    if not (args.rendered / "monitoring" / "charts.yaml").is_file():
        print(
            f"error: {args.rendered} holds no rendered lab: run `make render` (playbooks/render.yml) first",
            file=sys.stderr,
        )
        return 2
    try:
        result = budget(args.rendered)
    except BudgetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.markdown:
        print(markdown(result))
    else:
        print(report(result))
    return 1 if args.check and not all(result["checks"].values()) else 0
