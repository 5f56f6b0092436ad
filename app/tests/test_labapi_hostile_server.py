"""Hostile clients against the API under a real gunicorn (labapi.worker.LabGeventWorker), on
loopback: malformed chunked bodies, requests gunicorn's parser rejects, slow bodies, keep-alive
bounds, 2,000 slow connections, and a 5,000-request fuzz run. Every server and socket is closed
at the end of each test, also on failure."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.support.hostile import fuzz, raise_nofile_limit, slow_client_attack
from tests.support.servers import metric_samples, start_app, worker_pids

pytestmark = pytest.mark.slow

# The local platform's serving settings (group_vars/all/app.yml).
SERVING = {
    "APP_WORKERS": "2",
    "APP_WORKER_CONNECTIONS": "1000",
    "APP_ACCESS_LOG_SAMPLE_RATE": "0.01",
    "APP_DB_RETRIES": "1",
}
# The lab's baseline fault document (lab_baseline_faults: 5% of simulated queries fail), as the local platform runs it.
BASELINE_FAULTS = {"db_failure_rate": 0.05}


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def exchange(port: int, data: bytes, *, close_write: bool = True, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


def recv_response(sock: socket.socket) -> bytes:
    """One whole HTTP response from `sock`: the head, then Content-Length bytes of body (TCP may deliver
    them in several segments, so one recv() is not a response). b"" when the server closed first."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            return raw
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    fields = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    length = int({k.strip().lower(): v.strip() for k, _, v in fields}.get(b"content-length", b"0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def parse(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", len(body)))
    return int(lines[0].split()[1]), headers, json.loads(body[:length])


def cpu_times(pids: set[int]) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of `pids`, from /proc/<pid>/schedstat."""
    on_cpu = waiting = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/schedstat") as schedstat:
            ran, waited, _ = schedstat.read().split()
        on_cpu += int(ran) / 1e9
        waiting += int(waited) / 1e9
    return on_cpu, waiting


def count(url: str, **labels: str) -> float:
    return metric_samples(url).get(("app_request_count_total", frozenset(labels.items())), 0.0)


ECHO_HEAD = b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.timeout(120)
def test_malformed_chunked_bodies_are_json_400s_and_a_stalled_one_a_408(tmp_path):
    env = {"APP_BODY_TIMEOUT_SECONDS": "1"}  # no fault document: no query fails
    with start_app(tmp_path, workers=1, env=env) as server:
        port = port_of(server)
        chunked = ECHO_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        cases = {
            "bad chunk size": chunked + b"zz\r\n{}\r\n0\r\n\r\n",
            "chunk longer than said": chunked + b'2\r\n{"a":1}\r\n0\r\n\r\n',
            "truncated, then closed": chunked + b'10\r\n{"a":',
        }
        for what, data in cases.items():
            status, headers, body = parse(exchange(port, data))
            assert status == 400, what
            assert headers["content-type"] == "application/json", what
            assert headers["x-request-id"], what
            assert body["status"] == "error", what
        # truncated and left open: answered when the body deadline passes, not when the client gives up
        started = time.monotonic()
        raw = exchange(port, chunked + b'10\r\n{"a":', close_write=False, timeout=15)
        elapsed = time.monotonic() - started
        status, headers, body = parse(raw)
        assert status == 408
        assert "did not arrive within 1s" in body["message"]
        assert headers["connection"] == "close"
        assert 0.9 < elapsed < 5, elapsed
        assert count(server.url, endpoint="/api/echo", method="POST", http_status="400") == 3
        assert count(server.url, endpoint="/api/echo", method="POST", http_status="408") == 1
        five_xx = [
            k
            for k, v in metric_samples(server.url).items()
            if dict(k[1]).get("http_status", "").startswith("5")
        ]
        assert not five_xx
        assert "Traceback" not in server.log_text()


@pytest.mark.timeout(120)
def test_a_body_trickled_at_2_bytes_a_second_gets_a_408(tmp_path):
    with start_app(tmp_path, workers=1, env={"APP_BODY_TIMEOUT_SECONDS": "2"}) as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=0.5) as sock:
            sock.sendall(ECHO_HEAD + b"Content-Length: 1000\r\n\r\n[")
            started = time.monotonic()
            raw = b""
            while time.monotonic() - started < 10:
                try:
                    raw = recv_response(sock)
                    break
                except TimeoutError:
                    sock.sendall(b"1,")
            elapsed = time.monotonic() - started
        status, headers, _ = parse(raw)
        assert status == 408
        assert 1.9 < elapsed < 4, elapsed
        assert headers["connection"] == "close"


REJECTED = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400),
    "bad method": (b"G@T /api/users HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad version": (b"GET /api/users HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    "URI too long": (b"GET /api/users?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header too large": (b"GET /api/users HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    "too many headers": (
        b"GET /api/users HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"\r\n",
        431,
    ),
    "bad header name": (b"GET /api/users HTTP/1.1\r\nHost: x\r\nBad Header\x01: x\r\n\r\n", 400),
}


@pytest.mark.timeout(120)
def test_requests_gunicorn_rejects_get_json_a_request_id_and_are_counted(tmp_path):
    with start_app(tmp_path, workers=1) as server:
        port = port_of(server)
        for what, (data, expected) in REJECTED.items():
            status, headers, body = parse(exchange(port, data))
            assert status == expected, what
            assert headers["content-type"] == "application/json", what
            assert len(headers["x-request-id"]) == 32, what
            assert headers["connection"] == "close", what
            assert body["status"] == "error", what
            assert body["message"], what
        metrics = metric_samples(server.url)
        rejected = {
            dict(labels)["http_status"]: value
            for (name, labels), value in metrics.items()
            if name == "app_request_count_total" and dict(labels)["endpoint"] == "<rejected>"
        }
        assert rejected == {"400": 4, "414": 1, "431": 2}
        lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
        access = [r for r in lines if r.get("endpoint") == "<rejected>"]
        assert len(access) == 7
        assert all(r["level"] == "WARNING" and r["request_id"] for r in access)
        assert not [line for line in server.log_text().splitlines() if "<html>" in line]


@pytest.mark.timeout(120)
def test_keep_alive_is_bounded_in_idle_time_and_reuse(tmp_path):
    env = {"APP_KEEPALIVE_SECONDS": "1", "APP_KEEPALIVE_MAX_REQUESTS": "3"}  # no fault document: no faults
    request = b"GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n"
    with start_app(tmp_path, workers=1, env=env) as server:
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
            answers = []
            for _ in range(3):
                sock.sendall(request)
                answers.append(recv_response(sock))
            assert [a.startswith(b"HTTP/1.1 200") for a in answers] == [True] * 3
            assert b"Connection: close" not in answers[0]
            assert b"Connection: close" in answers[2]  # the third request is the last one
            assert sock.recv(65536) == b""
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
            sock.sendall(request)
            assert recv_response(sock).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert sock.recv(65536) == b""  # closed by the server after the idle time
            assert 0.5 < time.monotonic() - started < 3
        # a client that never sends its headers is closed after the same time
        with socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) as sock:
            sock.sendall(b"GET /api/users HTTP/1.1\r\nHos")
            started = time.monotonic()
            assert sock.recv(65536) == b""
            assert time.monotonic() - started < 3


def _attack_figures(
    name: str, result, baseline, workers: set[int], cpu: tuple[float, float], seconds: float
) -> str:
    ran, waited = cpu
    return (
        f"\nGET /api/users under {name}: {len(result.latencies)} requests, "
        f"p50 {result.percentile(50) * 1000:.0f} ms, p99 {result.percentile(99) * 1000:.0f} ms (target < 300 ms), "
        f"max {max(result.latencies) * 1000:.0f} ms; p99 / p99 without attack "
        f"{result.percentile(99) / baseline.percentile(99):.1f}; statuses {sorted(set(map(str, result.statuses)))}; "
        f"hostile connections opened {result.hostile_connects}, closed by the server "
        f"{result.hostile_closed_by_server}, trickler answers {result.trickler_responses}; "
        f"the {len(workers)} workers during the {seconds:.0f} s attack: {ran:.1f} s on a CPU, {waited:.1f} s "
        "runnable but waiting for one (the run queue: CPU taken by other processes)"
    )


def _timed_attack(server, workers: set[int], **options):
    before = cpu_times(workers)
    started = time.monotonic()
    result = slow_client_attack("127.0.0.1", port_of(server), **options)
    seconds = time.monotonic() - started
    after = cpu_times(workers)
    return result, tuple(b - a for a, b in zip(before, after, strict=True)), seconds


@pytest.mark.timeout(300)
def test_normal_requests_are_served_under_2000_slow_connections(tmp_path):
    """1,000 keep-alive holders (a request every 4 s on a held connection) and 1,000 tricklers
    (a POST body at 2 bytes/s), reconnecting whenever closed, with the local platform's serving
    settings; four normal clients time GET /api/users on fresh connections meanwhile. The hostile
    clients start at random moments over the ramp, as independent clients do; then the same attack
    again with every hostile client started at the same instant, so that the 1,000 holders' requests
    arrive together every 4 s (a load spike: about 0.4 s of both CPUs of a 2-CPU machine).

    Asserted: normal requests are answered (today's setup answered none within 10 s),
    every trickler is cut off by the body deadline (408), the holders lose their slots. The p99s are
    printed with the 300 ms target and the no-attack p99 beside them, not asserted: on a shared
    2-CPU machine they measure the neighbours as much as the app (app/README.md has measured figures)."""
    raise_nofile_limit(8192)  # 2,000 client sockets here, as many in the server
    with start_app(tmp_path, workers=2, env=SERVING, faults=BASELINE_FAULTS) as server:
        baseline = slow_client_attack(
            "127.0.0.1", port_of(server), holders=0, tricklers=0, ramp_seconds=0.5, measure_seconds=5
        )
        workers = worker_pids(server.pid)
        result, cpu, seconds = _timed_attack(server, workers)
        spike, spike_cpu, spike_seconds = _timed_attack(server, workers, synchronized=True)
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]
    print(
        f"\nGET /api/users, no attack: {len(baseline.latencies)} requests, "
        f"p50 {baseline.percentile(50) * 1000:.0f} ms, p99 {baseline.percentile(99) * 1000:.0f} ms; "
        f"load average {load}"
        + _attack_figures("1,000 holders + 1,000 tricklers", result, baseline, workers, cpu, seconds)
        + _attack_figures("the same, started together", spike, baseline, workers, spike_cpu, spike_seconds)
    )
    for attack in (result, spike):
        answered = [status for status in attack.statuses if isinstance(status, int)]
        assert set(answered) <= {200, 503}, attack.statuses
        # Today's setup answers no normal request within the 10 s client timeout. How many are answered,
        # and how fast, depends on the machine: on a 2-CPU machine shared with other work (load average
        # 12-17) the workers get a fraction of a CPU and the p99 is far above the target (app/README.md).
        assert answered, attack.statuses
        # Tricklers are cut off at the deadline (none before the body deadline existed). How many within
        # the attack depends on their start and on how fast starved workers accept them: 410-1,000 of
        # 1,000 measured at load average 5-13 (started together), 630-670 idle (started over the ramp).
        assert attack.trickler_responses.get(408, 0) >= 200
        assert attack.hostile_closed_by_server >= 1000  # holders lose their slots too (none today)


@pytest.mark.timeout(600)
def test_fuzz_5000_malformed_requests_no_5xx_and_only_json(tmp_path):
    with start_app(
        tmp_path, workers=2, env={**SERVING, "APP_BODY_TIMEOUT_SECONDS": "2"}, faults=BASELINE_FAULTS
    ) as server:
        started = time.monotonic()
        result = fuzz("127.0.0.1", port_of(server), 5000, seed=14)
        elapsed = time.monotonic() - started
        log = server.log_text()
    print(
        f"\nfuzz: {result.sent} requests in {elapsed:.0f}s, {result.answered} answered, "
        f"{result.no_answer} closed without an answer; statuses {dict(sorted(result.statuses.items()))}; "
        f"unexpected 5xx {len(result.unexpected_5xx)}, non-JSON {len(result.non_json)}, "
        f"without X-Request-ID {len(result.no_request_id)}"
    )
    assert result.unexpected_5xx == []
    assert result.non_json == []
    assert result.no_request_id == []
    assert result.no_answer == 0
    assert "Traceback" not in log
