"""Benchmark: one reminder sweep over 1k, 10k and 100k deadlines — time and number of SQL statements.

    python benchmarks/bench_deadlines.py                 # SQLite file in a temp dir
    BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres python benchmarks/bench_deadlines.py
    python benchmarks/bench_deadlines.py --sizes 1000,10000

Each size gets a fresh database: 100 grants, 60 users (members with lead /
finance / program roles), deadlines due between 60 days ago and 120 days
ahead, owners spread over the members. For each size it prints:

- the first sweep with no SMTP (every due reminder claimed and put in the outbox),
- a second sweep at the same moment (everything already claimed: nothing to do),
- a sweep on the next day through a sender that accepts every message (what an SMTP
  sweep costs): its sending phase is counted apart. Ownership is checked per batch by the
  statement that records the batch's outcomes (one per batch of 500), so the whole
  sending phase is one statement per 500 messages plus a constant.

Statements are counted with a ``before_cursor_execute`` listener (and, on PostgreSQL, the
COPY of the claims, which goes through the driver). At 100,000 deadlines the
figures are printed beside the goals of issue 16: the first sweep within 3 s on SQLite and
within 2x that on PostgreSQL; outcomes recorded with at most one statement per 500 messages
plus a constant, for the whole sending phase.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, event, insert  # noqa: E402
from sqlalchemy.orm import Session, configure_mappers  # noqa: E402
from support import scratch_database  # noqa: E402

GRANTS = 100
USERS = 60
TODAY = date(2026, 9, 30)
NOW = dt.datetime(2026, 9, 30, 6, 0, tzinfo=dt.UTC)


class AcceptingSender:
    """Accepts every message without a network: measures the sweep, not an SMTP server."""

    def __init__(self) -> None:
        self.count = 0

    def send(self, message, *, now):
        self.count += 1

    def close(self) -> None:
        pass


def _populate(engine, size: int) -> None:
    from flask_appbuilder import Model
    from flask_appbuilder.security.sqla.models import User

    from app import import_models
    from grants.deadlines.models import Deadline
    from grants.models import Funder, Grant, GrantMembership

    import_models()
    # The app configures its mappers once at start-up; do it here so the first sweep measures the sweep.
    configure_mappers()
    Model.metadata.create_all(engine)
    rng = random.Random(size)
    with engine.begin() as conn:
        conn.execute(
            insert(User.__table__),
            [
                {
                    "id": i,
                    "first_name": f"User{i}",
                    "last_name": "Bench",
                    "username": f"user{i}",
                    "email": f"user{i}@bench.example.org",
                    "active": True,
                }
                for i in range(1, USERS + 1)
            ],
        )
        conn.execute(
            insert(Funder.__table__),
            [
                {
                    "id": 1,
                    "name": "Bench Fund",
                    "code": "BF",
                    "default_currency": "USD",
                    "cost_categories": [],
                    "is_demo": False,
                }
            ],
        )
        conn.execute(
            insert(Grant.__table__),
            [
                {
                    "id": g,
                    "funder_id": 1,
                    "reference": f"BG-{g}",
                    "title": f"Grant {g}",
                    "recipient": "Org",
                    "currency": "USD",
                    "amount": 1000,
                    "start_date": date(2026, 1, 1),
                    "end_date": date(2027, 12, 31),
                    "status": "active",
                    "countries": "",
                    "is_demo": False,
                }
                for g in range(1, GRANTS + 1)
            ],
        )
        members = []
        for g in range(1, GRANTS + 1):
            for role, user in zip(("lead", "finance", "program"), rng.sample(range(1, USERS + 1), 3)):
                members.append({"grant_id": g, "user_id": user, "role": role})
        conn.execute(insert(GrantMembership.__table__), members)
        by_grant = {}
        for m in members:
            by_grant.setdefault(m["grant_id"], []).append(m["user_id"])
        rows = []
        for i in range(size):
            g = rng.randint(1, GRANTS)
            rows.append(
                {
                    "grant_id": g,
                    "source_kind": "manual",
                    "kind": "other",
                    "title": f"Deliverable {i}",
                    "due_date": TODAY + timedelta(days=rng.randint(-60, 120)),
                    "owner_id": rng.choice(by_grant[g]) if rng.random() < 0.9 else None,
                    "waived": False,
                }
            )
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Deadline.__table__), rows[start : start + 5000])


def _sqlite_like_the_app(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")  # as app._sqlite_pragmas sets it
    cursor.close()


def _measure(engine, now, sender):
    """One sweep: (result, seconds, CPU seconds of this process, statements, of the sending phase, its outcomes).

    CPU seconds count this process only (on SQLite the database works in it too): on a machine
    shared with other work they show what the sweep costs when the wall-clock seconds do not.
    """
    from grants.deadlines import reminders
    from grants.deadlines.reminders import SweepSettings, sweep

    statements: list[str] = []
    sending: list[str] = []
    phase = {"sending": False}

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
        if phase["sending"]:
            sending.append(statement)

    original_run = reminders._Delivery.run

    def run(self):
        phase["sending"] = True
        try:
            return original_run(self)
        finally:
            phase["sending"] = False

    reminders._Delivery.run = run
    event.listen(engine, "before_cursor_execute", count)
    # On PostgreSQL the claims are COPYed through the driver, which SQLAlchemy's events do not see:
    # counted here, so the figure is every statement sent.
    copy_cls, original_copy = None, None
    if engine.dialect.name == "postgresql":
        import psycopg

        copy_cls, original_copy = psycopg.Cursor, psycopg.Cursor.copy

        def copy(self, statement, *args, **kwargs):
            count(None, self, str(statement), None, None, False)
            return original_copy(self, statement, *args, **kwargs)

        psycopg.Cursor.copy = copy
    try:
        with Session(engine) as session:
            started, cpu_started = time.perf_counter(), time.process_time()
            result = sweep(session, now=now, sender=sender, settings=SweepSettings(base_url="https://gk.example.org"))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        event.remove(engine, "before_cursor_execute", count)
        reminders._Delivery.run = original_run
        if copy_cls is not None:
            copy_cls.copy = original_copy
    outcomes = [s for s in sending if s.lstrip().upper().startswith("UPDATE") and "sent_at=" in s]
    return result, elapsed, cpu, len(statements), len(sending), len(outcomes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"database: {'PostgreSQL' if base else 'SQLite'}; {GRANTS} grants, {USERS} users; sweep at {NOW:%Y-%m-%d %H:%M} UTC"
    )
    print(f"{'deadlines':>10} {'run':<26} {'reminders':>9} {'statements':>10} {'seconds':>8} {'cpu s':>7}")
    goal_first = 3.0 if not base else 6.0
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            url, drop = scratch_database(base, Path(tmp), f"bench_{size}")
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_like_the_app)
            try:
                _populate(engine, size)
                runs = [
                    ("first sweep, no SMTP (outbox)", NOW, None),
                    ("same moment again", NOW + timedelta(minutes=15), None),
                    ("next day, sender accepts all", NOW + timedelta(days=1), AcceptingSender()),
                ]
                for label, now, sender in runs:
                    result, elapsed, cpu, statements, sending, outcomes = _measure(engine, now, sender)
                    done = result.outbox + result.sent + result.in_app_only
                    print(f"{size:>10} {label:<26} {done:>9} {statements:>10} {elapsed:>8.2f} {cpu:>7.2f}")
                    if label.startswith("first sweep") and size == 100_000:
                        verdict = "met" if elapsed <= goal_first else "NOT met"
                        print(
                            f"{'':>10} goal: first sweep at 100,000 within {goal_first:.0f} s -> {elapsed:.2f} s, {verdict}"
                            f" (CPU {cpu:.2f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
                        )
                    if sender is not None:
                        allowed = math.ceil(result.sent / 500) + 4
                        verdict = "met" if sending <= allowed else "NOT met"
                        print(
                            f"{'':>10} sending phase: {sending} statements for {result.sent} messages"
                            f" = {outcomes} outcome statements (each also the batch's ownership check)"
                            f" + {sending - outcomes} fixed;"
                            f" goal: <= {allowed} (one per 500 + a constant of 4), {verdict}"
                        )
            finally:
                engine.dispose()
                drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
