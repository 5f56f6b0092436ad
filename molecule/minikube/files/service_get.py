#!/usr/bin/env python3
"""GET a path of a Service through the Kubernetes API server's service proxy and print the answer as JSON.

Usage: service_get.py NAMESPACE SERVICE:PORT PATH [KEY=VALUE ...] [--context CTX] [--kubeconfig FILE]
Prints {"status": <HTTP status>, "body": <text>}; exits 0 even for HTTP errors (the caller asserts), 2 when the
cluster cannot be reached. Used by molecule/minikube/verify.yml, so the checks need no port-forward.
"""

from __future__ import annotations

import argparse
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def service_get(namespace: str, service: str, path: str, query: list[tuple[str, str]]) -> tuple[int, str]:
    api = client.ApiClient()
    _method, url, headers, _body, _files = api.param_serialize(
        method="GET",
        resource_path="/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}",
        path_params={"namespace": namespace, "name": service, "path": path.lstrip("/")},
        query_params=query,
        header_params={"Accept": "*/*"},
        auth_settings=["BearerToken"],
    )
    try:
        response = api.call_api("GET", url, header_params=headers, _request_timeout=30)
        response.read()
        return response.status, response.data.decode("utf-8", "replace")
    except ApiException as exc:
        return int(exc.status or 0), str(exc.body or exc.reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("namespace")
    parser.add_argument("service", help="name:port, e.g. prometheus-server:80")
    parser.add_argument("path")
    parser.add_argument("query", nargs="*", help="query parameters as KEY=VALUE")
    parser.add_argument("--context", default=None)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args(argv)
    try:
        config.load_kube_config(config_file=args.kubeconfig or None, context=args.context or None)
    except (config.ConfigException, OSError) as exc:
        print(f"error: cannot load the kubeconfig: {exc}", file=sys.stderr)
        return 2
    query = [(key, value) for key, _, value in (item.partition("=") for item in args.query)]
    status, body = service_get(args.namespace, args.service, args.path, query)
    print(json.dumps({"status": status, "body": body}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
