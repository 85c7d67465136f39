"""In a real browser (Debian's Chromium through Playwright), against the real server with the demo loaded:
a finance officer records a shared cost that appears on two grants, each in its own currency."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, sign_in

FINANCE_PASSWORD = "Finance-Browser-pw-12"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("shared-costs-instance", passwords={"finance": FINANCE_PASSWORD}, args=())


def _choose_line(page, row: int, text: str) -> None:
    select = page.locator(f"select[name=part_line_{row}]")
    value = select.locator("option", has_text=text).first.get_attribute("value")
    select.select_option(value)


def test_finance_officer_records_a_shared_rent_that_appears_on_two_grants_in_their_own_currencies(server, page):
    sign_in(page, server, "finance", FINANCE_PASSWORD)

    page.goto(server + "/shared-costs/list/")
    page.click("#record-shared-cost")
    page.wait_for_load_state()
    page.fill("#spent_on", "2026-04-16")
    page.fill("#description", "Office rent April")
    page.fill("#amount", "1000.00")
    page.fill("#currency", "XCD")
    page.check("input[name=method][value=percent]")
    _choose_line(page, 0, "RCM-HIV-2026-SW · IOC-01")
    page.fill("input[name=part_share_0]", "60")
    _choose_line(page, 1, "CNF-CORE-2026 · OVH-01")
    page.fill("input[name=part_share_1]", "30")  # a slip: 90% in all
    page.click("#shared-cost-form button[type=submit]")
    page.wait_for_load_state()

    # Refused, with the reason next to the parts, and everything typed still there.
    assert "the percentages add up to 90%, not 100%" in page.content()
    assert page.input_value("#description") == "Office rent April"
    assert page.input_value("#amount") == "1000.00"
    assert page.input_value("input[name=part_share_0]") == "60"

    page.fill("input[name=part_share_1]", "40")
    page.click("#shared-cost-form button[type=submit]")
    page.wait_for_load_state()

    table = page.locator("#shared-costs").inner_text()
    assert "Office rent April" in table
    assert "RCM-HIV-2026-SW · IOC-01: 600.00 XCD = 222.22 USD" in table  # the ECCB peg, the USD grant's policy
    assert "CNF-CORE-2026 · OVH-01: 400.00 XCD = 135.92 EUR" in table  # the day's XCD→EUR rate, the EUR grant's

    # Each grant's budget vs actual counts its own part, in its own currency.
    page.goto(server + "/budget-report/")
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    page.goto(page.url + "?by=line")
    assert "2,722.22" in page.locator("#budget-vs-actual").inner_text()  # IOC-01: 2,500.00 before + 222.22
    page.goto(server + "/budget-report/")
    page.click("text=CNF-CORE-2026")
    page.wait_for_load_state()
    page.goto(page.url + "?by=line")
    assert "3,135.92" in page.locator("#budget-vs-actual").inner_text()  # OVH-01: 3,000.00 before + 135.92
