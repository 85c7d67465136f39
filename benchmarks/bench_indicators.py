"""Benchmark: indicator progress (the IPTT) and result entry on a large grant; prints figures.

Usage: python benchmarks/bench_indicators.py [--indicators 60] [--grants 50] [--repeat 20]
Uses a throw-away SQLite database, or PostgreSQL when BENCH_DATABASE_URL is set
(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres: a database is created and dropped).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import scratch_database  # noqa: E402


def timed(repeat: int, call) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--indicators", type=int, default=60, help="indicators on the measured grant")
    parser.add_argument("--grants", type=int, default=50, help="other grants with 10 indicators each (volume)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    tmp = tempfile.mkdtemp(prefix="bench_indicators_")
    database_url, drop = scratch_database(os.environ.get("BENCH_DATABASE_URL"), Path(tmp), "bench")
    os.environ["DATABASE_URL"] = database_url

    from app import create_app
    from app.bootstrap import create_user, ensure_roles, upgrade_database
    from config.settings import TestConfig
    from core.audit import Actor, acting_as
    from core.clock import frozen_at
    from core.extensions import db
    from grants import services as grant_services
    from indicators import services

    app = create_app(TestConfig, INSTANCE_PATH=tmp)
    upgrade_database(app)
    ensure_roles(app)
    try:
        # Every period of the grant has started: results may be entered in all four.
        with app.app_context(), acting_as(Actor(None, "bench", "system")), frozen_at(datetime(2028, 1, 15, 12, 0)):
            session = db.session
            create_user(app, "prog", "p@example.org", "Program", "bench-password-1")
            program = app.appbuilder.sm.find_user(username="prog")
            services.ensure_standard_dimensions(session)
            funder = grant_services.create_funder(session, name="Bench Fund", code="BF")
            start = time.perf_counter()
            entered = 0
            measured = None
            for g in range(args.grants + 1):
                grant = grant_services.create_grant(
                    session,
                    funder=funder,
                    reference=f"B-{g}",
                    title=f"Grant {g}",
                    recipient="Org",
                    currency="USD",
                    amount=Decimal("1000"),
                    start_date=date(2026, 1, 1),
                    end_date=date(2027, 12, 31),
                )
                periods = grant_services.generate_periods(session, grant, "semester", 45)
                grant_services.add_member(session, grant, program, "program")
                count = args.indicators if g == 0 else 10
                for i in range(count):
                    indicator = services.create_indicator(
                        session,
                        grant,
                        code=f"I-{i}",
                        name=f"Indicator {i}",
                        dimensions=["country", "gender"],
                        cumulative_mode=("sum", "latest", "maximum")[i % 3],
                        lop_target=Decimal(400),
                    )
                    for p_index, period in enumerate(periods):
                        services.set_target(
                            session, indicator, period, value=100, disaggregation={"country=LC": 60, "country=GD": 40}
                        )
                        if p_index < 3:
                            value = 70 + 10 * p_index + i % 20
                            services.record_result(
                                session,
                                indicator,
                                period,
                                user=program,
                                value=value,
                                status="submitted",
                                disaggregation={
                                    "country=LC": value - 30,
                                    "country=GD": 30,
                                    "gender=F": value - 5,
                                    "gender=M": 5,
                                },
                            )
                            entered += 1
                if g == 0:
                    measured = grant.id
                session.commit()
            seed_s = time.perf_counter() - start
            print(f"database: {make_url(database_url).get_backend_name()}")
            print(
                f"seeded {args.grants + 1} grants, {entered} disaggregated results in {seed_s:.1f} s "
                f"({seed_s * 1000 / max(entered, 1):.1f} ms per target+result through the services)"
            )

            statements: list[str] = []
            event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
            session.expunge_all()
            rows = services.indicator_progress(session, measured)
            total_queries = len(statements)
            statements.clear()
            session.expunge_all()
            services.indicator_progress(session, measured, disaggregation="country=LC")
            filtered_queries = len(statements)
            print(
                f"indicator_progress: {len(rows)} rows ({args.indicators} indicators x 4 periods); "
                f"{total_queries} queries total view, {filtered_queries} filtered by country"
            )

            def progress() -> None:
                session.expunge_all()
                services.indicator_progress(session, measured)

            def progress_lc() -> None:
                session.expunge_all()
                services.indicator_progress(session, measured, disaggregation="country=LC")

            median, worst = timed(args.repeat, progress)
            print(f"indicator_progress (totals):       median {median:.1f} ms, max {worst:.1f} ms")
            median, worst = timed(args.repeat, progress_lc)
            print(f"indicator_progress (country=LC):   median {median:.1f} ms, max {worst:.1f} ms")

        client = app.test_client()
        client.post("/login/", data={"username": "prog", "password": "bench-password-1"})
        median, worst = timed(args.repeat, lambda: client.get(f"/indicator-progress/{measured}"))
        print(f"IPTT page with {args.indicators} charts: median {median:.1f} ms, max {worst:.1f} ms")
        median, worst = timed(args.repeat, lambda: client.get(f"/api/v1/indicator_progress/{measured}"))
        print(f"IPTT JSON (cookie session):        median {median:.1f} ms, max {worst:.1f} ms")
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
