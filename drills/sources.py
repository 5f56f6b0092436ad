"""Where the drill reads alerts: Prometheus (/api/v1/alerts, the ALERTS series) and Alertmanager (/api/v2/alerts).

Both are reached like the stress test reaches Prometheus (loadtest/prom.py): a URL, or on Kubernetes the API
server's service proxy with the play's kubeconfig and context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loadtest.prom import Fetch, Prometheus, PrometheusError, service_proxy_fetcher, url_fetcher


class SourceError(RuntimeError):
    """Prometheus or Alertmanager could not be reached or gave an unexpected answer."""


def fetcher(url: str, service: str, kubeconfig: str, context: str, what: str) -> tuple[Fetch, str]:
    """A Fetch for `url`, or for `service` (namespace/name:port) through the API server proxy."""
    try:
        if url:
            return url_fetcher(url), url
        namespace, _, name = service.partition("/")
        if not namespace or not name:
            raise SourceError(f"{what}: give a URL or a service as namespace/name:port; got {service!r}")
        return service_proxy_fetcher(namespace, name, kubeconfig, context), f"service {service}"
    except PrometheusError as err:
        raise SourceError(str(err).replace("Prometheus", what)) from None


def _labels_match(labels: dict[str, str], app: str) -> bool:
    """Alerts of this lab: those without an app label (absent(), vector()) or with ours."""
    return labels.get("app", app) == app


@dataclass
class Alerts:
    """The alerts as Prometheus and Alertmanager list them right now."""

    prom_fetch: Fetch
    prom_where: str
    am_fetch: Fetch
    am_where: str
    app: str

    @property
    def prom(self) -> Prometheus:
        return Prometheus(self.prom_fetch, self.prom_where)

    def prometheus(self) -> list[dict[str, Any]]:
        """Pending and firing alerts: alertname, severity, state, activeAt."""
        try:
            answer = self.prom_fetch("/api/v1/alerts", {})
        except PrometheusError as err:
            raise SourceError(str(err)) from None
        if answer.get("status") != "success":
            raise SourceError(f"Prometheus ({self.prom_where}) refused /api/v1/alerts: {answer}")
        return [
            {
                "alertname": a["labels"].get("alertname", ""),
                "severity": a["labels"].get("severity", ""),
                "state": a.get("state", ""),
                "active_at": a.get("activeAt"),
            }
            for a in answer["data"]["alerts"]
            if _labels_match(a.get("labels", {}), self.app)
        ]

    def alertmanager(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds: alertname, severity, state, startsAt, endsAt, receivers."""
        try:
            answer = self.am_fetch("/api/v2/alerts", {})
        except PrometheusError as err:
            raise SourceError(str(err).replace("Prometheus", "Alertmanager")) from None
        if not isinstance(answer, list):
            raise SourceError(
                f"Alertmanager ({self.am_where}) answered /api/v2/alerts with {str(answer)[:200]}"
            )
        return [
            {
                "alertname": a["labels"].get("alertname", ""),
                "severity": a["labels"].get("severity", ""),
                "state": a.get("status", {}).get("state", ""),
                "starts_at": a.get("startsAt"),
                "updated_at": a.get("updatedAt"),
                "ends_at": a.get("endsAt"),
                "receivers": sorted(r.get("name", "") for r in a.get("receivers", [])),
            }
            for a in answer
            if _labels_match(a.get("labels", {}), self.app)
        ]

    def alert_samples(self, start: float, end: float) -> dict[str, dict[str, Any]]:
        """Raw samples of ALERTS over [start, end], per alertname and state: {"firing": [t, ...], ...}.

        The samples are written at each rule evaluation while the alert is pending or firing, so the first and
        last firing sample are exact evaluation times.
        """
        rng = max(1, int(end - start) + 1)
        try:
            result = self.prom.query(f"ALERTS[{rng}s]", end)
        except PrometheusError as err:
            raise SourceError(str(err)) from None
        found: dict[str, dict[str, Any]] = {}
        for series in result:
            labels = series["metric"]
            if not _labels_match(labels, self.app):
                continue
            entry = found.setdefault(
                labels.get("alertname", ""),
                {"severity": labels.get("severity", ""), "firing": [], "pending": []},
            )
            state = labels.get("alertstate", "")
            if state in ("firing", "pending"):
                entry[state].extend(float(t) for t, _v in series.get("values", []))
        for entry in found.values():
            entry["firing"].sort()
            entry["pending"].sort()
        return found


@dataclass
class Receiver:
    """The alert receiver's log (labapi.alert_receiver: one JSON line per notification Alertmanager sent).

    Local: its log file (<lab_dir>/logs/<lab_alert_receiver_name>.log). Kubernetes: the log of its pods (label
    app=<name> in the API's namespace), read through the API server with the play's kubeconfig and context.
    """

    log_file: str = ""
    pods: str = ""  # namespace/app-label
    kubeconfig: str = ""
    context: str = ""

    @property
    def where(self) -> str:
        return (
            self.log_file
            or f"the logs of the pods app={self.pods.partition('/')[2]} in {self.pods.partition('/')[0]}"
        )

    def lines(self) -> list[str]:
        """Every line of the log; SourceError when it cannot be read."""
        if self.log_file:
            try:
                with open(self.log_file, encoding="utf-8", errors="replace") as fh:
                    return fh.read().splitlines()
            except OSError as err:
                raise SourceError(f"the alert receiver's log {self.log_file} cannot be read: {err}") from None
        if not self.pods:
            return []
        namespace, _, app = self.pods.partition("/")
        try:
            from kubernetes import client, config  # the local platform does not need it

            api = client.CoreV1Api(
                config.new_client_from_config(
                    config_file=self.kubeconfig or None, context=self.context or None
                )
            )
            found: list[str] = []
            for pod in api.list_namespaced_pod(namespace, label_selector=f"app={app}").items:
                name = str(pod.metadata.name) if pod.metadata else ""
                found += str(api.read_namespaced_pod_log(name, namespace)).splitlines()
            return found
        except Exception as err:  # any client or API error: the report says the receiver could not be read
            raise SourceError(f"the alert receiver's log ({self.where}) cannot be read: {err}") from None


def notifications(lines: list[str]) -> list[dict[str, Any]]:
    """The receiver's notification lines: {t (epoch), route, status, alerts: [{alertname, status, starts_at}]}."""
    from drills.timeline import parse_time  # timeline imports nothing from here

    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("event") != "alert_notification":
            continue
        t = parse_time(str(entry.get("timestamp") or ""))
        if t is None:
            continue
        found.append(
            {
                "t": t,
                "route": entry.get("route"),
                "status": entry.get("status"),
                "alerts": [
                    {
                        "alertname": a.get("alertname"),
                        "status": a.get("status"),
                        "starts_at": a.get("starts_at"),
                    }
                    for a in entry.get("alerts") or []
                    if isinstance(a, dict)
                ],
            }
        )
    return sorted(found, key=lambda n: n["t"])
