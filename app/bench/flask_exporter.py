"""Peer 2: prometheus-flask-exporter's ``GunicornPrometheusMetrics`` (requirements/dev.txt pins it; bench only).

Its per-request instrumentation is what is measured: the exporter's own metrics server would be started from
the gunicorn config's ``when_ready`` on a separate port, which the benchmark does not start (the gunicorn
settings stay the same for every contender). ``group_by="url_rule"`` labels by route template, as ours does.
"""

from __future__ import annotations

from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

from bench.bare import make_app

app = make_app("flask-exporter")
metrics = GunicornPrometheusMetrics(app, group_by="url_rule", buckets=(0.01, 0.05, 0.1, 0.3, 0.5, 1, 2, 5))
