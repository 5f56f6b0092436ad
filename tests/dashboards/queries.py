"""Walk the dashboards' queries and turn Grafana template syntax into plain PromQL/LogQL for checking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PROMETHEUS_UID = "lab-prometheus"
LOKI_UID = "lab-loki"
LOKI_LABELS = frozenset({"namespace", "pod", "container", "app"})

# What each template variable stands for when a query is checked or run against the test Prometheus.
DEFAULT_VALUES = {
    "app": "flask-api",
    "namespace": "sre-lab",
    "endpoint": ".*",
    "request_id": "",
    "__rate_interval": "15s",
    "__interval": "15s",
    "__auto": "15s",
    "__range": "5m",
}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    datasource: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from _panels(dashboard["panels"])


def queries(file_name: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    """Every target of every panel, with the target's (or the panel's) data source uid, and every annotation
    query (panel "annotation <name>")."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            ds = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            yield Query(file_name, panel["title"], target.get("refId", "?"), ds, target["expr"])
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            ds = annotation["datasource"]["uid"]
            yield Query(file_name, f"annotation {annotation['name']}", "annotation", ds, annotation["expr"])


def variable_queries(file_name: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        yield Query(file_name, f"variable {var['name']}", var["name"], var["datasource"]["uid"], q)


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace $var, ${var} and ${var:format} with `values` (DEFAULT_VALUES by default)."""
    values = {**DEFAULT_VALUES, **(values or {})}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def variable_as_promql(expr: str) -> str:
    """label_values(selector, label) -> a PromQL query returning one series per value."""
    match = LABEL_VALUES.match(expr.strip())
    if not match:
        raise ValueError(f"unsupported variable query {expr!r}")
    return f"count by ({match['label']}) ({match['selector'] or '{__name__=~".+"}'})"


def logql_problems(expr: str) -> list[str]:
    """Structural checks of a LogQL query: balanced brackets and quotes, known stream labels."""
    problems: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    in_string = False
    escaped = False
    for char in expr:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            problems.append(f"unbalanced {char!r}")
    if in_string:
        problems.append("unterminated string")
    if stack:
        problems.append(f"unclosed {''.join(stack)!r}")
    selectors = re.findall(r"\{([^{}]*)\}", expr)
    if not selectors:
        problems.append("no stream selector")
    for selector in selectors:
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', selector)
        if not matchers:
            problems.append(f"stream selector without matchers: {{{selector}}}")
        for label, _op, _value in matchers:
            if label not in LOKI_LABELS:
                problems.append(f"unknown stream label {label!r}")
        if not any(op in ("=", "=~") and value not in ("", ".*") for _label, op, value in matchers):
            problems.append(f"stream selector {{{selector}}} needs one non-empty positive matcher")
    return problems
