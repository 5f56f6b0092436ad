"""gunicorn settings of the alert receiver (labapi.alert_receiver), loaded as a module:

    gunicorn --config python:labapi.alert_receiver_gunicorn 'labapi.alert_receiver:create_app()'

One sync worker (a notification is a few KiB, a handful a minute), bound to ALERT_RECEIVER_BIND
(default 0.0.0.0:8080), no access log (the app logs each notification itself), no control socket and
the heartbeat files in /dev/shm: the container's root filesystem is read-only.
"""

from __future__ import annotations

import os

bind = [os.environ.get("ALERT_RECEIVER_BIND", "0.0.0.0:8080")]
workers = 1
worker_class = "sync"
timeout = 30
graceful_timeout = 10
accesslog = None
errorlog = "-"
control_socket_disable = True
_SHM = "/dev/shm"  # noqa: S108 - gunicorn's recommended heartbeat location, not a temp file
worker_tmp_dir = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
