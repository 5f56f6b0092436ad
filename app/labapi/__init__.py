"""The lab's instrumented API (Flask), served by gunicorn: see app/README.md.

Run: gunicorn --config app/gunicorn.conf.py --chdir app 'labapi:create_app()'

This module stays import-light (no Flask) because the gunicorn master imports labapi.config
and labapi.lifecycle through app/gunicorn.conf.py before it forks the gevent workers: the app
itself is built in each worker, after gevent's monkey patching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TextIO

    from flask import Flask

    from labapi.config import Settings


def create_app(settings: Settings | None = None, *, log_stream: TextIO | None = None) -> Flask:
    """Build the WSGI app; settings default to the validated environment."""
    from labapi.factory import build_app

    return build_app(settings, log_stream=log_stream)
