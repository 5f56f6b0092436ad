"""Teardown's guard, the read: the lab's namespaces on one kubeconfig context, and whether a cluster answered.

    namespaces.py [--kubeconfig FILE] [--context NAME] [--timeout SECONDS] NAMESPACE...

Prints one JSON object: {"answers": bool, "error": str, "namespaces": {name: labels, or null when absent}}.
- answers false: no cluster answers, i.e. nothing is configured for the context (no kubeconfig, no such context) or
  the connection is refused, the host unknown or unreachable, or the peer closes the connection before it says
  anything. There is nothing to guard then (and nothing to remove).
- answers true and error "": every namespace was read.
- answers true and an error: something answered or may have (an HTTP status such as 403, a timeout, a TLS failure):
  the guard refuses, naming it, since the cluster's namespaces are unknown.
Exit status 0 in every case above; 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys
from http.client import RemoteDisconnected
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

NO_ANSWER = (
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionAbortedError,
    RemoteDisconnected,
    socket.gaierror,
)
NO_ANSWER_TEXT = (
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "No route to host",
    "Network is unreachable",
)


def causes(err: BaseException) -> list[BaseException]:
    """The error and everything it wraps (urllib3's reason, __cause__, __context__)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [err]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue  # None, or a reason that is a plain string
        seen.append(item)
        todo.extend([getattr(item, "reason", None), item.__cause__, item.__context__])
    return seen


def no_answer(err: BaseException) -> bool:
    """True when nothing answered: refused, unknown or unreachable host, closed before any reply."""
    chain = causes(err)
    if any(isinstance(e, NO_ANSWER) for e in chain):
        return True
    if any(isinstance(e, ssl.SSLEOFError) for e in chain):  # closed during the TLS handshake
        return True
    if timed_out(err):
        return False
    text = " ".join(str(e) for e in chain)
    return any(marker in text for marker in NO_ANSWER_TEXT)


def timed_out(err: BaseException) -> bool:
    """A connect or read timeout (urllib3's NewConnectionError is a ConnectTimeoutError subclass: not one)."""
    return any(
        isinstance(e, (urllib3.exceptions.TimeoutError, TimeoutError))
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in causes(err)
    )


def describe(err: BaseException) -> str:
    if isinstance(err, ApiException):
        message = ""
        try:
            message = str(json.loads(err.body or "{}").get("message", ""))
        except ValueError:
            message = str(err.body or "")[:200]
        return f"HTTP {err.status} {err.reason}" + (f": {message}" if message else "")
    if timed_out(err):
        return f"timed out ({type(err).__name__}: {err})"
    return f"{type(err).__name__}: {err}"


def read(kubeconfig: str, context: str, timeout: float, names: list[str]) -> dict[str, Any]:
    settings = client.Configuration()
    try:
        config.load_kube_config(
            config_file=kubeconfig or None, context=context or None, client_configuration=settings
        )
    except (
        ConfigException,
        OSError,
    ) as err:  # no kubeconfig, no such context: no cluster is configured there
        return {"answers": False, "error": f"{type(err).__name__}: {err}", "namespaces": {}}
    settings.retries = 1  # one retry, not urllib3's three: a refused connection is known at once
    api = client.CoreV1Api(client.ApiClient(settings))
    found: dict[str, Any] = {}
    for name in names:
        try:
            namespace = api.read_namespace(name, _request_timeout=timeout)
        except ApiException as err:
            if err.status == 404:
                found[name] = None
                continue
            return {"answers": True, "error": describe(err), "namespaces": found}
        except Exception as err:  # urllib3, ssl, socket: decided by what it wraps
            return {"answers": not no_answer(err), "error": describe(err), "namespaces": found}
        found[name] = dict(namespace.metadata.labels or {})
    return {"answers": True, "error": "", "namespaces": found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kubeconfig", default="")
    parser.add_argument("--context", default="")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("namespaces", nargs="+")
    args = parser.parse_args(argv)
    print(json.dumps(read(args.kubeconfig, args.context, args.timeout, args.namespaces), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
