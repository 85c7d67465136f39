"""In a real browser, against the real server with the demo loaded: lowering a restricted item takes two people.

The program lead asks for the demo's restricted incident log to become staff only; it stays restricted
and she cannot approve her own request. The finance officer (a Finance member of the grant) approves it;
the item is then staff only, and the audit trail shows both: her request and his change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, PASSWORDS, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]

RESTRICTED = "Outreach safety incident log, Q3 2026 (confidential)"


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("sensitivity-instance", args=())


def _evidence_url(page, server: str) -> str:
    """The restricted item's page, found from the evidence list as a person would."""
    page.goto(server + "/evidence/list/?psize_EvidenceView=100")
    row = page.locator("tr", has_text=RESTRICTED).first
    href = row.locator("a[href*='/evidence/show/']").first.get_attribute("href")
    assert href, "the evidence list links each item to its page"
    return server + href


def test_lowering_restricted_evidence_needs_a_second_person_and_the_trail_shows_both(server, browser):
    program = browser.new_context().new_page()
    sign_in(program, server, "program", PASSWORDS["program"])
    url = _evidence_url(program, server)
    program.goto(url)
    assert program.locator("#evidence-sensitivity").inner_text().strip() == "Restricted"

    panel = program.locator("#evidence-sensitivity-request")
    panel.locator("select[name=to_level]").select_option(label="Staff only")
    panel.locator("input[name=reason]").fill("The review of the incidents is over")
    panel.locator("button[type=submit]").click()
    program.wait_for_load_state()
    assert "Request recorded" in program.locator(".alert-success").first.inner_text()
    # Still restricted, and the person who asked is not offered the approval.
    assert program.locator("#evidence-sensitivity").inner_text().strip() == "Restricted"
    panel = program.locator("#evidence-sensitivity-request")
    assert "Waiting for a second person" in panel.inner_text()
    assert panel.locator("button[value=approve]").count() == 0
    program.context.close()

    finance = browser.new_context().new_page()
    sign_in(finance, server, "finance", PASSWORDS["finance"])
    finance.goto(url)
    panel = finance.locator("#evidence-sensitivity-request")
    assert "Waiting for a second person" in panel.inner_text()
    assert "The review of the incidents is over" in panel.inner_text()  # what was asked, and why
    panel.locator("button[value=approve]").click()
    finance.wait_for_load_state()
    assert "Approved: the item is now staff only." in finance.locator(".alert-success").first.inner_text()
    assert finance.locator("#evidence-sensitivity").inner_text().strip() == "Staff only"
    finance.context.close()

    admin = browser.new_context().new_page()
    sign_in(admin, server, "admin", PASSWORDS["admin"])
    admin.goto(server + "/audit/list/")
    rows = admin.locator("table tr")
    texts = [rows.nth(i).inner_text() for i in range(min(rows.count(), 15))]
    asked = [t for t in texts if "program" in t and "sensitivity request" in t.lower()]
    changed = [t for t in texts if "finance" in t and RESTRICTED in t]
    assert asked, texts
    assert changed, texts
    admin.context.close()
