"""The right (and a wrong) answer to a lesson's question, derived from the live lab by the tests themselves.

Independent of lessons/checks.py: the queries are rendered here, Prometheus and Alertmanager are read with plain
HTTP, the log lines from the API's log file.
"""

from __future__ import annotations

import json
import string
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests


def _get(url: str, params: dict[str, str] | None = None) -> Any:
    resp = requests.get(url, params=params, timeout=10)
    resp.raise_for_status()
    return resp.json()


def _query(prom: str, promql: str, at: float) -> list[dict[str, Any]]:
    return _get(f"{prom}/api/v1/query", {"query": promql, "time": f"{at:.3f}"})["data"]["result"]


def _render(query: str, session: dict[str, Any], now: float) -> str:
    started = float(session["times"]["started"])
    fault = float(session["times"].get("fault_effective") or started)
    ready = float(session["times"]["ready"])
    return string.Template(query).substitute(
        app=session["app"],
        namespace=session["namespace"],
        scene_range=f"{int(now - started) + 1}s",
        fault_range=f"{int(now - fault) + 1}s",
        scene_set_at=f"{ready:.3f}",
        fault_window=f"{max(1, round(ready - fault))}s",
    )


def _stamp(text: str) -> float:
    import re

    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")).timestamp()


class NotYet(AssertionError):
    """The lab holds no answer yet (no 500 so far, no alert yet): a trainee would look again a little later."""


def right_and_wrong(question: dict[str, Any], session: dict[str, Any], wait: float = 90) -> tuple[str, str]:
    """(a right answer, a wrong one) for `question`, read from the lab; waits up to `wait` s for the data to exist.

    A sparse fault (3% of /api/users) may not have failed a request yet in a short scene: like a trainee, the test
    looks again every 2 s, then fails with what it saw.
    """
    deadline = time.time() + wait
    while True:
        try:
            return _right_and_wrong(question, session)
        except NotYet:
            if time.time() >= deadline:
                raise
            time.sleep(2)


def _right_and_wrong(question: dict[str, Any], session: dict[str, Any]) -> tuple[str, str]:
    spec = question["check"]
    src = session["sources"]
    prom, now = src["prometheus_url"], time.time()
    kind = spec["kind"]
    if kind == "promql":
        result = _query(prom, _render(spec["query"], session, now), now)
        if not result or result[0]["value"][1] == "NaN":
            raise NotYet(f"no value yet for {spec['query']}")
        value = float(result[0]["value"][1]) * float(spec.get("scale", 1))
        if spec["unit"] == "yesno":
            return ("yes", "no") if value > 0.5 else ("no", "yes")
        if spec["unit"] == "utc_time":
            clock = datetime.fromtimestamp(value, UTC)
            return clock.strftime("%H:%M:%S"), datetime.fromtimestamp(value - 7200, UTC).strftime("%H:%M:%S")
        return f"{value:.6f}", f"{value * 3 + 100:.3f}"
    if kind == "budget":
        promql = f'slo:error_budget_remaining:ratio{{slo="{spec["slo"]}",app="{session["app"]}"}}'
        before = float(_query(prom, promql, float(session["times"]["started"]))[0]["value"][1])
        after = float(_query(prom, promql, now)[0]["value"][1])
        spent = (before - after) * 100
        return f"{spent:.4f}", f"{spent + 50 + abs(spent):.2f}"
    if kind == "label":
        result = [
            s for s in _query(prom, _render(spec["query"], session, now), now) if float(s["value"][1]) > 0
        ]
        if not result:
            raise NotYet(f"no series above 0 yet for {spec['query']}")
        top = max(result, key=lambda s: float(s["value"][1]))
        return top["metric"][spec["label"]], "not-this-one"
    if kind == "alert":
        since = float(session["times"].get("fault_effective") or session["times"]["started"]) - 5
        if spec["source"] == "prometheus":
            listed = [
                (a["labels"], a["state"], a.get("activeAt"))
                for a in _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
            ]
        else:
            listed = [
                (a["labels"], a["status"]["state"], a.get("startsAt"))
                for a in _get(f"{src['alertmanager_url']}/api/v2/alerts")
            ]
        found = sorted(
            (_stamp(stamp), labels["alertname"])
            for labels, state, stamp in listed
            if state in spec["states"]
            and labels.get("severity") == spec.get("severity", labels.get("severity"))
            and labels.get("app", session["app"]) == session["app"]
            and stamp
            and _stamp(stamp) >= since
        )
        if not found:
            raise NotYet(f"no alert matches {spec} in the lab now: {listed}")
        return found[0][1], "ApiNoSuchAlert"
    if kind == "log":
        match = {k: str(v) for k, v in spec["match"].items()}
        for line in reversed(Path(src["api_log_file"]).read_text().splitlines()):
            if line.startswith("{"):
                record = json.loads(line)
                if all(str(record.get(k)) == v for k, v in match.items()):
                    return str(record["request_id"]), "0" * 32
        raise NotYet(f"no log line matches {match} in {src['api_log_file']} yet")
    raise AssertionError(f"unknown check kind {kind}")
