"""A real server with the demo and a real Chromium, shared by every browser test (through the ``demo_server``
and ``page`` fixtures of tests/conftest.py) and by benchmarks/bench_pages.py.

Under TEST_DATABASE_URL (CI's PostgreSQL pass) each server gets a throw-away PostgreSQL database of its own;
otherwise SQLite in its instance folder."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
NO_CHROMIUM = "Debian's chromium is not installed (.ci/run installs it)"
AXE = ROOT / "tests" / "fixtures" / "axe" / "axe.min.js"
PASSWORDS = {
    # The production password rule applies to the CLI and first start as well (two capitals, two digits, a sign).
    "admin": "Admin-Live-pw-12",
    "finance": "Finance-Live-pw-12",
    "program": "Program-Live-pw-12",
    "donor.gf": "Donor-Live-pw-12",
    "auditor": "Auditor-Live-pw-12",
}
ROLES = list(PASSWORDS)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SERVE = ("serve", "--no-scheduler")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def password_variable(username: str) -> str:
    """The environment variable that sets a demo user's password on first start: donor.gf -> ..._DONOR_GF."""
    return "GRANTKEEPER_PASSWORD_" + username.upper().replace(".", "_")


@contextmanager
def _database() -> Iterator[str | None]:
    """A throw-away PostgreSQL database under TEST_DATABASE_URL, else None (SQLite in the instance folder)."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        yield None
        return
    from tests.conftest import _postgres_database

    yield from _postgres_database(base)


@contextmanager
def running_server(
    instance: Path,
    *,
    passwords: Mapping[str, str] = PASSWORDS,
    environment: Mapping[str, str] | None = None,
    args: Sequence[str] = SERVE,
    ready: Callable[[dict[str, str]], None] | None = None,
) -> Iterator[str]:
    """``python run.py *args`` on a free port, which loads the demo on first start; yields its base URL.

    ``passwords`` are the demo users' passwords (the others are generated), ``environment`` extra variables
    (GRANTKEEPER_IATI_ORG_REF...); ``ready(env)`` runs once the server answers, with the server's environment
    (to set up more data in its database). Under TEST_DATABASE_URL the database is a new PostgreSQL one,
    dropped when the server has stopped."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env.update({"GRANTKEEPER_INSTANCE": str(instance), "GRANTKEEPER_PORT": str(port)})
    env.update({password_variable(user): password for user, password in passwords.items()})
    env.update(environment or {})
    with _database() as database_url:
        if database_url:
            env["DATABASE_URL"] = database_url
        process = subprocess.Popen(
            [sys.executable, "run.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "/login/", timeout=2).read()
                    break
                except OSError:
                    if process.poll() is not None:
                        output = process.stdout.read() if process.stdout else ""
                        raise RuntimeError("server exited: " + output) from None
                    time.sleep(0.2)
            if ready is not None:
                ready(dict(env))
            yield url
        finally:
            process.terminate()
            process.communicate(timeout=30)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, url: str, username: str, password: str | None = None) -> None:
    """Sign in through the login form (with the harness's default password of ``username`` unless given)."""
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password if password is not None else PASSWORDS[username])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()


def demo_grant_id(page: Any, url: str, reference: str = "RCM-HIV-2026-SW") -> int:
    """The id of a demo grant, read from the grants list (the row naming it links to its page)."""
    page.goto(url + "/grants/list/")
    href = page.evaluate(
        """reference => {
            for (const row of document.querySelectorAll('tr')) {
                const link = row.querySelector("a[href*='/grants/show/']");
                if (link && row.textContent.includes(reference)) { return link.getAttribute('href'); }
            }
            return '';
        }""",
        reference,
    )
    found = re.search(r"/grants/show/(\d+)", href)
    assert found, f"{reference} is not in the grants list"
    return int(found.group(1))


def result_form_path(page: Any, url: str) -> str:
    """The result form of the first indicator and period offered by the chooser (or the chooser)."""
    page.goto(url + "/indicator-results/record")
    indicator = page.locator("select[name=indicator] option").first
    period = page.locator("select[name=period] option:not([disabled])").first
    if not indicator.count() or not period.count():
        return "/indicator-results/record"
    return (
        f"/indicator-results/record?indicator={indicator.get_attribute('value')}&period={period.get_attribute('value')}"
    )


def cycle_pages(page: Any, url: str) -> dict[str, str]:
    """Every page of the reporting cycle, by name, for the signed-in user (ids read from the demo)."""
    grant = demo_grant_id(page, url)
    return {
        "landing page": "/",
        "grant page": f"/grants/show/{grant}",
        "period list": "/periods/list/",
        "result form": result_form_path(page, url),
        "evidence list": "/evidence/list/",
        "evidence form": f"/evidence/add?grant_id={grant}",
        "consultation form": "/consultations/add",
        "requirement list": "/requirements/list/",
        "compliance matrix": f"/requirements/matrix/{grant}",
        "budget vs actual": f"/budget-report/grant/{grant}",
        "progress table": f"/indicator-progress/{grant}",
        "my deadlines": "/my-deadlines/",
        "exports list": "/exports/list/",
    }
