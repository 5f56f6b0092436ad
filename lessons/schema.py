"""The JSON schema of a lesson file (lessons/catalog/<id>.yml): scene, questions, checks, explanations.

A lesson is data. Its checks use five kinds, each answered from the lab's telemetry at the moment of the answer:
promql (a value within a tolerance), label (the label value of the top series), alert (an alert's name, by state
and severity, from Prometheus or Alertmanager), log (a request id whose log line matches), budget (the share of
the error budget spent since the scene began).
"""

from __future__ import annotations

from typing import Any

_DURATION = {"type": "string", "pattern": r"^[0-9]+[smh]$"}
_TOLERANCE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "absolute": {"type": "number", "minimum": 0},
        "relative": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
_COMMON = {"kind": {}, "explain": {"type": "string", "minLength": 1}}

CHECKS: dict[str, dict[str, Any]] = {
    "promql": {
        "required": ["kind", "query", "unit", "tolerance", "explain"],
        "properties": {
            **_COMMON,
            "query": {"type": "string", "minLength": 1},
            # number: the value as is (times scale); utc_time: the value is epoch seconds, answered as HH:MM[:SS] UTC;
            # yesno: the value is 1 (yes) or 0 (no), answered as yes/no.
            "unit": {"enum": ["number", "utc_time", "yesno"]},
            "scale": {"type": "number", "exclusiveMinimum": 0},
            "tolerance": _TOLERANCE,
        },
    },
    "label": {
        "required": ["kind", "query", "label", "explain"],
        "properties": {**_COMMON, "query": {"type": "string", "minLength": 1}, "label": {"type": "string"}},
    },
    "alert": {
        "required": ["kind", "source", "states", "explain"],
        "properties": {
            **_COMMON,
            "source": {"enum": ["prometheus", "alertmanager"]},
            # prometheus: pending/firing; alertmanager: active/suppressed.
            "states": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": ["pending", "firing", "active", "suppressed"]},
            },
            "severity": {"enum": ["page", "ticket"]},
            # first: the alert that became active first (after the fault); any: any of them.
            "pick": {"enum": ["first", "any"]},
        },
    },
    "log": {
        "required": ["kind", "source", "match", "explain"],
        "properties": {
            **_COMMON,
            "source": {"enum": ["api"]},
            # Fields the JSON log line with the answered request_id must have (e.g. status: 500).
            "match": {"type": "object", "minProperties": 1},
        },
    },
    "budget": {
        "required": ["kind", "slo", "tolerance", "explain"],
        "properties": {
            **_COMMON,
            "slo": {"enum": ["availability", "latency"]},
            "tolerance": _TOLERANCE,
        },
    },
}


def _check_schema(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
        "then": {"additionalProperties": False, **spec},
    }


LESSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "title", "goal", "minutes", "needs", "intro", "scene", "questions", "outro"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
        "title": {"type": "string", "minLength": 1},
        "goal": {"type": "string", "minLength": 1, "maxLength": 100},
        "minutes": {"type": "integer", "minimum": 1},
        "order": {"type": "integer"},
        "needs": {
            "type": "object",
            "additionalProperties": False,
            "required": ["platforms", "lab_age"],
            "properties": {
                "platforms": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": ["local", "minikube", "kubernetes"]},
                },
                # How much of the SLO window Prometheus's data must cover (slo:period_covered:seconds).
                "lab_age": _DURATION,
            },
        },
        "intro": {"type": "string", "minLength": 1},
        "scene": {
            "type": "object",
            "additionalProperties": False,
            "required": ["load", "warmup", "window"],
            "properties": {
                "load": {"type": "boolean"},
                # A drill of lab_drills (group_vars/all/drills.yml): its fault document, over the baseline.
                "fault": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
                "warmup": _DURATION,
                "window": _DURATION,
                # true: the baseline is back before the questions (an incident that is over).
                "restore": {"type": "boolean"},
            },
        },
        "questions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ask", "check"],
                "properties": {
                    "ask": {"type": "string", "minLength": 1},
                    "check": {
                        "type": "object",
                        "required": ["kind"],
                        "properties": {"kind": {"enum": sorted(CHECKS)}},
                        "allOf": [_check_schema(kind, spec) for kind, spec in CHECKS.items()],
                    },
                },
            },
        },
        "outro": {"type": "string", "minLength": 1},
    },
}
