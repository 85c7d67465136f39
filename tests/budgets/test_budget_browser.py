"""In a real browser (Debian's Chromium through Playwright): a finance officer imports a budget file and edits a
period in the budget grid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from tests.live import CHROMIUM, NO_CHROMIUM, sign_in

FINANCE_PASSWORD = "Finance-Browser-pw-12"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=NO_CHROMIUM)]


def _new_grant(env: dict[str, str]) -> None:
    """A new quarterly grant with no budget yet, in the server's own database (as an admin would set it up)."""
    from app import create_app
    from config.settings import BaseConfig, Settings
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services
    from grants.models import Funder

    app = create_app(BaseConfig, settings=Settings.from_env(env))
    with app.app_context(), acting_as(Actor(None, "setup", "cli")):
        funder = db.session.query(Funder).filter_by(code="GF").first() or db.session.query(Funder).first()
        if not funder.cost_categories:
            services.set_cost_categories(db.session, funder, [], preset="global_fund")
        grant = services.create_grant(
            db.session,
            funder=funder,
            reference="BR-NEW-2027",
            title="New grant without a budget",
            recipient="Coalition",
            currency="USD",
            amount=Decimal("100000.00"),
            start_date=date(2027, 1, 1),
            end_date=date(2027, 12, 31),
        )
        services.generate_periods(db.session, grant, "quarter", 45)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server("budget-browser-instance", passwords={"finance": FINANCE_PASSWORD}, args=(), ready=_new_grant)


def test_a_finance_officer_imports_a_budget_then_edits_a_period_in_the_grid(server, page, tmp_path):
    budget = tmp_path / "budget.csv"
    budget.write_text(
        "Budget code;Description;Cost grouping;Total\n"
        "HR-01;Programme coordinator;Human Resources (HR);20000.00\n"
        "TRC-01;Inter-island travel;Travel related costs (TRC);10000.01\n"
        "CMP-01;Booklets;Communication Material and Publications (CMP);4000\n",
        encoding="utf-8",
    )
    sign_in(page, server, "finance", FINANCE_PASSWORD)

    page.goto(server + "/budget-file-imports/upload")
    page.select_option("select[name=grant_id]", label="BR-NEW-2027 — New grant without a budget")
    page.set_input_files("input[name=file]", str(budget))
    page.click("#budget-import-upload button[type=submit]")
    page.wait_for_load_state()
    preview = page.locator("#import-preview").inner_text()
    assert "TRC-01" in preview and "Inter-island travel" in preview
    # The guessed mapping is shown for the officer to confirm; the line code column is the budget code.
    assert page.locator("select[name=map_code]").input_value() == "Budget code"
    assert page.locator("select[name=map_total]").input_value() == "Total"
    page.select_option("select[name=profile]", "even")
    page.click("#budget-import-mapping button[type=submit]")
    page.wait_for_load_state()
    assert "3 lines added" in page.locator("#import-result").inner_text()

    page.click("text=Open the budget grid")
    page.wait_for_load_state()
    row = page.locator("#line-TRC-01")
    cells = row.locator("input[name^=cell-]")
    assert [cells.nth(i).input_value() for i in range(4)] == ["2500.00", "2500.00", "2500.00", "2500.01"]

    # Moving 500 from Q4 to Q1 without changing the total: saved, and the sum stays 10,000.01.
    cells.nth(0).fill("3000.00")
    cells.nth(3).fill("2000.01")
    page.click("#save-grid")
    page.wait_for_load_state()
    assert "Saved: 0 lines added, 1 changed." in page.content()
    cells = page.locator("#line-TRC-01 input[name^=cell-]")
    assert cells.nth(0).input_value() == "3000.00" and cells.nth(3).input_value() == "2000.01"

    # A period that breaks the line's total is refused, the typed value stays, and the message sits by the total.
    cells.nth(1).fill("9999.99")
    page.click("#save-grid")
    page.wait_for_load_state()
    assert page.locator("#line-TRC-01 input[name^=cell-]").nth(1).input_value() == "9999.99"
    message = page.locator("#line-TRC-01 .help-block").inner_text()
    assert "the periods add up to 17,500.00 USD, not this total" in message
