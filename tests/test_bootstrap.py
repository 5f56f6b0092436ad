"""The set-up commands find a Python >= 3.12 by themselves, or say how to get one."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIND = ROOT / "scripts" / "find-python.sh"


def _fake_python(path: Path, version: tuple[int, int]) -> Path:
    """A stand-in interpreter that answers the version probe like a real one would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = 0 if version >= (3, 12) else 1
    path.write_text(f"#!/bin/sh\nexit {ok}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": env.get("HOME", "/nonexistent")}
    return subprocess.run(
        ["bash", str(FIND)], env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_picks_the_newest_pyenv_version_at_least_3_12(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.11.7" / "bin" / "python", (3, 11))
    _fake_python(root / "versions" / "3.12.1" / "bin" / "python", (3, 12))
    newest = _fake_python(root / "versions" / "3.13.0" / "bin" / "python", (3, 13))
    result = _run({"PYENV_ROOT": str(root), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(newest)


def test_explains_what_to_install_when_nothing_fits(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.11.7" / "bin" / "python", (3, 11))
    # PATH without any python3.12+/python3 that could qualify.
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PYENV_ROOT": str(root), "HOME": str(tmp_path), "PATH": f"{empty}:/bin"}
    result = subprocess.run(["/bin/bash", str(FIND)], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no Python >= 3.12 found" in result.stderr
    assert "LAB_PYTHON" in result.stderr


def test_rejects_a_lab_python_that_is_too_old(tmp_path: Path) -> None:
    old = _fake_python(tmp_path / "py311", (3, 11))
    result = _run({"LAB_PYTHON": str(old), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert f"LAB_PYTHON={old} is not a Python >= 3.12" in result.stderr


def test_the_real_machine_has_one() -> None:
    result = _run({"HOME": os.environ.get("HOME", "/root")})
    assert result.returncode == 0, result.stderr
    probe = subprocess.run(
        [result.stdout.strip(), "-c", "import sys; print(sys.version_info >= (3, 12))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"
