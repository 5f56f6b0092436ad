"""Shared helpers of the static Kubernetes tests: rendered files, Kubernetes schemas (chart defaults:
scripts/resource_budget/helm_values.py)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
GROUP_VARS = ROOT / "group_vars" / "all"


def group_vars(name: str) -> dict[str, Any]:
    return yaml.safe_load((GROUP_VARS / f"{name}.yml").read_text())


def kubernetes_version() -> str:
    """The pinned Kubernetes version as major.minor.0, the form kubernetes-validate's schemas use."""
    version = group_vars("versions")["minikube_reset_kubernetes_version"]
    match = re.match(r"^v?(\d+)\.(\d+)\.\d+$", version)
    assert match, f"minikube_reset_kubernetes_version {version!r} is not vX.Y.Z"
    return f"{match.group(1)}.{match.group(2)}.0"


def manifests(rendered: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object render.yml wrote (files holding apiVersion+kind; values and rules are not)."""
    found = []
    for path in sorted(rendered.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                found.append((path, doc))
    return found


def jsonable(data: Any) -> Any:
    """YAML data as Helm sees it after its YAML-to-JSON step (dates become strings)."""
    return json.loads(json.dumps(data, default=str))


@functools.cache
def _k8s_registry(version: str) -> Registry:
    schema_dir = f"v{version}-local-strict"
    defs = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", version)
    return Registry().with_resource(
        "/api/_definitions.json", Resource.from_contents(defs, default_specification=DRAFT202012)
    )


def validate_k8s_fragment(data: Any, type_name: str) -> None:
    """Validate a piece of a values file against a Kubernetes type, e.g. io.k8s.api.core.v1.SecurityContext,
    in strict mode (unknown fields rejected), at the pinned Kubernetes version."""
    version = kubernetes_version()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"/api/_definitions.json#/$defs/{type_name}",
    }
    validator = jsonschema.Draft202012Validator(schema, registry=_k8s_registry(version))
    validator.validate(jsonable(data))
