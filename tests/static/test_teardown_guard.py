"""Teardown's guard (roles/lab_common/tasks/teardown_decide.yml): it refuses to delete anything on a cluster whose
namespaces lack the lab's label, unless lab_teardown_force is passed.

The refusal DECISION runs for real in Ansible, fed with what the read (roles/lab_common/files/namespaces.py)
prints. The read itself is run for real against sockets that behave as the cases it must tell apart (issue 19,
item 6): a refused connection and a peer that closes at once (no cluster answers: teardown goes on), a listener that
never answers (a timeout) and an HTTP server answering 403 with a Kubernetes Status (something answered: refused,
naming the error). Those stand-ins are not a Kubernetes API server; which address the read reaches is
tests/static/test_kube_context.py's.
"""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BIN, ROOT, ansible_env

LAB_LABEL = {"app.kubernetes.io/part-of": "sre-lab", "app.kubernetes.io/managed-by": "ansible"}


Namespaces = dict[str, dict[str, str] | None]


def answer(namespaces: Namespaces, *, answers: bool = True, error: str = "") -> dict[str, Any]:
    """What files/namespaces.py prints (its real output for real sockets is tested below)."""
    return {"answers": answers, "error": error, "namespaces": namespaces}


def found(name: str, labels: dict[str, str]) -> Namespaces:
    return {name: {"kubernetes.io/metadata.name": name, **labels}}


def missing(name: str) -> Namespaces:
    return {name: None}


def both(first: Namespaces, second: Namespaces) -> dict[str, Any]:
    return answer({**first, **second})


NO_ANSWER = answer(
    {},
    answers=False,
    error="MaxRetryError: HTTPSConnectionPool(host='127.0.0.1', port=6443): Max retries exceeded (Connection refused)",
)
FORBIDDEN = answer(
    {}, error='HTTP 403 Forbidden: namespaces "sre-lab" is forbidden: User "someone" cannot get ...'
)
TIMED_OUT = answer({}, error="timed out (MaxRetryError: ... Read timed out. (read timeout=15))")


def decide(tmp_path: Path, read: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    play = [
        {
            "name": "The guard's decision",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Stand in for the namespaces read and the context resolved at the start",
                    "ansible.builtin.set_fact": {
                        "__lab_common_guard_read": {"rc": 0, "stdout": json.dumps(read)},
                        "lab_common_current_context": "someone-elses-cluster",
                    },
                },
                {
                    "name": "Decide",
                    "ansible.builtin.include_role": {
                        "name": "lab_common",
                        "tasks_from": "teardown_decide.yml",
                    },
                },
            ],
        }
    ]
    path = tmp_path / "decide.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = ansible_env()
    env["ANSIBLE_NOCOLOR"] = "1"
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventory.yml"), str(path), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def text_of(proc: subprocess.CompletedProcess[str]) -> str:
    # The YAML callback folds messages over lines and doubles single quotes inside quoted scalars.
    return " ".join((proc.stdout + proc.stderr).split()).replace("''", "'")


KUBERNETES = ("-e", "lab_platform=kubernetes", "-e", "lab_kube_context=lab-cluster")


def test_refuses_when_a_namespace_lacks_the_labs_label(tmp_path: Path) -> None:
    proc = decide(
        tmp_path, both(missing("sre-lab"), found("monitoring", {"team": "observability"})), *KUBERNETES
    )
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "Teardown refused: it would act on context 'lab-cluster' (lab_kube_context)" in text
    assert "the namespaces monitoring (labels:" in text
    assert "lack the lab's label app.kubernetes.io/part-of=sre-lab" in text
    assert "The kubeconfig's current context is 'someone-elses-cluster'" in text
    assert "-e lab_teardown_force=true" in text


def test_refuses_a_label_with_another_value(tmp_path: Path) -> None:
    other = {"app.kubernetes.io/part-of": "payments"}
    proc = decide(tmp_path, both(found("sre-lab", other), found("monitoring", LAB_LABEL)), *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "the namespaces sre-lab (labels:" in text
    assert "monitoring (labels" not in text


def test_refuses_on_minikube_too_naming_the_profile(tmp_path: Path) -> None:
    proc = decide(
        tmp_path, both(found("sre-lab", {}), found("monitoring", {})), "-e", "lab_platform=minikube"
    )
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "it would act on context 'sre-lab' (the Minikube profile sre-lab's context)" in text
    assert "the namespaces sre-lab (labels: " in text
    assert ", monitoring (labels: " in text


def test_the_override_lets_it_go_on_and_says_so(tmp_path: Path) -> None:
    read = both(found("sre-lab", {}), found("monitoring", LAB_LABEL))
    proc = decide(tmp_path, read, *KUBERNETES, "-e", "lab_teardown_force=true")
    text = text_of(proc)
    assert proc.returncode == 0, text[-3000:]
    assert (
        "lab_teardown_force is true: removing the lab's releases and namespaces on context 'lab-cluster'"
        in text
    )


@pytest.mark.parametrize(
    "read",
    [
        both(found("sre-lab", LAB_LABEL), found("monitoring", LAB_LABEL)),
        both(missing("sre-lab"), missing("monitoring")),
        NO_ANSWER,
        both(found("sre-lab", LAB_LABEL), missing("monitoring")),
    ],
    ids=["both-labelled", "none-there", "no-answer", "one-labelled-one-missing"],
)
def test_goes_on_for_the_labs_cluster(tmp_path: Path, read: dict[str, Any]) -> None:
    proc = decide(tmp_path, read, *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode == 0, text[-3000:]
    assert "Teardown refused" not in text
    assert "lab_teardown_force is true" not in text


def test_teardown_runs_the_guard_before_it_deletes_anything() -> None:
    tasks = yaml.safe_load((ROOT / "playbooks" / "teardown.yml").read_text())[1]["tasks"]
    included = [
        (
            t["ansible.builtin.include_role"]["name"],
            t["ansible.builtin.include_role"].get("tasks_from", "main"),
        )
        for t in tasks
    ]
    guard = included.index(("lab_common", "teardown_guard.yml"))
    first_removal = min(i for i, (_role, part) in enumerate(included) if part == "teardown.yml")
    assert guard < first_removal, json.dumps(included)
    guard_tasks = yaml.safe_load((ROOT / "roles/lab_common/tasks/teardown_guard.yml").read_text())
    block = guard_tasks[0]["block"]
    argv = block[0]["ansible.builtin.command"]["argv"]
    assert "_lab_common_namespaces_reader" in argv
    assert "'--context', lab_k8s_context" in argv, "the read uses the run's one context"
    assert block[0]["register"] == "__lab_common_guard_read"


@pytest.mark.parametrize(
    ("read", "named"),
    [
        (FORBIDDEN, 'HTTP 403 Forbidden: namespaces "sre-lab" is forbidden'),
        (TIMED_OUT, "timed out"),
    ],
    ids=["forbidden", "timeout"],
)
def test_refuses_when_the_namespaces_cannot_be_read(tmp_path: Path, read: dict[str, Any], named: str) -> None:
    """Issue 19, item 6: a failed read used to let teardown go on; only "no cluster answers" may."""
    proc = decide(tmp_path, read, *KUBERNETES)
    text = text_of(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "Teardown refused: reading the lab's namespaces on context 'lab-cluster' failed" in text
    assert named in text
    assert "-e lab_teardown_force=true" in text
    forced = text_of(decide(tmp_path, read, *KUBERNETES, "-e", "lab_teardown_force=true"))
    assert "lab_teardown_force is true" in forced
    assert "reading its namespaces failed" in forced


READER = ROOT / "roles" / "lab_common" / "files" / "namespaces.py"


class Forbidden(http.server.BaseHTTPRequestHandler):
    """Answers every request as an API server does to a user without the right: 403 and a Status object."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": 'namespaces "sre-lab" is forbidden: User "someone" cannot get resource "namespaces"',
                "reason": "Forbidden",
                "code": 403,
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def run_reader(tmp_path: Path, server: str) -> dict[str, Any]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "lab",
            }
        )
    )
    cmd = [sys.executable, str(READER), "--kubeconfig", str(kubeconfig), "--context", "lab", "--timeout", "1"]
    proc = subprocess.run(
        [*cmd, "sre-lab", "monitoring"], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(proc.stdout))


def test_reader_a_refused_connection_is_no_answer(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    read = run_reader(tmp_path, f"https://127.0.0.1:{port}")
    assert read["answers"] is False, read
    assert "Connection refused" in read["error"], read


def test_reader_a_peer_that_closes_at_once_is_no_answer(tmp_path: Path) -> None:
    from tests.static.test_kube_context import RecordingListener

    listener = RecordingListener()
    try:
        read = run_reader(tmp_path, f"https://127.0.0.1:{listener.port}")
    finally:
        listener.close()
    assert read["answers"] is False, read


def test_reader_a_silent_cluster_is_a_timeout_that_refuses(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # accepts into the backlog, never answers
        read = run_reader(tmp_path, f"http://127.0.0.1:{sock.getsockname()[1]}")
    assert read["answers"] is True, read
    assert read["error"].startswith("timed out"), read


def test_reader_a_403_refuses_naming_it(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        read = run_reader(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert read["answers"] is True, read
    assert read["error"].startswith('HTTP 403 Forbidden: namespaces "sre-lab" is forbidden'), read


def test_reader_no_such_context_is_no_answer(tmp_path: Path) -> None:
    """After `minikube delete` the profile's context is gone: nothing to guard, a second teardown goes on."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": [], "clusters": []})
    )
    cmd = [sys.executable, str(READER), "--kubeconfig", str(kubeconfig), "--context", "sre-lab", "sre-lab"]
    read = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert read["answers"] is False, read
    assert "sre-lab" in read["error"], read
