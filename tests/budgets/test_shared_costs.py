"""Shared costs: one payment split over several grants' budget lines, each part in its own grant's currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# ---------------------------------------------------------------- splitting to the cent


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(min_value=-(10**13), max_value=10**13),
    weights=st.lists(
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4), min_size=1, max_size=25
    ),
)
def test_split_parts_always_add_up_to_the_whole_to_the_cent(total, weights):
    from budgets.sharing import split_cents

    parts = split_cents(total, weights)

    assert sum(parts) == total
    assert len(parts) == len(weights)
    whole = sum(weights)
    for part, weight in zip(parts, weights):
        exact = Decimal(total) * weight / whole
        assert abs(Decimal(part) - exact) < 1  # each part within a cent of its exact share
        assert part * total >= 0  # a payment never yields a refund part, nor the other way round


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=10**11),
    percents=st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=12).filter(lambda p: sum(p) <= 100),
)
def test_percentages_of_a_payment_add_up_to_the_payment(total, percents):
    from budgets.sharing import split_cents

    shares = [*percents, 100 - sum(percents)] if sum(percents) < 100 else percents
    assert sum(split_cents(total, shares)) == total


def test_the_left_over_cent_goes_to_the_largest_remainder_then_the_earlier_part():
    from budgets.sharing import split_cents

    assert split_cents(100, [1, 1, 1]) == [34, 33, 33]
    assert split_cents(1000, [60, 40]) == [600, 400]
    assert split_cents(-100, [1, 1, 1]) == [-34, -33, -33]
    assert split_cents(5, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")]) == [3, 1, 1]


# ---------------------------------------------------------------- the service


@pytest.fixture
def two_grants(app, world, budget):
    """Grant A (USD) line HR-1 and grant B (EUR) line B-1, with XCD→EUR rates for grant B."""
    from budgets import rates
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 4, 16), "XCD", "EUR", "0.34")
        db.session.commit()
    return budget


def _record(app, budget, *, amount="1000.00", method="percent", shares=("60", "40"), **kw):
    from budgets import sharing
    from budgets.models import BudgetLine
    from core.extensions import db

    parts = [
        {"line": db.session.get(BudgetLine, budget.line_hr), "share": shares[0]},
        {"line": db.session.get(BudgetLine, budget.line_b), "share": shares[1]},
    ]
    return sharing.record_shared_cost(
        db.session,
        spent_on=kw.pop("spent_on", date(2026, 4, 16)),
        amount=amount,
        currency=kw.pop("currency", "XCD"),
        description=kw.pop("description", "Office rent April"),
        method=method,
        parts=parts,
        **kw,
    )


def test_a_shared_rent_appears_on_two_grants_in_their_own_currencies(app, world, two_grants):
    from budgets.report import budget_vs_actual
    from core.extensions import db

    with app.app_context():
        cost = _record(app, two_grants)
        db.session.commit()
        parts = {p.grant.reference: p for p in cost.parts}

        assert parts["GA-1"].amount == Decimal("600.00") and parts["GB-1"].amount == Decimal("400.00")
        assert parts["GA-1"].converted_amount == Decimal("222.22")  # 600 XCD at the 2.70 peg, in USD
        assert parts["GB-1"].converted_amount == Decimal("136.00")  # 400 XCD × 0.34, in EUR
        a = {r.key: r for r in budget_vs_actual(db.session, world.grant_a).rows}
        b = {r.key: r for r in budget_vs_actual(db.session, world.grant_b).rows}
        assert a["HR-1"].actual == Decimal("222.22")
        assert b["B-1"].actual == Decimal("136.00")


def test_split_by_amounts_must_add_up_to_the_payment_and_saves_nothing_otherwise(app, world, two_grants):
    from budgets.models import Expenditure, SharedCost
    from core.errors import DomainValidationError
    from core.extensions import db

    with app.app_context():
        with pytest.raises(DomainValidationError) as refused:
            _record(app, two_grants, method="amount", shares=("600.00", "390.00"))
        assert refused.value.errors["parts"] == [
            "the parts add up to 990.00 XCD, not the 1,000.00 XCD paid (still to share: 10.00 XCD)"
        ]
        db.session.rollback()
        assert db.session.query(SharedCost).count() == 0 and db.session.query(Expenditure).count() == 0
        cost = _record(app, two_grants, method="amount", shares=("600.10", "399.90"))
        assert [p.amount for p in cost.parts] == [Decimal("600.10"), Decimal("399.90")]


def test_percentages_that_do_not_make_100_are_refused_in_words(app, world, two_grants):
    from core.errors import DomainValidationError

    with app.app_context():
        with pytest.raises(DomainValidationError) as refused:
            _record(app, two_grants, shares=("60", "30"))
        assert refused.value.errors["parts"] == ["the percentages add up to 90%, not 100%"]


def test_a_part_that_cannot_be_converted_refuses_the_whole_cost_naming_the_part(app, world, two_grants):
    from budgets.models import Expenditure
    from core.errors import DomainValidationError
    from core.extensions import db

    with app.app_context():
        with pytest.raises(DomainValidationError) as refused:
            _record(app, two_grants, spent_on=date(2026, 9, 1))  # no XCD→EUR (nor USD→EUR) rate then
        assert refused.value.errors["parts"][0].startswith("part 2 (GB-1 · B-1): no XCD→EUR exchange rate")
        db.session.rollback()
        assert db.session.query(Expenditure).count() == 0


def test_a_part_cannot_be_edited_or_deleted_on_its_own(app, world, two_grants):
    from budgets import services
    from core.errors import DomainValidationError
    from core.extensions import db

    with app.app_context():
        cost = _record(app, two_grants)
        db.session.commit()
        part = cost.parts[0]
        with pytest.raises(DomainValidationError) as refused:
            services.update_expenditure(db.session, part, amount=Decimal("1.00"))
        assert "part of a shared cost" in refused.value.errors["amount"][0]
        db.session.rollback()
        with pytest.raises(DomainValidationError):
            services.delete_expenditure(db.session, cost.parts[0])


def test_rent_follows_a_key_and_is_rerun_when_the_floor_space_changes_with_before_and_after_audited(
    app, world, two_grants
):
    from sqlalchemy import select

    from budgets import sharing
    from budgets.models import BudgetLine
    from core.audit import Actor, AuditEntry, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "finance", "web")):
        hr = db.session.get(BudgetLine, two_grants.line_hr)
        b1 = db.session.get(BudgetLine, two_grants.line_b)
        key = sharing.save_allocation_key(
            db.session,
            None,
            name="Rent by floor space",
            basis="floor space (m²)",
            shares=[{"line": hr, "weight": "60"}, {"line": b1, "weight": "40"}],
        )
        cost = sharing.record_shared_cost(
            db.session,
            spent_on=date(2026, 4, 16),
            amount="1000.00",
            currency="XCD",
            description="Office rent April",
            method="key",
            key=key,
        )
        db.session.commit()
        assert [p.amount for p in cost.parts] == [Decimal("600.00"), Decimal("400.00")]

        sharing.save_allocation_key(
            db.session,
            key,
            name="Rent by floor space",
            shares=[{"line": hr, "weight": "50"}, {"line": b1, "weight": "50"}],
        )
        assert not sharing.key_is_current(cost)
        assert sharing.rerun_key(db.session, key) == 1
        db.session.commit()

        assert sorted(p.amount for p in cost.parts) == [Decimal("500.00"), Decimal("500.00")]
        assert sharing.key_is_current(cost)
        part_a = next(p for p in cost.parts if p.line_id == hr.id)
        entries = db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.table_name == "expenditures",
                AuditEntry.record_id == str(part_a.id),
                AuditEntry.action == "update",
            )
        ).all()
        assert any(e.changes.get("amount") == ["600.00", "500.00"] for e in entries), [e.changes for e in entries]
        key_entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.table_name == "allocation_key_shares", AuditEntry.action == "update")
        ).all()
        weights = sorted(
            tuple(Decimal(str(v)) for v in e.changes["weight"]) for e in key_entries if "weight" in e.changes
        )
        assert weights == [(Decimal("40"), Decimal("50")), (Decimal("60"), Decimal("50"))]


def test_deleting_a_shared_cost_removes_every_part(app, world, two_grants):
    from budgets import sharing
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        cost = _record(app, two_grants)
        db.session.commit()
        sharing.delete_shared_cost(db.session, cost)
        db.session.commit()
        assert db.session.query(Expenditure).count() == 0


# ---------------------------------------------------------------- who sees what


def test_program_user_of_grant_a_sees_only_grant_as_part_never_grant_bs(app, world, two_grants, api_for):
    from core.extensions import db

    with app.app_context():
        _record(app, two_grants)
        db.session.commit()

    body = api_for("Program").get("/api/v1/expenditures/").json
    assert [r["grant"]["reference"] for r in body["result"]] == ["GA-1"]
    assert body["result"][0]["amount"] == "600.00"
    text = str(body)
    assert "GB-1" not in text and "400.00" not in text and "136.00" not in text


def test_donor_of_grant_a_never_sees_grant_bs_part(app, world, two_grants, client_for, api_for):
    from core.extensions import db

    with app.app_context():
        _record(app, two_grants)
        db.session.commit()

    donor = client_for("Donor")
    page = donor.get(f"/budget-report/grant/{world.grant_a}").get_data(as_text=True)
    assert "222.22" in page
    for secret in ("GB-1", "Grant B", "136.00", "400.00", "B-1"):
        assert secret not in page
    assert donor.get(f"/budget-report/grant/{world.grant_b}").status_code == 404
    assert donor.get("/shared-costs/list/").status_code in (302, 403, 404)
    report = api_for("Donor").get(f"/api/v1/budget_report/{world.grant_b}")
    assert report.status_code == 404
