"""Open a local HTML file in headless Chromium (Debian's `chromium`) with the network off, as a person would.

    page = open_in_chromium(Path("report.html"), tmp_path)
    page.dom          # the DOM after load (--dump-dom)
    page.console      # console messages and script errors Chromium logged
    page.screenshot   # PNG of the page

Flags per docs (machines notes): --headless --no-sandbox --disable-gpu --disable-background-networking
--no-first-run, a fresh --user-data-dir; every host resolves to nothing and the proxy is a closed port, so
a page that tries to fetch anything gets nothing.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.prometheus import require_binary

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--enable-logging=stderr",
    "--v=0",
    "--hide-scrollbars",
]
_CONSOLE = re.compile(r"CONSOLE\(\d+\)|Uncaught|Refused to|net::ERR_", re.IGNORECASE)


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]
    screenshot: Path


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium")
    return subprocess.run(
        [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def open_in_chromium(page: Path, work: Path, *, width: int = 1280, height: int = 6000) -> Page:
    url = page.resolve().as_uri()
    shot = work / f"{page.stem}.png"
    dump = _chromium(["--dump-dom", url], work / "profile-dom")
    grab = _chromium([f"--screenshot={shot}", f"--window-size={width},{height}", url], work / "profile-shot")
    if dump.returncode != 0 or grab.returncode != 0 or not shot.exists():
        raise RuntimeError(f"chromium failed: {dump.stderr[-2000:]}\n{grab.stderr[-2000:]}")
    console = [line for line in (dump.stderr + grab.stderr).splitlines() if _CONSOLE.search(line)]
    return Page(dump.stdout, console, shot)
