"""Locust's own view of the run, from its CSV files."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def locust_figures(csv_prefix: Path) -> dict[str, Any] | None:
    """The aggregated row and the /api/ rows of <prefix>_stats.csv."""
    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return None
    rows = list(csv.DictReader(path.open()))
    total = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if total is None:
        return None
    api = [r for r in rows if r["Name"].startswith("/api/")]

    def ms(row: dict[str, str], key: str) -> float | None:
        value = row.get(key, "N/A")
        return None if value in ("N/A", "") else float(value)

    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "api_requests": sum(int(r["Request Count"]) for r in api),
        "requests_per_second": float(total["Requests/s"]),
        "p50_ms": ms(total, "50%"),
        "p95_ms": ms(total, "95%"),
        "p99_ms": ms(total, "99%"),
    }


def load_history(csv_prefix: Path) -> list[dict[str, float]]:
    """Offered load over time from <prefix>_stats_history.csv: epoch, users, requests/s, failures/s."""
    path = Path(f"{csv_prefix}_stats_history.csv")
    if not path.exists():
        return []
    rows = []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                rows.append(
                    {
                        "time": float(row["Timestamp"]),
                        "users": float(row["User Count"]),
                        "rps": float(row["Requests/s"]),
                        "fail_rps": float(row["Failures/s"]),
                    }
                )
    return rows
