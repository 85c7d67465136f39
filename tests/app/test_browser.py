"""A real browser (Debian's Chromium through Playwright) against the real server."""

from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server(
        "browser-instance", passwords={"program": "Program-Browser-pw-12", "donor.gf": "Donor-Browser-pw-12"}, args=()
    )


def test_program_user_logs_in_opens_a_grant_and_sees_its_periods(server, page):
    sign_in(page, server, "program", "Program-Browser-pw-12")
    assert page.locator("#demo-banner").is_visible()
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    assert "Sex worker-led HIV and human rights response" in page.content()
    page.click("a[href='#ReportingPeriodView']")
    periods = page.locator("#ReportingPeriodView")
    periods.wait_for(state="visible")
    text = periods.inner_text()
    for label in ("S1", "S2", "S3", "S4"):
        assert label in text
    assert "14 Aug 2026" in text  # dates read as people write them


def test_donor_sees_only_the_grant_it_funds(server, page):
    sign_in(page, server, "donor.gf", "Donor-Browser-pw-12")
    page.goto(server + "/grants/list/")
    content = page.content()
    assert "RCM-HIV-2026-SW" in content
    assert "CNF-CORE-2026" not in content


def test_program_user_generates_a_report_from_the_grant_page_and_downloads_it(server, page, tmp_path):
    sign_in(page, server, "program", "Program-Browser-pw-12")
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    form = page.locator("#export-form")
    form.locator("select[name=report]").select_option("builtin:budget_vs_actual")
    form.locator("select[name=period]").select_option(label="S1")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "Generated RCM-HIV-2026-SW_S1_budget_vs_actual.xlsx" in page.content()
    with page.expect_download() as download_info:
        page.click("text=download")
    saved = tmp_path / "report.xlsx"
    download_info.value.save_as(saved)
    from openpyxl import load_workbook

    sheets = load_workbook(saved).sheetnames
    assert sheets == ["Budget vs actual by category", "Budget vs actual by line"]


def test_donor_page_hides_members_and_the_export_button(server, page):
    sign_in(page, server, "donor.gf", "Donor-Browser-pw-12")
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    assert page.locator("a[href='#GrantMembershipView']").count() == 0
    assert page.locator("#export-form").count() == 0
