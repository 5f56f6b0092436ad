"""`molecule test` (README), verbatim, from the repository root: the local platform end to end.

make test runs it here, inside pytest, so it overlaps the other modules on its own pytest-xdist worker instead of
running alone after them (it uses under one core: 235 CPU-seconds in 275 s). Its lab lives in Molecule's ephemeral
directory on the ports of molecule/default/vars/lab.yml, which free_port() never hands out (labtools/appserver.py).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.conftest import BIN, ROOT, ansible_env

pytestmark = [pytest.mark.slow, pytest.mark.long_running, pytest.mark.timeout(1800)]

ACTIONS = ("destroy", "syntax", "converge", "idempotence", "verify")


def test_molecule_test_runs_every_step_of_the_default_scenario() -> None:
    env = ansible_env()
    env.update({"NO_COLOR": "1", "PY_COLORS": "0"})
    proc = subprocess.run(
        [str(BIN / "molecule"), "test"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1700
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"molecule test failed ({proc.returncode}):\n{out[-8000:]}"
    # "default ➜ verify: Executed: Successful" in colour, "[default > verify] Executed: Successful" without
    done = re.findall(r"default\s*(?:➜|>)\s*(\w+)\]?:?\s*Executed: Successful", out)
    for action in ACTIONS:
        assert action in done, f"molecule test did not run {action}: {done}\n{out[-3000:]}"
