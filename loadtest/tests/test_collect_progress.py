"""Collecting a Kubernetes run from the pod log, and the local progress line."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from loadtest import collect, progress


def archive(files: dict[str, bytes]) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    encoded = base64.b64encode(buf.getvalue()).decode()
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))  # base64 wraps lines


STATS_LINE = (
    "         Aggregated                                   1234     5(0.41%) |     12       1     200     10 |"
    "   41.10        0.17"
)


def pod_log(files: dict[str, bytes]) -> str:
    return "\n".join(
        [
            "LAB_START 1700000000",
            "[2026-11-24 01:00:00,000] locust-abc/INFO/locust.main: Starting Locust 2.47.0",
            STATS_LINE,
            "LAB_END 1700000060 1",
            "LAB_FILES_BEGIN",
            archive(files),
            "LAB_FILES_END",
        ]
    )


def test_collect_unpacks_the_reports_and_records_the_window(tmp_path: Path) -> None:
    (tmp_path / "pod.log").write_text(pod_log({"locust_stats.csv": b"a,b\n", "locust.html": b"<html>"}))
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "x"}))
    assert collect.main(["--log", str(tmp_path / "pod.log"), "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "locust_stats.csv").read_bytes() == b"a,b\n"
    assert (tmp_path / "locust.html").read_bytes() == b"<html>"
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["run_id"] == "x"
    assert (run["start"], run["end"], run["locust_exit_code"]) == (1700000000.0, 1700000060.0, 1)
    assert run["locust_csv_prefix"] == str(tmp_path / "locust")


def test_collect_refuses_an_unfinished_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "pod.log").write_text("LAB_START 1700000000\nsome output\n")
    assert collect.main(["--log", str(tmp_path / "pod.log"), "--dir", str(tmp_path)]) == 2
    assert "no LAB_END line" in capsys.readouterr().err
    with pytest.raises(collect.CollectError, match="never started"):
        collect.parse_log("nothing")


def test_collect_keeps_archive_members_inside_the_report_dir(tmp_path: Path) -> None:
    names = collect.unpack(archive({"../../escape.csv": b"x"}).replace("\n", ""), tmp_path)
    assert names == ["escape.csv"]
    assert (tmp_path / "escape.csv").exists()


def test_progress_line_from_the_stats_history(tmp_path: Path) -> None:
    header = (
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
        "Total Request Count,Total Failure Count"
    )
    rows = [
        "1,5,,Aggregated,3.0,0.0,10,11,12,13,14,15,16,17,18,19,20,30,0",
        "2,10,,Aggregated,9.5,0.5,11,11,12,13,14,40,16,90,18,19,20,120,2",
    ]
    (tmp_path / "locust_stats_history.csv").write_text("\n".join([header, *rows]) + "\n")
    row = progress.latest_line(tmp_path / "locust_stats_history.csv")
    assert progress.format_line(row, 20.4, finished=False) == (
        "t=20s running: users=10 rps=9.5 fail/s=0.5 p50=11ms p95=40ms p99=90ms requests=120 failures=2"
    )
    assert progress.format_line(None, 1, finished=False) == "t=1s running: Locust has no stats yet"


def test_progress_returns_as_soon_as_the_run_has_ended(tmp_path: Path, capsys) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"start": 1.0, "end": 2.0}))
    assert progress.main(["--dir", str(tmp_path), "--interval", "30"]) == 0
    assert " finished: " in capsys.readouterr().out
