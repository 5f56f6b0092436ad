"""What a fault rate means for the users is written where people look (issue 19, item 13).

`db_failure_rate: 0.5` gave 25% of 503s: GET /api/users retries a failed simulated query APP_DB_RETRIES times (1),
so a request fails only when every try does, rate^(retries+1). The app's own database model is run to show that the
documented formula is the app's behaviour, then every place a user reads about the rate must say it.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable

import pytest
import yaml

from tests.conftest import ROOT


def test_the_user_visible_rate_is_rate_to_the_power_of_the_tries() -> None:
    from labapi.db import DatabaseUnavailableError, SimulatedDatabase

    settings = yaml.safe_load((ROOT / "group_vars/all/app.yml").read_text())["app_deploy_settings"]
    retries = int(settings["APP_DB_RETRIES"])
    db = SimulatedDatabase(failure_rate=0.5, retries=retries, rng=random.Random(19), sleep=lambda _s: None)
    failed = 0
    for _ in range(20_000):
        try:
            db.query_users()
        except DatabaseUnavailableError:
            failed += 1
    assert failed / 20_000 == pytest.approx(0.5 ** (retries + 1), abs=0.01)


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    following = re.search(r"\n#{1,3} ", text[start + len(heading) :])
    return text[start : start + len(heading) + (following.start() if following else len(text))]


@pytest.mark.parametrize(
    ("where", "text"),
    [
        (
            "README.md, Break it on purpose",
            lambda: section((ROOT / "README.md").read_text(), "### Break it on purpose"),
        ),
        ("roles/app_deploy/README.md", lambda: (ROOT / "roles/app_deploy/README.md").read_text()),
        ("group_vars/all/app.yml", lambda: (ROOT / "group_vars/all/app.yml").read_text()),
        (
            "make help",
            lambda: (
                subprocess.run(
                    ["make", "--no-print-directory", "help"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            ),
        ),
    ],
    ids=["readme", "role-readme", "group-vars", "make-help"],
)
def test_every_fault_doc_states_what_a_rate_means_for_the_users(where: str, text: Callable[[], str]) -> None:
    body = " ".join(text().split())
    assert "APP_DB_RETRIES" in body, f"{where} does not say that the failed query is retried"
    assert "25%" in body, f"{where} does not give the worked example (0.5 -> 25% of 503s)"
