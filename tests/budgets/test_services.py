"""The budgets domain without the web: budget vs actual, rates, revisions, variance rules and bad input."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError


def _count(session, model) -> int:
    return session.scalar(select(func.count(model.id)))


def test_budget_vs_actual_by_line_whole_grant(app, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    spend(budget.line_hr, "400.00")
    spend(budget.line_hr, "250.50", day=date(2026, 8, 1))
    spend(budget.line_travel, "700.00")
    with app.app_context():
        report = budget_vs_actual(db.session, budget_grant(app, budget), by="line")
    rows = {r.key: r for r in report.rows}
    assert rows["HR-1"].planned == Decimal("2000.00")
    assert rows["HR-1"].actual == Decimal("650.50")
    assert rows["HR-1"].variance == Decimal("1349.50")
    assert rows["HR-1"].variance_pct == Decimal("67.5")
    assert rows["HR-1"].burn_rate == Decimal("32.5")
    assert rows["HR-1"].remaining == Decimal("1349.50")
    assert rows["TR-1"].cost_category_name == "Travel"
    assert report.total.actual == Decimal("1350.50")
    assert report.total.budget == Decimal("3000.00")
    assert report.currency == "USD"


def budget_grant(app, budget) -> int:
    from budgets.models import BudgetLine
    from core.extensions import db

    with app.app_context():
        return db.session.get(BudgetLine, budget.line_hr).grant_id


def test_period_report_separates_period_and_cumulative(app, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    spend(budget.line_travel, "700.00", day=date(2026, 3, 1))
    spend(budget.line_travel, "100.00", day=date(2026, 9, 1))
    with app.app_context():
        report = budget_vs_actual(db.session, budget_grant(app, budget), budget.period_a2, by="category")
    travel = next(r for r in report.rows if r.key == "TRAVEL")
    assert (travel.planned, travel.actual) == (Decimal("500.00"), Decimal("100.00"))
    assert (travel.cumulative_planned, travel.cumulative_actual) == (Decimal("1000.00"), Decimal("800.00"))
    assert travel.budget == Decimal("1000.00")
    assert travel.burn_rate == Decimal("80.0")
    assert report.period_label == "S2"
    # Categories follow the funder's list order, not the alphabet.
    assert [r.key for r in report.rows] == ["STAFF", "TRAVEL"]


def test_report_sums_to_the_cent_where_floats_would_drift(app, budget, spend):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    for _ in range(10):
        spend(budget.line_hr, "0.10")
    spend(budget.line_hr, "0.20")
    with app.app_context():
        report = budget_vs_actual(db.session, budget_grant(app, budget))
    hr = next(r for r in report.rows if r.key == "HR-1")
    assert hr.actual == Decimal("1.20")
    assert str(hr.actual) == "1.20"


def test_report_uses_a_fixed_number_of_queries(app, budget, spend):
    from sqlalchemy import event

    from budgets import services
    from budgets.models import BudgetLine
    from budgets.report import budget_vs_actual
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant = db.session.get(Grant, budget_grant(app, budget))
        for index in range(30):
            services.create_line(
                db.session, grant, code=f"X-{index}", description="extra", cost_category="ACT", planned={"S1": "10"}
            )
        db.session.commit()
        grant_id = grant.id
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            report = budget_vs_actual(db.session, grant_id, budget.period_a2, by="line")
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(report.rows) == 32
        assert len(statements) <= 3
        assert db.session.scalar(select(func.count(BudgetLine.id)).where(BudgetLine.grant_id == grant_id)) == 32


def test_xcd_spending_converts_at_the_fixed_peg_and_says_so(app, budget, spend):
    from budgets import rates
    from budgets.models import Expenditure
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        rates.set_rate_policy(
            db.session, db.session.get(Grant, budget_grant(app, budget)), "fixed", fixed_currency="XCD"
        )
        db.session.commit()
    expenditure_id = spend(budget.line_hr, "270.00", "XCD")
    with app.app_context():
        item = db.session.get(Expenditure, expenditure_id)
        assert item.converted_amount == Decimal("100.00")
        assert "1 USD = 2.70 XCD" in item.rate_source
        assert "grant policy" in item.rate_source


def test_transaction_date_rate_uses_the_last_rate_of_the_week_and_inverse_quotes(app, budget, spend):
    from budgets import rates
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 2, 6), "USD", "EUR", "0.80", source="ECB")
        db.session.commit()
    expenditure_id = spend(budget.line_hr, "80.00", "EUR", day=date(2026, 2, 8))  # a Sunday
    with app.app_context():
        item = db.session.get(Expenditure, expenditure_id)
        assert item.converted_amount == Decimal("100.00")
        assert "rate of 2026-02-06 (last before 2026-02-08)" in item.rate_source


def test_period_average_policy_averages_the_period_rates(app, budget, spend):
    from budgets import rates
    from budgets.models import Expenditure
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        rates.record_rate(db.session, date(2026, 1, 15), "EUR", "USD", "1.10")
        rates.record_rate(db.session, date(2026, 4, 15), "EUR", "USD", "1.30")
        rates.set_rate_policy(db.session, db.session.get(Grant, budget_grant(app, budget)), "period_average")
        db.session.commit()
    expenditure_id = spend(budget.line_hr, "100.00", "EUR", day=date(2026, 2, 1))
    with app.app_context():
        item = db.session.get(Expenditure, expenditure_id)
        assert item.converted_amount == Decimal("120.00")
        assert "average EUR→USD rate of period S1" in item.rate_source


def test_changing_the_policy_reconverts_stored_amounts(app, budget, spend):
    from budgets import rates
    from budgets.models import Expenditure
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        rates.record_rate(db.session, date(2026, 2, 1), "USD", "XCD", "2.50")
        db.session.commit()
    expenditure_id = spend(budget.line_hr, "250.00", "XCD")
    with app.app_context():
        assert db.session.get(Expenditure, expenditure_id).converted_amount == Decimal("100.00")
        rates.set_rate_policy(
            db.session, db.session.get(Grant, budget_grant(app, budget)), "fixed", fixed_currency="XCD"
        )
        db.session.commit()
        item = db.session.get(Expenditure, expenditure_id)
        assert item.converted_amount == Decimal("92.59")
        assert "fixed rate" in item.rate_source


def test_correcting_a_rate_reconverts_the_spending_it_priced(app, budget, spend):
    from budgets import rates
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 2, 1), "USD", "EUR", "0.80")
        db.session.commit()
    expenditure_id = spend(budget.line_hr, "80.00", "EUR")
    with app.app_context():
        rates.record_rate(db.session, date(2026, 2, 1), "USD", "EUR", "0.50")
        db.session.commit()
        assert db.session.get(Expenditure, expenditure_id).converted_amount == Decimal("160.00")


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"amount": "twelve"}, "amount", "not a number"),
        ({"currency": "XYZ"}, "currency", "not an ISO 4217"),
        ({"currency": "EUR"}, "currency", "no EUR→USD exchange rate for 2026-02-01"),
        ({"spent_on": date(2027, 1, 5)}, "spent_on", "outside grant GA-1"),
        ({"amount": "0"}, "amount", "must not be zero"),
    ],
)
def test_bad_expenditure_is_refused_and_nothing_saved(app, budget, change, field, words):
    from budgets import services
    from budgets.models import BudgetLine, Expenditure
    from core.extensions import db

    values = {"spent_on": date(2026, 2, 1), "amount": "10.00", "currency": "USD"} | change
    with app.app_context():
        line = db.session.get(BudgetLine, budget.line_hr)
        with pytest.raises(DomainValidationError) as caught:
            services.record_expenditure(db.session, line.grant, line=line, **values)
        db.session.rollback()
        assert words in " ".join(caught.value.errors[field])
        assert _count(db.session, Expenditure) == 0


def test_expenditure_on_a_line_of_another_grant_is_refused(app, world, budget):
    from budgets import services
    from budgets.models import BudgetLine, Expenditure
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant_a = db.session.get(Grant, world.grant_a)
        with pytest.raises(DomainValidationError) as caught:
            services.record_expenditure(
                db.session,
                grant_a,
                line=db.session.get(BudgetLine, budget.line_b),
                spent_on=date(2026, 2, 1),
                amount="10",
                currency="USD",
            )
        db.session.rollback()
        assert "belongs to another grant" in caught.value.errors["line"][0]
        with pytest.raises(DomainValidationError) as caught:
            services.record_expenditure(
                db.session, grant_a, line="B-1", spent_on=date(2026, 2, 1), amount="10", currency="USD"
            )
        db.session.rollback()
        assert "not a budget line of GA-1" in caught.value.errors["line"][0]
        assert _count(db.session, Expenditure) == 0


def test_same_external_reference_from_the_same_source_is_refused(app, budget, spend):
    spend(budget.line_hr, "10.00", source="odoo", external_ref="move-7")
    with pytest.raises(DomainValidationError) as caught:
        spend(budget.line_hr, "10.00", source="odoo", external_ref="move-7")
    assert "already recorded from odoo" in caught.value.errors["external_ref"][0]
    spend(budget.line_hr, "10.00", source="import", external_ref="move-7")  # another source may reuse it


def test_cost_category_must_be_one_of_the_funders(app, world, budget):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        with pytest.raises(DomainValidationError) as caught:
            services.create_line(
                db.session, db.session.get(Grant, world.grant_a), code="Z", description="z", cost_category="99"
            )
        db.session.rollback()
        assert "not one of the funder's cost categories" in caught.value.errors["cost_category"][0]


def _revision(app, world, amount: str, period: str = "S1"):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        revision = services.create_revision(
            db.session,
            db.session.get(Grant, world.grant_a),
            title="More travel",
            justification="Training moved",
            moves=[{"from": "HR-1", "to": "TR-1", "period": period, "amount": amount}],
        )
        services.submit_revision(db.session, revision)
        db.session.commit()
        return revision.id


def test_approved_revision_moves_money_and_keeps_the_earlier_version(app, world, budget):
    from budgets import services
    from budgets.models import BudgetRevision, RevisionStatus
    from budgets.report import budget_vs_actual
    from core.extensions import db

    revision_id = _revision(app, world, "200.00")
    with app.app_context():
        version = services.approve_revision(db.session, db.session.get(BudgetRevision, revision_id), by="finance")
        db.session.commit()
        assert version.number == 2
        now = {r.key: r.budget for r in budget_vs_actual(db.session, world.grant_a).rows}
        before = {r.key: r.budget for r in budget_vs_actual(db.session, world.grant_a, version=1).rows}
        assert now == {"HR-1": Decimal("1800.00"), "TR-1": Decimal("1200.00")}
        assert before == {"HR-1": Decimal("2000.00"), "TR-1": Decimal("1000.00")}
        revision = db.session.get(BudgetRevision, revision_id)
        assert revision.status == RevisionStatus.approved and revision.version_number == 2


def test_revision_that_would_make_a_line_negative_is_refused_and_changes_nothing(app, world, budget):
    from budgets import services
    from budgets.models import BudgetRevision, BudgetVersion, RevisionStatus
    from budgets.report import budget_vs_actual
    from core.extensions import db

    revision_id = _revision(app, world, "1000.01")
    with app.app_context():
        with pytest.raises(DomainValidationError) as caught:
            services.approve_revision(db.session, db.session.get(BudgetRevision, revision_id))
        db.session.rollback()
        assert "HR-1 would have -0.01 planned in S1" in caught.value.errors["amount"][0]
        assert db.session.get(BudgetRevision, revision_id).status == RevisionStatus.submitted
        assert _count(db.session, BudgetVersion) == 0
        assert {r.key: r.budget for r in budget_vs_actual(db.session, world.grant_a).rows}["HR-1"] == Decimal("2000.00")


def test_only_a_submitted_revision_can_be_decided(app, world, budget):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        revision = services.create_revision(
            db.session,
            db.session.get(Grant, world.grant_a),
            title="t",
            justification="j",
            moves=[{"from": "HR-1", "to": "TR-1", "period": "S1", "amount": "5"}],
        )
        with pytest.raises(DomainValidationError):
            services.approve_revision(db.session, revision)
        db.session.rollback()


def test_revision_moving_a_line_of_another_grant_is_refused(app, world, budget):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        with pytest.raises(DomainValidationError) as caught:
            services.create_revision(
                db.session,
                db.session.get(Grant, world.grant_a),
                title="t",
                justification="j",
                moves=[{"from": "B-1", "to": "TR-1", "period": "S1", "amount": "5"}],
            )
        db.session.rollback()
        assert "'B-1' is not a budget line of GA-1" in caught.value.errors["from_line"][0]


def test_variance_flags_name_the_category_and_line_over_the_funders_threshold(app, world, budget, spend):
    from budgets.report import variance_flags
    from core.extensions import db

    spend(budget.line_travel, "580.00")  # 16% over the 500 planned in S1
    spend(budget.line_hr, "1100.00")  # 10% over: within the 15% rule
    with app.app_context():
        flags = variance_flags(db.session, world.grant_a, world.period_a1)
        assert [(f.level, f.key) for f in flags] == [("category", "TRAVEL"), ("line", "TR-1")]
        assert flags[0].overspend == Decimal("80.00") and flags[0].limit == Decimal("75.00")
        assert "needs the funder's approval" in flags[0].message
        # Cumulative to the end of S2 the travel line is within its plan.
        assert variance_flags(db.session, world.grant_a, budget.period_a2) == []


def test_share_of_total_budget_rule(app, world, budget, spend):
    from budgets import services
    from budgets.models import VarianceRule
    from budgets.report import variance_flags
    from core.extensions import db
    from grants.models import Funder

    with app.app_context():
        db.session.execute(VarianceRule.__table__.delete())
        services.add_variance_rule(
            db.session, db.session.get(Funder, world.funder_id), threshold_percent="10", basis="total_budget"
        )
        db.session.commit()
    spend(budget.line_travel, "780.00")  # 280 over: within 10% of the 3000 life-of-grant budget
    with app.app_context():
        assert variance_flags(db.session, world.grant_a, world.period_a1) == []
    spend(budget.line_travel, "30.00")  # 310 over
    with app.app_context():
        flags = variance_flags(db.session, world.grant_a, world.period_a1)
        assert {f.key for f in flags} == {"TRAVEL", "TR-1"}
        assert flags[0].limit == Decimal("300.00")


def test_unknown_period_or_grouping_is_a_clear_error(app, world, budget):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    with app.app_context():
        with pytest.raises(DomainValidationError, match="GA-1 has no reporting period"):
            budget_vs_actual(db.session, world.grant_a, world.period_b1)
        with pytest.raises(DomainValidationError, match="not one of line, category"):
            budget_vs_actual(db.session, world.grant_a, by="month")
        with pytest.raises(DomainValidationError, match="no budget version 4"):
            budget_vs_actual(db.session, world.grant_a, version=4)


def test_changes_are_audited(app, budget, spend):
    from core.audit import AuditEntry
    from core.extensions import db

    spend(budget.line_hr, "10.00")
    with app.app_context():
        tables = set(db.session.scalars(select(AuditEntry.table_name)))
        assert {"budget_lines", "budget_allocations", "expenditures"} <= tables


def test_spending_is_converted_once_when_saved(app, budget, monkeypatch):
    from budgets import services
    from budgets.models import BudgetLine
    from core.extensions import db

    calls = []
    real = services.convert
    monkeypatch.setattr(services, "convert", lambda *args, **kw: calls.append(args) or real(*args, **kw))
    with app.app_context():
        line = db.session.get(BudgetLine, budget.line_hr)
        services.record_expenditure(
            db.session, line.grant, line=line, spent_on=date(2026, 2, 1), amount="10", currency="USD"
        )
        db.session.commit()
    assert len(calls) == 1


def test_correcting_spending_redoes_its_period_and_conversion(app, budget, spend):
    from budgets import rates, services
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 8, 3), "EUR", "USD", "1.25")
        db.session.commit()
    item_id = spend(budget.line_hr, "10.00")
    with app.app_context():
        item = db.session.get(Expenditure, item_id)
        services.update_expenditure(db.session, item, spent_on=date(2026, 8, 3), amount="80", currency="eur")
        db.session.commit()
        item = db.session.get(Expenditure, item_id)
        assert (item.period.label, item.currency, item.converted_amount) == ("S2", "EUR", Decimal("100.00"))


def test_spending_changed_behind_the_operations_back_is_refused_at_the_flush(app, budget, spend):
    from budgets.models import Expenditure
    from core.extensions import db

    item_id = spend(budget.line_hr, "10.00")
    with app.app_context():
        item = db.session.get(Expenditure, item_id)
        item.amount = Decimal("99.00")  # not through budgets.services: the stored conversion is stale
        with pytest.raises(DomainValidationError) as caught:
            db.session.flush()
        db.session.rollback()
        assert "conversion" in caught.value.errors["amount"][0]
        assert db.session.get(Expenditure, item_id).converted_amount == Decimal("10.00")


def test_a_planned_amount_and_a_move_of_money_take_their_grant_from_their_parent(app, world, budget):
    from budgets import services
    from budgets.models import BudgetAllocation, BudgetLine, BudgetRevisionItem
    from core.extensions import db
    from grants.models import Grant, ReportingPeriod

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        extra = services.create_line(db.session, grant, code="X-1", description="extra", cost_category="ACT")
        allocation = services.save_allocation(
            db.session,
            BudgetAllocation(
                line=extra, period=db.session.get(ReportingPeriod, world.period_a1), amount=Decimal("1.234")
            ),
        )
        assert (allocation.grant_id, allocation.amount, allocation.amount_cents) == (
            world.grant_a,
            Decimal("1.23"),
            123,
        )
        line = db.session.get(BudgetLine, budget.line_hr)
        revision = services.create_revision(
            db.session, db.session.get(Grant, world.grant_a), title="t", justification="j"
        )
        item = BudgetRevisionItem(
            revision=revision,
            from_line=line,
            to_line=db.session.get(BudgetLine, budget.line_travel),
            period=db.session.get(ReportingPeriod, world.period_a1),
            amount=Decimal("5"),
        )
        services.save_revision_item(db.session, item)
        assert item.grant_id == world.grant_a
        db.session.rollback()


# ---------------------------------------------------------------- revisions that move money between periods


def _allocations(session, grant_id):
    from sqlalchemy import select

    from budgets.models import BudgetAllocation

    rows = session.scalars(select(BudgetAllocation).where(BudgetAllocation.grant_id == grant_id)).all()
    return {(a.line.code, a.period.label): a.amount for a in rows}


def test_an_approved_revision_moves_money_between_periods_of_one_line_and_across_lines_with_totals_kept(
    app, world, budget
):
    from sqlalchemy import select

    from budgets import services
    from budgets.models import BudgetAllocation, BudgetLine
    from core.audit import Actor, AuditEntry, acting_as
    from core.extensions import db
    from grants.models import Grant

    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        grant = db.session.get(Grant, world.grant_a)
        before = _allocations(db.session, grant.id)
        totals_before = {line.code: line.total for line in db.session.scalars(select(BudgetLine))}
        revision = services.create_revision(
            db.session,
            grant,
            title="Training moves to the second half",
            justification="The venue is only free in the autumn",
            moves=[
                {"from": "HR-1", "to": "HR-1", "period": "S1", "to_period": "S2", "amount": "300"},
                {"from": "TR-1", "to": "HR-1", "period": "S2", "to_period": "S1", "amount": "100"},
            ],
        )
        assert [str(item) for item in revision.items] == [
            "300.00 from HR-1 S1 to HR-1 S2",
            "100.00 from TR-1 S2 to HR-1 S1",
        ]
        services.submit_revision(db.session, revision)
        services.approve_revision(db.session, revision, by="finance")
        db.session.commit()

        after = _allocations(db.session, grant.id)
        assert after[("HR-1", "S1")] == Decimal("800.00")  # 1000 - 300 + 100
        assert after[("HR-1", "S2")] == Decimal("1300.00")
        assert after[("TR-1", "S1")] == before[("TR-1", "S1")] == Decimal("500.00")
        assert after[("TR-1", "S2")] == Decimal("400.00")
        assert sum(after.values()) == sum(before.values())  # the grant's budget total is conserved
        lines = {line.code: line for line in db.session.scalars(select(BudgetLine))}
        if totals_before["HR-1"] is not None:  # a stated line total follows the money between lines only
            assert lines["HR-1"].total == totals_before["HR-1"] + Decimal("100")
            assert lines["TR-1"].total == totals_before["TR-1"] - Decimal("100")

        hr_s1 = db.session.scalar(
            select(BudgetAllocation).where(
                BudgetAllocation.line_id == budget.line_hr, BudgetAllocation.period_id == world.period_a1
            )
        )
        entries = db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.table_name == "budget_allocations",
                AuditEntry.record_id == str(hr_s1.id),
                AuditEntry.action == "update",
            )
        ).all()
        assert any(e.changes.get("amount") == ["1000.00", "800.00"] for e in entries), [e.changes for e in entries]


def test_a_move_to_the_same_line_and_period_or_to_another_grants_period_is_refused(app, world, budget):
    from budgets import services
    from budgets.models import BudgetLine, BudgetRevisionItem
    from core.extensions import db
    from grants.models import Grant, ReportingPeriod

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        with pytest.raises(DomainValidationError) as same:
            services.create_revision(
                db.session,
                grant,
                title="t",
                justification="j",
                moves=[{"from": "HR-1", "to": "HR-1", "period": "S1", "to_period": "S1", "amount": "5"}],
            )
        assert "unless it moves to another period" in same.value.errors["to_line"][0]
        db.session.rollback()
        revision = services.create_revision(db.session, grant, title="t", justification="j")
        item = BudgetRevisionItem(
            revision=revision,
            from_line=db.session.get(BudgetLine, budget.line_hr),
            to_line=db.session.get(BudgetLine, budget.line_travel),
            period=db.session.get(ReportingPeriod, world.period_a1),
            to_period=db.session.get(ReportingPeriod, world.period_b1),
            amount=Decimal("5"),
        )
        with pytest.raises(DomainValidationError) as other:
            services.save_revision_item(db.session, item)
        assert "is a period of another grant" in other.value.errors["to_period"][0]
        db.session.rollback()


def test_moving_more_than_a_period_plans_is_refused_at_approval_and_changes_nothing(app, world, budget):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        before = _allocations(db.session, grant.id)
        revision = services.create_revision(
            db.session,
            grant,
            title="t",
            justification="j",
            moves=[{"from": "TR-1", "to": "TR-1", "period": "S1", "to_period": "S2", "amount": "500.01"}],
        )
        services.submit_revision(db.session, revision)
        with pytest.raises(DomainValidationError) as refused:
            services.approve_revision(db.session, revision)
        assert "TR-1 would have -0.01 planned in S1" in refused.value.errors["amount"][0]
        db.session.rollback()
        assert _allocations(db.session, grant.id) == before


def test_a_move_between_periods_is_entered_on_the_moves_form(app, world, budget, finance_client):
    from sqlalchemy import select

    from budgets import services
    from budgets.models import BudgetRevisionItem
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        revision_id = services.create_revision(
            db.session, db.session.get(Grant, world.grant_a), title="t", justification="j"
        ).id
        db.session.commit()
    page = finance_client.get("/budget-revision-items/add").get_data(as_text=True)
    assert "To period" in page and 'name="to_period"' in page
    response = finance_client.post(
        "/budget-revision-items/add",
        data={
            "revision": str(revision_id),
            "period": str(world.period_a1),
            "from_line": str(budget.line_hr),
            "to_line": str(budget.line_hr),
            "to_period": str(budget.period_a2),
            "amount": "250.00",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    with app.app_context():
        item = db.session.scalar(select(BudgetRevisionItem))
        assert (item.from_line_id, item.to_line_id, item.period_id, item.to_period_id) == (
            budget.line_hr,
            budget.line_hr,
            world.period_a1,
            budget.period_a2,
        )


def test_the_api_records_a_move_to_another_period_and_refuses_one_to_the_same_line_and_period(
    app, world, budget, api_for
):
    from budgets import services
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        revision_id = services.create_revision(
            db.session, db.session.get(Grant, world.grant_a), title="t", justification="j"
        ).id
        db.session.commit()
    api = api_for("Finance")
    move = {
        "revision": revision_id,
        "period": world.period_a1,
        "from_line": budget.line_travel,
        "to_line": budget.line_travel,
        "amount": "75.00",
    }
    refused = api.post("/api/v1/budget_revision_items/", json=move)
    assert refused.status_code == 422 and "unless it moves to another period" in refused.json["message"]["to_line"][0]
    created = api.post("/api/v1/budget_revision_items/", json={**move, "to_period": budget.period_a2})
    assert created.status_code == 201, created.json
    shown = api.get(f"/api/v1/budget_revision_items/{created.json['id']}").json["result"]
    assert shown["to_period"]["label"] == "S2" and shown["period"]["label"] == "S1"
