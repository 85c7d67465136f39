"""In a real browser: a program lead opens a grant's IATI page, chooses its sectors and downloads the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.exports.iati.conftest import FIXTURES
from tests.live import CHROMIUM, NO_CHROMIUM, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server(
        "iati-browser",
        passwords={"program": "Program-Iati-pw-12"},
        environment={
            "GRANTKEEPER_IATI_ORG_REF": "LC-CRO-98765",
            "GRANTKEEPER_IATI_ORG_NAME": "Windward Sex Worker Coalition",
        },
    )


@pytest.fixture
def browser_context_options():
    return {"accept_downloads": True}


def test_program_lead_chooses_sectors_and_downloads_a_valid_iati_file(server, page, tmp_path):
    sign_in(page, server, "program", "Program-Iati-pw-12")
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    page.click("text=Open the IATI page")
    page.wait_for_load_state()
    assert "Valid against the IATI 2.03 schemas" in page.content()
    page.select_option("#sector-1", label="13040 STD control including HIV/AIDS")
    page.select_option("#sector-2", label="15160 Human rights")
    page.click("#save-sectors")
    page.wait_for_load_state()
    assert "Sectors of RCM-HIV-2026-SW: 13040 STD control including HIV/AIDS, 15160 Human rights" in page.content()
    assert page.locator("#sector-1").input_value() == "13040"
    with page.expect_download() as download_info:
        page.click("#download-iati")
    saved = tmp_path / "activities.xml"
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename == "RCM-HIV-2026-SW_iati_activities.xml"
    schema = etree.XMLSchema(etree.parse(str(FIXTURES / "iati-activities-schema.xsd")))
    document = etree.parse(str(saved))
    schema.assertValid(document)
    assert [s.get("code") for s in document.iter("sector")] == ["13040", "15160"]
    page.reload()
    assert "RCM-HIV-2026-SW_iati_activities.xml" in page.locator("#iati-history").inner_text()
