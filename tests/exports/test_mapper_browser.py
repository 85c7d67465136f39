"""A real browser: the program lead maps three cells of the UK aid logframe by clicking, generates it, downloads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.exports.helpers import TEMPLATES
from tests.live import CHROMIUM, NO_CHROMIUM, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("browser-instance", passwords={"program": "Program-Browser-pw-12"}, args=())


def choose(browser_page, cell: str) -> None:
    browser_page.click(f'#mapper-grid button[data-cell="{cell}"]')
    browser_page.wait_for_function(
        "cell => document.getElementById('chosen-cell').textContent.endsWith('!' + cell)", arg=cell
    )


def put(browser_page, expected_preview: str) -> None:
    browser_page.wait_for_function(
        "text => document.getElementById('preview').textContent.includes(text)", arg=expected_preview
    )
    browser_page.click("#add-cell")


def test_program_lead_maps_three_cells_by_clicking_and_downloads_them_filled(server, page, tmp_path):
    sign_in(page, server, "program", "Program-Browser-pw-12")
    page.goto(server + "/funder-templates/upload")
    page.select_option("#funder", label="Regional HIV Fund (demo)")
    page.fill("#name", "UK logframe")
    page.set_input_files("#file", str(TEMPLATES / "real" / "DFID_Template.xlsx"))
    page.click("#upload-template button[type=submit]")
    page.wait_for_load_state()
    page.click("text=Map cells on the sheet")
    page.wait_for_selector("#mapper-grid")
    assert page.locator('#mapper-grid button[data-cell="B20"]').count() == 0  # covered by the merged B19:B21

    choose(page, "B1")
    page.select_option("#pick-kind", "field")
    page.select_option("#pick-field", "grant.title")
    put(page, "Sex worker-led HIV and human rights response")

    choose(page, "D19")
    page.select_option("#pick-kind", "indicator")
    page.select_option("#pick-item", "KP-1c")
    page.select_option("#pick-measure", "target")
    page.select_option("#pick-period", "1")
    put(page, "would get 50")

    choose(page, "F19")
    page.select_option("#pick-kind", "indicator")
    page.select_option("#pick-item", "HR-1")
    page.select_option("#pick-measure", "lop_target")
    put(page, "would get 200")

    rows = page.locator("#mapping-list tbody tr")
    assert rows.count() == 3
    assert "Indicator KP-1c: Target for the period, period 1" in page.inner_text("#mapping-list")
    page.click("#save-mapping")
    page.wait_for_load_state()
    assert "Mapping saved" in page.content()
    assert page.locator('#mapper-grid td.mark-mapped button[data-cell="D19"]').count() == 1

    grant_id = page.locator("#ctx-grant option", has_text="RCM-HIV-2026-SW").get_attribute("value")
    page.goto(f"{server}/grants/show/{grant_id}")
    form = page.locator("#export-form")
    option = form.locator("select[name=report] option", has_text="UK logframe")
    form.locator("select[name=report]").select_option(option.get_attribute("value"))
    form.locator("select[name=period]").select_option(label="S2")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert re.search(r"Generated RCM-HIV-2026-SW_S2_UK_logframe\.xlsx", page.content())
    with page.expect_download() as download_info:
        page.click("text=download")
    saved = tmp_path / "logframe.xlsx"
    download_info.value.save_as(saved)

    sheet = load_workbook(saved)["RESULTS FRAMEWORK"]
    assert sheet["B1"].value == "Sex worker-led HIV and human rights response in the Eastern Caribbean"
    assert sheet["D19"].value == 50  # KP-1c's target for period 1 (S1), whatever the period generated
    assert sheet["F19"].value == 200
    assert sheet["B19"].value is None and sheet["C19"].value is None  # nothing else was filled
