"""Cost categories edited on the funder's page and chosen from drop-downs; rates from a file; refused budget
forms keep what was typed."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError


def _csrf(client, url: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True))
    return found.group(1) if found else ""  # the test configuration switches CSRF off


def _funder(app, funder_id: int):
    from core.extensions import db
    from grants.models import Funder

    with app.app_context():
        return list(db.session.get(Funder, funder_id).cost_categories)


def test_finance_starts_a_funders_categories_from_the_global_fund_preset_on_the_funder_form(app, finance_client, world):
    html = finance_client.get(f"/funders/edit/{world.funder_id}").get_data(as_text=True)
    assert 'id="cost-categories-form"' in html and "Global Fund cost groupings" in html
    response = finance_client.post(
        f"/funders/{world.funder_id}/cost-categories",
        data={
            "csrf_token": _csrf(finance_client, f"/funders/edit/{world.funder_id}"),
            "rows": "1",
            "preset": "global_fund",
        },
    )
    assert response.status_code == 302
    categories = _funder(app, world.funder_id)
    assert categories[1] == {"code": "2", "name": "Travel related costs (TRC)"}
    assert len(categories) == 13


def test_finance_renames_retires_and_adds_a_category_without_typing_json(app, finance_client, world, budget):
    token = _csrf(finance_client, f"/funders/edit/{world.funder_id}")
    current = _funder(app, world.funder_id)
    data = {"csrf_token": token, "rows": str(len(current) + 1)}
    for i, category in enumerate(current):
        data.update({f"code-{i}": category["code"], f"name-{i}": category["name"], f"saved-{i}": "1"})
    data["name-0"] = "Salaries and stipends"
    data["retired-2"] = "1"  # TRAVEL
    data.update({f"code-{len(current)}": "COMMS", f"name-{len(current)}": "Communication"})
    response = finance_client.post(f"/funders/{world.funder_id}/cost-categories", data=data)
    assert response.status_code == 302
    categories = {c["code"]: c for c in _funder(app, world.funder_id)}
    assert categories["STAFF"]["name"] == "Salaries and stipends"
    assert categories["TRAVEL"].get("retired") is True
    assert categories["COMMS"] == {"code": "COMMS", "name": "Communication"}
    show = finance_client.get(f"/funders/show/{world.funder_id}").get_data(as_text=True)
    assert "TRAVEL Travel (retired)" in show and "[{" not in show


def test_a_category_cannot_be_removed_and_a_refused_edit_keeps_what_was_typed(app, finance_client, world, budget):
    token = _csrf(finance_client, f"/funders/edit/{world.funder_id}")
    data = {
        "csrf_token": token,
        "rows": "2",
        "code-0": "STAFF",
        "name-0": "Staff",
        "saved-0": "1",
        "code-1": "NEW",
        "name-1": "",
    }
    response = finance_client.post(f"/funders/{world.funder_id}/cost-categories", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "ACT Activities is missing: a category is retired, not removed" in html
    assert 'id="category-error-1">name: is required' in html
    assert 'value="NEW"' in html
    assert len(_funder(app, world.funder_id)) == 5


def test_a_retired_category_stays_on_its_lines_but_is_offered_for_no_new_line(app, finance_client, world, budget):
    from budgets import services
    from core.extensions import db
    from grants import services as grant_services
    from grants.models import Funder, Grant

    with app.app_context():
        funder = db.session.get(Funder, world.funder_id)
        grant_services.set_cost_categories(
            db.session, funder, [dict(c, retired=c["code"] == "TRAVEL") for c in funder.cost_categories]
        )
        db.session.commit()
        with pytest.raises(DomainValidationError, match="retired"):
            services.create_line(
                db.session,
                db.session.get(Grant, world.grant_a),
                code="TR-2",
                description="Taxi",
                cost_category="TRAVEL",
            )
        db.session.rollback()
    add_form = finance_client.get("/budget-lines/add").get_data(as_text=True)
    assert '<option value="STAFF">STAFF Staff and personnel</option>' in add_form
    assert 'value="TRAVEL"' not in add_form
    edit_form = finance_client.get(f"/budget-lines/edit/{budget.line_travel}").get_data(as_text=True)
    assert "TRAVEL Travel (retired)" in edit_form


def test_a_refused_expenditure_form_comes_back_as_typed_with_the_message_next_to_the_field(app, finance_client, budget):
    from budgets.models import Expenditure
    from core.extensions import db

    token = _csrf(finance_client, "/expenditures/add")
    response = finance_client.post(
        "/expenditures/add",
        data={
            "csrf_token": token,
            "line": str(budget.line_hr),
            "spent_on": "2027-03-04",
            "amount": "123.45",
            "currency": "USD",
            "description": "Ferry to Bequia for the outreach team",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ferry to Bequia for the outreach team" in html and 'value="123.45"' in html
    # The message sits with the date field: after its input, before the amount's.
    date_field, message, amount_field = (
        html.find('name="spent_on"'),
        html.find("2027-03-04 is outside grant GA-1 (2026-01-01 to 2026-12-31)"),
        html.find('name="amount"'),
    )
    assert 0 < date_field < message < amount_field
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 0


def test_a_refused_rate_form_keeps_the_rate_typed(finance_client):
    token = _csrf(finance_client, "/exchange-rates/add")
    response = finance_client.post(
        "/exchange-rates/add",
        data={
            "csrf_token": token,
            "rate_date": "2026-01-31",
            "from_currency": "USD",
            "to_currency": "USD",
            "rate": "2.7",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "must differ from the currency converted from" in html
    assert 'value="2.7"' in html


def test_rates_come_in_from_a_file_all_or_nothing(app, finance_client):
    from budgets.models import ExchangeRate
    from core.extensions import db

    bad = b"date,from,to,rate\n2026-01-31,XCD,USD,0.37037\n2026-01-31,GBP,USD,-1\n2026-02-30,EUR,USD,1.1\n"
    token = _csrf(finance_client, "/exchange-rates-import/")
    html = finance_client.post(
        "/exchange-rates-import/",
        data={"csrf_token": token, "date_order": "iso", "file": (__import__("io").BytesIO(bad), "rates.csv")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert "Nothing imported: 2 problems" in html
    assert "&#39;-1&#39; must be a number above zero" in html
    assert "data:text/csv;base64," in html
    with app.app_context():
        assert db.session.scalar(select(func.count(ExchangeRate.id))) == 0
    good = b"Date;From;To;Rate;Source\n31/01/2026;XCD;USD;0.37037;ECCB\n31/01/2026;USD;GBP;0.78;BoE\n"
    response = finance_client.post(
        "/exchange-rates-import/",
        data={"csrf_token": token, "date_order": "dayfirst", "file": (__import__("io").BytesIO(good), "rates.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        rates = {(r.from_currency, r.to_currency): r for r in db.session.scalars(select(ExchangeRate))}
        assert rates[("XCD", "USD")].rate == Decimal("0.37037") and rates[("XCD", "USD")].rate_date == date(2026, 1, 31)
        assert rates[("USD", "GBP")].source == "BoE"
    from budgets.rate_import import import_rates

    with app.app_context():
        again = import_rates(db.session, good, date_order="dayfirst")
        assert (again.added, again.corrected, again.unchanged) == (0, 0, 2)
