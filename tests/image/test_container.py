"""The API's container, run as the rendered Deployment runs it (tests/image/pod.py), checked from outside like the
kubelet, Prometheus and a client would. The drain test stops the container: it runs last."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from loadtest.checks import check_echo, check_expected_error, check_health, check_users
from tests.image.conftest import FIGURES, BuiltImage, Running, start_container
from tests.image.engine import Engine

# The first test also waits for the session fixtures: render, and a cold build (minutes on a busy machine).
pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]

FAMILIES = {
    "app_request_count": "counter",
    "app_request_latency_seconds": "histogram",
    "app_error_count": "counter",
    "app_active_requests": "gauge",
}


def users_ok(response: requests.Response) -> str | None:
    """GET /api/users: the users, or (the simulated database failing every attempt) the JSON 503 it documents."""
    if response.status_code == 503:
        return check_expected_error(503, response.text, 503)
    return check_users(response.status_code, response.text)


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    families = list(text_string_to_metric_families(requests.get(url + "/metrics", timeout=10).text))
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def count(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_probes_answer_within_their_timeouts(container: Running):
    for kind, probe in container.pod.probes.items():
        response = requests.get(container.url + probe.path, timeout=probe.timeout)
        assert check_health(response.status_code, response.text, probe.path.rsplit("/", 1)[-1]) is None, kind


def test_every_endpoint_keeps_its_contract(container: Running):
    url = container.url
    users = [requests.get(url + "/api/users", timeout=10) for _ in range(5)]
    assert [why for why in map(users_ok, users) if why] == []
    assert any(r.status_code == 200 for r in users)
    for payload in ({"a": 1, "nested": [1, {"b": None}]}, [1, 2, 3], "text"):
        echo = requests.post(url + "/api/echo", json=payload, timeout=10)
        assert check_echo(echo.status_code, echo.text, payload) is None
    bad = requests.post(
        url + "/api/echo", data="{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert bad.status_code == 400
    assert "error" in bad.json()
    for kind, status in (("client", 400), ("server", 500)):
        error = requests.get(url + "/api/error", params={"type": kind}, timeout=10)
        assert check_expected_error(error.status_code, error.text, status) is None
    missing = requests.get(url + "/no/such/path", timeout=10)
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong = requests.delete(url + "/api/users", timeout=10)
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["Allow"]
    for response in [*users, bad, missing, wrong]:
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers.get("X-Request-ID")


def test_metrics_count_every_request_summed_over_the_workers(container: Running):
    url = container.url
    before = scrape(url)
    with ThreadPoolExecutor(16) as pool:
        users = list(pool.map(lambda _: requests.get(url + "/api/users", timeout=20).status_code, range(200)))
        echoes = list(
            pool.map(
                lambda i: requests.post(url + "/api/echo", json={"i": i}, timeout=20).status_code, range(60)
            )
        )
        errors = list(
            pool.map(
                lambda _: requests.get(url + "/api/error", params={"type": "client"}, timeout=20).status_code,
                range(40),
            )
        )
    after = scrape(url)
    text = requests.get(url + "/metrics", timeout=10).text
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES

    def delta(name: str, **labels: str) -> float:
        return count(after, name, **labels) - count(before, name, **labels)

    assert set(echoes) == {200}
    assert set(errors) == {400}
    for status in set(users):
        assert delta(
            "app_request_count_total", endpoint="/api/users", http_status=str(status)
        ) == users.count(status)
    assert delta("app_request_count_total", endpoint="/api/echo", http_status="200") == 60
    assert delta("app_request_count_total", endpoint="/api/error", http_status="400") == 40
    assert delta("app_request_latency_seconds_count", endpoint="/api/users") == 200
    assert delta("app_error_count_total", endpoint="/api/error") == 40
    assert count(after, "app_active_requests") == 0
    # The counts are the sum over every worker: the traffic was spread over several processes' files.
    workers = int(container.pod.env["APP_WORKERS"])
    assert len(children(container.pid)) == workers
    metrics_dir = Path(f"/proc/{container.pid}/root") / container.pod.env["PROMETHEUS_MULTIPROC_DIR"].lstrip(
        "/"
    )
    counter_files = sorted(p.name for p in metrics_dir.glob("counter_*.db"))
    if workers > 1:
        assert len(counter_files) >= 2, counter_files


def test_log_lines_are_json_on_stdout_with_the_request_ids(container: Running):
    ids = {kind: f"image-test-{kind}-{uuid.uuid4().hex}" for kind in ("client", "server")}
    for kind, request_id in ids.items():
        response = requests.get(
            container.url + "/api/error",
            params={"type": kind},
            headers={"X-Request-ID": request_id},
            timeout=10,
        )
        assert response.headers["X-Request-ID"] == request_id
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in container.stdout().splitlines() if line.strip()]
        seen = {r.get("request_id") for r in records}
        if set(ids.values()) <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(ids.values()) <= seen
    assert records
    assert all(isinstance(r, dict) and {"timestamp", "level", "message"} <= set(r) for r in records)


def test_runs_as_the_pod_user_without_privileges(container: Running):
    uid, gid = container.pod.user.split(":")
    pids = [container.pid, *children(container.pid)]
    assert len(pids) >= 2
    for pid in pids:
        status = proc_status(pid)
        assert status["Uid"].split() == [uid] * 4, pid
        assert status["Gid"].split() == [gid] * 4, pid
        assert int(status["CapEff"], 16) == 0
        assert int(status["CapPrm"], 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
    assert container.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"


def layer_changes(diff: str, mount_points: list[str]) -> list[str]:
    """`docker diff` lines, less the mount points and their parent directories (made by the engine)."""
    made_by_engine = {str(parent) for point in mount_points for parent in (Path(point), *Path(point).parents)}
    return [
        line for line in diff.splitlines() if line.strip() and line.split(" ", 1)[1] not in made_by_engine
    ]


def test_nothing_is_written_outside_the_mounted_paths(
    container: Running, engine: Engine, built_image: BuiltImage, rendered_dir: Path, tmp_path: Path
):
    # Read-only root: after all the traffic above the container's own layer is untouched (but for the
    # directories the engine itself creates for a volume's mount point when the image lacks it, as the
    # kubelet's runtime does)...
    assert (
        layer_changes(container.engine.run("diff", container.name).stdout, container.pod.mount_points) == []
    )
    # ...and that is not only because writes fail: with a writable root, the app still writes nothing there.
    writable = start_container(engine, built_image.ref, rendered_dir, tmp_path, read_only=False)
    try:
        assert writable.inspect("{{.HostConfig.ReadonlyRootfs}}") == "false"
        requests.get(writable.url + "/api/users", timeout=10)
        requests.post(writable.url + "/api/echo", json={"k": "v"}, timeout=10)
        requests.get(writable.url + "/api/error", params={"type": "server"}, timeout=10)
        requests.get(writable.url + "/metrics", timeout=10)
        assert layer_changes(engine.run("diff", writable.name).stdout, writable.pod.mount_points) == []
    finally:
        engine.run("rm", "--force", writable.name, check=False)
    # The writes go to the pod's writable mounts (the emptyDir as tmpfs): the metric files are there.
    metrics_dir = Path(f"/proc/{container.pid}/root") / container.pod.env["PROMETHEUS_MULTIPROC_DIR"].lstrip(
        "/"
    )
    assert any(metrics_dir.glob("*.db"))
    assert any(
        container.pod.env["PROMETHEUS_MULTIPROC_DIR"].startswith(m.rstrip("/") + "/")
        for m in container.pod.mounts
    )


def test_docker_stop_drains_then_exits_0_within_the_grace_period(container: Running):
    """docker stop sends SIGTERM to PID 1, as the kubelet does, and SIGKILL after the pod's grace period.

    Timing is read from what the clients saw, not from when `docker stop` was called (the CLI and the daemon take
    their time on a busy machine): the last readiness 200 and the first 503 bracket the SIGTERM."""
    url, drain = container.url, float(container.pod.env.get("APP_SHUTDOWN_DRAIN_SECONDS", "0"))
    readiness = container.pod.probes["readiness"]
    stop, listener_closed = threading.Event(), threading.Event()
    eager: list[tuple[float, float, str | None]] = []  # (started, ended, why not the contract / None)
    probes: list[tuple[float, float, int]] = []  # (sent, answered, status)
    slow: list[tuple[float, str | None]] = []  # (answered, why not the contract / None)

    def eager_client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                why = users_ok(requests.get(url + "/api/users", timeout=30))
            except requests.ConnectionError as exc:
                eager.append((started, time.monotonic(), f"connection error: {exc}"))
                return
            eager.append((started, time.monotonic(), why))

    def kubelet_readiness() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status = requests.get(url + readiness.path, timeout=readiness.timeout).status_code
            except requests.ConnectionError:
                listener_closed.set()
                return
            probes.append((sent, time.monotonic(), status))
            time.sleep(0.2)

    payload = {"k": "in flight while the workers stop"}

    def in_flight_body():
        body = json.dumps(payload).encode()
        yield body[:5]
        listener_closed.wait(container.pod.grace_seconds)  # the request is in flight when the listener closes
        time.sleep(0.5)
        yield body[5:]

    def slow_client() -> None:
        response = requests.post(
            url + "/api/echo", data=in_flight_body(), headers={"Content-Type": "application/json"}, timeout=60
        )
        slow.append((time.monotonic(), check_echo(response.status_code, response.text, payload)))

    threads = [threading.Thread(target=eager_client) for _ in range(6)]
    threads += [threading.Thread(target=kubelet_readiness), threading.Thread(target=slow_client)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while (len(eager) < 20 or len(probes) < 2) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(eager) >= 20, "no traffic before the stop"
        called = time.monotonic()
        stopped = container.engine.run(
            "stop", "--time", str(container.pod.grace_seconds), container.name, timeout=120
        )
        elapsed = time.monotonic() - called
    finally:
        stop.set()
        listener_closed.set()
        for thread in threads:
            thread.join(60)
    assert stopped.returncode == 0
    exit_code = container.inspect("{{.State.ExitCode}}")
    assert container.inspect("{{.State.OOMKilled}}") == "false"
    statuses = [status for _, _, status in probes]
    assert 503 in statuses, f"readiness never went 503 during the drain: {statuses}"
    first_503 = statuses.index(503)
    assert set(statuses[first_503:]) == {503}, statuses  # once draining, never ready again
    assert 200 in statuses[:first_503]
    last_200_sent = probes[first_503 - 1][0]  # SIGTERM arrived after this probe was sent...
    window = probes[-1][1] - probes[first_503][0]  # ...and readiness answered 503 for (at least) this long
    FIGURES["drain on SIGTERM"] = (
        f"docker stop returned after {elapsed:.1f} s, exit code {exit_code}; readiness 503 seen for {window:.1f} s "
        f"(APP_SHUTDOWN_DRAIN_SECONDS={drain:g}, terminationGracePeriodSeconds={container.pod.grace_seconds})"
    )
    assert exit_code == "0", (
        container.logs()
    )  # stopped by itself, not by the SIGKILL at the end of the grace period
    assert drain <= elapsed < container.pod.grace_seconds
    assert window >= drain / 2, f"readiness was 503 for only {window:.1f} s of a {drain:g} s drain"
    # Every request sent before the drain could have ended got its contract answer (200, or the documented JSON
    # 503 of the simulated database); later ones may only fail at the connection level (listener closed).
    early = [
        (round(start - last_200_sent, 2), why)
        for start, _, why in eager
        if start < last_200_sent + drain - 0.2
    ]
    assert early
    assert [e for e in early if e[1]] == []
    assert not [why for _, _, why in eager if why and not why.startswith("connection error")]
    # The request whose body was still being sent when the listener closed was answered in full.
    assert slow, "the in-flight request got no answer"
    assert slow[0][1] is None, slow
