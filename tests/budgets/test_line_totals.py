"""budget_line_totals, kept by database triggers, always equals a fresh GROUP BY over the expenditures.

Every write path is exercised (the ORM, the bulk import, raw executemany, moves between lines and
periods, amount and rate changes, deletes, grant deletion cascades, rollbacks); after each one the
totals table must hold exactly SUM(converted_cents) and COUNT(*) per (grant, line, period, day),
and budget vs actual (which reads the totals) must agree with the expenditures summed directly.
Runs on SQLite and, under TEST_DATABASE_URL, on PostgreSQL (statement-level triggers there).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, text, update

KEYS = ("grant_id", "line_id", "period_id", "spent_on")


def _fresh(session) -> set[tuple]:
    from budgets.models import Expenditure

    columns = [getattr(Expenditure, k) for k in KEYS]
    rows = session.execute(
        select(*columns, func.sum(Expenditure.converted_cents), func.count()).group_by(*columns)
    ).all()
    return {(*row[:4], int(row[4]), int(row[5])) for row in rows}


def _kept(session) -> set[tuple]:
    from budgets.models import BudgetLineTotal as T

    rows = session.execute(select(T.grant_id, T.line_id, T.period_id, T.spent_on, T.spent_cents, T.expenditures))
    return {(*row[:4], int(row[4]), int(row[5])) for row in rows}


def assert_totals_match(session, *, rows: int | None = None) -> set[tuple]:
    """The kept totals equal a fresh GROUP BY; ``rows``: how many expenditures there must be (not vacuous)."""
    kept, fresh = _kept(session), _fresh(session)
    assert kept == fresh, f"kept only: {sorted(kept - fresh)}; fresh only: {sorted(fresh - kept)}"
    if rows is not None:
        assert sum(r[5] for r in fresh) == rows
    return kept


def _bva_matches_a_direct_sum(session, grant_id: int, period_id: int | None) -> None:
    from budgets.models import Expenditure
    from budgets.report import budget_vs_actual
    from grants.models import ReportingPeriod

    report = budget_vs_actual(session, grant_id, period_id, by="line")
    where = [Expenditure.grant_id == grant_id]
    if period_id is not None:
        end = session.get(ReportingPeriod, period_id).end_date
        where.append(Expenditure.spent_on <= end)
    direct = dict(
        session.execute(
            select(Expenditure.line_id, func.sum(Expenditure.converted_cents))
            .where(*where)
            .group_by(Expenditure.line_id)
        ).all()
    )
    got = {row.line_id: row.cumulative_actual for row in report.rows if row.cumulative_actual}
    assert got == {k: Decimal(int(v)).scaleb(-2) for k, v in direct.items() if v}


def test_manual_spending_added_moved_changed_and_deleted(app, world, budget, spend):
    from budgets import services
    from budgets.models import BudgetLine, Expenditure
    from core.audit import Actor, acting_as
    from core.extensions import db

    first = spend(budget.line_hr, "120.00")
    spend(budget.line_hr, "30.50")  # same day and line: one totals row, two expenditures
    spend(budget.line_travel, "45.00", day=date(2026, 8, 3))  # second semester
    with app.app_context(), acting_as(Actor(None, "test", "system")):
        kept = assert_totals_match(db.session, rows=3)
        assert (world.grant_a, budget.line_hr, world.period_a1, date(2026, 2, 1), 15050, 2) in kept
        item = db.session.get(Expenditure, first)
        # Moved to another line and into the second period, then its amount changed.
        services.update_expenditure(
            db.session, item, line=db.session.get(BudgetLine, budget.line_travel), spent_on=date(2026, 7, 15)
        )
        db.session.commit()
        kept = assert_totals_match(db.session, rows=3)
        assert (world.grant_a, budget.line_hr, world.period_a1, date(2026, 2, 1), 3050, 1) in kept
        assert (world.grant_a, budget.line_travel, budget.period_a2, date(2026, 7, 15), 12000, 1) in kept
        services.update_expenditure(db.session, item, amount="99.99")
        db.session.commit()
        assert (world.grant_a, budget.line_travel, budget.period_a2, date(2026, 7, 15), 9999, 1) in assert_totals_match(
            db.session, rows=3
        )
        services.update_expenditure(db.session, item, description="only words change")
        db.session.commit()
        assert_totals_match(db.session, rows=3)
        for period in (None, world.period_a1, budget.period_a2):
            _bva_matches_a_direct_sum(db.session, world.grant_a, period)
        services.delete_expenditure(db.session, item)
        db.session.commit()
        kept = assert_totals_match(db.session, rows=2)
        assert not [k for k in kept if k[3] == date(2026, 7, 15)], "an emptied day keeps no totals row"


def test_a_rate_correction_reconverts_the_totals(app, budget, spend):
    from budgets import rates
    from core.extensions import db

    with app.app_context():
        rates.record_rate(db.session, date(2026, 2, 1), "USD", "EUR", "0.80")
        db.session.commit()
    spend(budget.line_hr, "80.00", "EUR")
    with app.app_context():
        assert {k[4] for k in assert_totals_match(db.session, rows=1)} == {10000}
        rates.record_rate(db.session, date(2026, 2, 1), "USD", "EUR", "0.50")
        db.session.commit()
        assert {k[4] for k in assert_totals_match(db.session, rows=1)} == {16000}


def test_an_import_adds_to_the_totals_and_a_refused_one_changes_nothing(app, world, budget, spend):
    from budgets import imports
    from budgets.models import BudgetImport
    from core.extensions import db
    from grants.models import Grant
    from tests.budgets.test_imports import GOOD_CSV, MAPPING

    spend(budget.line_hr, "10.00", day=date(2026, 2, 3))

    def run(content: bytes):
        with app.app_context():
            staged = imports.stage_import(db.session, db.session.get(Grant, world.grant_a), "a.csv", content, by="f")
            db.session.commit()
            result = imports.run_import(db.session, db.session.get(BudgetImport, staged.id), MAPPING)
            db.session.commit()
            return result

    assert run(GOOD_CSV).imported == 3
    with app.app_context():
        before = assert_totals_match(db.session, rows=4)
        assert (world.grant_a, budget.line_hr, world.period_a1, date(2026, 2, 3), 121000, 2) in before
    refused = GOOD_CSV.replace(b"V-1", b"V-9").replace(b"54.00;USD", b"54.00;XYZ")
    assert run(refused).status.value == "rejected"
    with app.app_context():
        assert assert_totals_match(db.session, rows=4) == before
        # Deleting the import keeps its expenditures (import_id SET NULL): an update that changes no figure.
        db.session.execute(delete(BudgetImport))
        db.session.commit()
        assert assert_totals_match(db.session, rows=4) == before


def test_a_rolled_back_bulk_write_leaves_the_totals_as_they_were(app, world, budget, spend):
    from budgets.models import Expenditure
    from core.extensions import db

    spend(budget.line_hr, "10.00")
    with app.app_context():
        before = assert_totals_match(db.session, rows=1)
        db.session.connection().execute(insert(Expenditure.__table__), _rows(world, budget, 50))
        assert assert_totals_match(db.session, rows=51) != before
        db.session.rollback()
        assert assert_totals_match(db.session, rows=1) == before


def test_bulk_updates_and_deletes_in_one_statement(app, world, budget):
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        connection = db.session.connection()
        connection.execute(insert(Expenditure.__table__), _rows(world, budget, 200))
        assert_totals_match(db.session, rows=200)
        # Every expenditure of one line moves to the other, and amounts double on some days.
        connection.execute(
            update(Expenditure).where(Expenditure.line_id == budget.line_hr).values(line_id=budget.line_travel)
        )
        connection.execute(
            update(Expenditure)
            .where(Expenditure.spent_on < date(2026, 3, 1))
            .values(converted_cents=Expenditure.converted_cents * 2)
        )
        assert {k[1] for k in assert_totals_match(db.session, rows=200)} == {budget.line_travel}
        connection.execute(delete(Expenditure).where(Expenditure.spent_on >= date(2026, 4, 1)))
        kept = assert_totals_match(db.session)
        assert kept and max(k[3] for k in kept) < date(2026, 4, 1)
        db.session.commit()


def test_deleting_a_grant_cascades_to_its_totals(app, world, budget, spend):
    from budgets.models import BudgetLineTotal
    from core.extensions import db

    spend(budget.line_hr, "10.00")
    spend(budget.line_b, "20.00", "EUR", day=date(2026, 2, 2))
    with app.app_context():
        assert len(assert_totals_match(db.session, rows=2)) == 2
        db.session.execute(text("DELETE FROM grants WHERE id = :id"), {"id": world.grant_a})
        db.session.commit()
        kept = assert_totals_match(db.session, rows=1)
        assert {k[0] for k in kept} == {world.grant_b}
        assert db.session.scalar(select(func.count()).select_from(BudgetLineTotal)) == 1


def _rows(world, budget, count: int, *, seed: int = 0) -> list[dict]:
    start = date(2026, 1, 5)
    return [
        {
            "grant_id": world.grant_a,
            "line_id": (budget.line_hr, budget.line_travel)[i % 2],
            "period_id": world.period_a1,
            "spent_on": start + timedelta(days=(i * 7 + seed) % 150),
            "amount": "1.00",
            "currency": "USD",
            "description": "",
            "source": "import",
            "external_ref": f"bulk-{seed}-{i}",
            "converted_amount": "1.00",
            "converted_cents": 100 + i,
            "rate": "1",
            "rate_source": "same currency",
        }
        for i in range(count)
    ]


OPS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "move_line", "move_day", "amount", "delete", "rollback"]),
        st.integers(0, 40),
        st.integers(-50_000, 50_000).filter(lambda n: n != 0),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_random_write_sequences_keep_the_totals_exact(app, world, budget, ops):
    from budgets.models import Expenditure
    from core.extensions import db

    with app.app_context():
        db.session.execute(delete(Expenditure))
        db.session.commit()
        connection = db.session.connection()
        for n, (op, pick, cents) in enumerate(ops):
            ids = db.session.scalars(select(Expenditure.id).order_by(Expenditure.id)).all()
            target = Expenditure.id == (ids[pick % len(ids)] if ids else -1)
            if op == "insert":
                rows = _rows(world, budget, pick % 5 + 1, seed=n)
                for row in rows:
                    row["external_ref"] = f"r-{n}-{row['external_ref']}"
                    row["converted_cents"] = cents
                connection.execute(insert(Expenditure.__table__), rows)
            elif op == "move_line":
                connection.execute(update(Expenditure).where(target).values(line_id=budget.line_travel))
            elif op == "move_day":
                connection.execute(
                    update(Expenditure).where(target).values(spent_on=date(2026, 1, 1) + timedelta(days=pick))
                )
            elif op == "amount":
                connection.execute(update(Expenditure).where(target).values(converted_cents=cents))
            elif op == "delete":
                connection.execute(delete(Expenditure).where(Expenditure.id >= (ids[pick % len(ids)] if ids else 0)))
            else:
                before = _kept(db.session)
                db.session.commit()
                connection = db.session.connection()
                connection.execute(insert(Expenditure.__table__), _rows(world, budget, 3, seed=1000 + n))
                db.session.rollback()
                connection = db.session.connection()
                assert _kept(db.session) == before
            assert_totals_match(db.session)
        db.session.rollback()
