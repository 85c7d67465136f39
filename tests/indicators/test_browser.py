"""In a real Chromium against the real server with the demo: a result entered with its evidence and verified
by another member where the evidence is shown; a requirement built from drop-downs and read back as a sentence."""

import os
import tempfile
from pathlib import Path

import pytest

from tests.grants.evidence.helpers import PDF
from tests.live import CHROMIUM, NO_CHROMIUM
from tests.live import sign_in as sign_in_with_password

PASSWORDS = {"program": "Program-I11b-pw-12", "finance": "Finance-I11b-pw-12"}
# Kept for CI to collect as artifacts (SCREENSHOT_DIR), else in the temporary directory.
SHOTS = Path(os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir()) / "grantkeeper-screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("browser-i11b", passwords=PASSWORDS, args=())


@pytest.fixture
def browser_context_options():
    return {"viewport": {"width": 1366, "height": 900}}


def sign_in(page, url, username):
    page.goto(url + "/logout/")
    sign_in_with_password(page, url, username, PASSWORDS[username])


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_program_lead_enters_a_result_with_evidence_and_a_finance_member_verifies_it_beside_the_proof(
    server, page, tmp_path
):
    sign_in(page, server, "program")
    page.click("a:text-is('RCM-HIV-2026-SW')")
    page.wait_for_load_state()
    page.click("text=Indicator progress table (IPTT)")
    page.wait_for_load_state()
    # S1 is submitted (no entry link); the first link in the CSS-1 row is S2's, a draft to finish.
    page.locator("tr[data-indicator='CSS-1'] a:has-text('enter')").first.click()
    page.wait_for_load_state()
    assert "CSS-1, S2" in page.title()
    form = page.locator("form.figure-form")
    form.locator("select[name=status]").select_option("submitted")
    form.locator("#evidence_title").fill("Grenada group registration letter")
    form.locator("#evidence_kind").select_option("report")
    letter = tmp_path / "registration.pdf"
    letter.write_bytes(PDF)
    form.locator("#evidence_file").set_input_files(str(letter))
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "/indicator-results/show/" in page.url
    result_page = page.url
    evidence = page.locator("#result-evidence")
    assert "Grenada group registration letter" in evidence.inner_text()
    assert "a colleague on the grant must verify it" in page.locator("#verification").inner_text()
    assert page.locator("#verify-button").count() == 0

    sign_in(page, server, "finance")  # a member of the grant with the finance role, which it names as verifying
    page.goto(result_page)
    assert "Grenada group registration letter" in page.locator("#result-evidence").inner_text()
    assert page.locator("#result-evidence a:has-text('registration.pdf')").count() == 1
    page.click("#verify-button")
    page.wait_for_load_state()
    assert page.locator("#result-status").inner_text() == "verified"
    assert "Verified by" in page.locator("#verified-by").inner_text()
    shot(page, "result-verified-beside-its-evidence")


def test_program_lead_builds_a_requirement_from_drop_downs_and_reads_it_back_as_a_sentence(server, page):
    sign_in(page, server, "program")
    page.click("a:text-is('RCM-HIV-2026-SW')")
    page.wait_for_load_state()
    page.click("text=Compliance matrix")
    page.wait_for_load_state()
    page.click("text=Add requirement")
    page.wait_for_load_state()
    page.fill("#code", "C9")
    page.fill("#title", "Community consultations with sex workers")
    page.select_option("#category", "community_inclusion")
    page.select_option("#rule-0-rule", "meeting_count")
    params = page.locator(".rule-row[data-index='0'] .rule-params[data-rule='meeting_count']")
    assert params.is_visible()
    params.locator("select[name$='-body']").select_option("RCM")
    params.locator("input[name$='-min_meetings']").fill("2")
    params.locator("select[name$='-population']").select_option("sex_workers")
    params.locator("input[name$='-min_count']").fill("1")
    page.select_option("#frequency", "semester")
    assert page.locator("#window_start").is_hidden()
    page.click("#save-requirement")
    page.wait_for_load_state()
    assert "/requirements/show/" in page.url
    sentence = page.locator("#requirement-sentence").inner_text()
    assert sentence == "At least 2 RCM meetings with at least 1 sex worker representative per semester."
    assert page.locator("#requirement-windows tr[data-status]").count() >= 2
    shot(page, "requirement-built-from-drop-downs")
