"""Grantkeeper in French and in Dutch, in a real browser: a French program lead and a Dutch administrator each
close a period, read its labels, an amount and a date their way, and get their reminder e-mail in their language.

Screenshots go to ``test-results/``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]

SHOTS = ROOT / "test-results"
PASSWORDS = {"program": "Program-Browser-pw-12", "admin": "Admin-Browser-pw-12"}
FRENCH_AMOUNT = re.compile(r"USD \d{1,3}(?:\u202f\d{3})*,\d{2}")  # USD 1 234 567,00 (narrow no-break spaces)
DUTCH_AMOUNT = re.compile(r"[A-Z]{3} \d{1,3}(?:\.\d{3})*,\d{2}")  # XCD 1.234.567,00
FRENCH_DAY = re.compile(r"\b\d{1,2} (?:janv|févr|mars|avr|mai|juin|juil|août|sept|oct|nov|déc)\.? \d{4}\b")
DUTCH_DAY = re.compile(r"\b\d{1,2} (?:jan|feb|mrt|apr|mei|jun|jul|aug|sep|okt|nov|dec) \d{4}\b")


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        from email import message_from_bytes
        from email.policy import default

        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="module")
def server(demo_server):
    environment: dict[str, str] = {}
    url = demo_server("languages-instance", passwords=PASSWORDS, args=(), ready=environment.update)
    return url, environment


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"languages-{name}.png"), full_page=True)


def _close_first_open_period(page, grant: str, close_word: str) -> None:
    """From the start page to the grant page, then the first period still to close; generate and publish."""
    page.click(f"a:text-is('{grant}')")
    page.wait_for_load_state()
    page.locator(f"a.close-period-link:has-text('{close_word}')").first.click()
    page.wait_for_load_state()


def _publish(page) -> None:
    page.click("#generate-button")
    page.wait_for_load_state()
    page.click("#publish-button")
    page.wait_for_load_state()


def test_a_french_and_a_dutch_user_close_periods_in_their_language(server, page):
    url, environment = server

    # The French program lead chooses their language on "My language" (from the user menu).
    sign_in(page, url, "program", PASSWORDS["program"])
    page.goto(url + "/my-language/")
    page.check("input[name=language][value=fr]")
    page.click("#my-language button[type=submit]")
    page.wait_for_load_state()
    assert "Votre langue est enregistrée." in page.content()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.goto(url + "/")
    assert "Mes subventions" in page.content()
    page.click("a:text-is('RCM-HIV-2026-SW')")
    page.wait_for_load_state()
    header = page.locator(".grant-header").inner_text()
    assert FRENCH_AMOUNT.search(header), header  # the grant's amount, written the French way
    assert FRENCH_DAY.search(header), header  # its dates too
    page.goto(url + "/")
    _close_first_open_period(page, "RCM-HIV-2026-SW", "Clôturer S2")
    assert page.locator(".page-header :is(h1, h2)").inner_text().startswith("Clôturer S2")
    assert FRENCH_DAY.search(page.locator("#period-dates").inner_text())
    lines = page.locator("#closing-checklist tr.checklist-line")
    assert lines.count() >= 5
    for i in range(lines.count()):
        status = lines.nth(i).locator("td").first.inner_text().strip()
        assert status.split(" ", 1)[-1] in ("Fait", "À vérifier", "Manquant"), status
    assert "Justificatifs joints et vérifiés" in page.locator("#closing-checklist").inner_text()
    shot(page, "1-french-checklist")
    _publish(page)
    status = page.locator("#period-status").inner_text()
    assert status.startswith("Remise au bailleur le ") and "par Petra Alexander" in status, status
    assert FRENCH_DAY.search(status) and "échéance close le" in status, status
    shot(page, "2-french-submitted")

    # The Dutch administrator switches with the navigation bar's language menu; it is kept as their language.
    page.context.clear_cookies()
    sign_in(page, url, "admin", PASSWORDS["admin"])
    page.click("a.dropdown-toggle:has-text('Language:')")
    page.click("a[lang=nl]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "nl"
    assert "Taal:" in page.locator("nav").inner_text()
    page.goto(url + "/")
    page.click("a:text-is('CNF-CORE-2026')")
    page.wait_for_load_state()
    header = page.locator(".grant-header").inner_text()
    assert DUTCH_AMOUNT.search(header) and DUTCH_DAY.search(header), header
    page.goto(url + "/")
    _close_first_open_period(page, "CNF-CORE-2026", "Afsluiten")
    heading = page.locator(".page-header :is(h1, h2)").inner_text()
    assert heading.split(" ")[1].startswith("afsluiten"), heading
    assert DUTCH_DAY.search(page.locator("#period-dates").inner_text())
    assert "Bewijsstukken bijgevoegd en geverifieerd" in page.locator("#closing-checklist").inner_text()
    shot(page, "3-dutch-checklist")
    _publish(page)
    status = page.locator("#period-status").inner_text()
    assert status.startswith("Ingediend bij de donor op ") and DUTCH_DAY.search(status), status
    shot(page, "4-dutch-submitted")

    # Each gets their reminder e-mail in their language, from the real scheduler over real SMTP.
    from aiosmtpd.controller import Controller

    from tests.grants.deadlines.conftest import free_port

    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {
            **environment,
            "GRANTKEEPER_SMTP_HOST": "127.0.0.1",
            "GRANTKEEPER_SMTP_PORT": str(port),
            "GRANTKEEPER_SMTP_STARTTLS": "false",
        }
        subprocess.run([sys.executable, "-c", _DEADLINES], cwd=ROOT, env=env, check=True, timeout=120)
        sweep = subprocess.run(
            [sys.executable, "run.py", "scheduler", "--once"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    finally:
        controller.stop()
    french = [m for m in inbox.to("program@demo.example.org") if "Rapport narratif" in m["Subject"]]
    dutch = [m for m in inbox.to("admin@demo.example.org") if "Verslag aan het bestuur" in m["Subject"]]
    assert len(french) == 1 and len(dutch) == 1, [m["Subject"] for m in inbox.messages]
    assert "à rendre dans 7 jours" in french[0]["Subject"] and FRENCH_DAY.search(french[0]["Subject"])
    assert "Bonjour Petra," in french[0].get_content()
    assert "uiterlijk over 7 dagen" in dutch[0]["Subject"] and DUTCH_DAY.search(dutch[0]["Subject"])
    assert "Ontbreekt nog" in dutch[0].get_content()


# Run in the server's environment: one deadline in 7 days for each of the two users (their reminder stage).
_DEADLINES = """
import datetime as dt
from app import create_app
from core import clock
from core.extensions import db
from grants.deadlines import services
from grants.models import Grant

app = create_app()
with app.app_context():
    sm = app.appbuilder.sm
    grant = db.session.query(Grant).filter_by(reference="RCM-HIV-2026-SW").one()
    due = clock.today() + dt.timedelta(days=7)
    for username, title in (("program", "Rapport narratif"), ("admin", "Verslag aan het bestuur")):
        owner = sm.find_user(username=username)
        services.create_deadline(db.session, grant_id=grant.id, title=title, due_date=due, owner_id=owner.id)
    db.session.commit()
"""
