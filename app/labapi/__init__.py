"""The lab's instrumented API (Flask), served by gunicorn: see app/README.md.

Run: gunicorn --config app/gunicorn.conf.py --chdir app 'labapi:create_app()'

This module stays import-light (no Flask) because the gunicorn master imports labapi.config
and labapi.lifecycle through app/gunicorn.conf.py before it forks the gevent workers: the app
itself is built in each worker, after gevent's monkey patching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labapi.factory import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """`labapi.create_app` is labapi.factory's, imported on first use (gunicorn's `labapi:create_app()`)."""
    if name == "create_app":
        from labapi.factory import create_app

        return create_app
    raise AttributeError(f"module 'labapi' has no attribute {name!r}")
