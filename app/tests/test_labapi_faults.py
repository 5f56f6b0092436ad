"""Run-time faults in one process: the document's validation, re-reading, bad documents, metrics."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from labapi.faults import NO_FAULTS, FaultDocumentError, Faults, FaultState, parse, validate


def _app_faults(metric, pid: int | None = None) -> dict[str, float]:
    labels = {"pid": str(pid or os.getpid())}
    return {
        name: metric("app_fault", {"fault": name, **labels})
        for name in ("db_failure_rate", "extra_latency_ms", "force_unready", "users_error_rate")
    }


# -- the document --------------------------------------------------------------------------------
def test_a_full_document_is_read_with_its_types():
    faults = parse(
        b"db_failure_rate: 0.6\nextra_latency_ms: 250\nextra_latency_route: /api/users\n"
        b"force_unready: true\nusers_error_rate: 1\n"
    )
    assert faults == Faults(0.6, 250, "/api/users", True, 1.0)


@pytest.mark.parametrize("content", [b"", b"{}", b"# nothing\n", b"null"])
def test_an_empty_document_means_no_faults(content):
    assert parse(content) == NO_FAULTS


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"db_failure_rat": 0.5}, "unknown key 'db_failure_rat'"),
        ({"db_failure_rate": 1.5}, "db_failure_rate: 1.5 is not a number from 0 to 1"),
        ({"db_failure_rate": "0.5"}, "db_failure_rate: '0.5' is not a number from 0 to 1"),
        ({"db_failure_rate": True}, "db_failure_rate: True is not a number"),
        ({"users_error_rate": -0.1}, "users_error_rate: -0.1 is not a number from 0 to 1"),
        (
            {"extra_latency_ms": 60001},
            "extra_latency_ms: 60001 is not an integer number of ms from 0 to 60000",
        ),
        ({"extra_latency_ms": 2.5}, "extra_latency_ms: 2.5 is not an integer"),
        ({"extra_latency_route": "/api/nope"}, "extra_latency_route: '/api/nope' is not"),
        # roles/app_deploy/README.md: "" (every route) or one of the routes; null is neither (drills agree).
        ({"extra_latency_route": None}, "extra_latency_route: None is not"),
        ({"force_unready": "yes please"}, "force_unready: 'yes please' is not true or false"),
        (["db_failure_rate"], "the document is a list, not a mapping"),
    ],
)
def test_a_bad_document_is_rejected_naming_the_problem(document, problem):
    with pytest.raises(FaultDocumentError) as excinfo:
        validate(document)
    assert excinfo.value.reason == "invalid"
    assert problem in str(excinfo.value)


def test_every_problem_of_a_document_is_named_at_once():
    with pytest.raises(FaultDocumentError) as excinfo:
        validate({"nope": 1, "db_failure_rate": 2})
    assert "unknown key 'nope'" in str(excinfo.value)
    assert "db_failure_rate: 2" in str(excinfo.value)


def test_not_yaml_is_invalid():
    with pytest.raises(FaultDocumentError, match="not YAML") as excinfo:
        parse(b"db_failure_rate: [0.5\n")
    assert excinfo.value.reason == "invalid"


# -- the app picks changes up ----------------------------------------------------------------------
def test_faults_change_in_the_running_app(lab_factory, metric):
    lab = lab_factory(faults={})
    assert lab.client.get("/api/users").status_code == 200
    assert lab.client.get("/health/readiness").status_code == 200

    assert lab.set_faults({"db_failure_rate": 1, "force_unready": True}) is True
    assert lab.client.get("/api/users").status_code == 503
    readiness = lab.client.get("/health/readiness")
    assert readiness.status_code == 503
    assert readiness.get_json()["failing"] == ["database", "forced"]
    assert "fault document" in readiness.get_json()["checks"]["forced"]
    assert _app_faults(metric) == {
        "db_failure_rate": 1.0,
        "extra_latency_ms": 0.0,
        "force_unready": 1.0,
        "users_error_rate": 0.0,
    }

    assert lab.set_faults({}) is True
    assert lab.client.get("/api/users").status_code == 200
    assert lab.client.get("/health/readiness").status_code == 200
    assert _app_faults(metric)["db_failure_rate"] == 0.0


def test_the_background_watcher_applies_a_change_without_being_asked(lab_factory):
    lab = lab_factory(faults={}, faults_poll_seconds=0.1)
    path = lab.settings.faults_file
    path.with_name("next").write_text(json.dumps({"force_unready": True}))
    path.with_name("next").replace(path)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not lab.faults.current.force_unready:
        time.sleep(0.05)
    assert lab.faults.current.force_unready
    assert lab.client.get("/health/readiness").status_code == 503


def test_error_burst_answers_part_of_api_users_with_a_json_500(lab_factory, metric):
    lab = lab_factory(faults={"users_error_rate": 0.5})
    before = metric("app_error_count_total", {"error_type": "injected_error", "endpoint": "/api/users"})
    statuses = [lab.client.get("/api/users").status_code for _ in range(200)]
    assert set(statuses) == {200, 500}
    assert 60 <= statuses.count(500) <= 140
    failed = lab.client.get("/api/users")
    while failed.status_code != 500:
        failed = lab.client.get("/api/users")
    assert failed.get_json() == {
        "status": "error",
        "error": "Internal Server Error",
        "message": "injected error burst (fault users_error_rate)",
    }
    after = metric("app_error_count_total", {"error_type": "injected_error", "endpoint": "/api/users"})
    assert after - before == statuses.count(500) + 1
    # other routes are untouched
    assert lab.client.post("/api/echo", json={"a": 1}).status_code == 200


def test_extra_latency_on_one_route_only(lab_factory):
    lab = lab_factory(faults={"extra_latency_ms": 150, "extra_latency_route": "/api/echo"})

    def took(call) -> float:
        started = time.perf_counter()
        assert call().status_code == 200
        return time.perf_counter() - started

    assert took(lambda: lab.client.post("/api/echo", json={})) >= 0.15
    assert took(lambda: lab.client.get("/api/users")) < 0.15
    lab.set_faults({"extra_latency_ms": 150})  # every /api/* route
    assert took(lambda: lab.client.get("/api/users")) >= 0.15
    assert took(lambda: lab.client.get("/health/liveness")) < 0.15  # not an /api route


def test_the_latency_route_metric_is_one_hot(lab_factory, metric):
    lab = lab_factory(faults={"extra_latency_ms": 10, "extra_latency_route": "/api/users"})
    pid = str(os.getpid())
    routes = {
        r: metric("app_fault_latency_route", {"route": r, "pid": pid})
        for r in ("all", "/api/users", "/api/echo")
    }
    assert routes == {"all": 0.0, "/api/users": 1.0, "/api/echo": 0.0}
    lab.set_faults({"extra_latency_ms": 10})
    assert metric("app_fault_latency_route", {"route": "all", "pid": pid}) == 1.0
    assert metric("app_fault_latency_route", {"route": "/api/users", "pid": pid}) == 0.0


# -- bad documents change nothing --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "reason", "named"),
    [
        ({"db_failure_rate": 0.2, "typo_key": 1}, "invalid", "unknown key 'typo_key'"),
        ({"db_failure_rate": 7}, "invalid", "db_failure_rate: 7 is not a number from 0 to 1"),
        ("db_failure_rate: [", "invalid", "not YAML"),
        (None, "unreadable", "cannot read it"),  # the file is gone
    ],
)
def test_a_bad_document_keeps_the_last_good_faults_logs_once_and_counts(
    lab_factory, metric, bad, reason, named
):
    lab = lab_factory(faults={"db_failure_rate": 1})
    errors_before = metric("app_fault_reload_errors_total", {"reason": reason})
    applied_before = lab.faults.applied_at
    if bad is None:
        lab.settings.faults_file.unlink()
        assert lab.faults.check() is False
    else:
        assert lab.set_faults(bad) is False
    for _ in range(3):  # looking again at the same bad document reports nothing more
        assert lab.faults.check() is False

    assert lab.faults.current == Faults(db_failure_rate=1.0)
    assert lab.faults.applied_at == applied_before
    assert lab.client.get("/api/users").status_code == 503
    assert _app_faults(metric)["db_failure_rate"] == 1.0
    assert metric("app_fault_reload_errors_total", {"reason": reason}) - errors_before == 1
    errors = [r for r in lab.json_logs() if r["level"] == "ERROR" and r["logger"] == "labapi.faults"]
    assert len(errors) == 1, errors
    assert named in errors[0]["message"]
    assert str(lab.settings.faults_file) in errors[0]["message"]
    assert "keeping the faults in effect" in errors[0]["message"]

    lab.set_faults({"db_failure_rate": 0})  # a good document again is applied
    assert lab.client.get("/api/users").status_code == 200


def test_a_bad_document_is_reported_by_one_worker_of_an_instance(lab_factory, metric, tmp_path):
    """Two FaultStates sharing the metrics directory stand for two workers of one gunicorn."""
    path = tmp_path / "faults.yaml"
    path.write_text("db_failure_rate: 0.5\n")
    claims = tmp_path / "claims"
    claims.mkdir()
    rejected: list[str] = []
    workers = [FaultState(path, claim_dir=claims, on_reject=rejected.append) for _ in range(3)]
    for worker in workers:
        worker.load_initial()
    path.write_text("db_failure_rate: 5\n")
    for worker in workers:
        assert worker.check() is False
        assert worker.current.db_failure_rate == 0.5
    assert rejected == ["invalid"]
    path.write_text("db_failure_rate: 6\n")  # another bad document: reported again, once
    for worker in workers:
        worker.check()
    assert rejected == ["invalid", "invalid"]


def test_a_missing_document_at_start_means_no_faults_without_an_error(tmp_path):
    rejected: list[str] = []
    state = FaultState(tmp_path / "faults.yaml", claim_dir=tmp_path, on_reject=rejected.append)
    state.load_initial()
    assert state.current == NO_FAULTS
    assert state.check() is False
    assert rejected == []
    (tmp_path / "faults.yaml").write_text("force_unready: true\n")
    assert state.check() is True
    assert state.current.force_unready


def test_a_bad_document_at_start_means_no_faults_and_is_reported(tmp_path):
    (tmp_path / "faults.yaml").write_text("db_failure_rate: high\n")
    rejected: list[str] = []
    state = FaultState(tmp_path / "faults.yaml", claim_dir=tmp_path, on_reject=rejected.append)
    state.load_initial()
    assert state.current == NO_FAULTS
    assert rejected == ["invalid"]


def test_a_configmap_style_symlink_swap_is_seen_even_with_the_same_size_and_mtime(tmp_path):
    """A ConfigMap volume: faults.yaml -> ..data/faults.yaml, ..data -> ..<timestamp>; the kubelet writes a new
    timestamped directory and renames a new ..data symlink over the old one."""

    def version(name: str, text: str) -> None:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "faults.yaml").write_text(text)
        os.utime(directory / "faults.yaml", ns=(1_000_000_000, 1_000_000_000))

    version("..v1", "db_failure_rate: 0.1\n")
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "faults.yaml").symlink_to("..data/faults.yaml")
    state = FaultState(tmp_path / "faults.yaml", claim_dir=tmp_path)
    state.load_initial()
    assert state.current.db_failure_rate == 0.1
    link_stat = os.lstat(tmp_path / "faults.yaml")

    version("..v2", "db_failure_rate: 0.9\n")  # same size, same mtime
    (tmp_path / "..data_tmp").symlink_to("..v2")
    (tmp_path / "..data_tmp").replace(tmp_path / "..data")
    assert (
        os.lstat(tmp_path / "faults.yaml").st_mtime_ns == link_stat.st_mtime_ns
    )  # the path itself did not move
    assert state.check() is True
    assert state.current.db_failure_rate == 0.9


def test_the_applied_timestamp_moves_only_when_the_faults_change(lab_factory, metric):
    lab = lab_factory(faults={"extra_latency_ms": 0})
    pid = {"pid": str(os.getpid())}
    first = metric("app_faults_applied_timestamp_seconds", pid)
    assert first == pytest.approx(lab.faults.applied_at)
    assert lab.set_faults("extra_latency_ms: 0  # same faults, other bytes\n") is False
    assert lab.faults.applied_at == first
    time.sleep(0.01)
    assert lab.set_faults({"extra_latency_ms": 5}) is True
    assert metric("app_faults_applied_timestamp_seconds", pid) == pytest.approx(lab.faults.applied_at)
    assert lab.faults.applied_at > first


def test_an_app_without_a_fault_document_has_no_faults_and_zero_gauges(lab, metric):
    assert lab.settings.faults_file is None
    assert lab.faults.current == NO_FAULTS
    assert lab.client.get("/health/readiness").status_code == 200
    assert metric("app_fault", {"fault": "force_unready", "pid": str(os.getpid())}) == 0.0


def test_faults_file_path_is_not_a_directory(tmp_path: Path):
    from labapi.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="APP_FAULTS_FILE"):
        load_settings({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "APP_FAULTS_FILE": str(tmp_path)})
