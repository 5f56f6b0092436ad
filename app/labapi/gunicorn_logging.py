"""gunicorn's own log lines in the app's format, on stdout; no gunicorn access log.

The app writes its own (sampled) access lines, so gunicorn's per-request access formatting
is switched off entirely: it would cost throughput on every request.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn.glogging import Logger

from labapi.config import load_settings
from labapi.logging_setup import make_formatter


class GunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        settings = load_settings()
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(make_formatter(settings.log_format))
        self.error_log.handlers = [handler]
        self.error_log.setLevel(settings.log_level)
        self.error_log.propagate = False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None
