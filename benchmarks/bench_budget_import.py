"""Benchmark: import a 2,000-line × 12-period budget workbook (upload and parse, then check and write).

Usage:
    python benchmarks/bench_budget_import.py                # SQLite and PostgreSQL (127.0.0.1:5432, user postgres)
    python benchmarks/bench_budget_import.py --sqlite-only
    python benchmarks/bench_budget_import.py --lines 500    # a smaller file

Builds the workbook with openpyxl (one row per line: code, name, cost grouping,
twelve monthly columns, total), then times, on a fresh migrated database: the
upload step (``budget_import.stage``: sniff, parse once, keep the rows) and the
import step (``budget_import.run``: every row checked, lines and planned amounts
written by bulk insert, audited), each committed. Prints wall time, rows per
second against the goal of issue 16 (5,000 rows a second), planned amounts per
second, how far each step raised the peak resident memory, and the process's peak. Asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_ROWS_PER_SECOND = 5_000
PERIODS = 12


def workbook(lines: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Budget")
    sheet.append(["Code", "Line name", "Cost grouping", *[f"M{m}" for m in range(1, PERIODS + 1)], "Total"])
    for n in range(1, lines + 1):
        amounts = [(n * 7 + m * 3) % 5000 + 0.5 for m in range(1, PERIODS + 1)]
        sheet.append([f"L-{n:05d}", f"Budget line {n}", str(n % 13 + 1), *amounts, sum(amounts)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def measured(fn):
    """Result, wall seconds, and how far the step raised the process's peak resident memory (MB).

    Resident memory rather than tracemalloc, which slows Python code several times over.
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result, wall, (after - before) / 1024


def run(label: str, database_url: str, content: bytes, lines: int) -> list[str]:
    from app import create_app
    from app.bootstrap import ensure_roles, upgrade_database
    from budgets import budget_import
    from budgets.models import BudgetPlanImport
    from config.settings import TestConfig
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services

    os.environ["DATABASE_URL"] = database_url
    app = create_app(TestConfig, INSTANCE_PATH=tempfile.mkdtemp(prefix="gk-bench-"))
    upgrade_database(app)
    ensure_roles(app)
    out = [f"\n== {label}: {lines:,} lines × {PERIODS} periods ({len(content) / 1024:,.0f} KB workbook) =="]
    with app.app_context(), acting_as(Actor(None, "bench", "cli")):
        funder = services.create_funder(db.session, name="GF", code="GF", cost_categories="global_fund")
        grant = services.create_grant(
            db.session,
            funder=funder,
            reference="BENCH",
            title="Benchmark grant",
            recipient="Coalition",
            currency="USD",
            amount=Decimal("1000000000.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        services.generate_periods(db.session, grant, "month", 30)
        db.session.commit()

        def stage():
            staged = budget_import.stage(db.session, grant, "budget.xlsx", content, by="bench")
            db.session.commit()
            return staged.id

        import_id, wall_stage, peak_stage = measured(stage)

        def confirm():
            staged = db.session.get(BudgetPlanImport, import_id)
            result = budget_import.run(db.session, staged, dict(staged.mapping))
            db.session.commit()
            return result

        result, wall_run, peak_run = measured(confirm)
        assert result.errors == [], result.errors[:3]
        total = wall_stage + wall_run
        rate = lines / total
        out.append(f"upload (parse once, keep rows)   {wall_stage:7.2f} s   peak RSS +{peak_stage:6.1f} MB")
        out.append(f"check and write (bulk, audited)  {wall_run:7.2f} s   peak RSS +{peak_run:6.1f} MB")
        out.append(
            f"whole import                     {total:7.2f} s   {rate:8,.0f} rows/s "
            f"(goal {GOAL_ROWS_PER_SECOND:,}: {'PASS' if rate >= GOAL_ROWS_PER_SECOND else 'FAIL'}), "
            f"{lines * PERIODS / total:,.0f} planned amounts/s"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.append(f"process peak resident memory     {peak:7.1f} MB (app, database driver and workbook included)")
        db.session.remove()
        db.engine.dispose()
    os.environ.pop("DATABASE_URL", None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    content = workbook(args.lines)
    report = []
    with tempfile.TemporaryDirectory(prefix="gk-bench-db-") as folder:
        report += run("SQLite", f"sqlite:///{folder}/bench.db", content, args.lines)
    if not args.sqlite_only:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        name = f"gk_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(args.pg), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            report += run(
                "PostgreSQL", make_url(args.pg).set(database=name).render_as_string(False), content, args.lines
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
