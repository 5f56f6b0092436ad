"""Open a local HTML file, or a page a test server serves on loopback, in headless Chromium (Debian's `chromium`)
with the network off, as a person would.

    page = open_in_chromium(Path("report.html"), tmp_path)
    page = open_url_in_chromium("http://127.0.0.1:8123/docs", tmp_path)  # its scripts run first
    page.dom          # the DOM after load (--dump-dom)
    page.console      # console messages and script errors Chromium logged
    page.screenshot   # PNG of the page

Flags per docs (machines notes): --headless --no-sandbox --disable-gpu --disable-background-networking
--no-first-run, a fresh --user-data-dir; every host resolves to nothing and the proxy is a closed port, so
a page that tries to fetch anything gets nothing; a page opened by URL may also fetch from 127.0.0.1 (the test's own
server), nothing else.
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


def _chromium(args: list[str], profile: Path, *, loopback: bool = False) -> subprocess.CompletedProcess[str]:
    binary = require_binary("chromium")
    resolver = "MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if loopback else "")
    return subprocess.run(
        [binary, *_FLAGS, f"--host-resolver-rules={resolver}", f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def open_in_chromium(page: Path, work: Path, *, width: int = 1280, height: int = 6000) -> Page:
    return _open(page.resolve().as_uri(), work, name=page.stem, width=width, height=height)


def open_url_in_chromium(url: str, work: Path, *, name: str = "page", script_ms: int = 15000) -> Page:
    """A page a test server serves on 127.0.0.1 (the only host it can reach); its scripts run (and fetch) for
    `script_ms` of virtual time before the DOM is dumped and the screenshot taken (a page that renders itself)."""
    return _open(url, work, name=name, width=1280, height=6000, script_ms=script_ms, loopback=True)


def _open(
    url: str, work: Path, *, name: str, width: int, height: int, script_ms: int = 0, loopback: bool = False
) -> Page:
    shot = work / f"{name}.png"
    wait = [f"--virtual-time-budget={script_ms}"] if script_ms else []
    dump = _chromium([*wait, "--dump-dom", url], work / "profile-dom", loopback=loopback)
    grab = _chromium(
        [*wait, f"--screenshot={shot}", f"--window-size={width},{height}", url],
        work / "profile-shot",
        loopback=loopback,
    )
    if dump.returncode != 0 or grab.returncode != 0 or not shot.exists():
        raise RuntimeError(f"chromium failed: {dump.stderr[-2000:]}\n{grab.stderr[-2000:]}")
    console = [line for line in (dump.stderr + grab.stderr).splitlines() if _CONSOLE.search(line)]
    return Page(dump.stdout, console, shot)
