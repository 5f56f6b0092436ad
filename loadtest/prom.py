"""Minimal Prometheus HTTP API client: direct URL, or through the Kubernetes API server's service proxy."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

Fetch = Callable[[str, dict[str, str]], Any]


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query; the message says which and why."""


def url_fetcher(base_url: str, timeout: float = 15.0) -> Fetch:
    """GET <base_url><path>?params and decode the JSON answer."""
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise PrometheusError(f"the Prometheus URL must start with http:// or https://; got {base_url!r}")

    def fetch(path: str, params: dict[str, str]) -> Any:
        url = f"{base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")[:300]
            raise PrometheusError(f"Prometheus at {base} answered {err.code} to {path}: {body}") from None
        except (urllib.error.URLError, OSError) as err:
            raise PrometheusError(f"Prometheus at {base} cannot be reached: {err}") from None

    return fetch


def service_proxy_fetcher(
    namespace: str, service: str, kubeconfig: str = "", context: str = "", timeout: float = 15.0
) -> Fetch:
    """Reach Prometheus through the API server: /api/v1/namespaces/<ns>/services/<service>/proxy/...

    ``service`` is ``name:port`` (port name or number). Uses the kubeconfig and context the playbook uses,
    so there is no port-forward process to start and stop, and any kubeconfig auth works.
    """
    from kubernetes import config  # imported here: the local platform does not need it

    try:
        api = config.new_client_from_config(config_file=kubeconfig or None, context=context or None)
    except Exception as err:
        raise PrometheusError(f"cannot load the kubeconfig ({kubeconfig or 'default'}): {err}") from None
    prefix = f"/api/v1/namespaces/{namespace}/services/{service}/proxy"
    where = f"service {namespace}/{service} (through the API server)"

    def fetch(path: str, params: dict[str, str]) -> Any:
        method, url, headers, _body, _post = api.param_serialize(
            "GET", prefix + path, query_params=list(params.items()), auth_settings=["BearerToken"]
        )
        try:
            resp = api.call_api(method, url, header_params=headers, _request_timeout=timeout)
            resp.read()
        except Exception as err:
            raise PrometheusError(f"Prometheus {where} cannot be reached: {err}") from None
        if resp.status != 200:
            text = (resp.data or b"").decode(errors="replace")[:300]
            raise PrometheusError(f"Prometheus {where} answered {resp.status} to {path}: {text}")
        return json.loads(resp.data)

    return fetch


class Prometheus:
    """Instant queries and readiness, over any Fetch."""

    def __init__(self, fetch: Fetch, where: str) -> None:
        self._fetch = fetch
        self.where = where

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        answer = self._fetch("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {promql!r}: {answer.get('error', answer)}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def scalar(self, promql: str, at: float) -> float | None:
        """The single value of a one-series query, None when there is no series."""
        result = self.query(promql, at)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Matrix of ``promql`` over [start, end] every ``step`` seconds: [{"metric", "values": [[t, "v"], ...]}]."""
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{max(step, 0.001):.3f}",
        }
        answer = self._fetch("/api/v1/query_range", params)
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus refused {promql!r}: {answer.get('error', answer)}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def rules(self, kind: str) -> list[dict[str, Any]]:
        """Loaded rules of one kind ("record" or "alert"), each with its group's name under "group"."""
        answer = self._fetch("/api/v1/rules", {"type": kind})
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus did not list its rules: {answer.get('error', answer)}")
        return [
            {**rule, "group": group["name"]} for group in answer["data"]["groups"] for rule in group["rules"]
        ]

    def check(self) -> dict[str, Any]:
        """Fail with a clear message unless Prometheus answers; return its build info."""
        answer = self._fetch("/api/v1/status/buildinfo", {})
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus at {self.where} did not answer its build info: {answer}")
        info: dict[str, Any] = answer["data"]
        return info
