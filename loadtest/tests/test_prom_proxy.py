"""Reaching Prometheus through the API server's service proxy (the Kubernetes platform's verdict queries).

A stdlib server stands in for the API server: the test checks the proxy path and the bearer token the
kubeconfig gives, not a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from loadtest.prom import Prometheus, PrometheusError, service_proxy_fetcher
from loadtest.tests.jsonhttp import JsonHandler

SEEN: list[tuple[str, dict[str, list[str]], str]] = []


class ApiServer(JsonHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        SEEN.append((url.path, parse_qs(url.query), self.headers.get("Authorization", "")))
        prefix = "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy"
        if url.path == prefix + "/api/v1/query":
            body = {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "42"]}]},
            }
            status = 200
        else:
            body, status = {"kind": "Status", "message": "services not found"}, 404
        self.send_json(status, body)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "me", "user": {"token": "s3cret"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me"}}],
        "current-context": "lab",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    SEEN.clear()
    yield path
    server.shutdown()
    server.server_close()


def test_queries_go_through_the_service_proxy_with_the_kubeconfig_token(kubeconfig: Path) -> None:
    fetch = service_proxy_fetcher("monitoring", "prometheus-server:80", str(kubeconfig), "lab")
    prom = Prometheus(fetch, "proxy")
    assert prom.scalar("sum(up)", 1234.5) == 42.0
    path, query, auth = SEEN[-1]
    assert path == "/api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/query"
    assert query == {"query": ["sum(up)"], "time": ["1234.500"]}
    assert auth == "Bearer s3cret"


def test_a_missing_service_is_a_clear_error(kubeconfig: Path) -> None:
    prom = Prometheus(service_proxy_fetcher("monitoring", "nope:80", str(kubeconfig)), "proxy")
    with pytest.raises(PrometheusError, match="answered 404"):
        prom.scalar("up", 1.0)


def test_a_bad_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PrometheusError, match="cannot load the kubeconfig"):
        service_proxy_fetcher("monitoring", "prometheus-server:80", str(tmp_path / "missing"))
