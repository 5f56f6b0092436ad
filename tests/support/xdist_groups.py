"""How pytest-xdist shares this repository's suites between its workers (loaded by `-p` from pyproject.toml).

`pytest -n 3 --dist loadfile --no-loadscope-reorder` (what `make pytest` runs) runs the suites on three worker
processes, each taking whole work units. A unit is one test module (loadfile), so a module-scoped fixture (a gunicorn
server, a Prometheus, a local lab brought up by site.yml) starts once, on one worker, exactly as in a serial run.
Under xdist tmp_path is one folder deeper (popen-gwN/): a lab_dir must stay short enough for its supervisor socket
(under 100 characters, checked by the preflight), and every server takes its port from free_port(). The modules of
a directory listed in SHARED_LAB_DIRS form one unit: they share a package-scoped lab (their conftest.py), which must
come up once.

(`--dist loadgroup` with `xdist_group` marks would say the same, but pytest-xdist 3.8 renames node ids to group them
and pytest 9 ignores that rename: its groups are silently split. The scheduler below groups by path instead.)

The order of the units: by default xdist hands out the units with the most tests first, which puts the end-to-end
modules (few tests, minutes each) last and leaves one worker idle while the other finishes them. With
--no-loadscope-reorder the units go out in collection order, which this plugin sorts: the modules marked
`long_running` (a real site.yml bring-up) first, everything else as collected.

Without -n everything runs in this process, serially; the sort above still applies.
"""

from __future__ import annotations

from typing import Any

import pytest

# Directories whose modules share one package-scoped lab: one work unit each.
SHARED_LAB_DIRS = ("tests/e2e/local_lab/",)


def work_unit(nodeid: str) -> str:
    """The work unit of a test: its module, or the shared-lab directory it belongs to."""
    path = nodeid.split("::", 1)[0]
    return next((d for d in SHARED_LAB_DIRS if path.startswith(d)), path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: the units with a long-running module first, everything else in collection order.
    long_units = {work_unit(item.nodeid) for item in items if item.get_closest_marker("long_running")}
    items.sort(key=lambda item: work_unit(item.nodeid) not in long_units)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist on the command line: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        """Whole modules (or shared-lab directories) per worker, in collection order."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ModuleScheduling(config, log)
