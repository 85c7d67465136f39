"""Issue 16: the grant page costs a fixed number of SQL statements, whatever the grant holds.

The page (``GET /grants/show/<id>``) is requested for a small world (10 expenditures, results
and evidence items) and a large one (1,000 of each, with evidence linked to results and
expenditures); the statements of the request are counted with a ``before_cursor_execute``
listener. A per-row query (a lazy load in a loop) would make the large count grow.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from tests.conftest import login


def populate(session: Any, grant_id: int, count: int, *, seed: int = 7, chunk: int = 20_000) -> None:
    """Add ``count`` expenditures, results and evidence items (half of them linked) to a grant, in bulk.

    Results need an indicator per (indicator, period) pair: ``count`` results spread over
    ``count // periods`` indicators. Evidence alternates the sensitivities, so a donor sees
    only some. Used by the benchmark too (``benchmarks/bench_grant_page.py``).
    """
    from budgets.models import BudgetLine, Expenditure
    from grants.evidence.models import Evidence, EvidenceKind, EvidenceLink, Sensitivity, VerificationStatus
    from grants.models import ReportingPeriod
    from indicators.models import Indicator, Result

    rng = random.Random(seed)
    periods = session.execute(
        select(ReportingPeriod.id, ReportingPeriod.start_date, ReportingPeriod.end_date)
        .where(ReportingPeriod.grant_id == grant_id)
        .order_by(ReportingPeriod.start_date)
    ).all()
    conn = session.connection()
    batch = session.scalar(select(func.count()).select_from(BudgetLine).where(BudgetLine.grant_id == grant_id))
    conn.execute(
        insert(BudgetLine.__table__),
        [
            {"grant_id": grant_id, "code": f"BL{batch}-{i}", "description": f"Line {i}", "cost_category": "1"}
            for i in range(20)
        ],
    )
    lines = session.scalars(
        select(BudgetLine.id).where(BudgetLine.grant_id == grant_id, BudgetLine.code.like(f"BL{batch}-%"))
    ).all()
    for start in range(0, count, chunk):
        rows = []
        for i in range(start, min(start + chunk, count)):
            period_id, first, last = periods[i % len(periods)]
            cents = rng.randrange(100, 500_000)
            rows.append(
                {
                    "grant_id": grant_id,
                    "line_id": lines[i % len(lines)],
                    "period_id": period_id,
                    "spent_on": first + timedelta(days=i % max((last - first).days, 1)),
                    "amount": f"{cents / 100:.2f}",
                    "currency": "USD",
                    "description": f"Expenditure {i}",
                    "source": "import",
                    "converted_amount": f"{cents / 100:.2f}",
                    "converted_cents": cents,
                    "rate": "1",
                    "rate_source": "same currency",
                }
            )
        conn.execute(insert(Expenditure.__table__), rows)
    indicators = max(1, min(count, 1000) // len(periods))
    conn.execute(
        insert(Indicator.__table__),
        [
            {
                "grant_id": grant_id,
                "code": f"IND-{batch}-{i}",
                "name": f"Indicator {i}",
                "lop_target": 1000,
                "sort_order": i,
            }
            for i in range(indicators)
        ],
    )
    indicator_ids = session.scalars(
        select(Indicator.id).where(Indicator.grant_id == grant_id, Indicator.code.like(f"IND-{batch}-%"))
    ).all()
    pairs = [(i, p) for i in indicator_ids for p, *_ in periods][: min(count, 1000)]
    conn.execute(
        insert(Result.__table__),
        [
            {"grant_id": grant_id, "indicator_id": i, "period_id": p, "value": rng.randrange(0, 200), "status": "draft"}
            for i, p in pairs
        ],
    )
    result_ids = session.scalars(select(Result.id).where(Result.indicator_id.in_(indicator_ids))).all()
    sensitivities = list(Sensitivity)
    evidence = min(count, 1000)
    conn.execute(
        insert(Evidence.__table__),
        [
            {
                "grant_id": grant_id,
                "title": f"Evidence {i}",
                "kind": list(EvidenceKind)[i % len(EvidenceKind)].name,
                "evidence_date": date(2026, 1, 1) + timedelta(days=i % 300),
                "sensitivity": sensitivities[i % len(sensitivities)].name,
                # every status at every sensitivity
                "status": list(VerificationStatus)[(i // len(sensitivities)) % len(VerificationStatus)].name,
                "url": f"https://example.org/evidence/{i}",
                "looks_like_people_list": False,
                "is_demo": False,
            }
            for i in range(evidence)
        ],
    )
    evidence_ids = session.scalars(
        select(Evidence.id).where(Evidence.grant_id == grant_id).order_by(Evidence.id.desc()).limit(evidence)
    ).all()
    expenditure_ids = session.scalars(
        select(Expenditure.id).where(Expenditure.grant_id == grant_id).order_by(Expenditure.id.desc()).limit(evidence)
    ).all()
    links = []
    for n, evidence_id in enumerate(evidence_ids[: evidence // 2]):
        links.append(
            {
                "evidence_id": evidence_id,
                "grant_id": grant_id,
                "target_kind": "indicator_result",
                "target_id": result_ids[n % len(result_ids)],
            }
        )
        links.append(
            {
                "evidence_id": evidence_id,
                "grant_id": grant_id,
                "target_kind": "expenditure",
                "target_id": expenditure_ids[n % len(expenditure_ids)],
            }
        )
    if links:
        conn.execute(insert(EvidenceLink.__table__), links)


def page_statements(app, client, grant_id: int) -> tuple[list[str], str]:
    """The SQL statements of one GET of the grant page, and its text."""
    from core.extensions import db

    statements: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    client.get(f"/grants/show/{grant_id}")  # warm: first-request work (caches, FAB menus) left out
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.get(f"/grants/show/{grant_id}")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 200
    return statements, response.get_data(as_text=True)


def _grow(app, world, count: int) -> None:
    from core.extensions import db

    with app.app_context():
        populate(db.session, world.grant_a, count)
        db.session.commit()
        db.session.remove()


def _summary(statements: list[str]) -> str:
    return "\n".join(f"{n:3d}. {s[:160]}" for n, s in enumerate(statements, 1))


@pytest.mark.parametrize("role", ["program", "donor"])
def test_the_grant_page_takes_the_same_number_of_statements_for_10_and_1000_rows(app, world, role):
    """Program staff see everything; a donor sees only what is not confidential: both in fixed statements."""
    client = app.test_client()
    login(client, role)
    _grow(app, world, 10)
    small, small_page = page_statements(app, client, world.grant_a)
    _grow(app, world, 990)  # 1,000 of each now
    large, large_page = page_statements(app, client, world.grant_a)
    assert len(large) == len(small), (
        f"grant page as {role}: {len(small)} statements with 10 rows, {len(large)} with 1,000\n"
        f"--- small:\n{_summary(small)}\n--- large:\n{_summary(large)}"
    )
    print(f"grant page as {role}: {len(small)} statements with 10 rows of each, {len(large)} with 1,000")
    assert len(large) <= 60, f"{len(large)} statements:\n{_summary(large)}"
    assert "None" not in large_page.replace("NoneType", "")


def test_a_donor_sees_on_the_grant_page_no_confidential_evidence(app, world):
    """Sensitivity filtering stays correct with the page's fixed queries: the donor's evidence
    counts are those of the items shared with donors, staff count more."""
    import re

    from core.extensions import db
    from grants.evidence.models import Evidence, Sensitivity, VerificationStatus

    _grow(app, world, 40)
    with app.app_context():
        shared = dict(
            db.session.execute(
                select(Evidence.status, func.count())
                .where(Evidence.grant_id == world.grant_a, Evidence.sensitivity == Sensitivity.shared_with_donors)
                .group_by(Evidence.status)
            ).all()
        )
        total = db.session.scalar(select(func.count()).where(Evidence.grant_id == world.grant_a))
        db.session.remove()

    def verified(page: str) -> int:
        match = re.search(r"<th>Verified</th><td>(\d+)</td>", page)
        assert match, "no evidence panel on the grant page"
        return int(match.group(1))

    donor = app.test_client()
    login(donor, "donor")
    _, donor_page = page_statements(app, donor, world.grant_a)
    program = app.test_client()
    login(program, "program")
    _, program_page = page_statements(app, program, world.grant_a)
    assert verified(donor_page) == shared.get(VerificationStatus.verified, 0) > 0
    assert verified(program_page) > verified(donor_page)
    assert total and total > sum(shared.values())
