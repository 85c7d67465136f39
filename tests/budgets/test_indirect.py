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
        assert "modified direct costs" in report.indirect.name


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
