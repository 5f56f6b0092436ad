"""The benchmarks, and any code that is not a test, import no test code (tests.*), directly or through the
repository's own modules they import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Where the repository's modules are imported from: the root (drills, loadtest, labtools, app.bench) and app/ (labapi,
# and bench.* as gunicorn imports the bench's apps with --chdir app).
SEARCH = (ROOT, ROOT / "app")
BENCHES = ("app/bench/__main__.py", "loadtest/bench.py")
# Code that is not a test: everything it imports must be too.
NOT_TESTS = (
    "app/labapi",
    "app/bench",
    "labtools",
    "loadtest",
    "drills",
    "lessons",
    "scripts",
    "filter_plugins",
)


def module_file(name: str) -> Path | None:
    """The repository's file of module `name` (a package's __init__.py), or None: not the repository's."""
    parts = name.split(".")
    for base in SEARCH:
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def imported_names(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it (function-level imports too), relative imports resolved."""
    package = path.parent.relative_to(ROOT).parts
    if package and package[0] == "app" and package[1:2] == ("labapi",):
        package = package[1:]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def imports_of(entry: Path) -> dict[str, Path]:
    """The modules `entry` reaches through the repository's own modules: name -> the file that imports it."""
    seen: dict[str, Path] = {}
    todo = [entry]
    done: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in done:
            continue
        done.add(path)
        for name in imported_names(path):
            seen.setdefault(name, path)
            found = module_file(name)
            if found is not None:
                todo.append(found)
    return seen


def is_test_module(name: str) -> bool:
    return name == "tests" or name.startswith("tests.") or ".tests." in f".{name}."


@pytest.mark.parametrize("bench", BENCHES)
def test_a_benchmark_imports_no_test_code(bench: str) -> None:
    reached = imports_of(ROOT / bench)
    offending = {name: str(path.relative_to(ROOT)) for name, path in reached.items() if is_test_module(name)}
    assert not offending, f"{bench} reaches test code: {offending}"
    assert "labtools.appserver" in reached  # the launcher the benches share, the tests too


def test_code_that_is_not_a_test_imports_no_test_code() -> None:
    offending = {}
    for top in NOT_TESTS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            bad = sorted(name for name in imported_names(path) if is_test_module(name))
            if bad:
                offending[str(path.relative_to(ROOT))] = bad
    assert not offending
