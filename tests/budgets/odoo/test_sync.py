"""The Odoo sync as finance lives it: spending appears, follows Odoo's edits and deletions, and refuses bad lines whole."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.budgets.odoo.conftest import SECRET

PROTOCOLS = ["jsonrpc", "xmlrpc", "json2"]


def client(odoo, protocol="jsonrpc", secret=SECRET, database=None):
    from budgets.odoo import OdooClient, OdooSettings

    return OdooClient(
        OdooSettings(
            host="127.0.0.1",
            port=odoo.port,
            database=database or odoo.database,
            login=odoo.login,
            secret=secret,
            protocol=protocol,
            timeout=5.0,
        )
    )


def sync(app, odoo, link_id, *, protocol="jsonrpc", secret=SECRET, full=False, confirm=False, database=None):
    """Run one sync as the CLI does (its own transaction, audited as odoo-sync); return the result or the error."""
    from budgets import odoo_sync
    from budgets.models import OdooLink
    from budgets.odoo import OdooError
    from core.audit import acting_as
    from core.extensions import db

    with app.app_context(), acting_as(odoo_sync.SYNC_ACTOR):
        link = db.session.get(OdooLink, link_id)
        try:
            return odoo_sync.sync_and_commit(
                db.session, client(odoo, protocol, secret, database), link, full=full, confirm_removals=confirm
            )
        except (OdooError, odoo_sync.SyncRefused) as exc:
            return exc
        finally:
            db.session.remove()


def expenditures(app):
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        rows = db.session.scalars(select(Expenditure).order_by(Expenditure.external_ref)).all()
        result = [
            (e.external_ref, e.line.code, str(e.spent_on), e.amount, e.currency, e.converted_amount, e.description)
            for e in rows
        ]
        db.session.remove()
        return result


def link_state(app, link_id):
    from budgets.models import OdooLink
    from core.extensions import db

    with app.app_context():
        link = db.session.get(OdooLink, link_id)
        state = (link.last_status.value, link.last_write_date, link.last_message)
        db.session.remove()
        return state


# ---------------------------------------------------------------- importing


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_first_sync_imports_mapped_lines_converted_at_the_peg(app, linked, odoo, protocol):
    odoo.add_line(
        1, "2026-02-03", -270.00, account=41, name="Coordinator salary February", write_date="2026-03-01 08:00:00"
    )
    odoo.add_line(2, "2026-05-04", -54.00, account=41, general=(610, "6200 Travel"), write_date="2026-05-05 09:30:00")
    odoo.add_line(3, "2026-02-05", -999.00, account=99)  # another grant's analytic account

    result = sync(app, odoo, linked.link_a, protocol=protocol)

    assert (result.full, result.full_reason, result.read, result.created) == (True, "first sync", 2, 2)
    assert expenditures(app) == [
        (
            "odoo:odoo:1",
            "HR-1",
            "2026-02-03",
            Decimal("270.00"),
            "XCD",
            Decimal("100.00"),
            "Coordinator salary February",
        ),
        ("odoo:odoo:2", "TR-1", "2026-05-04", Decimal("54.00"), "XCD", Decimal("20.00"), "line 2"),
    ]
    status, cursor, message = link_state(app, linked.link_a)
    assert status == "ok" and cursor == datetime(2026, 5, 5, 9, 30)
    assert "2 created, 0 updated, 0 removed" in message


def test_imported_spending_says_which_rate_and_period_it_used(app, linked, odoo):
    from budgets.models import Expenditure, ExpenditureSource
    from core.extensions import db

    odoo.add_line(1, "2026-08-03", -27.00, account=41)
    sync(app, odoo, linked.link_a)
    with app.app_context():
        item = db.session.scalar(select(Expenditure))
        assert item.source == ExpenditureSource.odoo
        assert item.period.label == "S2"
        assert "fixed rate 1 USD = 2.70 XCD" in item.rate_source


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_syncing_again_changes_nothing(app, linked, odoo, protocol):
    from core.audit import AuditEntry
    from core.extensions import db

    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_line(2, "2026-02-04", -54.00, account=41, general=(610, "6200 Travel"))
    sync(app, odoo, linked.link_a, protocol=protocol)
    before = expenditures(app)
    with app.app_context():
        audited = db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.table_name == "expenditures"))

    again = sync(app, odoo, linked.link_a, protocol=protocol)

    assert not again.full and (again.created, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)
    assert expenditures(app) == before
    with app.app_context():
        assert (
            db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.table_name == "expenditures"))
            == audited
        )


def test_a_line_edited_in_odoo_updates_its_expenditure(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41, write_date="2026-03-01 08:00:00")
    odoo.add_line(2, "2026-02-04", -54.00, account=41, general=(610, "6200 Travel"), write_date="2026-02-05 08:00:00")
    sync(app, odoo, linked.link_a)
    odoo.edit_line(1, write_date="2026-04-10 12:00:00", amount=-540.00, date="2026-03-31", name="Salary, corrected")

    result = sync(app, odoo, linked.link_a)

    assert not result.full and (result.read, result.updated, result.created) == (1, 1, 0)
    assert expenditures(app)[0] == (
        "odoo:odoo:1",
        "HR-1",
        "2026-03-31",
        Decimal("540.00"),
        "XCD",
        Decimal("200.00"),
        "Salary, corrected",
    )
    assert link_state(app, linked.link_a)[1] == datetime(2026, 4, 10, 12, 0)


def test_a_line_moved_to_another_expense_account_moves_to_its_budget_line(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    sync(app, odoo, linked.link_a)
    odoo.edit_line(1, write_date="2026-07-02 10:00:00", general_account_id=[610, "6200 Travel"])
    assert sync(app, odoo, linked.link_a).updated == 1
    assert expenditures(app)[0][1] == "TR-1"


def test_a_line_deleted_in_odoo_is_removed_by_the_next_sync_of_changes(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_line(2, "2026-02-04", -54.00, account=41)
    sync(app, odoo, linked.link_a)
    odoo.delete_line(2)  # the entry was reset to draft in Odoo

    incremental = sync(app, odoo, linked.link_a)

    assert (incremental.full, incremental.removed, incremental.unchanged) == (False, 1, 1)
    assert [row[0] for row in expenditures(app)] == ["odoo:odoo:1"]
    full = sync(app, odoo, linked.link_a, full=True)
    assert (full.full, full.full_reason, full.removed, full.unchanged) == (True, "asked for", 0, 1)


def test_a_full_sync_leaves_spending_of_other_sources_alone(app, linked, odoo):
    from budgets import services
    from budgets.models import BudgetLine
    from core.extensions import db

    with app.app_context():
        line = db.session.get(BudgetLine, linked.line_hr)
        services.record_expenditure(
            db.session,
            line.grant,
            line=line,
            spent_on=datetime(2026, 2, 1).date(),
            amount="10",
            currency="USD",
            description="petty cash",
        )
        services.record_expenditure(
            db.session,
            line.grant,
            line=line,
            spent_on=datetime(2026, 2, 1).date(),
            amount="27",
            currency="XCD",
            source="odoo",
            external_ref="odoo:otherdb:1",
        )
        db.session.commit()
    result = sync(app, odoo, linked.link_a, full=True)
    assert result.removed == 0 and len(expenditures(app)) == 2


def test_a_small_xcd_amount_converts_exactly_at_the_peg(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -0.27, account=41)
    sync(app, odoo, linked.link_a)
    assert expenditures(app)[0][5] == Decimal("0.10")


def test_a_refund_in_odoo_is_kept_as_negative_spending(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_line(2, "2026-02-20", 27.00, account=41, name="Supplier refund")
    sync(app, odoo, linked.link_a)
    refund = expenditures(app)[1]
    assert (refund[3], refund[5], refund[6]) == (Decimal("-27.00"), Decimal("-10.00"), "Supplier refund")


def test_lines_of_amount_zero_are_skipped(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", 0.0, account=41)
    result = sync(app, odoo, linked.link_a)
    assert (result.zero, result.created) == (1, 0) and expenditures(app) == []


# ---------------------------------------------------------------- unmapped accounts


def test_unmapped_accounts_are_reported_with_count_and_total_and_not_imported(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_line(2, "2026-02-04", -100.50, account=41, general=(620, "6300 Rent"))
    odoo.add_line(3, "2026-03-04", -100.50, account=41, general=(620, "6300 Rent"))

    result = sync(app, odoo, linked.link_a)

    assert result.created == 1 and [row[0] for row in expenditures(app)] == ["odoo:odoo:1"]
    assert [(u.account_id, u.label, u.lines, u.total) for u in result.unmapped] == [
        (620, "6300 Rent", 2, Decimal("201.00"))
    ]
    assert "6300 Rent (Odoo account 620): 2 lines, 201.00 XCD" in result.summary()
    from budgets.models import OdooLink
    from core.extensions import db

    with app.app_context():
        assert db.session.get(OdooLink, linked.link_a).last_unmapped == [
            {"account_id": 620, "label": "6300 Rent", "lines": 2, "total": "201.00"}
        ]


def test_mapping_an_account_later_brings_in_its_older_lines(app, world, linked, odoo):
    from budgets import odoo_sync
    from core.extensions import db
    from grants.models import Grant

    odoo.add_line(1, "2026-02-03", -270.00, account=41, write_date="2026-03-01 08:00:00")
    odoo.add_line(2, "2026-02-04", -100.50, account=41, general=(620, "6300 Rent"), write_date="2026-03-01 08:00:00")
    sync(app, odoo, linked.link_a)
    with app.app_context():
        odoo_sync.map_account(
            db.session, db.session.get(Grant, world.grant_a), odoo_account_id=620, line="TR-1", label="6300 Rent"
        )
        db.session.commit()

    result = sync(app, odoo, linked.link_a)

    assert result.full and "mappings changed" in result.full_reason
    assert (result.created, result.unchanged, result.unmapped) == (1, 1, [])
    assert [row[:2] for row in expenditures(app)] == [("odoo:odoo:1", "HR-1"), ("odoo:odoo:2", "TR-1")]


# ---------------------------------------------------------------- refusals: all or nothing


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_line_dated_outside_the_grant_refuses_the_whole_sync_and_saves_nothing(app, linked, odoo, protocol):
    from budgets.odoo_sync import SyncRefused

    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_line(2, "2025-12-20", -54.00, account=41, general=(610, "6200 Travel"))

    refused = sync(app, odoo, linked.link_a, protocol=protocol)

    assert isinstance(refused, SyncRefused)
    assert "Odoo line 2 (2025-12-20, 6200 Travel, 54.00 XCD)" in str(refused)
    assert "outside grant GA-1 (2026-01-01 to 2026-12-31)" in str(refused)
    assert expenditures(app) == []
    status, cursor, message = link_state(app, linked.link_a)
    assert (status, cursor) == ("refused", None)
    assert message.startswith("Nothing saved.") and "Odoo line 2" in message


def test_a_refused_sync_keeps_the_cursor_where_the_last_good_sync_left_it(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41, write_date="2026-03-01 08:00:00")
    sync(app, odoo, linked.link_a)
    odoo.edit_line(1, write_date="2026-04-10 12:00:00", amount=-540.00)
    odoo.add_line(2, "2027-01-05", -54.00, account=41, write_date="2026-04-10 12:00:00")

    refused = sync(app, odoo, linked.link_a)

    assert "Odoo line 2" in str(refused) and "Odoo line 1" not in str(refused)
    assert expenditures(app)[0][3] == Decimal("270.00")  # the good edit was not saved either
    assert link_state(app, linked.link_a)[:2] == ("refused", datetime(2026, 3, 1, 8, 0))


def test_spending_without_an_exchange_rate_refuses_the_sync_naming_the_line(app, world, linked, odoo):
    from budgets import odoo_sync
    from budgets.models import BudgetLine
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant_b = db.session.get(Grant, world.grant_b)  # EUR, transaction-date rates, none recorded
        link = odoo_sync.link_grant(
            db.session, grant_b, analytic_account_id=77, analytic_plan="Grants", company_currency="XCD"
        )
        odoo_sync.map_account(db.session, grant_b, odoo_account_id=600, line=db.session.get(BudgetLine, linked.line_b))
        db.session.commit()
        link_id = link.id
    odoo.add_line(5, "2026-03-03", -100.00, account=77)

    refused = sync(app, odoo, link_id)

    assert "Odoo line 5 (2026-03-03, 6100 Salaries, 100.00 XCD): no XCD→EUR exchange rate for 2026-03-03" in str(
        refused
    )
    assert expenditures(app) == []


def test_a_line_in_another_currency_than_the_link_says_is_refused(app, linked, odoo):
    odoo.add_line(1, "2026-02-03", -270.00, account=41, currency="EUR")
    refused = sync(app, odoo, linked.link_a)
    assert "Odoo line 1 (2026-02-03, 6100 Salaries, 270.00 EUR)" in str(refused)
    assert "is in EUR, but the Odoo link of GA-1 says the company currency is XCD" in str(refused)


def test_one_odoo_line_cannot_count_for_two_grants(app, world, linked, odoo):
    from budgets import odoo_sync, rates
    from budgets.models import BudgetLine
    from core.extensions import db
    from grants.models import Grant

    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    odoo.add_account(5, "Project 5", plan="account_id")
    odoo.lines[0]["account_id"] = [5, "Project 5"]  # the same line also carries grant B's project account
    sync(app, odoo, linked.link_a)
    with app.app_context():
        grant_b = db.session.get(Grant, world.grant_b)
        rates.record_rate(db.session, datetime(2026, 2, 3).date(), "XCD", "EUR", "0.34")
        link = odoo_sync.link_grant(db.session, grant_b, analytic_account_id=5, company_currency="XCD")
        odoo_sync.map_account(db.session, grant_b, odoo_account_id=600, line=db.session.get(BudgetLine, linked.line_b))
        db.session.commit()
        link_id = link.id

    refused = sync(app, odoo, link_id)

    assert "Odoo line 1" in str(refused) and "already recorded for grant GA-1" in str(refused)


# ---------------------------------------------------------------- Odoo errors and secrets


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_wrong_api_key_is_a_clear_error_that_never_shows_the_key(app, linked, odoo, protocol, caplog):
    from budgets.odoo import OdooError

    caplog.set_level(logging.DEBUG)
    odoo.add_line(1, "2026-02-03", -270.00, account=41)

    error = sync(app, odoo, linked.link_a, protocol=protocol, secret="wrong-key-789")

    assert isinstance(error, OdooError)
    expected = "refused the API key on database 'odoo'" if protocol == "json2" else "refused the login 'sync'"
    assert expected in str(error)
    status, _cursor, message = link_state(app, linked.link_a)
    assert status == "failed" and message == str(error)
    assert expenditures(app) == []
    for text in (str(error), message, caplog.text):
        assert "wrong-key-789" not in text and SECRET not in text


def test_the_key_never_reaches_logs_or_the_audit_trail_of_a_good_sync(app, linked, odoo, caplog):
    from core.audit import AuditEntry
    from core.extensions import db

    caplog.set_level(logging.DEBUG)
    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    sync(app, odoo, linked.link_a)
    with app.app_context():
        trail = " ".join(f"{e.record_label} {e.changes}" for e in db.session.scalars(select(AuditEntry)))
    assert SECRET not in caplog.text and SECRET not in trail


def test_changes_made_by_a_sync_are_audited_as_the_odoo_sync(app, linked, odoo):
    from core.audit import AuditEntry
    from core.extensions import db

    odoo.add_line(1, "2026-02-03", -270.00, account=41)
    sync(app, odoo, linked.link_a)
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.table_name == "expenditures"))
        assert (entry.action, entry.username, entry.source) == ("insert", "odoo-sync", "sync")


# ---------------------------------------------------------------- settings, links and mappings


def test_settings_from_the_environment_name_what_is_missing_and_never_the_key():
    from budgets.odoo import OdooError
    from budgets.odoo_sync import configuration_problem, settings_from_env

    with pytest.raises(OdooError, match="set GRANTKEEPER_ODOO_LOGIN, GRANTKEEPER_ODOO_API_KEY"):
        settings_from_env({"GRANTKEEPER_ODOO_HOST": "odoo.example.org", "GRANTKEEPER_ODOO_DATABASE": "coalition"})
    env = {
        "GRANTKEEPER_ODOO_HOST": "odoo.example.org",
        "GRANTKEEPER_ODOO_DATABASE": "coalition",
        "GRANTKEEPER_ODOO_LOGIN": "sync@coalition.example.org",
        "GRANTKEEPER_ODOO_API_KEY": "k-very-secret",
    }
    settings = settings_from_env(env)
    assert (settings.protocol, settings.port, settings.timeout, settings.secret) == (
        "jsonrpc",
        8069,
        20.0,
        "k-very-secret",
    )
    assert settings_from_env({**env, "GRANTKEEPER_ODOO_PROTOCOL": "jsonrpcs"}).port == 443
    assert configuration_problem(env) is None
    for name, value, expected in [
        ("PORT", "80a", "GRANTKEEPER_ODOO_PORT: '80a' is not a port number"),
        ("PROTOCOL", "soap", "GRANTKEEPER_ODOO_PROTOCOL: 'soap'"),
        ("TIMEOUT", "-3", "GRANTKEEPER_ODOO_TIMEOUT: '-3'"),
    ]:
        problem = configuration_problem({**env, f"GRANTKEEPER_ODOO_{name}": value})
        assert expected in problem and "k-very-secret" not in problem


def test_an_account_cannot_be_mapped_to_a_line_of_another_grant(app, world, linked):
    from budgets import odoo_sync
    from budgets.models import BudgetLine, OdooAccountMap
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant_a = db.session.get(Grant, world.grant_a)
        with pytest.raises(DomainValidationError, match="budget line B-1 belongs to grant GB-1, not GA-1"):
            odoo_sync.map_account(
                db.session, grant_a, odoo_account_id=999, line=db.session.get(BudgetLine, linked.line_b)
            )
        db.session.rollback()
        assert db.session.scalar(select(func.count(OdooAccountMap.id))) == 2


def test_a_grant_has_one_odoo_link(app, world, linked):
    from budgets import odoo_sync
    from core.errors import DomainValidationError
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        with pytest.raises(DomainValidationError, match="GA-1 is already linked to Odoo"):
            odoo_sync.link_grant(
                db.session, db.session.get(Grant, world.grant_a), analytic_account_id=42, company_currency="XCD"
            )
        db.session.rollback()


def test_unknown_plan_fails_the_sync_with_odoos_plans_named(app, linked, odoo):
    from budgets.models import OdooLink
    from core.extensions import db

    with app.app_context():
        db.session.get(OdooLink, linked.link_a).analytic_plan = "Donors"
        db.session.commit()
    error = sync(app, odoo, linked.link_a)
    assert "no analytic plan named 'Donors' (plans: Grants)" in str(error)
    assert link_state(app, linked.link_a)[0] == "failed"
