"""Every role's interface is declared, defined once, and documented.

The rules (docs/ARCHITECTURE.md, "Variables"):
- user-facing settings live in group_vars/all/*.yml and are declared `required: true` (no default) in the
  argument spec of the role that owns their prefix (`lab_*` belong to lab_common);
- role plumbing lives in defaults/, carries the role's prefix, and is declared with the very same default;
- internal constants live in vars/main.yml with a leading `_<role>_`;
- no setting is defined in two places, and every declared option is documented in the role's README.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
ROLE_NAMES = [r.name for r in ROLES]


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return data or {}


def _defaults(role: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    merged.update(_load(role / "defaults" / "main.yml"))
    for part in sorted((role / "defaults" / "main").glob("*.yml")):
        merged.update(_load(part))
    return merged


def _spec(role: Path) -> dict[str, Any]:
    spec = _load(role / "meta" / "argument_specs.yml")
    return (spec.get("argument_specs", {}).get("main", {}) or {}).get("options", {}) or {}


def _group_vars() -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for path in sorted((ROOT / "group_vars" / "all").glob("*.yml")):
        for key, value in _load(path).items():
            assert key not in found, f"{key} is set in both {found[key][0]} and {path.name}"
            found[key] = (path.name, value)
    return found


def _owner(variable: str) -> str | None:
    if variable.startswith("lab_"):
        return "lab_common"
    matches = [name for name in ROLE_NAMES if variable.startswith(f"{name}_")]
    return max(matches, key=len) if matches else None


def test_there_are_roles() -> None:
    assert {"minikube_reset", "app_image", "app_deploy", "monitoring", "stress_test", "lab_common"} <= set(
        ROLE_NAMES
    )


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_role_has_argument_spec_and_readme(role: Path) -> None:
    assert (role / "meta" / "argument_specs.yml").is_file(), f"{role.name}: meta/argument_specs.yml missing"
    assert "main" in _load(role / "meta" / "argument_specs.yml").get("argument_specs", {})
    assert (role / "README.md").is_file(), f"{role.name}: README.md missing"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_defaults_are_prefixed_and_declared_with_the_same_default(role: Path) -> None:
    spec = _spec(role)
    for name, value in _defaults(role).items():
        assert name.startswith(f"{role.name}_"), f"{role.name}: default {name} lacks the role prefix"
        assert name in spec, f"{role.name}: default {name} is not declared in meta/argument_specs.yml"
        assert "default" in spec[name], f"{role.name}: {name} is declared without its default"
        assert spec[name]["default"] == value, (
            f"{role.name}: {name} defaults to {value!r} in defaults/ but {spec[name]['default']!r} in the spec"
        )
        assert not spec[name].get("required"), f"{role.name}: {name} has a default, so it is not required"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_internal_vars_have_the_underscore_prefix(role: Path) -> None:
    for name in _load(role / "vars" / "main.yml"):
        assert name.startswith(f"_{role.name}_"), (
            f"{role.name}: vars/main.yml {name} must start with _{role.name}_"
        )


def test_group_vars_are_declared_required_by_their_owner() -> None:
    for name, (file, _value) in _group_vars().items():
        owner = _owner(name)
        assert owner, f"group_vars/all/{file}: {name} has neither a role prefix nor lab_"
        spec = _spec(ROOT / "roles" / owner)
        assert name in spec, (
            f"group_vars/all/{file}: {name} is not declared in roles/{owner}/meta/argument_specs.yml"
        )
        assert spec[name].get("required") is True, (
            f"roles/{owner}: {name} comes from group_vars, declare it required"
        )
        assert "default" not in spec[name], (
            f"roles/{owner}: {name} is set in group_vars; a spec default would be a 2nd value"
        )


def test_no_setting_is_defined_twice() -> None:
    group = _group_vars()
    for role in ROLES:
        twice = sorted(set(_defaults(role)) & set(group))
        assert not twice, f"{role.name}: {twice} defined in both defaults/ and group_vars/"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_every_declared_option_is_defined_somewhere(role: Path) -> None:
    # Argument-spec defaults are only checked, never applied: a declared option needs a real value.
    defined = set(_defaults(role)) | set(_group_vars())
    undefined = sorted(set(_spec(role)) - defined)
    assert not undefined, f"{role.name}: {undefined} declared but set neither in group_vars/ nor defaults/"


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_every_declared_option_is_documented(role: Path) -> None:
    readme = (role / "README.md").read_text() if (role / "README.md").exists() else ""
    missing = [name for name in _spec(role) if name not in readme]
    assert not missing, f"roles/{role.name}/README.md does not document {missing}"


# --- No role reads another role's variables (issue 21) ----------------------------------------------------------
# A role's tasks, handlers, templates, defaults and vars read the lab-wide `lab_*` settings, their own `<role>_*`
# variables, and the documented results of another role's declared entry point that they call with
# include_role/import_role `name: <other>` + `tasks_from: <entry point>` (named in that entry point's description in
# the other role's meta/argument_specs.yml, e.g. lab_shared's `tools` sets lab_shared_tool_paths). Anything else with
# another role's prefix (`<other>_*`, `_<other>_*`) is a cross-role read: the knowledge has two owners.

_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NAME = re.compile(r"(?<![\w.])_{0,2}([a-z][a-z0-9_]*)")
# Task keywords whose value is a bare Jinja expression (no braces).
_BARE = {"when", "that", "until", "changed_when", "failed_when"}
_SCANNED = ("tasks", "handlers", "templates", "defaults", "vars")


def _role_prefix(variable: str) -> str | None:
    """The role whose prefix the variable carries (the longest match: lab_shared_x is lab_shared's), None for the
    lab-wide lab_* settings and for names of no role."""
    matches = [name for name in ROLE_NAMES if variable.startswith(f"{name}_")]
    return max(matches, key=len) if matches else None


def _expressions_in_yaml(node: Any, key: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _expressions_in_yaml(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _expressions_in_yaml(item, key)
    elif isinstance(node, str):
        if key in _BARE:
            yield node
        else:
            for match in _JINJA.finditer(node):
                yield match.group(1) or match.group(2) or ""


def _expressions_in_template(text: str) -> Iterator[str]:
    for match in _JINJA.finditer(_COMMENT.sub("", text)):
        yield match.group(1) or match.group(2) or ""


def _entry_point_calls(role: Path) -> set[tuple[str, str]]:
    """(role, entry point) of every include_role/import_role with tasks_from in the role's tasks and handlers."""
    calls: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for module in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                args = node.get(module)
                if isinstance(args, dict) and "tasks_from" in args:
                    calls.add((str(args["name"]), str(args["tasks_from"]).removesuffix(".yml")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for folder in ("tasks", "handlers"):
        for path in sorted((role / folder).rglob("*.yml")):
            walk(yaml.safe_load(path.read_text()))
    return calls


def _entry_point_results(owner: str, entry: str) -> str:
    """The text describing an entry point of roles/<owner> (where its result facts are named)."""
    spec = (
        _load(ROOT / "roles" / owner / "meta" / "argument_specs.yml").get("argument_specs", {}).get(entry)
        or {}
    )
    description = spec.get("description", "")
    return " ".join(
        [
            str(spec.get("short_description", "")),
            *(description if isinstance(description, list) else [description]),
        ]
    )


def cross_role_reads(role: Path) -> list[str]:
    """'<file>: <variable>' for every variable of another role that the role's files read, except the documented
    results of the other role's declared entry points the role calls."""
    allowed = " ".join(_entry_point_results(owner, entry) for owner, entry in _entry_point_calls(role))
    found: set[str] = set()
    for folder in _SCANNED:
        for path in sorted((role / folder).rglob("*")):
            if not path.is_file():
                continue
            text = path.read_text()
            if path.suffix in (".yml", ".yaml") and folder != "templates":
                expressions = list(_expressions_in_yaml(yaml.safe_load(text)))
            else:
                expressions = list(_expressions_in_template(text))
            for expression in expressions:
                for name in _NAME.findall(_QUOTED.sub("''", expression)):
                    owner = _role_prefix(name)
                    if owner in (None, role.name):
                        continue
                    if re.search(rf"\b{re.escape(name)}\b", allowed):
                        continue
                    found.add(f"{path.relative_to(ROOT)}: {name}")
    return sorted(found)


# Reads still to be given a lab-wide name or an entry point (issue 21). The list only shrinks: a read not listed
# fails the test, and so does an entry that no longer occurs (remove it when you fix it).
KNOWN_CROSS_ROLE_READS = {
    "roles/drill/tasks/shared/run.yml: app_deploy_faults",
    "roles/lesson/tasks/cleanup.yml: app_deploy_faults",
    "roles/lesson/tasks/scene.yml: app_deploy_faults",
    "roles/stress_test/tasks/shared/settings.yml: app_deploy_faults",
    "roles/lab_summary/tasks/kubernetes.yml: app_deploy_service_port",
    "roles/stress_test/vars/main.yml: app_deploy_service_port",
    "roles/stress_test/vars/main.yml: monitoring_saturation_inflight_limit",
    "roles/lab_summary/tasks/kubernetes.yml: monitoring_grafana_admin_user",
    "roles/lab_summary/tasks/kubernetes.yml: monitoring_k8s_endpoints",
    "roles/lab_summary/tasks/local.yml: monitoring_grafana_admin_user",
    "roles/drill/tasks/shared/preflight.yml: monitoring_not_ready_window",
    "roles/drill/tasks/shared/preflight.yml: monitoring_runbook_base_url",
}


@pytest.mark.parametrize("role", ROLES, ids=ROLE_NAMES)
def test_no_role_reads_another_roles_variables(role: Path) -> None:
    found = cross_role_reads(role)
    offenders = sorted(set(found) - KNOWN_CROSS_ROLE_READS)
    assert not offenders, f"{role.name} reads another role's variables:\n" + "\n".join(offenders)
    known = {k for k in KNOWN_CROSS_ROLE_READS if k.startswith(f"roles/{role.name}/")}
    stale = sorted(known - set(found))
    assert not stale, f"KNOWN_CROSS_ROLE_READS lists reads that no longer occur, remove them: {stale}"


def test_the_cross_role_check_sees_a_read(tmp_path: Path) -> None:
    """The walk sees a read of another role's setting in a task's bare expression, a Jinja block and a template."""
    assert _role_prefix("minikube_reset_driver") == "minikube_reset"
    assert _role_prefix("lab_shared_tool_paths") == "lab_shared"
    assert _role_prefix("lab_helm_version") is None  # lab-wide
    task = [
        {"name": "x", "ansible.builtin.debug": {"msg": "{{ minikube_reset_driver }}"}, "when": "app_deploy_x"}
    ]
    names = [n for e in _expressions_in_yaml(task) for n in _NAME.findall(_QUOTED.sub("''", e))]
    assert names == ["minikube_reset_driver", "app_deploy_x"]
    template = "{# app_image_ref #}image: {{ app_image_ref }} {{ 'monitoring_x' }}"
    assert [n for e in _expressions_in_template(template) for n in _NAME.findall(_QUOTED.sub("''", e))] == [
        "app_image_ref"
    ]
