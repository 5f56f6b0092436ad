"""The API image's tag is a content hash of its build context, computed by roles/app_image (entry point image_ref, tasks/image_ref.yml):
a change to any file of the build context gives a new tag (the Deployment rolls), a change anywhere else does not
(no rebuild). The role's own tasks compute every tag here, in one ansible-playbook run over a copy of the checkout
that each step changes and restores."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import BIN, ROOT
from tests.static.helpers import manifests

CHANGED = "\n# changed by tests/static/test_image_tag.py\n"


def b64(text: str) -> str:
    """File contents travel base64-encoded: Ansible would template a `{{` in them."""
    return base64.b64encode(text.encode()).decode()


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a slash-separated relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def in_build_context(app: Path, rel: str) -> bool:
    """Whether docker sends app/<rel> to the builder: the last matching .dockerignore pattern decides (a pattern
    matching a parent directory matches its files); the Dockerfile and .dockerignore are always sent."""
    if rel in ("Dockerfile", ".dockerignore"):
        return True
    rules = [
        (line.startswith("!"), _pattern(line.lstrip("!").strip("/")))
        for line in (app / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return not excluded


def test_a_change_in_the_build_context_changes_the_tag_and_nothing_else_does(
    rendered_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "lab"
    copy.mkdir()
    for name in (
        "roles",
        "group_vars",
        "callback_plugins",
    ):  # ansible.cfg's stdout callback is callback_plugins/lab.py
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("ansible.cfg", "inventory.yml"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "app", copy / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    app = copy / "app"

    context = sorted(
        p.relative_to(app).as_posix()
        for p in app.rglob("*")
        if p.is_file() and in_build_context(app, p.relative_to(app).as_posix())
    )
    assert {"Dockerfile", ".dockerignore", "requirements.txt", "gunicorn.conf.py"} <= set(context)
    assert any(rel.startswith("labapi/routes/") for rel in context)
    # Every context file outside labapi/, a module of labapi/ and one of a sub-package, and a new module: each
    # step costs a few Ansible tasks on a busy 2-core machine, so labapi/'s files are represented by two.
    sample = [rel for rel in context if not rel.startswith("labapi/")]
    sample.append(next(rel for rel in context if re.fullmatch(r"labapi/[^/]+\.py", rel)))
    sample.append(next(rel for rel in context if re.fullmatch(r"labapi/[^/]+/[^/]+\.py", rel)))
    inside = [(rel, (app / rel).read_text() + CHANGED) for rel in sample]
    inside.append(("labapi/added_module.py", '"""A new module."""\n'))
    outside = [
        ("README.md", (app / "README.md").read_text() + CHANGED),
        ("tests/conftest.py", (app / "tests" / "conftest.py").read_text() + CHANGED),
        ("bench/__init__.py", (app / "bench" / "__init__.py").read_text() + CHANGED),
        ("notes.txt", "a new file beside the build context\n"),
        ("labapi/__pycache__/factory.cpython-313.pyc", "bytecode\n"),
        ("../docs/added.md", "outside app/\n"),
    ]
    for rel, _ in outside:
        assert not in_build_context(app, rel), rel

    def change(rel: str, text: str) -> dict[str, str | None]:
        target = app / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return {
            "path": rel,
            "content": b64(text),
            "original": b64(target.read_text()) if target.exists() else None,
        }

    # Each change inside the context is its own step; the changes outside it are applied together (the tag
    # must not move even with all of them); "after" checks that every step restored what it changed.
    steps = [{"id": "baseline", "files": []}]
    steps += [{"id": f"in:{rel}", "files": [change(rel, text)]} for rel, text in inside]
    steps += [{"id": "outside", "files": [change(rel, text) for rel, text in outside]}]
    steps += [{"id": "after", "files": []}]

    (copy / "steps.json").write_text(json.dumps({"steps": steps}))
    (copy / "step.yml").write_text(
        """
- name: Change the files of step {{ item.id }}
  ansible.builtin.copy:
    dest: "{{ playbook_dir }}/app/{{ f.path }}"
    content: "{{ f.content | b64decode }}"
    mode: "0644"
  loop: "{{ item.files }}"
  loop_control:
    loop_var: f
- name: Compute the tag
  ansible.builtin.include_role:
    name: app_image
    tasks_from: image_ref
- name: Record it
  ansible.builtin.set_fact:
    refs: "{{ refs | combine({item.id: app_image_ref}) }}"
- name: Restore the changed files
  ansible.builtin.copy:
    dest: "{{ playbook_dir }}/app/{{ f.path }}"
    content: "{{ f.original | b64decode }}"
    mode: "0644"
  loop: "{{ item.files | rejectattr('original', 'none') | list }}"
  loop_control:
    loop_var: f
- name: Remove the added files
  ansible.builtin.file:
    path: "{{ playbook_dir }}/app/{{ f.path }}"
    state: absent
  loop: "{{ item.files | selectattr('original', 'none') | list }}"
  loop_control:
    loop_var: f
"""
    )
    (copy / "tags.yml").write_text(
        """
- name: Tag of the API image after each change
  hosts: localhost
  gather_facts: false
  vars:
    lab_platform: minikube
    refs: {}
  tasks:
    - name: Apply each change, compute the tag, restore
      ansible.builtin.include_tasks: step.yml
      loop: "{{ steps }}"
    - name: Write the tags
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/refs.json"
        content: "{{ refs | to_json }}"
        mode: "0644"
"""
    )
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(copy / "ansible.cfg"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "tags.yml", "-e", "@steps.json"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    refs = json.loads((copy / "refs.json").read_text())
    baseline = refs["baseline"]
    assert re.fullmatch(r"flask-api:src-[0-9a-f]{12}", baseline), baseline
    changed = {sid.removeprefix("in:"): ref for sid, ref in refs.items() if sid.startswith("in:")}
    assert len(changed) == len(inside)
    assert [path for path, ref in changed.items() if ref == baseline] == []
    assert len(set(changed.values())) == len(changed)  # each change gives its own tag
    assert refs["outside"] == baseline
    assert refs["after"] == baseline
    # The unchanged copy gets the tag the checkout's rendered Deployment runs.
    deployment = next(doc for _, doc in manifests(rendered_dir / "app_deploy") if doc["kind"] == "Deployment")
    assert baseline == deployment["spec"]["template"]["spec"]["containers"][0]["image"]
