"""Cross rates: spending in a currency with no direct rate to the grant's goes through a pegged or common currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest


@pytest.fixture
def gbp_grant(app, world):
    """A GBP grant of the world's funder, with one line, under the transaction-date policy."""
    from budgets import services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services as grant_services
    from grants.models import Funder

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        grant = grant_services.create_grant(
            db.session,
            funder=db.session.get(Funder, world.funder_id),
            reference="GBP-1",
            title="Pound grant",
            recipient="Coalition",
            currency="GBP",
            amount=Decimal("10000.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        grant_services.generate_periods(db.session, grant, "semester", 45)
        line = services.create_line(db.session, grant, code="OPS", description="Operations", cost_category="1")
        db.session.commit()
        return grant.id, line.id


def _spend(line_id: int, amount: str, currency: str, day: date):
    from budgets import services
    from budgets.models import BudgetLine
    from core.extensions import db

    line = db.session.get(BudgetLine, line_id)
    return services.record_expenditure(
        db.session, line.grant, line=line, spent_on=day, amount=amount, currency=currency
    )


def test_xcd_spending_on_a_gbp_grant_goes_through_usd_and_says_so(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.78")
        item = _spend(line_id, "270.00", "XCD", date(2026, 7, 31))
        db.session.commit()

        assert item.rate_source == "1 GBP = 3.4615 XCD via USD: fixed 2.70 XCD per USD, 1 USD = 0.78 GBP on 2026-07-31"
        assert item.converted_amount == Decimal("78.00")  # 270 XCD = 100 USD = 78 GBP


def test_a_cross_rate_uses_the_last_rate_of_the_week_before_a_weekend(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.78")
        item = _spend(line_id, "27.00", "XCD", date(2026, 8, 2))
        assert item.converted_amount == Decimal("7.80")
        assert "1 USD = 0.78 GBP on 2026-07-31" in item.rate_source


def test_a_rate_quoted_the_other_way_is_said_as_it_was_quoted(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "GBP", "USD", "1.25")
        item = _spend(line_id, "270.00", "XCD", date(2026, 7, 31))
        assert item.converted_amount == Decimal("80.00")
        assert item.rate_source == "1 GBP = 3.3750 XCD via USD: fixed 2.70 XCD per USD, 1 GBP = 1.25 USD on 2026-07-31"


def test_two_steps_go_through_usd_and_eur_when_only_those_rates_exist(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "EUR", "0.90")
        rates.record_rate(db.session, date(2026, 7, 31), "EUR", "GBP", "0.80")
        item = _spend(line_id, "270.00", "XCD", date(2026, 7, 31))

        # 270 XCD = 100 USD = 90 EUR = 72 GBP
        assert item.converted_amount == Decimal("72.00")
        assert item.rate_source == (
            "1 GBP = 3.7500 XCD via USD and EUR: fixed 2.70 XCD per USD, "
            "1 USD = 0.90 EUR on 2026-07-31, 1 EUR = 0.80 GBP on 2026-07-31"
        )


def test_a_direct_rate_wins_over_a_cross_rate(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.78")
        rates.record_rate(db.session, date(2026, 7, 31), "XCD", "GBP", "0.30")
        item = _spend(line_id, "100.00", "XCD", date(2026, 7, 31))
        assert item.converted_amount == Decimal("30.00")
        assert "via" not in item.rate_source


def test_without_any_path_the_spending_is_refused_naming_the_pair(app, gbp_grant):
    from core.errors import DomainValidationError
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        with pytest.raises(DomainValidationError) as refused:
            _spend(line_id, "100.00", "XCD", date(2026, 7, 31))
        message = refused.value.errors["currency"][0]
        assert "no XCD→GBP exchange rate for 2026-07-31" in message
        assert "no path through USD or EUR" in message
        db.session.rollback()


def test_correcting_a_rate_a_cross_conversion_used_redoes_it(app, gbp_grant):
    from budgets import rates
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.78")
        item = _spend(line_id, "270.00", "XCD", date(2026, 7, 31))
        db.session.commit()
        rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.80")
        db.session.commit()
        db.session.refresh(item)
        assert item.converted_amount == Decimal("80.00")
        assert "1 USD = 0.80 GBP on 2026-07-31" in item.rate_source


def test_deleting_the_rate_a_cross_conversion_needs_is_refused(app, gbp_grant):
    from budgets import rates
    from budgets.models import ExchangeRate
    from core.errors import DomainValidationError
    from core.extensions import db

    _grant_id, line_id = gbp_grant
    with app.app_context():
        rate = rates.record_rate(db.session, date(2026, 7, 31), "USD", "GBP", "0.78")
        _spend(line_id, "270.00", "XCD", date(2026, 7, 31))
        db.session.commit()
        with pytest.raises(DomainValidationError):
            rates.delete_rate(db.session, rate)
        db.session.rollback()
        assert db.session.get(ExchangeRate, rate.id) is not None


def test_period_average_policy_averages_each_step_when_there_is_no_direct_rate(app, gbp_grant):
    from budgets import rates
    from budgets.models import RateMethod
    from core.extensions import db
    from grants.models import Grant

    grant_id, line_id = gbp_grant
    with app.app_context():
        rates.set_rate_policy(db.session, db.session.get(Grant, grant_id), RateMethod.period_average)
        rates.record_rate(db.session, date(2026, 7, 10), "USD", "GBP", "0.76")
        rates.record_rate(db.session, date(2026, 8, 10), "USD", "GBP", "0.80")
        item = _spend(line_id, "270.00", "XCD", date(2026, 8, 31))
        assert item.converted_amount == Decimal("78.00")
        assert "via USD: fixed 2.70 XCD per USD, average 1 USD = 0.78 GBP in S2" in item.rate_source
