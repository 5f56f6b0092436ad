"""labapi.worker's body reads: one wake-up per body (SO_RCVLOWAT), never a complete body left
waiting. Real loopback TCP sockets and gevent's hub; the server tests run a real gunicorn."""

from __future__ import annotations

import io
import json
import socket
import time

import gevent
import pytest
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.http.unreader import SocketUnreader
from labapi import worker

from tests.support.hostile import raise_nofile_limit
from tests.support.servers import start_app, worker_pids


@pytest.fixture
def tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        yield client, server


def test_a_trickled_body_wakes_the_reader_once_when_all_of_it_is_queued(tcp_pair):
    client, server = tcp_pair
    sent: list[int] = []

    def trickle() -> None:
        for _ in range(10):
            gevent.sleep(0.02)
            client.sendall(b"0123456789")
            sent.append(10)

    sender = gevent.spawn(trickle)
    with gevent.Timeout(5):
        worker._wait_for_bytes(server, 100)
    assert sum(sent) == 100  # not woken by the first segments
    assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1  # reset for the next request
    assert server.recv(200) == b"0123456789" * 10
    sender.join()


def test_bytes_already_queued_and_a_closed_client_do_not_wait(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"x" * 50)
    time.sleep(0.05)
    with gevent.Timeout(1):
        worker._wait_for_bytes(server, 50)
    assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1
    client.sendall(b"y" * 5)
    client.shutdown(socket.SHUT_WR)  # the client gives up before sending the rest
    with gevent.Timeout(2):
        worker._wait_for_bytes(server, 200)
    assert server.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT) == 1


def test_bytes_needed_counts_what_the_parser_has_buffered_already(tcp_pair):
    _, server = tcp_pair
    unreader = SocketUnreader(server)
    unreader.buf = io.BytesIO(b"z" * 30)
    reader = LengthReader(unreader, 100)
    assert worker._socket_bytes_needed(reader, 64) == 34
    assert worker._socket_bytes_needed(reader, 4096) == 70
    assert worker._socket_bytes_needed(reader, 10) == 0
    assert worker._socket_bytes_needed(ChunkedReader(None, unreader), 64) == 0  # length unknown


@pytest.mark.timeout(60)
def test_a_body_sent_in_pieces_is_read_and_echoed(tmp_path):
    body = json.dumps({"pieces": list(range(200))}).encode()
    head = (
        b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with start_app(tmp_path, workers=1, env={"APP_BODY_TIMEOUT_SECONDS": "5"}) as server:
        port = int(server.url.rsplit(":", 1)[1])
        for split in (0, 1, 7, len(body) // 2, len(body) - 1):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head + body[:split])
                time.sleep(0.2)
                sock.sendall(body[split : split + 3])
                time.sleep(0.2)
                sock.sendall(body[split + 3 :])
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            status_line, _, rest = raw.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 200 OK", (split, raw[:300])
            assert json.loads(rest.partition(b"\r\n\r\n")[2])["data"] == {"pieces": list(range(200))}


def _voluntary_switches(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for {pid}")


@pytest.mark.timeout(120)
def test_trickled_bodies_do_not_wake_the_worker_for_every_segment(tmp_path):
    """300 clients each send a 2,000-byte body 2 bytes at a time, one segment each 1 ms in turn
    (3,000 segments in about 3 s). The worker sleeps in epoll between wake-ups, so its voluntary
    context switches count them: with one wake-up per segment they are in the thousands."""
    raise_nofile_limit(4096)
    with start_app(tmp_path, workers=1, env={"APP_BODY_TIMEOUT_SECONDS": "60"}) as server:
        port = int(server.url.rsplit(":", 1)[1])
        (worker_pid,) = worker_pids(server.pid)
        head = (
            b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000\r\n\r\n["
        )
        socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(300)]
        try:
            for sock in socks:
                sock.sendall(head)
            time.sleep(1)  # every request is parsed and waits for its body
            before = _voluntary_switches(worker_pid)
            for _ in range(10):
                for sock in socks:
                    sock.sendall(b"1,")
                    time.sleep(0.001)
            switches = _voluntary_switches(worker_pid) - before
        finally:
            for sock in socks:
                sock.close()
    print(f"\nworker voluntary context switches during 3,000 trickled segments: {switches}")
    assert switches < 300, switches
