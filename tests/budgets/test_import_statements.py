"""Imports and the Odoo sync write in batches: three times the rows costs (almost) no more SQL statements.

Statement counts, not timings: a change that brings back per-row queries (a check,
a conversion, an audit entry, a flush per row) fails here. Speed itself is measured by
benchmarks/bench_imports.py and benchmarks/bench_odoo_sync.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import event, func, select

# Rows are inserted a thousand per statement (budgets.bulk.BATCH), with their audit entries:
# going from 1,000 to 3,000 rows may add a few statements per extra thousand, never one per row.
EXTRA_PER_THOUSAND = 3


@contextlib.contextmanager
def counted(engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _csv(rows: int, *, first: int = 0) -> bytes:
    lines = ["Date;Voucher;Budget code;Details;Amount;Ccy"]
    start = date(2026, 1, 1)
    for n in range(first, first + rows):
        day = start + timedelta(days=n % 360)
        lines.append(f"{day:%d/%m/%Y};V-{n};{'HR-1' if n % 2 else 'TR-1'};row {n};{(n % 97) + 1}.50;USD")
    return ("\n".join(lines) + "\n").encode()


MAPPING = {
    "date": "Date",
    "amount": "Amount",
    "line": "Budget code",
    "currency": "Ccy",
    "description": "Details",
    "reference": "Voucher",
}


def _import_statements(app, world, rows: int, first: int) -> tuple[int, int]:
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        staged = imports.stage_import(
            db.session, db.session.get(Grant, world.grant_a), "big.csv", _csv(rows, first=first), by="finance"
        )
        db.session.commit()
        import_id = staged.id
        db.session.remove()
    with app.app_context():
        with counted(db.engine) as statements:
            result = imports.run_import(db.session, db.session.get(BudgetImport, import_id), MAPPING)
            db.session.commit()
        db.session.remove()
    assert (result.status.value, result.imported, result.errors) == ("imported", rows, [])
    return len(statements), result.imported


def test_an_actuals_import_of_three_thousand_rows_takes_no_more_statements_than_a_thousand(app, world, budget):
    from budgets.models import Expenditure
    from core.audit import AuditEntry
    from core.extensions import db

    small, _ = _import_statements(app, world, 1000, first=0)
    large, _ = _import_statements(app, world, 3000, first=1000)
    assert large <= small + 2 * EXTRA_PER_THOUSAND, (small, large)
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 4000
        # Every row still has its audit entry, written in batches.
        entries = db.session.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.table_name == "expenditures", AuditEntry.action == "insert"
            )
        )
        assert entries == 4000


def test_a_bulk_imported_row_reads_like_one_saved_by_hand(app, world, budget):
    """Same conversion sentence, same audit entry shape as an expenditure saved through the services."""
    from budgets.models import Expenditure
    from core.audit import AuditEntry
    from core.extensions import db

    _import_statements(app, world, 3, first=0)
    with app.app_context():
        row = db.session.scalars(select(Expenditure).order_by(Expenditure.id)).first()
        assert row.rate_source == "same currency as the grant"
        assert row.converted_cents == int(row.converted_amount * 100)
        assert row.period is not None and row.period.start_date <= row.spent_on <= row.period.end_date
        entry = db.session.scalars(
            select(AuditEntry).where(AuditEntry.table_name == "expenditures", AuditEntry.record_id == str(row.id))
        ).one()
        assert entry.action == "insert" and entry.grant_id == world.grant_a
        assert entry.record_label == repr(row)
        assert entry.changes["amount"] == [None, str(row.amount)]
        assert entry.changes["source"] == [None, "import"]


def test_a_bulk_import_still_refuses_rows_the_expenditure_rules_refuse(app, world, budget):
    """A date outside every period and a currency with no rate are named by row, nothing is saved."""
    from budgets import imports
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db
    from grants.models import Grant

    content = (
        b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
        b"03/02/2026;V-1;HR-1;fine;10.00;USD\n"
        b"03/02/2027;V-2;HR-1;after the grant;10.00;USD\n"
        b"03/02/2026;V-3;HR-1;no rate;10.00;JPY\n"
    )
    with app.app_context():
        staged = imports.stage_import(db.session, db.session.get(Grant, world.grant_a), "bad.csv", content, by="f")
        db.session.commit()
        result = imports.run_import(db.session, db.session.get(BudgetImport, staged.id), MAPPING)
        db.session.commit()
        assert result.status.value == "rejected"
        assert [(e["row"], e["column"]) for e in result.errors] == [(3, "Date"), (4, "Ccy")]
        assert "outside grant" in result.errors[0]["problem"]
        assert "no JPY→USD exchange rate for 2026-02-03" in result.errors[1]["problem"]
        assert db.session.scalar(select(func.count(Expenditure.id))) == 0


def test_confirming_an_import_does_not_parse_the_file_again(app, world, budget, monkeypatch):
    from budgets import imports
    from core.extensions import db
    from grants.models import Grant

    parses: list[str] = []
    real = imports._parse_rows
    monkeypatch.setattr(imports, "_parse_rows", lambda content, kind: parses.append(kind) or real(content, kind))
    with app.app_context():
        staged = imports.stage_import(
            db.session, db.session.get(Grant, world.grant_a), "a.csv", _csv(20, first=7000), by="f"
        )
        db.session.commit()
        imports.preview(staged)
        imports.preview(staged, decimal_mark=",")
        result = imports.run_import(db.session, staged, MAPPING)
        db.session.commit()
    assert result.imported == 20
    assert parses == ["csv"]


# ---------------------------------------------------------------- budget plan and rates


def _plan_import_statements(app, world, rows: int, first: int) -> int:
    from budgets import budget_import
    from budgets.models import BudgetPlanImport
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES

    body = "".join(f"P-{n:06d},Line {n},STAFF,{n % 900 + 1}.25\n" for n in range(first, first + rows))
    content = ("Code,Line name,Cost category,Total\n" + body).encode()
    with app.app_context():
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant = db.session.get(Grant, world.grant_a)
        grant.amount = 10**12
        staged = budget_import.stage(db.session, grant, "plan.csv", content, by="finance")
        db.session.commit()
        import_id = staged.id
        db.session.remove()
    with app.app_context():
        with counted(db.engine) as statements:
            staged = db.session.get(BudgetPlanImport, import_id)
            result = budget_import.run(db.session, staged, dict(staged.mapping or {}))
            db.session.commit()
        db.session.remove()
    assert result.errors == [] and result.outcome.added == rows, result.errors[:3]
    return len(statements)


def test_a_budget_plan_import_of_three_thousand_lines_takes_no_more_statements_than_a_thousand(app, world):
    small = _plan_import_statements(app, world, 1000, first=0)
    large = _plan_import_statements(app, world, 3000, first=1000)
    assert large <= small + 2 * EXTRA_PER_THOUSAND, (small, large)


def _rates_import_statements(app, rows: int, first_day: date) -> int:
    from budgets import rate_import
    from core.extensions import db

    lines = ["date,from,to,rate"]
    for n in range(rows):
        lines.append(f"{first_day + timedelta(days=n // 4)},{('EUR', 'GBP', 'JPY', 'CHF')[n % 4]},USD,1.{n % 97:02d}")
    content = ("\n".join(lines) + "\n").encode()
    with app.app_context():
        with counted(db.engine) as statements:
            result = rate_import.import_rates(db.session, content)
            db.session.commit()
        db.session.remove()
    assert result.errors == [] and result.added == rows, result.errors[:3]
    return len(statements)


def test_a_rates_import_of_three_thousand_rates_takes_no_more_statements_than_a_thousand(app, world):
    from budgets.models import ExchangeRate
    from core.audit import AuditEntry
    from core.extensions import db

    small = _rates_import_statements(app, 1000, date(2001, 1, 1))
    large = _rates_import_statements(app, 3000, date(2005, 1, 1))
    assert large <= small + 2 * EXTRA_PER_THOUSAND, (small, large)
    with app.app_context():
        assert db.session.scalar(select(func.count(ExchangeRate.id))) == 4000
        entries = db.session.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.table_name == "exchange_rates"))
        assert entries == 4000


# ---------------------------------------------------------------- the Odoo sync


@pytest.fixture
def odoo_sync_world(app, world):
    from tests.budgets.odoo.conftest import SECRET
    from tests.budgets.odoo.fake_odoo import FakeOdoo

    server = FakeOdoo(password=SECRET).start()
    server.add_account(41, "GA-1 grant account")
    yield server
    server.stop()


def _odoo_first_sync_statements(app, world, server, lines: int) -> int:
    from budgets import odoo_sync, services
    from budgets.models import Expenditure, OdooLink
    from budgets.odoo import OdooClient, OdooSettings
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES
    from tests.budgets.odoo.conftest import SECRET

    server.lines.clear()
    server.move_lines.clear()
    for n in range(1, lines + 1):
        day = date(2026, 1, 1) + timedelta(days=n % 360)
        server.add_line(n, day.isoformat(), -float((n % 50) + 1), 41, currency="USD")
    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant = db.session.get(Grant, world.grant_a)
        line = services.create_line(db.session, grant, code=f"OD-{lines}", description="Odoo", cost_category="STAFF")
        link = odoo_sync.link_for_grant(db.session, grant.id) or odoo_sync.link_grant(
            db.session, grant, analytic_account_id=41, analytic_plan="Grants", company_currency="USD"
        )
        odoo_sync.map_account(db.session, grant, odoo_account_id=600, line=line, label="6100 Salaries")
        link.last_write_date = None
        db.session.execute(Expenditure.__table__.delete())
        db.session.commit()
        link_id = link.id
    client = OdooClient(
        OdooSettings(
            host="127.0.0.1",
            port=server.port,
            database=server.database,
            login=server.login,
            secret=SECRET,
            protocol="jsonrpc",
            timeout=5.0,
        )
    )
    with app.app_context(), acting_as(odoo_sync.SYNC_ACTOR):
        with counted(db.engine) as statements:
            result = odoo_sync.sync_and_commit(db.session, client, db.session.get(OdooLink, link_id))
        db.session.remove()
    assert result.created == lines, result.summary()
    return len(statements)


def test_an_odoo_first_sync_of_three_thousand_lines_takes_no_more_statements_than_a_thousand(
    app, world, odoo_sync_world
):
    small = _odoo_first_sync_statements(app, world, odoo_sync_world, 1000)
    large = _odoo_first_sync_statements(app, world, odoo_sync_world, 3000)
    assert large <= small + 2 * EXTRA_PER_THOUSAND, (small, large)


def test_foreign_rows_are_converted_as_one_saved_by_hand_with_the_rates_read_once(app, world, budget):
    """Bulk conversions match budgets.rates.convert (rate of the day, last before a weekend), in one rates query."""
    from budgets import imports, rates
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        for day, value in ((date(2026, 3, 6), "1.10"), (date(2026, 3, 9), "1.12"), (date(2026, 4, 1), "1.08")):
            rates.record_rate(db.session, day, "EUR", "USD", value, source="ECB")
        db.session.commit()
    content = (
        b"Date;Voucher;Budget code;Details;Amount;Ccy\n"
        b"06/03/2026;E-1;HR-1;Friday;100.00;EUR\n"
        b"08/03/2026;E-2;HR-1;Sunday;33.33;EUR\n"
        b"09/03/2026;E-3;TR-1;Monday;-12.50;EUR\n"
        b"02/04/2026;E-4;TR-1;April;7.77;EUR\n"
    )
    with app.app_context():
        staged = imports.stage_import(db.session, db.session.get(Grant, world.grant_a), "eur.csv", content, by="f")
        db.session.commit()
        with counted(db.engine) as statements:
            result = imports.run_import(db.session, db.session.get(BudgetImport, staged.id), MAPPING)
            db.session.commit()
        assert result.imported == 4
        rate_queries = [s for s in statements if "FROM exchange_rates" in s]
        assert len(rate_queries) == 1, rate_queries
        grant = db.session.get(Grant, world.grant_a)
        for row in db.session.scalars(select(Expenditure).order_by(Expenditure.spent_on)):
            by_hand = rates.convert(db.session, grant, row.amount, row.currency, row.spent_on)
            assert (row.converted_amount, row.rate, row.rate_source) == (
                by_hand.converted,
                by_hand.multiplier,
                by_hand.source,
            )
        sunday = db.session.scalars(select(Expenditure).where(Expenditure.description == "Sunday")).one()
        assert sunday.rate_source == "1 EUR = 1.10 USD, rate of 2026-03-06 (last before 2026-03-08), ECB"
