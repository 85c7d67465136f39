"""What a real Odoo 17 does to the sync: corrections recreate lines, wrong links, unmapped spending, bills in EUR, the demo.

Each scenario runs on every protocol (JSON-RPC, XML-RPC, and Odoo 19's json2).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.budgets.odoo.test_sync import expenditures, link_state, sync

ALL = ["jsonrpc", "xmlrpc", "json2"]


def odoo_total(odoo, account=41, mapped=(600, 610)) -> Decimal:
    """What Odoo says the grant spent on mapped accounts (costs positive), to compare with Grantkeeper."""
    return sum(
        (
            -Decimal(str(line["amount"]))
            for line in odoo.lines
            if line.get("x_plan2_id") and line["x_plan2_id"][0] == account and line["general_account_id"][0] in mapped
        ),
        Decimal("0"),
    )


def kept_total(app) -> Decimal:
    return sum((row[3] for row in expenditures(app)), Decimal("0"))


def three_bills(odoo):
    odoo.add_line(1, "2026-02-03", -2700.00, account=41, write_date="2026-03-01 08:00:00", name="Salary Feb")
    odoo.add_line(2, "2026-02-10", -1500.00, account=41, write_date="2026-03-01 08:00:00", name="Salary Mar")
    odoo.add_line(3, "2026-02-11", -1000.00, account=41, general=(610, "6200 Travel"), write_date="2026-03-01 08:00:00")


# ---------------------------------------------------------------- corrections delete and recreate lines


@pytest.mark.parametrize("protocol", ALL)
def test_routine_corrections_in_odoo_leave_the_same_spending_in_grantkeeper(app, linked, odoo, protocol):
    three_bills(odoo)
    odoo.add_line(4, "2026-02-20", -100.00, account=41, general=(610, "6200 Travel"), write_date="2026-03-01 08:00:00")
    sync(app, odoo, linked.link_a, protocol=protocol)
    assert kept_total(app) == Decimal("5300.00")

    # Reset to draft, corrected and posted again: a new line under a new id.
    new_id = odoo.repost(1, write_date="2026-04-01 09:00:00", amount=-2430.00)
    # A new analytic distribution: 70% to this grant, 30% to another.
    split = odoo.redistribute(2, {41: 70, 42: 30}, write_date="2026-04-01 09:05:00")
    # Cancelled.
    odoo.cancel(4)

    result = sync(app, odoo, linked.link_a, protocol=protocol)

    assert not result.full and (result.created, result.removed) == (2, 3), result
    assert kept_total(app) == odoo_total(odoo) == Decimal("4480.00")
    assert sorted(row[0] for row in expenditures(app)) == sorted(f"odoo:odoo:{i}" for i in (3, new_id, split[0]))
    assert "2 created, 0 updated, 3 removed" in link_state(app, linked.link_a)[2]


@pytest.mark.parametrize("protocol", ALL)
def test_a_no_change_sync_asks_odoo_at_most_four_questions(app, linked, odoo, protocol):
    three_bills(odoo)
    sync(app, odoo, linked.link_a, protocol=protocol)
    odoo.edit_line(1, write_date="2026-05-01 08:00:00", name="Salary Feb (renamed)")
    sync(app, odoo, linked.link_a, protocol=protocol)
    before = odoo.requests

    again = sync(app, odoo, linked.link_a, protocol=protocol)

    assert (again.created, again.updated, again.removed, again.unchanged) == (0, 0, 0, 1)
    assert odoo.requests - before <= 4  # login, account check, changed lines, surviving ids


# ---------------------------------------------------------------- a wrong link never wipes spending


@pytest.mark.parametrize("protocol", ALL)
def test_linking_an_account_odoo_does_not_have_fails_and_keeps_the_spending(app, linked, odoo, protocol):
    from budgets.models import OdooLink
    from core.extensions import db

    three_bills(odoo)
    sync(app, odoo, linked.link_a, protocol=protocol)
    with app.app_context():
        db.session.get(OdooLink, linked.link_a).analytic_account_id = 4242
        db.session.commit()

    error = sync(app, odoo, linked.link_a, protocol=protocol)

    assert "Odoo has no analytic account 4242" in str(error)
    assert kept_total(app) == Decimal("5200.00")
    assert link_state(app, linked.link_a)[0] == "failed"


@pytest.mark.parametrize("protocol", ALL)
def test_linking_an_account_of_another_plan_fails_and_keeps_the_spending(app, linked, odoo, protocol):
    from budgets.models import OdooLink
    from core.extensions import db

    three_bills(odoo)
    odoo.plans["x_plan3_id"] = "Donors"
    odoo.add_account(43, "Donor account", plan="x_plan3_id")
    sync(app, odoo, linked.link_a, protocol=protocol)
    with app.app_context():
        db.session.get(OdooLink, linked.link_a).analytic_account_id = 43
        db.session.commit()

    error = sync(app, odoo, linked.link_a, protocol=protocol)

    assert "analytic account 43 (Donor account) is in the plan 'Donors', not 'Grants'" in str(error)
    assert kept_total(app) == Decimal("5200.00")


def test_an_archived_account_fails_the_sync(app, linked, odoo):
    odoo.add_account(41, "GA-1 grant account", active=False)
    error = sync(app, odoo, linked.link_a)
    assert "is archived" in str(error) and expenditures(app) == []


@pytest.mark.parametrize("protocol", ALL)
def test_an_unknown_database_fails_without_naming_odoos_database_server(app, linked, odoo, protocol):
    error = sync(app, odoo, linked.link_a, protocol=protocol, database="coalitoin")
    status, _cursor, message = link_state(app, linked.link_a)
    assert status == "failed" and "'coalitoin'" in message
    for text in (str(error), message):
        assert "pg-internal" not in text and "10.20.30.40" not in text and "Traceback" not in text


# ---------------------------------------------------------------- removing much asks first


@pytest.mark.parametrize("protocol", ALL)
def test_a_sync_that_would_remove_most_spending_stops_and_asks(app, linked, odoo, protocol):
    from budgets.odoo_sync import RemovalsNeedConfirmation

    three_bills(odoo)
    sync(app, odoo, linked.link_a, protocol=protocol)
    odoo.cancel(1)
    odoo.cancel(2)

    asked = sync(app, odoo, linked.link_a, protocol=protocol)

    assert isinstance(asked, RemovalsNeedConfirmation)
    assert "would remove 2 expenditures (1,555.56 USD net, 81% of the spending imported from Odoo)" in str(asked)
    assert "more than the 25% the link allows" in str(asked)
    assert kept_total(app) == Decimal("5200.00")
    assert link_state(app, linked.link_a)[0] == "refused"

    confirmed = sync(app, odoo, linked.link_a, protocol=protocol, confirm=True)
    assert confirmed.removed == 2 and kept_total(app) == Decimal("1000.00")


# ---------------------------------------------------------------- unmapped accounts accumulate


@pytest.mark.parametrize("protocol", ALL)
def test_unmapped_spending_stays_listed_until_mapped(app, world, linked, odoo, protocol):
    from budgets import odoo_sync
    from budgets.models import OdooLink
    from core.extensions import db
    from grants.models import Grant

    three_bills(odoo)
    odoo.add_line(4, "2026-02-12", -100.00, account=41, general=(620, "6300 Rent"), write_date="2026-03-01 08:00:00")
    odoo.add_line(5, "2026-02-13", -50.00, account=41, general=(620, "6300 Rent"), write_date="2026-03-01 08:00:00")
    sync(app, odoo, linked.link_a, protocol=protocol)
    odoo.add_line(6, "2026-04-13", -25.00, account=41, general=(620, "6300 Rent"), write_date="2026-05-01 08:00:00")
    odoo.cancel(5)

    later = sync(app, odoo, linked.link_a, protocol=protocol)  # reads only line 6, yet the list stays whole

    assert [(u.account_id, u.lines, u.total) for u in later.unmapped] == [(620, 2, Decimal("125.00"))]
    with app.app_context():
        assert db.session.get(OdooLink, linked.link_a).last_unmapped == [
            {"account_id": 620, "label": "6300 Rent", "lines": 2, "total": "125.00"}
        ]
        odoo_sync.map_account(
            db.session, db.session.get(Grant, world.grant_a), odoo_account_id=620, line="TR-1", label="6300 Rent"
        )
        db.session.commit()

    mapped = sync(app, odoo, linked.link_a, protocol=protocol)

    assert mapped.unmapped == [] and mapped.created == 2
    assert kept_total(app) == Decimal("5325.00")


def test_a_dismissed_account_leaves_the_list_but_is_still_not_imported(app, linked, odoo):
    from budgets import odoo_sync
    from budgets.models import OdooLink
    from core.extensions import db

    odoo.add_line(4, "2026-02-12", -100.00, account=41, general=(620, "6300 Rent"))
    sync(app, odoo, linked.link_a)
    with app.app_context():
        link = db.session.get(OdooLink, linked.link_a)
        odoo_sync.dismiss_account(db.session, link, 620)
        db.session.commit()
        assert link.last_unmapped == []
    assert sync(app, odoo, linked.link_a).unmapped == [] and expenditures(app) == []


# ---------------------------------------------------------------- bills in another currency


def test_a_eur_bill_keeps_its_own_amount_beside_odoos_company_amount(app, linked, odoo):
    from budgets.models import Expenditure, OdooOwnAmount
    from core.extensions import db

    odoo.add_line(1, "2026-02-03", -297.00, account=41, original=(100.00, "EUR"), name="Venue, Paris")

    sync(app, odoo, linked.link_a)

    with app.app_context():
        item = db.session.scalar(select(Expenditure))
        own = db.session.scalar(select(OdooOwnAmount))
        assert (item.amount, item.currency, item.converted_amount) == (Decimal("297.00"), "XCD", Decimal("110.00"))
        assert (own.company_amount, own.company_currency, own.own_amount, own.own_currency) == (
            Decimal("297.00"),
            "XCD",
            Decimal("100.00"),
            "EUR",
        )
        assert item.rate_source.startswith("converted from Odoo's company amount (the bill: 100.00 EUR)")


@pytest.mark.parametrize("protocol", ALL)
def test_a_link_can_have_the_grant_convert_the_bills_own_amount(app, world, linked, odoo, protocol):
    from budgets import odoo_sync
    from budgets.models import BudgetLine, Expenditure, OdooAmountBasis
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant_b = db.session.get(Grant, world.grant_b)  # a EUR grant
        link = odoo_sync.link_grant(
            db.session, grant_b, analytic_account_id=77, analytic_plan="Grants", company_currency="XCD"
        )
        link.amount_basis = OdooAmountBasis.bill
        odoo_sync.map_account(db.session, grant_b, odoo_account_id=600, line=db.session.get(BudgetLine, linked.line_b))
        db.session.commit()
        link_id = link.id
    odoo.add_line(1, "2026-02-03", -297.00, account=77, original=(100.00, "EUR"))
    odoo.add_line(2, "2026-02-04", -148.50, account=77, original=(50.00, "EUR"))  # half of a 100 EUR bill

    result = sync(app, odoo, link_id, protocol=protocol)

    assert result.created == 2
    with app.app_context():
        items = db.session.scalars(select(Expenditure).order_by(Expenditure.id)).all()
        assert [(i.amount, i.currency, i.converted_amount) for i in items] == [
            (Decimal("100.00"), "EUR", Decimal("100.00")),
            (Decimal("50.00"), "EUR", Decimal("50.00")),
        ]
        assert items[0].rate_source.startswith("converted from the bill's own amount, 100.00 EUR (Odoo: 297.00 XCD)")


# ---------------------------------------------------------------- the demo's stand-ins


def test_demo_odoo_rows_go_when_a_real_odoo_is_synced(app, linked, odoo):
    from budgets import services
    from budgets.models import BudgetLine
    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "demo", "system")):
        line = db.session.get(BudgetLine, linked.line_hr)
        for index in (1, 2):
            services.record_expenditure(
                db.session,
                line.grant,
                line=line,
                spent_on=date(2026, 2, index),
                amount="27",
                currency="XCD",
                source="odoo",
                external_ref=f"demo-odoo-{index}",
            )
        db.session.commit()
    odoo.add_line(1, "2026-02-03", -270.00, account=41)

    result = sync(app, odoo, linked.link_a)

    assert result.demo_removed == 2 and "2 demo expenditures removed" in result.summary()
    assert [row[0] for row in expenditures(app)] == ["odoo:odoo:1"]


# ---------------------------------------------------------------- one sync of a grant at a time


def test_two_syncs_of_the_same_grant_started_together_run_one_after_the_other(app, linked, odoo):
    import threading

    three_bills(odoo)
    odoo.delay = 0.2  # each request takes a while: the two syncs overlap unless one waits
    results = []
    threads = [threading.Thread(target=lambda: results.append(sync(app, odoo, linked.link_a))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted((r.full, r.created, r.unchanged) for r in results) == [(False, 0, 3), (True, 3, 0)]
    assert len(expenditures(app)) == 3
