"""No unrendered `{{ ... }}` ever reaches an API server, a process or a file as a mapping key (issue 19, item 2).

Ansible templates the VALUES of a task's arguments, never its mapping keys: a task such as

    definition: {metadata: {annotations: {"{{ _name }}": "{{ value }}"}}}

sends the literal `{{ _name }}` (the Kubernetes API server answered 422 to app_deploy's pod annotation). A key that
must come from a variable is built as data, inside an expression: `definition: "{{ {'metadata': ...} }}"`.

- Every YAML file Ansible reads (tasks, handlers, vars, defaults, argument specs, playbooks, group_vars, molecule)
  is walked: no mapping key may hold a Jinja expression or statement.
- Templates (*.j2) are rendered by Jinja as a whole text, so a key written as `{{ x }}:` there IS rendered; what must
  never happen is a key left unrendered in what they produce: every YAML file playbooks/render.yml writes is walked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

JINJA = ("{{", "{%")


class _AnyTagLoader(yaml.SafeLoader):
    """A safe loader that reads Ansible's own tags (!unsafe, !vault) as plain scalars."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_AnyTagLoader.add_multi_constructor("!", _any_tag)


def ansible_yaml_files() -> list[Path]:
    """Every YAML file of the project that Ansible reads as data (not templates, not rendered output)."""
    files: set[Path] = set()
    for top in ("roles", "playbooks", "group_vars", "molecule"):
        for pattern in ("**/*.yml", "**/*.yaml"):
            files.update(p for p in (ROOT / top).glob(pattern) if "/templates/" not in p.as_posix())
    return sorted(files)


def jinja_keys(data: Any, where: str = "") -> list[str]:
    """The path of every mapping key holding a Jinja expression or statement, at any depth."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and any(mark in key for mark in JINJA):
                found.append(here)
            found.extend(jinja_keys(value, here))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found.extend(jinja_keys(item, f"{where}[{index}]"))
    return found


def keys_in_file(path: Path) -> list[str]:
    return [key for doc in yaml.load_all(path.read_text(), Loader=_AnyTagLoader) for key in jinja_keys(doc)]


def test_no_jinja_in_a_mapping_key_of_any_task_vars_or_playbook() -> None:
    files = ansible_yaml_files()
    assert len(files) > 50, "the walk found too few files to be the project's"
    assert any(p.name == "faults.yml" and "app_deploy/tasks/kubernetes" in p.as_posix() for p in files)
    offenders = [f"{path.relative_to(ROOT)}: {key}" for path in files for key in keys_in_file(path)]
    assert not offenders, (
        "Ansible does not template mapping keys; build these as data inside an expression:\n"
        + "\n".join(offenders)
    )


def test_no_unrendered_key_in_what_the_templates_produce(rendered_dir: Path) -> None:
    files = sorted([*rendered_dir.rglob("*.yaml"), *rendered_dir.rglob("*.yml")])
    assert files, f"render.yml wrote no YAML under {rendered_dir}"
    offenders = [f"{path.relative_to(rendered_dir)}: {key}" for path in files for key in keys_in_file(path)]
    assert not offenders, "rendered files with an unrendered key:\n" + "\n".join(offenders)


def test_the_walk_catches_the_faults_annotation_defect(tmp_path: Path) -> None:
    """The exact task app_deploy's Kubernetes faults entry point had (issue 19, item 2)."""
    bad = tmp_path / "faults.yml"
    bad.write_text(
        "- name: Annotate the running pods\n"
        "  kubernetes.core.k8s:\n"
        "    state: patched\n"
        "    kind: Pod\n"
        "    definition:\n"
        "      metadata:\n"
        "        annotations:\n"
        '          "{{ _app_deploy_faults_annotation }}": "{{ __hash }}"\n'
        "- name: Fine, the key is built as data inside an expression\n"
        "  kubernetes.core.k8s:\n"
        "    definition: \"{{ {'metadata': {'annotations': {_app_deploy_faults_annotation: __hash}}} }}\"\n"
        "  vars:\n"
        "    __unsafe: !unsafe '{{ not templated }}'\n"
    )
    assert keys_in_file(bad) == [
        "[0].kubernetes.core.k8s.definition.metadata.annotations.{{ _app_deploy_faults_annotation }}"
    ]


@pytest.mark.parametrize("key", ["{{ name }}", "prefix-{% if x %}a{% endif %}"])
def test_statements_and_expressions_are_both_caught(key: str) -> None:
    assert jinja_keys({"a": [{key: 1}]}) == [f"a[0].{key}"]
