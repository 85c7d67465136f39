"""The whole reporting cycle in a real browser: a program lead closes a period, the donor downloads exactly that file.

Screenshots of each final screen go to ``test-results/`` (kept by CI as an artifact).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, ROOT, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]

SHOTS = ROOT / "test-results"
GRANT = "RCM-HIV-2026-SW"


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server(
        "browser-instance", passwords={"program": "Program-Browser-pw-12", "donor.gf": "Donor-Browser-pw-12"}, args=()
    )


def shot(browser_page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    browser_page.screenshot(path=str(SHOTS / f"cycle-{name}.png"), full_page=True)


def test_program_lead_closes_a_period_and_the_donor_downloads_exactly_that_file(server, page, tmp_path):
    # The program lead finds the period from the grant page, without typing a URL.
    sign_in(page, server, "program", "Program-Browser-pw-12")
    page.click(f"a:text-is('{GRANT}')")
    page.wait_for_load_state()
    page.click("a.close-period-link:has-text('S2')")
    page.wait_for_load_state()
    assert page.locator(".page-header :is(h1, h2)").inner_text().startswith("Close S2")

    # The checklist: one line per check, each with its state in words and what is missing.
    checklist = page.locator("#closing-checklist")
    lines = checklist.locator("tr.checklist-line")
    keys = [lines.nth(i).get_attribute("data-key") for i in range(lines.count())]
    assert {
        "results_entered",
        "results_verified",
        "evidence",
        "consultations",
        "requirements",
        "spending",
        "variance",
    } <= set(keys)
    for i in range(lines.count()):
        status = lines.nth(i).locator("td").first.inner_text().strip()
        assert status.split(" ", 1)[-1] in ("Done", "Needs a look", "Missing")  # words, not colour alone
    assert checklist.locator("#checklist-summary").inner_text()
    shot(page, "1-checklist")

    # Generate the donor's report (the funder's template if mapped, else the built-in report) and review it.
    page.click("#generate-button")
    page.wait_for_load_state()
    assert "Review before publishing" in page.content()
    assert page.locator("#review-summary").inner_text()
    shot(page, "2-review")

    # Publish: the period is submitted, who and when is said in words.
    page.click("#publish-button")
    page.wait_for_load_state()
    status = page.locator("#period-status").inner_text()
    assert status.startswith("Submitted to the donor on ") and "by Petra Alexander" in status
    assert "deadline closed on" in status
    published = page.locator("tr.period-export[data-published='yes']").first
    record_id = published.get_attribute("data-id")
    assert "Published to donors on" in published.inner_text()
    shot(page, "3-published")
    with page.expect_download() as sent:
        published.locator("a:has-text('Download')").click()
    ours = tmp_path / "sent.xlsx"
    sent.value.save_as(ours)

    # The donor signs in and downloads the very same bytes.
    page.context.clear_cookies()
    sign_in(page, server, "donor.gf", "Donor-Browser-pw-12")
    page.goto(server + "/exports/list/")
    page.wait_for_load_state()
    link = page.locator(f"a[href='/exports/file/{record_id}']")
    assert link.count() == 1
    shot(page, "4-donor-list")
    with page.expect_download() as received:
        link.click()
    theirs = tmp_path / "received.xlsx"
    received.value.save_as(theirs)
    assert hashlib.sha256(theirs.read_bytes()).hexdigest() == hashlib.sha256(ours.read_bytes()).hexdigest()
    assert theirs.read_bytes() == ours.read_bytes()

    page.goto(server + f"/exports/show/{record_id}")
    page.wait_for_load_state()
    assert page.locator("#publication").inner_text().startswith("Published to donors on ")
    assert page.locator("#publish-export, #unpublish-export").count() == 0  # a donor cannot change it
    shot(page, "5-donor-export-page")
