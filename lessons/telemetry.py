"""Where the answers are: Prometheus, Alertmanager and the API's log lines, reached as the session says.

The play (roles/lesson) writes the ways in into the session: on the local platform the URLs of
group_vars/all/local.yml and the log file under lab_dir/logs; on Kubernetes the API server's service proxy and the
pods' logs, with the play's kubeconfig and derived context (lab_k8s_context). Prometheus and Alertmanager are read
with the drills' helpers (drills/sources.py).
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.sources import Alerts, SourceError, fetcher
from loadtest.prom import Prometheus, PrometheusError

__all__ = ["Context", "SourceError"]


@dataclass
class Context:
    """One session's view of the lab: the sources, the names and the scene's times."""

    session: dict[str, Any]

    @property
    def sources(self) -> dict[str, str]:
        sources: dict[str, str] = self.session["sources"]
        return sources

    @property
    def app(self) -> str:
        return str(self.session["app"])

    def alerts(self) -> Alerts:
        src = self.sources
        prom_fetch, prom_where = fetcher(
            src["prometheus_url"], src["prometheus_service"], src["kubeconfig"], src["context"], "Prometheus"
        )
        am_fetch, am_where = fetcher(
            src["alertmanager_url"],
            src["alertmanager_service"],
            src["kubeconfig"],
            src["context"],
            "Alertmanager",
        )
        return Alerts(prom_fetch, prom_where, am_fetch, am_where, self.app)

    def prometheus(self) -> Prometheus:
        return self.alerts().prom

    def since(self, key: str) -> float | None:
        value = self.session.get("times", {}).get(key)
        return float(value) if value not in (None, "") else None

    @property
    def scene_start(self) -> float:
        return self.since("started") or time.time()

    @property
    def fault_start(self) -> float:
        return self.since("fault_effective") or self.scene_start

    @property
    def scene_set(self) -> float:
        """When the scene was set and the questions began ('ready')."""
        return self.since("ready") or time.time()

    def values(self, now: float) -> dict[str, str]:
        """The placeholders of a lesson's queries (catalog.PLACEHOLDERS)."""

        def rng(start: float) -> str:
            return f"{max(1, int(now - start) + 1)}s"

        return {
            "app": self.app,
            "namespace": str(self.session["namespace"]),
            "scene_range": rng(self.scene_start),
            "fault_range": rng(self.fault_start),
            # A closed window, the same whenever the question is answered: from the fault to the scene set
            # ([$fault_window] @ $scene_set_at).
            "scene_set_at": f"{self.scene_set:.3f}",
            "fault_window": f"{max(1, round(self.scene_set - self.fault_start))}s",
        }

    def render(self, query: str, now: float) -> str:
        return string.Template(query).substitute(self.values(now))

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        try:
            return self.prometheus().query(promql, at)
        except PrometheusError as err:
            raise SourceError(str(err)) from None

    # The API's log lines ---------------------------------------------------------------------------------------

    def log_lines(self) -> Iterator[dict[str, Any]]:
        """The API's JSON log lines: the log file (local), or every API pod's log (Kubernetes)."""
        src = self.sources
        texts = [self._read_file(src["api_log_file"])] if src.get("api_log_file") else self._read_pods()
        for text in texts:
            for line in text.splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record

    @staticmethod
    def _read_file(path: str) -> str:
        try:
            return Path(path).read_text(errors="replace")
        except OSError as err:
            raise SourceError(f"the API's log file {path} cannot be read: {err}") from None

    def _read_pods(self) -> list[str]:
        from kubernetes import client, config  # the local platform does not need it

        src = self.sources
        try:
            api = client.CoreV1Api(
                config.new_client_from_config(
                    config_file=src["kubeconfig"] or None, context=src["context"] or None
                )
            )
            namespace = str(self.session["namespace"])
            pods = api.list_namespaced_pod(namespace, label_selector=f"app={self.app}").items
            since = max(60, int(time.time() - self.scene_start) + 60)
            names = [str(pod.metadata.name) for pod in pods if pod.metadata is not None]
            return [str(api.read_namespaced_pod_log(name, namespace, since_seconds=since)) for name in names]
        except Exception as err:
            raise SourceError(
                f"the API pods' logs cannot be read (context {src['context']!r}): {err}"
            ) from None

    def log_query_hint(self, request_id: str) -> str:
        """How the trainee finds the same line: LogQL in Grafana, and the platform's own way without Loki."""
        src = self.sources
        logql = f'{{namespace="{self.session["namespace"]}", app="{self.app}"}} |= "{request_id}" | json'
        if src.get("api_log_file"):
            other = f"without Loki: grep '{request_id}' {src['api_log_file']}"
        else:
            context = f"--context {src['context']} " if src["context"] else ""
            other = f"kubectl {context}-n {self.session['namespace']} logs -l app={self.app} | grep '{request_id}'"
        return f"Grafana Explore (Loki): {logql}; {other}"
