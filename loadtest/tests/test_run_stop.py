"""loadtest.run --stop reads run.json while the run writes its end: a half-written file is not an error.

A drill at the default intervals failed at "End Locust" with a JSONDecodeError (2026-12-06): --stop read run.json
in the middle of the run's rewrite. The run now writes it in one step and --stop reads on until "end" is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from loadtest.run import stop


def test_stop_waits_through_a_half_written_run_json(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "locust"])
    run_file = tmp_path / "run.json"
    run = {"locust_pid": proc.pid, "background": True}
    run_file.write_text(json.dumps(run))

    def the_run_ends() -> None:
        time.sleep(0.6)
        run_file.write_text(json.dumps(run)[:10])  # what a reader sees in the middle of a rewrite
        time.sleep(1.2)
        run_file.write_text(json.dumps({**run, "end": time.time(), "stopped": True}))

    writer = threading.Thread(target=the_run_ends)
    writer.start()
    try:
        assert stop(tmp_path, timeout=10) == 0
    finally:
        writer.join()
        proc.kill()
        proc.wait()
    assert proc.returncode != 0  # it got the SIGTERM
