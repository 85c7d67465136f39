"""Grant services: the rules every path shares, and nothing half-saved when input is bad."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from grants import services
from grants.models import Funder, Grant, GrantStatus, PeriodStatus, ReportingPeriod


def grant_values(**changes):
    values = dict(
        reference="NEW-1",
        title="New grant",
        recipient="Coalition",
        currency="XCD",
        amount="2700.00",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 12, 31),
    )
    values.update(changes)
    return values


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_grant_amount_is_exact_decimal(db_session, world):
    funder = db_session.get(Funder, world.funder_id)
    grant = services.create_grant(db_session, funder=funder, **grant_values(amount="0.10"))
    db_session.commit()
    db_session.expire_all()
    stored = db_session.get(Grant, grant.id).amount
    assert isinstance(stored, Decimal) and stored == Decimal("0.10")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"end_date": date(2025, 12, 31)}, "end_date", "before the start date"),
        ({"amount": "-1"}, "amount", "negative"),
        ({"amount": "ten"}, "amount", "not a number"),
        ({"currency": "XXY"}, "currency", "ISO 4217"),
        ({"reference": "GA-1"}, "reference", "already used"),
        ({"countries": "LC,ZZ"}, "countries", "ZZ"),
        ({"status": "dormant"}, "status", "dormant"),
    ],
)
def test_bad_grant_input_names_the_field_and_saves_nothing(db_session, world, changes, field, words):
    funder = db_session.get(Funder, world.funder_id)
    before = count(db_session, Grant)
    with pytest.raises(DomainValidationError) as caught:
        services.create_grant(db_session, funder=funder, **grant_values(**changes))
    assert field in caught.value.errors
    assert words in " ".join(caught.value.errors[field])
    db_session.rollback()
    assert count(db_session, Grant) == before


def test_every_problem_is_reported_at_once(db_session, world):
    funder = db_session.get(Funder, world.funder_id)
    with pytest.raises(DomainValidationError) as caught:
        services.create_grant(
            db_session, funder=funder, **grant_values(currency="usd!", amount="-5", end_date=date(2020, 1, 1))
        )
    assert {"currency", "amount", "end_date"} <= set(caught.value.errors)


def test_a_rule_broken_by_a_direct_change_is_caught_at_flush(db_session, world):
    """Even code that bypasses the services cannot store a grant that ends before it starts."""
    grant = db_session.get(Grant, world.grant_a)
    grant.end_date = date(2020, 1, 1)
    with pytest.raises(DomainValidationError, match="end_date"):
        db_session.flush()
    db_session.rollback()
    assert db_session.get(Grant, world.grant_a).end_date == date(2026, 12, 31)


def test_funder_with_unknown_currency_or_preset_is_refused(db_session, world):
    with pytest.raises(DomainValidationError, match="default_currency"):
        services.create_funder(db_session, name="X", code="X", default_currency="DOLLARS")
    with pytest.raises(DomainValidationError, match="cost_categories"):
        services.create_funder(db_session, name="Y", code="Y", cost_categories="made-up")
    db_session.rollback()
    assert count(db_session, Funder) == 1


def test_funder_from_the_global_fund_preset_gets_thirteen_cost_groupings(db_session, world):
    funder = services.create_funder(db_session, name="GF", code="GF", cost_categories="global_fund")
    assert len(funder.cost_categories) == 13
    assert funder.cost_categories[0] == {"code": "1", "name": "Human Resources (HR)"}


def test_generating_periods_twice_is_refused_and_keeps_the_first(db_session, world):
    grant = db_session.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError, match="already has 2 reporting periods"):
        services.generate_periods(db_session, grant, "quarter", 30)
    db_session.rollback()
    labels = [p.label for p in db_session.get(Grant, world.grant_a).periods]
    assert labels == ["S1", "S2"]


def test_open_periods_can_be_replaced_but_not_submitted_ones(db_session, world):
    grant = db_session.get(Grant, world.grant_a)
    services.generate_periods(db_session, grant, "quarter", 30, replace_open=True)
    db_session.commit()
    grant = db_session.get(Grant, world.grant_a)
    assert [p.label for p in grant.periods] == ["Q1", "Q2", "Q3", "Q4"]
    grant.periods[0].status = PeriodStatus.submitted
    db_session.commit()
    with pytest.raises(DomainValidationError, match="Q1 are submitted"):
        services.generate_periods(db_session, grant, "month", 30, replace_open=True)
    db_session.rollback()
    assert count(db_session, ReportingPeriod) == 4 + 2


def test_period_outside_the_grant_is_refused(db_session, world):
    grant = db_session.get(Grant, world.grant_a)
    db_session.add(ReportingPeriod(grant=grant, label="X", start_date=date(2025, 6, 1), end_date=date(2025, 12, 31)))
    with pytest.raises(DomainValidationError, match="within the grant"):
        db_session.flush()
    db_session.rollback()


def test_period_for_date_finds_the_semester(db_session, world):
    period = services.period_for_date(db_session, world.grant_a, date(2026, 7, 15))
    assert period.label == "S2"
    assert services.period_for_date(db_session, world.grant_a, date(2027, 1, 1)) is None


def test_membership_twice_is_refused(db_session, world):
    from flask_appbuilder.security.sqla.models import User

    grant = db_session.get(Grant, world.grant_a)
    user = db_session.get(User, world.users["Program"])
    with pytest.raises(DomainValidationError, match="already a member"):
        services.add_member(db_session, grant, user, "program")
    db_session.rollback()


def test_totals_never_add_different_currencies(db_session, world):
    totals = services.total_amount(services.visible_grants(db_session, _admin(db_session, world)))
    assert totals == {"USD": Decimal("1000.00"), "EUR": Decimal("500.00")}


def test_visible_grants_follow_membership(db_session, world):
    from flask_appbuilder.security.sqla.models import User

    program = db_session.get(User, world.users["Program"])
    finance = db_session.get(User, world.users["Finance"])
    assert [g.reference for g in services.visible_grants(db_session, program)] == ["GA-1"]
    assert {g.reference for g in services.visible_grants(db_session, finance)} == {"GA-1", "GB-1"}
    assert services.can_see_grant(db_session, program, world.grant_a)
    assert not services.can_see_grant(db_session, program, world.grant_b)


def test_status_values_are_the_four_of_the_issue():
    assert [s.value for s in GrantStatus] == ["pipeline", "active", "closing", "closed"]


def _admin(session, world):
    from flask_appbuilder.security.sqla.models import User

    return session.get(User, world.users["Admin"])
