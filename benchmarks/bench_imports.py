"""Benchmark: the three file imports (budget plan, exchange rates, actuals) at 10,000 and 100,000 rows.

Usage:
    python benchmarks/bench_imports.py                                  # SQLite (a file in a temporary folder)
    python benchmarks/bench_imports.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python benchmarks/bench_imports.py --rows 10000 --rows 100000      # the sizes (default both)

For each size, on a fresh migrated database (on PostgreSQL: a new database on that
server, dropped afterwards): a budget plan CSV of N lines (code, name, cost grouping,
total), a rates CSV of N rates (20 currencies to USD over N/20 days, EUR→USD on every
day of the grant), then an actuals CSV of N rows (9 in 10 in USD, 1 in 10 in EUR,
converted by the day's rate) against those lines. Each import is timed from the upload
(sniff, parse once) to its commit; prints rows per second beside the goal of issue 16
(at least 5,000 rows a second) and the SQL statements each import ran, then the seconds of
CPU this process spent (on a loaded machine the wall time is mostly waiting for a core; on
PostgreSQL the server's own work is not in that figure). Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from support import make_app  # noqa: E402

GOAL = 5_000
CURRENCIES = [
    "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK",
    "ZAR", "KES", "NGN", "GHS", "INR", "BRL", "MXN", "XOF", "HTG", "JMD",
]  # fmt: skip


def budget_csv(rows: int) -> bytes:
    out = ["Code,Line name,Cost grouping,Total"]
    out += [f"L-{n:06d},Budget line {n},{n % 13 + 1},{(n * 7) % 50000 + 1000}.00" for n in range(1, rows + 1)]
    return ("\n".join(out) + "\n").encode()


def rates_csv(rows: int) -> bytes:
    out = ["date,from,to,rate"]
    grant_days = [date(2026, 1, 1) + timedelta(days=d) for d in range(365)]
    for day in grant_days:
        out.append(f"{day.isoformat()},EUR,USD,{1.05 + (day.toordinal() % 17) / 1000:.4f}")
    n = len(grant_days)
    day = date(2000, 1, 1)
    while n < rows:
        for index, code in enumerate(CURRENCIES[1:]):
            if n >= rows:
                break
            out.append(f"{day.isoformat()},{code},USD,{0.5 + index / 10 + (day.toordinal() % 11) / 1000:.4f}")
            n += 1
        day += timedelta(days=1)
    return ("\n".join(out) + "\n").encode()


def actuals_csv(rows: int) -> bytes:
    out = ["Date;Voucher;Budget code;Details;Amount;Ccy"]
    for n in range(rows):
        day = date(2026, 1, 1) + timedelta(days=n % 365)
        currency = "EUR" if n % 10 == 0 else "USD"
        out.append(f"{day:%d/%m/%Y};V-{n};L-{n % 50 + 1:06d};Payment {n};{(n * 13) % 9000 + 1}.25;{currency}")
    return ("\n".join(out) + "\n").encode()


class Counter:
    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


def bench(label: str, database_url: str, rows: int) -> list[str]:
    from budgets import budget_import, imports, rate_import
    from budgets.models import BudgetImport, BudgetPlanImport
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services

    out = [f"\n== {label}: {rows:,} rows per file =="]
    with tempfile.TemporaryDirectory(prefix="gk-bench-") as instance:
        app = make_app(database_url, instance)
        with app.app_context(), acting_as(Actor(None, "bench", "cli")):
            counter = Counter(db.engine)
            funder = services.create_funder(db.session, name="GF", code="GF", cost_categories="global_fund")
            grant = services.create_grant(
                db.session,
                funder=funder,
                reference="BENCH",
                title="Benchmark grant",
                recipient="Coalition",
                currency="USD",
                amount=Decimal("100000000000.00"),
                start_date=date(2026, 1, 1),
                end_date=date(2026, 12, 31),
            )
            services.generate_periods(db.session, grant, "month", 30)
            db.session.commit()
            grant_id = grant.id

            def timed(name: str, step) -> None:
                before = counter.count
                started, cpu_started = time.perf_counter(), time.process_time()
                detail = step()
                seconds = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                per_second = rows / seconds
                verdict = "PASS" if per_second >= GOAL else "FAIL"
                out.append(
                    f"{name:<13}{seconds:8.2f} s {per_second:10,.0f} rows/s (goal {GOAL:,}: {verdict})"
                    f" {counter.count - before:7,} statements  {detail}"
                    f"\n{'':<13}{cpu:8.2f} s of this process's CPU: {rows / cpu:10,.0f} rows/s"
                    f" (goal {GOAL:,}: {'PASS' if rows / cpu >= GOAL else 'FAIL'}; wall time less waiting for a core,"
                    f" the disk or the database server)"
                )

            def budgets() -> str:
                grant = db.session.get(services.Grant, grant_id)
                staged = budget_import.stage(db.session, grant, "budget.csv", budget_csv(rows), by="bench")
                db.session.commit()
                result = budget_import.run(
                    db.session, db.session.get(BudgetPlanImport, staged.id), dict(staged.mapping or {})
                )
                db.session.commit()
                assert not result.errors, result.errors[:3]
                return f"{result.outcome.added:,} lines added"

            def rates() -> str:
                result = rate_import.import_rates(db.session, rates_csv(rows))
                db.session.commit()
                assert not result.errors, result.errors[:3]
                return f"{result.added:,} rates added"

            def actuals() -> str:
                grant = db.session.get(services.Grant, grant_id)
                staged = imports.stage_import(db.session, grant, "actuals.csv", actuals_csv(rows), by="bench")
                db.session.commit()
                result = imports.run_import(
                    db.session,
                    db.session.get(BudgetImport, staged.id),
                    {
                        "date": "Date",
                        "amount": "Amount",
                        "line": "Budget code",
                        "currency": "Ccy",
                        "description": "Details",
                        "reference": "Voucher",
                    },
                )
                db.session.commit()
                assert not result.errors, result.errors[:3]
                return f"{result.imported:,} expenditures added (1 in 10 converted from EUR)"

            timed("budget plan", budgets)
            timed("rates", rates)
            timed("actuals", actuals)
            db.session.remove()
            db.engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="a PostgreSQL server URL; default: SQLite in a temp file")
    parser.add_argument(
        "--rows", type=int, action="append", help="rows per file (repeatable; default 10,000 and 100,000)"
    )
    args = parser.parse_args()
    sizes = args.rows or [10_000, 100_000]
    report: list[str] = []
    for rows in sizes:
        if not args.database_url.startswith("postgresql"):
            with tempfile.TemporaryDirectory(prefix="gk-bench-db-") as folder:
                report += bench("SQLite", f"sqlite:///{folder}/bench.db", rows)
            print("\n".join(report[-4:]), flush=True)
            continue
        url = make_url(args.database_url)
        name = f"gk_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            report += bench("PostgreSQL", url.set(database=name).render_as_string(False), rows)
            print("\n".join(report[-4:]), flush=True)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print("\n(measured on a shared 2-core machine while other work ran: figures vary between runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
