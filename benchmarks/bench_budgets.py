"""Benchmark: budget vs actual over 1,000 lines and 1,000,000 expenditures, and the expenditure list's first page.

Usage:
    python benchmarks/bench_budgets.py                 # SQLite and PostgreSQL (127.0.0.1:5432, user postgres)
    python benchmarks/bench_budgets.py --sqlite-only
    python benchmarks/bench_budgets.py --rows 200000   # a smaller run

Compares ``budget_vs_actual`` with a hand-written GROUP BY doing the same sums
(planned per line from the allocations, actual per line from the expenditures),
on SQLite and on a throw-away PostgreSQL database it creates and drops. Prints
the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, insert, text  # noqa: E402

PASSWORD = "bench-password-not-secret"


def best_of(fn, repeat: int = 5) -> tuple[float, float]:
    fn()  # warm the caches and the plan
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, statistics.median(times) * 1000


def build(app, n_lines: int, n_rows: int) -> dict:
    from app.audit import Actor, acting_as
    from app.bootstrap import create_user
    from app.extensions import db
    from budgets.models import BudgetAllocation, BudgetLine, Expenditure
    from grants import services
    from grants.models import ReportingPeriod

    with app.app_context(), acting_as(Actor(None, "bench", "system")):
        create_user(app, "finance", "finance@bench.example.org", "Finance", PASSWORD)
        funder = services.create_funder(db.session, name="Bench Fund", code="BF", cost_categories="global_fund")
        grant = services.create_grant(
            db.session, funder=funder, reference="BENCH-1", title="Bench", recipient="Org", currency="USD",
            amount="10000000", start_date=date(2026, 1, 1), end_date=date(2027, 12, 31),
        )
        services.generate_periods(db.session, grant, "semester", 45)
        db.session.commit()
        grant_id = grant.id
        periods = [(p.id, p.start_date, p.end_date) for p in db.session.query(ReportingPeriod).filter_by(grant_id=grant_id).order_by(ReportingPeriod.start_date)]
        conn = db.session.connection()
        categories = ["1", "2", "3", "10", "11"]
        conn.execute(insert(BudgetLine.__table__), [
            {"grant_id": grant_id, "code": f"L{i:04d}", "description": f"Line {i}", "cost_category": categories[i % 5]}
            for i in range(n_lines)
        ])
        line_ids = [r[0] for r in conn.execute(text("SELECT id FROM budget_lines WHERE grant_id = :g ORDER BY id"), {"g": grant_id})]
        conn.execute(insert(BudgetAllocation.__table__), [
            {"line_id": l, "period_id": p, "grant_id": grant_id, "amount": "2500.00", "amount_cents": 250000}
            for l in line_ids for p, _s, _e in periods
        ])
        db.session.commit()
        rng = random.Random(7)
        span = (date(2027, 12, 31) - date(2026, 1, 1)).days
        chunk = 20_000
        started = time.perf_counter()
        for offset in range(0, n_rows, chunk):
            rows = []
            for i in range(offset, min(offset + chunk, n_rows)):
                day = date(2026, 1, 1) + timedelta(days=rng.randrange(span))
                period_id = next(p for p, s, e in periods if s <= day <= e)
                cents = rng.randrange(100, 200_000)
                xcd = rng.random() < 0.8
                amount_cents = cents * 27 // 10 if xcd else cents
                rows.append({
                    "grant_id": grant_id, "line_id": line_ids[rng.randrange(len(line_ids))], "period_id": period_id,
                    "spent_on": day, "amount": f"{amount_cents / 100:.2f}", "currency": "XCD" if xcd else "USD",
                    "description": f"Bench expenditure {i}", "source": "import", "external_ref": f"b{i}",
                    "converted_amount": f"{cents / 100:.2f}", "converted_cents": cents,
                    "rate": "0.3703703704" if xcd else "1", "rate_source": "fixed rate 1 USD = 2.70 XCD (grant policy)" if xcd else "same currency",
                })
            db.session.connection().execute(insert(Expenditure.__table__), rows)
            db.session.commit()
        load_seconds = time.perf_counter() - started
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        return {"grant_id": grant_id, "period_id": periods[1][0], "period_end": periods[1][2], "load_seconds": load_seconds}


HAND_WHOLE = text("""
SELECT l.id, l.code, p.planned, a.actual FROM budget_lines l
LEFT JOIN (SELECT line_id, SUM(amount_cents) AS planned FROM budget_allocations WHERE grant_id = :g GROUP BY line_id) p ON p.line_id = l.id
LEFT JOIN (SELECT line_id, SUM(converted_cents) AS actual FROM expenditures WHERE grant_id = :g GROUP BY line_id) a ON a.line_id = l.id
WHERE l.grant_id = :g ORDER BY l.code
""")
HAND_CATEGORY = text("""
SELECT l.cost_category, SUM(p.planned), SUM(a.actual) FROM budget_lines l
LEFT JOIN (SELECT line_id, SUM(amount_cents) AS planned FROM budget_allocations WHERE grant_id = :g GROUP BY line_id) p ON p.line_id = l.id
LEFT JOIN (SELECT line_id, SUM(converted_cents) AS actual FROM expenditures WHERE grant_id = :g GROUP BY line_id) a ON a.line_id = l.id
WHERE l.grant_id = :g GROUP BY l.cost_category
""")
HAND_PERIOD = text("""
SELECT l.id, l.code, a.per, a.cum FROM budget_lines l
LEFT JOIN (SELECT line_id, SUM(CASE WHEN period_id = :p THEN converted_cents ELSE 0 END) AS per, SUM(converted_cents) AS cum
           FROM expenditures WHERE grant_id = :g AND spent_on <= :end GROUP BY line_id) a ON a.line_id = l.id
WHERE l.grant_id = :g ORDER BY l.code
""")


def run(label: str, database_url: str, n_lines: int, n_rows: int) -> None:
    from app import create_app
    from app.bootstrap import ensure_roles, upgrade_database
    from app.extensions import db
    from budgets.report import budget_vs_actual
    from config.settings import TestConfig

    os.environ["DATABASE_URL"] = database_url
    instance = tempfile.mkdtemp(prefix="gk-bench-")
    app = create_app(TestConfig, INSTANCE_PATH=instance)
    upgrade_database(app)
    ensure_roles(app)
    print(f"\n== {label}: {n_lines:,} budget lines, {n_rows:,} expenditures ==")
    facts = build(app, n_lines, n_rows)
    print(f"bulk insert (Core): {facts['load_seconds']:.1f} s")
    g, p = facts["grant_id"], facts["period_id"]
    with app.app_context():
        session = db.session
        pairs = [
            ("whole grant, by line", lambda: budget_vs_actual(session, g, by="line"),
             lambda: session.execute(HAND_WHOLE, {"g": g}).all()),
            ("whole grant, by category", lambda: budget_vs_actual(session, g, by="category"),
             lambda: session.execute(HAND_CATEGORY, {"g": g}).all()),
            ("period S2 + cumulative, by line", lambda: budget_vs_actual(session, g, p, by="line"),
             lambda: session.execute(HAND_PERIOD, {"g": g, "p": p, "end": facts["period_end"]}).all()),
        ]
        for name, ours, hand in pairs:
            ours_best, ours_median = best_of(ours)
            hand_best, hand_median = best_of(hand)
            print(f"budget_vs_actual {name:34s} {ours_best:8.1f} ms (median {ours_median:.1f}) | "
                  f"hand GROUP BY {hand_best:8.1f} ms (median {hand_median:.1f}) | ratio {ours_best / hand_best:.2f}x")
        report = budget_vs_actual(session, g, by="line")
        print(f"check: {len(report.rows)} rows, total actual {report.total.actual:,} USD")
        session.remove()

    client = app.test_client()
    assert client.post("/login/", data={"username": "finance", "password": PASSWORD}).status_code == 302
    response = client.get("/expenditures/list/")
    assert response.status_code == 200 and "Bench expenditure" in response.get_data(as_text=True)
    best, median = best_of(lambda: client.get("/expenditures/list/"))
    print(f"expenditure list, first page (FAB view via test client, Finance): {best:.1f} ms (median {median:.1f})")
    best, median = best_of(lambda: client.get(f"/expenditures/list/?_flt_0_grant={g}&_oc_ExpenditureView=spent_on&_od_ExpenditureView=desc"))
    print(f"expenditure list, filtered by grant, ordered by date:         {best:.1f} ms (median {median:.1f})")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    os.environ.pop("DATABASE_URL", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gk-bench-db-") as folder:
        run("SQLite", f"sqlite:///{folder}/bench.db", args.lines, args.rows)
    if args.sqlite_only:
        return 0
    name = f"gk_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
        run("PostgreSQL", url, args.lines, args.rows)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
