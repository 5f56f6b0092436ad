"""Stand-in for the grafana, loki and alloy binaries in tests/local (the test machines have none of them).

Installed under those names in a temporary directory, it reads the listen address the monitoring role gave the real
binary (grafana.ini, loki.yml, or alloy's --server.http.listen-addr), answers the readiness path the role waits for,
and writes its command line and GF_* environment to $FAKE_RECORD_DIR/<name>.json. It exercises the role's plumbing
(configuration files, supervisord programs, readiness waits, summary), not Grafana, Loki or Alloy themselves.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import sys
from pathlib import Path


def option(args: list[str], prefix: str) -> str:
    for arg in args:
        if arg.startswith(prefix):
            return arg[len(prefix) :]
    raise SystemExit(f"fake server: no {prefix} argument in {args}")


def listen_address(name: str, args: list[str]) -> tuple[str, int, str]:
    """(host, port, readiness path) the way the real binary would read them."""
    if name == "grafana":
        text = Path(option(args, "--config=")).read_text()
        host = re.search(r"^http_addr = (\S+)$", text, re.MULTILINE)
        port = re.search(r"^http_port = (\d+)$", text, re.MULTILINE)
        if not host or not port:
            raise SystemExit("fake grafana: http_addr/http_port missing from grafana.ini")
        return host.group(1), int(port.group(1)), "/api/health"
    if name == "loki":
        text = Path(option(args, "-config.file=")).read_text()
        host = re.search(r'^\s*http_listen_address: "?([^"\s]+)"?$', text, re.MULTILINE)
        port = re.search(r"^\s*http_listen_port: (\d+)$", text, re.MULTILINE)
        if not host or not port:
            raise SystemExit("fake loki: http_listen_address/http_listen_port missing from loki.yml")
        return host.group(1), int(port.group(1)), "/ready"
    if name == "alloy":
        host, _, port = option(args, "--server.http.listen-addr=").rpartition(":")
        return host, int(port), "/-/ready"
    raise SystemExit(f"fake server: unknown name {name}")


def main() -> int:
    name = Path(sys.argv[0]).name
    args = sys.argv[1:]
    record = {"argv": sys.argv, "env": {k: v for k, v in os.environ.items() if k.startswith("GF_")}}
    (Path(os.environ["FAKE_RECORD_DIR"]) / f"{name}.json").write_text(json.dumps(record))
    host, port, ready = listen_address(name, args)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path == ready else 404
            body = json.dumps({"fake": name, "path": self.path}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *log_args: object) -> None:
            return

    http.server.ThreadingHTTPServer((host, port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
