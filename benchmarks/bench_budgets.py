"""Benchmark: budget vs actual over 1,000 lines and 1,000,000 expenditures (one in five a part of a cost shared
with a second grant), and the expenditure list's first page.

Usage:
    python benchmarks/bench_budgets.py                 # SQLite and PostgreSQL (127.0.0.1:5432, user postgres)
    python benchmarks/bench_budgets.py --sqlite-only
    python benchmarks/bench_budgets.py --rows 200000   # a smaller run
    python benchmarks/bench_budgets.py --no-cache      # rebuild the SQLite fixture
    python benchmarks/bench_budgets.py --pg-reuse DB   # measure an existing PostgreSQL database holding the fixture

Compares ``budget_vs_actual`` in each mode (whole grant / one period with
cumulative figures, by line / by cost category) with a hand-written GROUP BY
computing the same figures (planned in the period, cumulative and for the whole
grant; actual in the period and cumulative), checks both give the same numbers,
and prints one table: median wall time of each, ratio, PASS/FAIL against 1.5×,
and the client process's CPU time (on SQLite the query runs in-process, so CPU
time is the less noisy figure on a shared machine). Runs are interleaved
(ours, hand, ours, hand, ...) so background load hits both alike.

The SQLite fixture takes minutes to insert, so it is cached under
``--cache-dir`` (default /tmp/gk-bench-cache, never the repository), keyed by
the migration file, so a schema change rebuilds it. PostgreSQL gets a
throw-away database that is created, filled and dropped on every run, and is
measured twice: right after the bulk load (ANALYZE only, autovacuum held off:
no visibility map, so index-only scans still visit the heap) and after VACUUM
ANALYZE (where autovacuum leaves a live table). Asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
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

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-not-secret"
TARGET_RATIO = 1.5
LIST_TARGET_MS = 100.0
FIXTURE_VERSION = "3"  # bump when build() changes what it inserts
# One expenditure in this many is a part of a shared cost split with a second grant (in EUR).
SHARED_EVERY = 5


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of ``repeat`` calls after one warm-up call."""
    fn()  # warm the caches and the plan
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return walls, cpus


def compare(ours, hand, repeat: int) -> dict[str, float]:
    """Median wall/CPU ms of ``ours`` and ``hand``, run alternately so background load hits both alike."""
    ours(), hand()
    runs: dict[str, list[float]] = {"ours": [], "ours_cpu": [], "hand": [], "hand_cpu": []}
    for _ in range(repeat):
        for name, fn in (("ours", ours), ("hand", hand)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            runs[name].append((time.perf_counter() - wall) * 1000)
            runs[name + "_cpu"].append((time.process_time() - cpu) * 1000)
    return {k: statistics.median(v) for k, v in runs.items()}


def build(app, n_lines: int, n_rows: int) -> dict:
    from app.bootstrap import create_user
    from budgets.models import BudgetAllocation, BudgetLine, Expenditure, SharedCost
    from budgets.sharing import split_cents
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services
    from grants.models import ReportingPeriod

    with app.app_context(), acting_as(Actor(None, "bench", "system")):
        create_user(app, "finance", "finance@bench.example.org", "Finance", PASSWORD)
        # A grant member: their list pages carry the row-level "grants I belong to" filter.
        program = create_user(app, "program", "program@bench.example.org", "Program", PASSWORD)
        funder = services.create_funder(db.session, name="Bench Fund", code="BF", cost_categories="global_fund")
        grant = services.create_grant(
            db.session,
            funder=funder,
            reference="BENCH-1",
            title="Bench",
            recipient="Org",
            currency="USD",
            amount="10000000",
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        services.generate_periods(db.session, grant, "semester", 45)
        services.add_member(db.session, grant, db.session.merge(program))
        # The grant costs are shared with: its parts of the shared costs sit in the same table.
        other = services.create_grant(
            db.session,
            funder=funder,
            reference="BENCH-2",
            title="Bench partner",
            recipient="Org",
            currency="EUR",
            amount="1000000",
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        services.generate_periods(db.session, other, "semester", 45)
        db.session.commit()
        grant_id = grant.id
        other_id = other.id
        other_periods = [
            (p.id, p.start_date, p.end_date)
            for p in db.session.query(ReportingPeriod).filter_by(grant_id=other_id).order_by(ReportingPeriod.start_date)
        ]
        periods = [
            (p.id, p.start_date, p.end_date)
            for p in db.session.query(ReportingPeriod).filter_by(grant_id=grant_id).order_by(ReportingPeriod.start_date)
        ]
        conn = db.session.connection()
        if conn.dialect.name == "postgresql":
            # Keep autovacuum off until settle(): the "before VACUUM" figures must not catch it halfway.
            conn.execute(text("ALTER TABLE expenditures SET (autovacuum_enabled = false)"))
        categories = ["1", "2", "3", "10", "11"]
        conn.execute(
            insert(BudgetLine.__table__),
            [
                {
                    "grant_id": grant_id,
                    "code": f"L{i:04d}",
                    "description": f"Line {i}",
                    "cost_category": categories[i % 5],
                }
                for i in range(n_lines)
            ],
        )
        line_ids = [
            r[0]
            for r in conn.execute(text("SELECT id FROM budget_lines WHERE grant_id = :g ORDER BY id"), {"g": grant_id})
        ]
        conn.execute(
            insert(BudgetLine.__table__),
            [{"grant_id": other_id, "code": "RENT", "description": "Shared rent", "cost_category": "11"}],
        )
        other_line = conn.execute(text("SELECT id FROM budget_lines WHERE grant_id = :g"), {"g": other_id}).scalar()
        conn.execute(
            insert(BudgetAllocation.__table__),
            [
                {"line_id": l, "period_id": p, "grant_id": grant_id, "amount": "2500.00", "amount_cents": 250000}
                for l in line_ids
                for p, _s, _e in periods
            ],
        )
        db.session.commit()
        rng = random.Random(7)
        span = (date(2027, 12, 31) - date(2026, 1, 1)).days
        chunk = 20_000
        started = time.perf_counter()
        shared_id = 0
        for offset in range(0, n_rows, chunk):
            rows = []
            shared_costs = []
            other_parts = []
            for i in range(offset, min(offset + chunk, n_rows)):
                day = date(2026, 1, 1) + timedelta(days=rng.randrange(span))
                period_id = next(p for p, s, e in periods if s <= day <= e)
                cents = rng.randrange(100, 200_000)
                xcd = rng.random() < 0.8
                amount_cents = cents * 27 // 10 if xcd else cents
                shared = i % SHARED_EVERY == 0
                if shared:
                    # A cost split 60/40 with BENCH-2: this row is BENCH-1's 60% part (split as sharing does).
                    shared_id += 1
                    whole = amount_cents * 10 // 6
                    ours, theirs = split_cents(whole, [60, 40])
                    amount_cents = ours
                    cents = round(ours * 10 / 27) if xcd else ours
                    shared_costs.append(
                        {
                            "id": shared_id,
                            "spent_on": day,
                            "amount": f"{whole / 100:.2f}",
                            "currency": "XCD" if xcd else "USD",
                            "description": f"Shared cost {shared_id}",
                            "method": "percent",
                        }
                    )
                    other_parts.append(
                        {
                            "grant_id": other_id,
                            "line_id": other_line,
                            "period_id": next(p for p, s, e in other_periods if s <= day <= e),
                            "spent_on": day,
                            "amount": f"{theirs / 100:.2f}",
                            "currency": "XCD" if xcd else "USD",
                            "description": f"Shared cost {shared_id}",
                            "source": "manual",
                            "external_ref": None,
                            "converted_amount": f"{theirs * 0.34 / 100:.2f}",
                            "converted_cents": round(theirs * 0.34),
                            "rate": "0.34",
                            "rate_source": "bench",
                            "shared_cost_id": shared_id,
                            "share": "40",
                        }
                    )
                rows.append(
                    {
                        "shared_cost_id": shared_id if shared else None,
                        "share": "60" if shared else None,
                        "grant_id": grant_id,
                        "line_id": line_ids[rng.randrange(len(line_ids))],
                        "period_id": period_id,
                        "spent_on": day,
                        "amount": f"{amount_cents / 100:.2f}",
                        "currency": "XCD" if xcd else "USD",
                        "description": f"Bench expenditure {i}",
                        "source": "import",
                        "external_ref": f"b{i}",
                        "converted_amount": f"{cents / 100:.2f}",
                        "converted_cents": cents,
                        "rate": "0.3703703704" if xcd else "1",
                        "rate_source": "fixed rate 1 USD = 2.70 XCD (grant policy)" if xcd else "same currency",
                    }
                )
            if shared_costs:
                db.session.connection().execute(insert(SharedCost.__table__), shared_costs)
                db.session.connection().execute(insert(Expenditure.__table__), other_parts)
            db.session.connection().execute(insert(Expenditure.__table__), rows)
            db.session.commit()
        load_seconds = time.perf_counter() - started
        db.session.commit()
        return load_seconds


def settle(app, vacuum: bool) -> None:
    """Fresh planner statistics; with ``vacuum`` (PostgreSQL) also the visibility map that
    index-only scans need, as autovacuum leaves it some time after a bulk load."""
    from core.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE" if vacuum else "ANALYZE"))
                if vacuum:
                    conn.execute(text("ALTER TABLE expenditures RESET (autovacuum_enabled)"))
        else:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))


def fixture_facts(app) -> dict:
    from core.extensions import db

    with app.app_context():
        grant_id = db.session.execute(text("SELECT id FROM grants WHERE reference = 'BENCH-1'")).scalar_one()
        periods = db.session.execute(
            text("SELECT id, end_date FROM reporting_periods WHERE grant_id = :g ORDER BY start_date"), {"g": grant_id}
        ).all()
        db.session.remove()
    end = periods[1][1]
    return {
        "grant_id": grant_id,
        "period_id": periods[1][0],
        "period_end": end if isinstance(end, date) else date.fromisoformat(end),
    }


# The hand-written baselines: plain GROUP BYs computing exactly the figures budget_vs_actual returns
# (the benchmark checks the numbers agree), with the line columns the report shows.
_PLANNED_WHOLE = "SELECT line_id, SUM(amount_cents) AS tot FROM budget_allocations WHERE grant_id = :g GROUP BY line_id"
_ACTUAL_WHOLE = "SELECT line_id, SUM(converted_cents) AS cum FROM expenditures WHERE grant_id = :g GROUP BY line_id"
_PLANNED_PERIOD = """SELECT ba.line_id,
       SUM(CASE WHEN ba.period_id = :p THEN ba.amount_cents ELSE 0 END) AS per,
       SUM(CASE WHEN rp.end_date <= :end THEN ba.amount_cents ELSE 0 END) AS cum,
       SUM(ba.amount_cents) AS tot
  FROM budget_allocations ba JOIN reporting_periods rp ON rp.id = ba.period_id
 WHERE ba.grant_id = :g GROUP BY ba.line_id"""
_ACTUAL_PERIOD = """SELECT line_id, SUM(CASE WHEN period_id = :p THEN converted_cents ELSE 0 END) AS per,
       SUM(converted_cents) AS cum
  FROM expenditures WHERE grant_id = :g AND spent_on <= :end GROUP BY line_id"""
HAND = {
    ("whole", "line"): f"""
SELECT l.id, l.code, l.description, l.cost_category, l.module, l.intervention,
       COALESCE(p.tot, 0), COALESCE(p.tot, 0), COALESCE(p.tot, 0), COALESCE(a.cum, 0), COALESCE(a.cum, 0)
  FROM budget_lines l
  LEFT JOIN ({_PLANNED_WHOLE}) p ON p.line_id = l.id
  LEFT JOIN ({_ACTUAL_WHOLE}) a ON a.line_id = l.id
 WHERE l.grant_id = :g ORDER BY l.code""",
    ("whole", "category"): f"""
SELECT l.cost_category, SUM(COALESCE(p.tot, 0)), SUM(COALESCE(p.tot, 0)), SUM(COALESCE(p.tot, 0)),
       SUM(COALESCE(a.cum, 0)), SUM(COALESCE(a.cum, 0))
  FROM budget_lines l
  LEFT JOIN ({_PLANNED_WHOLE}) p ON p.line_id = l.id
  LEFT JOIN ({_ACTUAL_WHOLE}) a ON a.line_id = l.id
 WHERE l.grant_id = :g GROUP BY l.cost_category""",
    ("period", "line"): f"""
SELECT l.id, l.code, l.description, l.cost_category, l.module, l.intervention,
       COALESCE(p.per, 0), COALESCE(p.cum, 0), COALESCE(p.tot, 0), COALESCE(a.per, 0), COALESCE(a.cum, 0)
  FROM budget_lines l
  LEFT JOIN ({_PLANNED_PERIOD}) p ON p.line_id = l.id
  LEFT JOIN ({_ACTUAL_PERIOD}) a ON a.line_id = l.id
 WHERE l.grant_id = :g ORDER BY l.code""",
    ("period", "category"): f"""
SELECT l.cost_category, SUM(COALESCE(p.per, 0)), SUM(COALESCE(p.cum, 0)), SUM(COALESCE(p.tot, 0)),
       SUM(COALESCE(a.per, 0)), SUM(COALESCE(a.cum, 0))
  FROM budget_lines l
  LEFT JOIN ({_PLANNED_PERIOD}) p ON p.line_id = l.id
  LEFT JOIN ({_ACTUAL_PERIOD}) a ON a.line_id = l.id
 WHERE l.grant_id = :g GROUP BY l.cost_category""",
}


def _cents(value) -> int:
    return int(value * 100)


def same_figures(report, rows, by: str) -> bool:
    """Do the report and the hand query agree to the cent on every row?"""
    fields = ("planned", "cumulative_planned", "budget", "actual", "cumulative_actual")
    ours = {(r.line_id if by == "line" else r.key): tuple(_cents(getattr(r, f)) for f in fields) for r in report.rows}
    hand = {(row[0]): tuple(int(v) for v in row[-5:]) for row in rows}
    return ours == hand


def list_pages(app, grant_id: int, repeat: int) -> list[tuple[str, float, float]]:
    """(label, median wall ms, median CPU ms) of expenditure list pages through FAB, as each user."""
    pages = []
    for user in ("finance", "program"):
        client = app.test_client()
        assert client.post("/login/", data={"username": user, "password": PASSWORD}).status_code == 302
        for label, url in (
            ("first page", "/expenditures/list/"),
            (
                "filtered by grant, by date",
                f"/expenditures/list/?_flt_0_grant={grant_id}&_oc_ExpenditureView=spent_on&_od_ExpenditureView=desc",
            ),
        ):
            response = client.get(url)
            assert response.status_code == 200 and "Bench expenditure" in response.get_data(as_text=True), (user, url)
            walls, cpus = timed(lambda: client.get(url), repeat)
            pages.append((f"expenditure list, {label} ({user})", statistics.median(walls), statistics.median(cpus)))
    return pages


def measure(app, phase: str, repeat: int, postgres: bool) -> list[str]:
    from budgets.report import budget_vs_actual
    from core.extensions import db

    facts = fixture_facts(app)
    g, p, end = facts["grant_id"], facts["period_id"], facts["period_end"]
    cpu_note = (
        "CPU: this process only (the PostgreSQL server's own work is not in it)"
        if postgres
        else "CPU: this process (SQLite runs in it)"
    )
    header = f"{'mode':34s} {'ours ms':>9s} {'hand ms':>9s} {'ratio':>6s} {'':4s}  {'ours CPU':>9s} {'hand CPU':>9s} {'ratio':>6s}  same figures"
    lines = [f"-- {phase}; medians of {repeat} interleaved runs; {cpu_note}", header, "-" * len(header)]
    with app.app_context():
        session = db.session
        for (scope, by), sql in HAND.items():
            params = {"g": g} if scope == "whole" else {"g": g, "p": p, "end": end}
            period = p if scope == "period" else None
            ours = lambda: budget_vs_actual(session, g, period, by=by)  # noqa: E731
            hand = lambda: session.execute(text(sql), params).all()  # noqa: E731
            same = same_figures(ours(), hand(), by)
            m = compare(ours, hand, repeat)
            ratio, cpu_ratio = m["ours"] / m["hand"], m["ours_cpu"] / max(m["hand_cpu"], 0.001)
            verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
            name = ("whole grant" if scope == "whole" else "period S2 + cumulative") + f", by {by}"
            lines.append(
                f"{name:34s} {m['ours']:9.1f} {m['hand']:9.1f} {ratio:5.2f}x {verdict:4s}  "
                f"{m['ours_cpu']:9.1f} {m['hand_cpu']:9.1f} {cpu_ratio:5.2f}x  {'yes' if same else 'NO'}"
            )
        report = budget_vs_actual(session, g, by="line")
        parts = session.execute(
            text("SELECT COUNT(*) FROM expenditures WHERE grant_id = :g AND shared_cost_id IS NOT NULL"), {"g": g}
        ).scalar()
        everything = session.execute(text("SELECT COUNT(*) FROM expenditures")).scalar()
        lines.append(
            f"check: {len(report.rows)} rows, total actual {report.total.actual:,} USD; "
            f"{parts:,} of the grant's expenditures are parts of shared costs "
            f"({everything:,} expenditure rows in all, the other grant's parts included)"
        )
        session.remove()
    for name, wall, cpu in list_pages(app, g, repeat):
        verdict = "    " if postgres else ("PASS" if wall <= LIST_TARGET_MS else "FAIL")
        lines.append(f"{name:58s} {wall:7.1f} ms {verdict} (CPU {cpu:.1f} ms)")
    return lines


def run(label: str, database_url: str, n_lines: int, n_rows: int, repeat: int, reuse: bool) -> list[str]:
    from app import create_app
    from app.bootstrap import ensure_roles, upgrade_database
    from config.settings import TestConfig
    from core.extensions import db

    os.environ["DATABASE_URL"] = database_url
    instance = tempfile.mkdtemp(prefix="gk-bench-")
    app = create_app(TestConfig, INSTANCE_PATH=instance)
    lines = [f"\n== {label}: {n_lines:,} budget lines, {n_rows:,} expenditures =="]
    if reuse:
        lines.append("fixture: cached database reused")
    else:
        upgrade_database(app)
        ensure_roles(app)
        lines.append(f"fixture: bulk insert (Core) {build(app, n_lines, n_rows):.1f} s")
    postgres = database_url.startswith("postgresql")
    # PostgreSQL: once right after the bulk load (only ANALYZE: no visibility map yet, as before
    # autovacuum has visited the table), then after VACUUM ANALYZE, the state a live table is in.
    phases = [("after bulk load + ANALYZE, before any VACUUM", False)] if postgres and not reuse else []
    phases += [("after VACUUM ANALYZE" if postgres else "after ANALYZE", True)]
    for phase, vacuum in phases:
        settle(app, vacuum)
        lines += measure(app, phase, repeat, postgres)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    os.environ.pop("DATABASE_URL", None)
    return lines


def sqlite_fixture(
    cache_dir: str | None, n_lines: int, n_rows: int
) -> tuple[str, bool, tempfile.TemporaryDirectory | None]:
    """(database file, whether it already holds the fixture, temp dir to clean up)."""
    if cache_dir is None:
        folder = tempfile.TemporaryDirectory(prefix="gk-bench-db-")
        return f"{folder.name}/bench.db", False, folder
    schema = b"".join(p.read_bytes() for p in sorted((ROOT / "migrations" / "versions").glob("*.py")))
    key = hashlib.sha256(schema + FIXTURE_VERSION.encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"budgets-{n_lines}-{n_rows}-{key}.db"
    done = path.with_suffix(".complete")
    if path.exists() and done.exists():
        return str(path), True, None
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"budgets-{n_lines}-{n_rows}-*"):
        old.unlink()  # a stale fixture of an older schema or a half-built one
    return str(path), False, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per figure (medians are printed)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "gk-bench-cache"))
    parser.add_argument("--no-cache", action="store_true", help="build the SQLite fixture in a temporary folder")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--pg-reuse",
        metavar="DATABASE",
        help="measure an existing PostgreSQL database already holding the fixture (not dropped)",
    )
    args = parser.parse_args()

    out: list[str] = []
    if not args.pg_only:
        path, reuse, folder = sqlite_fixture(None if args.no_cache else args.cache_dir, args.lines, args.rows)
        try:
            out += run("SQLite", f"sqlite:///{path}", args.lines, args.rows, args.repeat, reuse)
            if not args.no_cache:
                Path(path).with_suffix(".complete").touch()
        finally:
            if folder is not None:
                folder.cleanup()
        print("\n".join(out), flush=True)
    if not args.sqlite_only and args.pg_reuse:
        url = args.pg_url.rsplit("/", 1)[0] + f"/{args.pg_reuse}"
        pg = run("PostgreSQL", url, args.lines, args.rows, args.repeat, True)
        print("\n".join(pg), flush=True)
    elif not args.sqlite_only:
        name = f"gk_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
            pg = run("PostgreSQL", url, args.lines, args.rows, args.repeat, False)
            print("\n".join(pg), flush=True)
            out += pg
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(
        f"\nTargets: report within {TARGET_RATIO}x of the hand-written GROUP BY (median wall time); "
        f"expenditure list first page within {LIST_TARGET_MS:.0f} ms on SQLite."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
