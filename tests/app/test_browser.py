"""A real browser (Debian's Chromium through Playwright) against the real server."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("browser-instance")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env.update(
        {
            "GRANTKEEPER_INSTANCE": str(instance),
            "GRANTKEEPER_PORT": str(port),
            "GRANTKEEPER_PASSWORD_PROGRAM": "program-browser-pw",
            "GRANTKEEPER_PASSWORD_DONOR_GF": "donor-browser-pw",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/login/", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail("server exited: " + process.stdout.read())
            time.sleep(0.2)
    yield url
    process.terminate()
    process.communicate(timeout=30)


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context()
        yield context.new_page()
        context.close()
        browser.close()


def sign_in(page, url, username, password):
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()


def test_program_user_logs_in_opens_a_grant_and_sees_its_periods(server, page):
    sign_in(page, server, "program", "program-browser-pw")
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
    assert "2026-08-14" in text


def test_donor_sees_only_the_grant_it_funds(server, page):
    sign_in(page, server, "donor.gf", "donor-browser-pw")
    page.goto(server + "/grants/list/")
    content = page.content()
    assert "RCM-HIV-2026-SW" in content
    assert "CNF-CORE-2026" not in content


def test_program_user_generates_a_report_from_the_grant_page_and_downloads_it(server, page, tmp_path):
    sign_in(page, server, "program", "program-browser-pw")
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
    sign_in(page, server, "donor.gf", "donor-browser-pw")
    page.click("text=RCM-HIV-2026-SW")
    page.wait_for_load_state()
    assert page.locator("a[href='#GrantMembershipView']").count() == 0
    assert page.locator("#export-form").count() == 0
