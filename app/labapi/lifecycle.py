"""Shutdown state shared by the gunicorn master and its workers.

At SIGTERM the master (see app/gunicorn.conf.py) flips this flag, keeps serving for
APP_SHUTDOWN_DRAIN_SECONDS so that readiness answers 503 and load balancers stop sending
traffic, then stops the workers gracefully. The flag lives in an anonymous shared memory page
created when this module is first imported: the master imports it (through the gunicorn
config file) before forking, so every worker sees the master's writes.
"""

from __future__ import annotations

import mmap


class ShutdownState:
    """A one-byte flag in memory shared across fork()."""

    __slots__ = ("_page",)

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED | MAP_ANONYMOUS

    @property
    def draining(self) -> bool:
        return self._page[0] == 1

    def begin_drain(self) -> None:
        self._page[0] = 1

    def reset(self) -> None:
        self._page[0] = 0


shutdown_state = ShutdownState()
