"""Bad input and a missing prerequisite print the one message that matters, and change nothing (issue 19, items 7
and 12). Real runs of the playbooks on this machine, with no lab (each stops at its first check)."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import BIN, ROOT, ansible_env
from tests.support.servers import free_local_ports


def run(tmp_path: Path, playbook: str, *args: str) -> tuple[int, str, str]:
    env = ansible_env()
    env["HOME"] = str(tmp_path)
    env["ANSIBLE_NOCOLOR"] = "1"
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker-engine.sock"  # auto resolves to local, on any machine
    extra = {"lab_dir": str(tmp_path / "lab"), "lab_local_ports": free_local_ports()}
    cmd = [str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / playbook), "-e", json.dumps(extra), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    return proc.returncode, out, " ".join(out.split()).replace("''", "'")


def test_a_refused_setting_is_one_message_not_the_argument_spec(tmp_path: Path) -> None:
    rc, out, text = run(tmp_path, "stress.yml", "-e", "stress_test_shape=nonsense")
    assert rc != 0
    assert (
        "Bad setting: value of stress_test_shape must be one of: capacity, steady, step, spike, soak, got: nonsense"
        in text
    )
    # What used to follow it: the whole argument spec and the validation task's internals (~200 lines).
    assert "argument_spec_data" not in out
    assert "validate_args_context" not in out
    assert "stress_test_target_url" not in out, "the spec of the other settings is printed"
    failure = out[out.index("fatal:") :]
    assert len(failure.splitlines()) < 12, failure
    assert not (tmp_path / "lab").exists(), "a refused setting changes nothing"


def test_a_bad_fault_document_is_one_message(tmp_path: Path) -> None:
    rc, out, text = run(tmp_path, "faults.yml", "-e", "faults=nonsense")
    assert rc != 0
    assert 'faults must be a fault document such as {"db_failure_rate": 0.5}' in text
    assert "make faults FAULTS=none" in text
    assert "argument_spec_data" not in out
    assert "unable to convert to dict" not in text


def test_stress_names_each_missing_python_package_and_make_stress_first(tmp_path: Path) -> None:
    """The venv `make venv` builds has no locust or matplotlib: stress.yml said `No module named 'matplotlib'` inside
    a message blaming Prometheus. A real interpreter without them (a bare venv) is checked before anything else."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    rc, _out, text = run(tmp_path, "stress.yml", "-e", f"python_packages_python={bare}/bin/python")
    assert rc != 0
    assert "Missing Python package(s) locust==" in text
    assert ", matplotlib==" in text
    assert "run `make stress`" in text
    assert "Prometheus" not in text, "blamed on Prometheus"
    assert "Prepare the run" not in text, "the check must come before anything else"


class Healthy(http.server.BaseHTTPRequestHandler):
    """A target that answers GET /health/liveness 200 (the stress preflight's first check of the lab)."""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/liveness" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_stress_against_a_lab_without_prometheus_says_make_lab(tmp_path: Path) -> None:
    """Prometheus down: the message names where it looked and `make lab` (was: the report's bare error)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dead = free_local_ports()["prometheus"]
    try:
        rc, _out, text = run(
            tmp_path,
            "stress.yml",
            "-e",
            f"stress_test_target_url=http://127.0.0.1:{server.server_address[1]}",
            "-e",
            f"stress_test_prometheus_url=http://127.0.0.1:{dead}",
        )
    finally:
        server.shutdown()
        server.server_close()
    assert rc != 0
    assert (
        f"Prometheus is not reachable at http://127.0.0.1:{dead}: is the lab up? Run `make lab`." in text
    ), text[-3000:]


def test_faults_on_a_deployed_lab_that_is_down_says_make_lab(tmp_path: Path) -> None:
    """The lab was deployed (its supervisord program file is there) but nothing runs: the wait for the workers used
    to end in the helper's bare error."""
    (tmp_path / "lab" / "supervisor" / "conf.d").mkdir(parents=True)
    (tmp_path / "lab" / "supervisor" / "conf.d" / "app.ini").write_text("[program:app]\n")
    (tmp_path / "lab" / "run").mkdir()
    rc, _out, text = run(
        tmp_path,
        "faults.yml",
        "-e",
        '{"faults": {"db_failure_rate": 0.5}}',
        "-e",
        "lab_faults_timeout=2",
    )
    assert rc != 0
    assert "The API is not reachable at http://127.0.0.1:" in text, text[-3000:]
    assert "is the lab up? Run `make lab`. (the faults were not in effect" in text, text[-3000:]
