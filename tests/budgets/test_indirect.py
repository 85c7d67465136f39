"""Indirect costs: a rate on total or modified direct costs, shown as direct, indirect and total, within the funder's cap."""

from __future__ import annotations

from decimal import Decimal

import pytest


def _set(app, world, **fields):
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        for name, value in fields.items():
            setattr(grant, name, value)
        db.session.commit()


def test_a_grant_without_an_indirect_rate_reports_exactly_as_before(app, world, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    spend(budget.line_hr, "100.00")
    with app.app_context():
        report = budget_vs_actual(db.session, world.grant_a)
        assert report.indirect is None and report.grand_total is None
        assert "indirect" not in report.as_dict() and report.total.actual == Decimal("100.00")


def test_indirect_costs_on_total_direct_costs_show_direct_indirect_and_total(app, world, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    spend(budget.line_hr, "100.00")
    spend(budget.line_travel, "33.33")
    _set(app, world, indirect_rate=Decimal("7"))
    with app.app_context():
        report = budget_vs_actual(db.session, world.grant_a, by="category")
        assert report.total.actual == Decimal("133.33")  # direct
        assert report.indirect.actual == Decimal("9.33")  # 7% of 133.33 = 9.3331
        assert report.grand_total.actual == Decimal("142.66")
        assert report.indirect.budget == Decimal("210.00")  # 7% of the 3,000.00 planned
        assert report.indirect.name == "Indirect costs (7% of total direct costs)"
        assert report.as_dict()["grand_total"]["budget"] == "3210.00"


def test_modified_direct_costs_leave_the_excluded_categories_out_of_the_base(app, world, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db
    from grants.models import IndirectBase

    spend(budget.line_hr, "100.00")
    spend(budget.line_travel, "50.00")
    _set(
        app,
        world,
        indirect_rate=Decimal("10"),
        indirect_base=IndirectBase.modified_direct,
        indirect_excluded=["TRAVEL"],
    )
    with app.app_context():
        report = budget_vs_actual(db.session, world.grant_a, by="line")
        assert report.indirect.actual == Decimal("10.00")  # 10% of HR only
        assert report.grand_total.actual == Decimal("160.00")
        assert report.indirect.name == "Indirect costs (10% of direct costs less Travel)"


def test_a_rate_above_the_funders_cap_is_refused_naming_the_field_in_words(app, world, budget):
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.models import Funder, Grant

    with app.app_context():
        db.session.get(Funder, world.funder_id).indirect_cap_percent = Decimal("10")
        db.session.commit()
        db.session.get(Grant, world.grant_a).indirect_rate = Decimal("12.5")
        with pytest.raises(DomainValidationError) as refused:
            db.session.flush()
        assert refused.value.errors["indirect_rate"] == ["12.5% is above Test Fund's cap of 10% for indirect costs"]
        db.session.rollback()
        assert db.session.get(Grant, world.grant_a).indirect_rate is None


def test_lowering_a_cap_below_a_rate_a_grant_charges_is_refused(app, world, budget):
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.models import Funder

    _set(app, world, indirect_rate=Decimal("8"))
    with app.app_context():
        db.session.get(Funder, world.funder_id).indirect_cap_percent = Decimal("5")
        with pytest.raises(DomainValidationError) as refused:
            db.session.flush()
        assert refused.value.errors["indirect_cap_percent"] == [
            "5% is below what grants already charge (GA-1 charges 8%); lower their rates first"
        ]
        db.session.rollback()


def test_modified_direct_costs_need_the_categories_they_leave_out(app, world, budget):
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.models import Grant, IndirectBase

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        grant.indirect_rate = Decimal("10")
        grant.indirect_base = IndirectBase.modified_direct
        grant.indirect_excluded = ["NOPE"]
        with pytest.raises(DomainValidationError) as refused:
            db.session.flush()
        assert refused.value.errors["indirect_excluded"] == ["not Test Fund's cost categories: NOPE"]
        db.session.rollback()


def test_the_report_page_shows_direct_indirect_and_total(app, world, budget, spend, client_for):
    spend(budget.line_hr, "100.00")
    _set(app, world, indirect_rate=Decimal("7"))
    page = client_for("Donor").get(f"/budget-report/grant/{world.grant_a}").get_data(as_text=True)
    assert "Total direct costs" in page
    assert "Indirect costs (7% of total direct costs)" in page
    assert 'data-total="INDIRECT"' in page and ">107.00<" in page


def _grant_form(world, **changes):
    form = {
        "funder": str(world.funder_id),
        "reference": "GA-1",
        "title": "Grant A",
        "recipient": "Coalition",
        "currency": "USD",
        "amount": "1000.00",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "status": "active",
        "countries": "",
        "indirect_rate": "",
        "indirect_base": "total_direct",
        "description": "",
    }
    form.update(changes)
    return form


def test_the_grant_form_offers_the_funders_categories_to_leave_out_in_words(app, world, budget, finance_client):
    html = finance_client.get(f"/grants/edit/{world.grant_a}").get_data(as_text=True)
    select = html[
        html.find('name="indirect_excluded"') - 300 : html.find("</select>", html.find('name="indirect_excluded"'))
    ]
    assert "multiple" in select
    assert '<option value="TRAVEL">TRAVEL Travel</option>' in select
    assert "STAFF Staff and personnel" in select
    assert 'value="modified_direct">Modified direct costs</option>' in html  # the base in words, not enum names


def test_categories_chosen_on_the_grant_form_leave_the_base_and_show_in_budget_vs_actual(
    app, world, budget, spend, finance_client
):
    from core.extensions import db
    from grants.models import Grant, IndirectBase

    spend(budget.line_hr, "100.00")
    spend(budget.line_travel, "50.00")
    data = _grant_form(world, indirect_rate="10", indirect_base="modified_direct")
    response = finance_client.post(
        f"/grants/edit/{world.grant_a}", data={**data, "indirect_excluded": ["TRAVEL"]}, follow_redirects=False
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        assert grant.indirect_excluded == ["TRAVEL"] and grant.indirect_base == IndirectBase.modified_direct
    shown = finance_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "TRAVEL Travel" in shown and "Modified direct costs" in shown
    report = finance_client.get(f"/budget-report/grant/{world.grant_a}").get_data(as_text=True)
    assert "Indirect costs (10% of direct costs less Travel)" in report
    assert ">10.00<" in report  # 10% of the 100.00 spent on staff; travel is left out


def test_a_modified_base_without_categories_is_refused_next_to_the_field_keeping_the_form(
    app, world, budget, finance_client
):
    from core.extensions import db
    from grants.models import Grant

    data = _grant_form(world, title="Typed new title", indirect_rate="10", indirect_base="modified_direct")
    response = finance_client.post(f"/grants/edit/{world.grant_a}", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Typed new title" in html
    field_at = html.find('name="indirect_excluded"')
    assert field_at < html.find("a modified direct cost base leaves some cost categories out", field_at)
    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        assert grant.title == "Grant A" and grant.indirect_rate is None


def test_a_category_of_another_funder_is_refused_naming_it(app, world, budget, finance_client):
    data = _grant_form(world, indirect_rate="10", indirect_base="modified_direct")
    html = finance_client.post(f"/grants/edit/{world.grant_a}", data={**data, "indirect_excluded": ["NOPE"]}).get_data(
        as_text=True
    )
    assert "not Test Fund&#39;s cost categories: NOPE" in html or "not Test Fund's cost categories: NOPE" in html
