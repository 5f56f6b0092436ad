"""Hostile clients for the API's hardening tests (loopback only, bounded in count and time).

- `slow_client_attack(host, port, ...)`: `holders` connections that keep a keep-alive slot busy (a
  request every `hold_interval` seconds on the same connection, reconnecting whenever the server
  closes it) and `tricklers` that send a POST /api/echo body at 2 bytes/s (reconnecting likewise),
  while a few normal clients time `GET /api/users` on fresh connections. Returns the latencies.
  The hostile clients start at random moments within the ramp (holders within their first hold
  interval too), as independent clients do; `synchronized=True` starts them all at the same instant,
  so that every hold interval 1,000 holders send their requests together (a load spike).
- `fuzz(host, port, count, seed)`: `count` malformed requests over every route and a few paths that are none,
  each on its own connection, written byte by byte; returns the responses that were unexpected (5xx, not JSON, no
  X-Request-ID). Only what an HTTP client library cannot send, or the contract cannot describe: broken request
  lines, versions, headers and framing for gunicorn's parser, bodies that are not JSON (NaN, 1e999, binary, 20,000
  levels deep), control characters in paths, unknown paths. Well-formed requests, every method on every route,
  query values, content types and JSON bodies of any shape are schemathesis's, against the contract
  (app/tests/test_labapi_contract_server.py).

Every socket is closed before these functions return, also on failure. Only 127.0.0.1 / ::1.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _check_loopback(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"hostile clients only talk to loopback, not {host!r}")


def raise_nofile_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE of this process (and of the servers it starts) to `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(
            f"RLIMIT_NOFILE hard limit {hard} < {needed}: raise it (ulimit -Hn) to run this test"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


# ---------------------------------------------------------------------------------------------
# slow and many clients


@dataclass
class AttackResult:
    latencies: list[float] = field(default_factory=list)  # seconds, one per normal request
    statuses: list[int | str] = field(default_factory=list)
    hostile_connects: int = 0
    hostile_closed_by_server: int = 0
    trickler_responses: dict[int, int] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[index]


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _holder(
    host: str, port: int, stop: asyncio.Event, interval: float, delay: float, result: AttackResult
) -> None:
    """One request every `interval` seconds from `delay` seconds on, on one keep-alive connection
    held as long as the server lets it (a fresh one, at the same pace, whenever the server closes it)."""
    request = f"GET /api/users HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    next_request = loop.time() + delay
    while not stop.is_set():
        writer = None
        try:
            await asyncio.sleep(max(0.0, next_request - loop.time()))
            reader, writer = await _open(host, port)
            result.hostile_connects += 1
            while not stop.is_set():
                next_request = loop.time() + interval
                writer.write(request)
                await writer.drain()
                data = await reader.read(65536)  # the response (small), or b"" when closed
                if not data:
                    result.hostile_closed_by_server += 1
                    break
                with contextlib.suppress(TimeoutError):
                    # hold the connection until the next request is due; b"" = closed meanwhile
                    more = await asyncio.wait_for(reader.read(65536), max(0.0, next_request - loop.time()))
                    if not more:
                        result.hostile_closed_by_server += 1
                        break
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.05)
        finally:
            await _close(writer)


async def _trickler(host: str, port: int, stop: asyncio.Event, delay: float, result: AttackResult) -> None:
    """From `delay` seconds on, a POST body at 2 bytes/s, on a fresh connection whenever the server
    closes the last one (a 408 at the body deadline)."""
    head = (
        f"POST /api/echo HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 4000\r\n\r\n"
    ).encode()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await _open(host, port)
            result.hostile_connects += 1
            writer.write(head + b"[")
            await writer.drain()
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(65536), 1.0)
                except TimeoutError:
                    writer.write(b"1,")  # 2 bytes a second
                    await writer.drain()
                    continue
                if data.startswith(b"HTTP/1.1 "):
                    status = int(data[9:12])
                    result.trickler_responses[status] = result.trickler_responses.get(status, 0) + 1
                result.hostile_closed_by_server += 1
                break
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.05)
        finally:
            await _close(writer)


def _normal_client(
    host: str,
    port: int,
    deadline: float,
    count: int,
    timeout: float,
    result: AttackResult,
    lock: threading.Lock,
) -> None:
    for _ in range(count):
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/api/users")
            response = conn.getresponse()
            response.read()
            outcome: int | str = response.status
        except (OSError, http.client.HTTPException) as exc:
            outcome = type(exc).__name__
        finally:
            conn.close()
        elapsed = time.perf_counter() - started
        with lock:
            # a failed request counts as at least the client's timeout: it never got an answer in time
            result.latencies.append(elapsed if isinstance(outcome, int) else max(elapsed, timeout))
            result.statuses.append(outcome)
        time.sleep(0.05)


def _run_attack(
    host: str,
    port: int,
    holders: int,
    tricklers: int,
    hold_interval: float,
    seconds: float,
    spread_seconds: float,
    seed: int,
) -> None:
    """The attack alone, in its own process (no GIL shared with the clients that measure).

    Holders start at random moments within their first hold interval (or `spread_seconds`, if
    shorter), tricklers within `spread_seconds`; all at once when `spread_seconds` is 0."""
    result = AttackResult()
    rng = random.Random(seed)
    holder_delays = [rng.uniform(0, min(hold_interval, spread_seconds)) for _ in range(holders)]
    trickler_delays = [rng.uniform(0, spread_seconds) for _ in range(tricklers)]

    async def attack() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # stop when the parent closes our stdin, or after `seconds` at the latest
        threading.Thread(
            target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
        ).start()
        tasks = [
            asyncio.create_task(_holder(host, port, stop, hold_interval, delay, result))
            for delay in holder_delays
        ]
        tasks += [
            asyncio.create_task(_trickler(host, port, stop, delay, result)) for delay in trickler_delays
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        stop.set()
        if tasks:  # none for a baseline run (no holders, no tricklers)
            await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(attack())
    print(
        json.dumps(
            {
                "hostile_connects": result.hostile_connects,
                "hostile_closed_by_server": result.hostile_closed_by_server,
                "trickler_responses": result.trickler_responses,
            }
        ),
        flush=True,
    )


def slow_client_attack(
    host: str,
    port: int,
    *,
    holders: int = 1000,
    tricklers: int = 1000,
    hold_interval: float = 4.0,
    ramp_seconds: float = 8.0,
    measure_seconds: float = 15.0,
    normal_clients: int = 4,
    normal_requests: int = 100,
    normal_timeout: float = 10.0,
    synchronized: bool = False,
    seed: int = 14,
) -> AttackResult:
    """Run the attack (in a child process) and time normal requests during it.

    The hostile clients start within the ramp at random moments (`seed`), or all at once when
    `synchronized`. Normal requests are timed after the ramp, for `measure_seconds` at most.

    The child runs for ramp + measure + timeout seconds at most; it is killed by its PID on return,
    and it closes every socket it opened when it exits.
    """
    _check_loopback(host)
    raise_nofile_limit(2 * (holders + tricklers) + 1024)
    result = AttackResult()
    seconds = ramp_seconds + measure_seconds + normal_timeout
    code = (
        "import sys; from tests.support.hostile import _run_attack; "
        f"_run_attack({host!r}, {port}, {holders}, {tricklers}, {hold_interval}, {seconds}, "
        f"{0.0 if synchronized else ramp_seconds}, {seed})"
    )
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(ramp_seconds)  # every hostile connection is open (or queued) before we measure
        lock = threading.Lock()
        deadline = time.monotonic() + measure_seconds
        clients = [
            threading.Thread(
                target=_normal_client,
                args=(host, port, deadline, normal_requests, normal_timeout, result, lock),
            )
            for _ in range(normal_clients)
        ]
        for client in clients:
            client.start()
        for client in clients:
            client.join(measure_seconds + normal_timeout + 5)
        out, _ = child.communicate(timeout=30)  # closes its stdin: it stops, closes its sockets, reports
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    if out.strip():
        summary = json.loads(out.strip().splitlines()[-1])
        result.hostile_connects = summary["hostile_connects"]
        result.hostile_closed_by_server = summary["hostile_closed_by_server"]
        result.trickler_responses = {int(k): v for k, v in summary["trickler_responses"].items()}
    return result


# ---------------------------------------------------------------------------------------------
# fuzzing


ROUTES = (
    "/api/users",
    "/api/echo",
    "/api/error",
    "/health/liveness",
    "/health/readiness",
    "/metrics",
    "/metrics/anything",
    "/",
    "/nope",
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO", "get")


def _fuzz_request(rng: random.Random, host: str) -> bytes:
    route = rng.choice(ROUTES)
    method = rng.choice(METHODS)
    kind = rng.randrange(15)  # content types and JSON bodies of any shape: schemathesis (module docstring)
    headers = [f"Host: {host}"]
    body = b""
    if kind == 0:  # garbage request line
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\r\n\r\n"
    if kind == 1:  # over-long URI
        route = "/api/users?" + "a" * rng.choice((5000, 9000, 20000))
    if kind == 2:  # over-long header
        headers.append("X-Long: " + "b" * rng.choice((9000, 20000)))
    if kind == 3:  # too many headers
        headers += [f"X-H{i}: v" for i in range(rng.choice((120, 200)))]
    if kind == 4:  # bad HTTP version
        return f"{method} {route} HTTP/9.9\r\nHost: {host}\r\n\r\n".encode()
    if kind == 5:  # deeply nested JSON
        depth = rng.choice((100, 1000, 5000, 20000))
        body = b"[" * depth + b"]" * depth
        headers.append("Content-Type: application/json")
    if kind == 6:  # non-standard constants
        body = rng.choice((b"NaN", b"Infinity", b"-Infinity", b"1e999", b'{"a":[NaN]}', b"-1e400"))
        headers.append("Content-Type: application/json")
    if kind == 7:  # bad chunk size
        headers += ["Transfer-Encoding: chunked", "Content-Type: application/json"]
        return _head(method, route, headers) + b"zz\r\n{}\r\n0\r\n\r\n"
    if kind == 8:  # truncated chunked body, then close
        headers += ["Transfer-Encoding: chunked", "Content-Type: application/json"]
        return _head(method, route, headers) + b'10\r\n{"a":'
    if kind == 9:  # control characters in the path
        route = "/api/%0a%1b[31mfake%0d%0a" + rng.choice(("users", "x"))
    if kind == 10:  # invalid utf-8 / binary JSON body
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        headers.append("Content-Type: application/json")
    if kind == 11:  # content-length mismatches (short body, then close)
        headers += ["Content-Type: application/json", "Content-Length: 50"]
        return _head(method, route, headers) + b'{"a": 1'
    if kind == 12:  # bad header syntax
        headers.append("Bad Header\x01: x")
    if kind == 13:  # conflicting framing
        headers += ["Content-Length: 3", "Transfer-Encoding: chunked"]
        body = b"abc"
    if kind == 14:  # huge declared length, no body
        headers.append("Content-Length: 99999999999")
    if body:
        headers.append(f"Content-Length: {len(body)}")
    return _head(method, route, headers) + body


def _head(method: str, route: str, headers: list[str]) -> bytes:
    return (f"{method} {route} HTTP/1.1\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode(
        "latin-1", "replace"
    )


# (route, status) pairs the lab produces on purpose: the simulated error and the DB fault
SIMULATED_5XX = ((["/api/error"], 500), (["/api/users"], 503))


@dataclass
class FuzzResult:
    sent: int = 0
    answered: int = 0
    no_answer: int = 0  # the server closed the connection without a response
    statuses: dict[int, int] = field(default_factory=dict)
    unexpected_5xx: list[str] = field(default_factory=list)
    non_json: list[str] = field(default_factory=list)
    no_request_id: list[str] = field(default_factory=list)


def _parse_responses(raw: bytes, head_request: bool) -> list[tuple[int, dict[str, str], bytes]] | None:
    """Every response in `raw` (a connection may carry a second one: the answer to what the client
    sent after its request, e.g. an unread body that does not parse as the next request)."""
    responses = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"HTTP/1."):
            return None
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        # a HEAD answer has no body, unless the server could not read the method (a rejection
        # that closes the connection: the body is what remains)
        rejected = headers.get("connection") == "close" and len(rest) == int(
            headers.get("content-length", -1)
        )
        bodiless = status in (204, 304) or (head_request and not responses and not rejected)
        length = 0 if bodiless else int(headers.get("content-length", len(rest)))
        responses.append((status, headers, rest[:length]))
        raw = rest[length:]
    return responses


def _exchange(host: str, port: int, request: bytes, timeout: float) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)  # no keep-alive: the server answers, then closes
        chunks = []
        with contextlib.suppress(OSError):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    return b"".join(chunks)


def fuzz(host: str, port: int, count: int = 5000, *, seed: int = 14, timeout: float = 10.0) -> FuzzResult:
    """Send `count` fuzzed requests (one connection each, sequential); classify the answers.

    Expected: a 5xx only from GET /api/error (the simulated server error) or GET /api/users (503
    when the db_failure_rate fault fails every attempt) and no other; every
    answer is JSON (except HEAD and the /metrics text), and carries X-Request-ID.
    """
    _check_loopback(host)
    rng = random.Random(seed)
    result = FuzzResult()
    for _ in range(count):
        request = _fuzz_request(rng, host)
        result.sent += 1
        raw = _exchange(host, port, request, timeout)
        first_line = request.split(b"\r\n", 1)[0][:80].decode("latin-1", "replace")
        if not raw:
            result.no_answer += 1
            continue
        responses = _parse_responses(raw, first_line.startswith("HEAD "))
        if responses is None:
            result.non_json.append(f"{first_line!r}: not HTTP: {raw[:80]!r}")
            continue
        result.answered += 1
        for index, (status, headers, body) in enumerate(responses):
            result.statuses[status] = result.statuses.get(status, 0) + 1
            # GET (and HEAD) /api/error is the simulated server error: its 500 is expected; so is
            # the 503 of /api/users when the db_failure_rate fault failed every attempt
            path = first_line.split(" ")[1:2]
            simulated = (
                index == 0 and first_line.startswith(("GET ", "HEAD ")) and (path, status) in SIMULATED_5XX
            )
            if status >= 500 and not simulated:
                result.unexpected_5xx.append(f"{first_line!r} -> {status} {body[:120]!r}")
            bodiless = (index == 0 and first_line.startswith("HEAD ")) or (status == 204 and not body)
            is_metrics = index == 0 and path == ["/metrics"] and status == 200
            if not is_metrics and not bodiless:
                try:
                    json.loads(body)
                    if not headers.get("content-type", "").startswith("application/json"):
                        raise ValueError("content-type " + headers.get("content-type", "none"))
                except ValueError as exc:
                    result.non_json.append(f"{first_line!r} -> {status} {exc}: {body[:80]!r}")
            if "x-request-id" not in headers:
                result.no_request_id.append(f"{first_line!r} -> {status}")
    return result
