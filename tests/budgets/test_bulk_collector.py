"""The garbage collector pause around bulk imports: nests, survives errors, restores what it found."""

from __future__ import annotations

import gc

import pytest

from budgets.bulk import collector_paused


@pytest.fixture(autouse=True)
def _collector_on():
    was_on = gc.isenabled()
    gc.enable()
    yield
    if was_on:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_enabled_again_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a nested (or concurrent) import
            assert not gc.isenabled()
        assert not gc.isenabled(), "the outer import is still running"
    assert gc.isenabled()


def test_enabled_again_when_the_import_fails() -> None:
    @collector_paused()
    def failing() -> None:
        assert not gc.isenabled()
        raise ValueError("row 3: amount is zero")

    with pytest.raises(ValueError):
        failing()
    assert gc.isenabled()
    with pytest.raises(ValueError):
        failing()  # the decorator works on every call, not only the first
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_process_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_plain_rows_inserted_as_given_and_a_broken_rule_said_as_sqlalchemy_says_it(session, world) -> None:
    """``insert_plain``: COPY on PostgreSQL, executemany elsewhere; the same rows either way."""
    from decimal import Decimal

    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    from budgets.bulk import insert_plain
    from budgets.models import BudgetAllocation, BudgetLine

    rows = [
        {
            "grant_id": world.grant_a,
            "code": f"B-{n}",
            "description": f"Line {n}, with a comma; \t a tab and \\ a backslash",
            "cost_category": "other",
            "module": None,
            "intervention": "Prévention",
            "total": Decimal(n * 1001) / 100,
        }
        for n in range(1, 4)
    ]
    insert_plain(session, BudgetLine.__table__, rows)
    lines = session.execute(
        select(BudgetLine.id, BudgetLine.code, BudgetLine.description, BudgetLine.module, BudgetLine.total)
        .where(BudgetLine.grant_id == world.grant_a, BudgetLine.code.like("B-%"))
        .order_by(BudgetLine.code)
    ).all()
    assert [(code, description, module, total) for _id, code, description, module, total in lines] == [
        (r["code"], r["description"], None, r["total"]) for r in rows
    ]
    cell = {
        "line_id": lines[0].id,
        "period_id": world.period_a1,
        "grant_id": world.grant_a,
        "amount": Decimal("12.34"),
        "amount_cents": 1234,
    }
    insert_plain(session, BudgetAllocation.__table__, [cell])
    assert session.scalar(select(BudgetAllocation.amount).where(BudgetAllocation.line_id == lines[0].id)) == Decimal(
        "12.34"
    )
    with pytest.raises(IntegrityError):  # the same line and period twice
        insert_plain(session, BudgetAllocation.__table__, [cell])
    session.rollback()
    assert session.scalar(select(BudgetLine.id).where(BudgetLine.code == "B-1")) is None, "nothing half-saved"
