"""Benchmark: syncing one grant's spending from Odoo (the wire-protocol fake) — first import, re-sync, corrections.

Usage:
    python benchmarks/bench_odoo_sync.py                      # SQLite, 100,000 Odoo lines, JSON-RPC
    python benchmarks/bench_odoo_sync.py --lines 20000 --protocol json2
    python benchmarks/bench_odoo_sync.py --postgres           # also on PostgreSQL (127.0.0.1:5432, user postgres)
    python benchmarks/bench_odoo_sync.py --postgres-only      # PostgreSQL only

Prints wall time of each step, lines per second beside the goal (first sync: at
least 5,000 lines/s) and the HTTP requests each step made beside the goal for a
no-change re-sync (at most 4, deletion detection included). The fake Odoo runs in
this process (HTTP on localhost), so the figures include the wire protocol and
paging but not a real Odoo's query time; the fake's own time answering (its share of the
wall time, on the same cores) is printed apart, with the lines/s less that time beside.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from support import make_app  # noqa: E402

ACCOUNTS = [(600 + i, f"6{i:02d}000 Expense {i}") for i in range(10)]


def setup(app) -> int:
    from budgets import odoo_sync, rates, services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services as grants
    from grants.services import GENERIC_COST_CATEGORIES

    with app.app_context(), acting_as(Actor(None, "bench", "system")):
        funder = grants.create_funder(db.session, name="Bench Fund", code="BF", default_currency="USD")
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant = grants.create_grant(
            db.session,
            funder=funder,
            reference="BENCH-1",
            title="Bench",
            recipient="Coalition",
            currency="USD",
            amount=Decimal("1000000"),
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        grants.generate_periods(db.session, grant, "semester", 45)
        rates.set_rate_policy(db.session, grant, "fixed", fixed_currency="XCD")
        link = odoo_sync.link_grant(
            db.session, grant, analytic_account_id=41, analytic_plan="Grants", company_currency="XCD"
        )
        for index, (account_id, label) in enumerate(ACCOUNTS):
            line = services.create_line(db.session, grant, code=f"L-{index}", description=label, cost_category="STAFF")
            odoo_sync.map_account(db.session, grant, odoo_account_id=account_id, line=line, label=label)
        db.session.commit()
        return link.id


def run(app, odoo, link_id: int, protocol: str, *, full: bool = False) -> tuple[float, object, int, float]:
    from budgets import odoo_sync
    from budgets.models import OdooLink
    from budgets.odoo import OdooClient, OdooSettings
    from core.audit import acting_as
    from core.extensions import db

    settings = OdooSettings(
        host="127.0.0.1",
        port=odoo.port,
        database=odoo.database,
        login=odoo.login,
        secret=odoo.password,
        protocol=protocol,
        timeout=30.0,
    )
    with app.app_context(), acting_as(odoo_sync.SYNC_ACTOR):
        requests, served = odoo.requests, odoo.server_seconds
        started = time.perf_counter()
        client = OdooClient(settings)
        result = odoo_sync.sync_and_commit(
            db.session, client, db.session.get(OdooLink, link_id), full=full, confirm_removals=True
        )
        client.close()
        elapsed = time.perf_counter() - started
        db.session.remove()
    return elapsed, result, odoo.requests - requests, odoo.server_seconds - served


def bench(label: str, database_url: str, n_lines: int, protocol: str) -> None:
    from tests.budgets.odoo.fake_odoo import FakeOdoo

    random.seed(7)
    with tempfile.TemporaryDirectory() as instance:
        app = make_app(database_url, Path(instance))
        link_id = setup(app)
        odoo = FakeOdoo().start()
        try:
            for line_id in range(1, n_lines + 1):
                account = random.choice(ACCOUNTS)
                day = date(2026, 1, 1) + timedelta(days=random.randrange(700))
                # Posted over months, as in life: a sync of changes re-reads only the last minutes' lines.
                stamp = datetime(2026, 1, 1) + timedelta(minutes=line_id * 3)
                odoo.add_line(
                    line_id,
                    day.isoformat(),
                    -round(random.uniform(5, 5000), 2),
                    account=41,
                    general=account,
                    write_date=stamp.strftime("%Y-%m-%d %H:%M:%S"),
                )
            later = (datetime(2026, 1, 1) + timedelta(minutes=n_lines * 3 + 60)).strftime("%Y-%m-%d %H:%M:%S")
            steps = []
            steps.append(("first sync (all created)", *run(app, odoo, link_id, protocol)))
            steps.append(("re-sync, nothing changed", *run(app, odoo, link_id, protocol)))
            for line_id in random.sample(range(1, n_lines + 1), n_lines // 100):
                odoo.repost(line_id, write_date=later, amount=-1.23)
            steps.append(("1% corrected (new ids)", *run(app, odoo, link_id, protocol)))
            for line_id in random.sample([line["id"] for line in odoo.lines], n_lines // 100):
                odoo.cancel(line_id)
            steps.append(("1% cancelled", *run(app, odoo, link_id, protocol)))
            steps.append(("full sync", *run(app, odoo, link_id, protocol, full=True)))
        finally:
            odoo.stop()
    print(f"\n{label}: {n_lines:,} Odoo lines over {protocol}")
    print(
        f"{'step':<28}{'seconds':>9}{'lines/s':>10}{'requests':>10}{'fake s':>8}  "
        "read/created/updated/removed/unchanged"
    )
    for name, seconds, result, requests, served in steps:
        print(
            f"{name:<28}{seconds:>9.2f}{result.read / seconds:>10,.0f}{requests:>10}{served:>8.2f}  "
            f"{result.read}/{result.created}/{result.updated}/{result.removed}/{result.unchanged}"
        )
    first, again = steps[0], steps[1]
    print(f"first sync: {first[2].read / first[1]:,.0f} lines/s (goal: at least 5,000)")
    print(
        f"first sync less the fake Odoo's own {first[4]:.2f} s: {first[2].read / (first[1] - first[4]):,.0f} lines/s "
        "(Grantkeeper's side: parsing, checking, writing)"
    )
    print(f"no-change re-sync: {again[3]} requests (goal: at most 4, deletion detection included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--protocol", default="jsonrpc", choices=["jsonrpc", "xmlrpc", "json2"])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--postgres-only", action="store_true", help="PostgreSQL only, not SQLite first")
    args = parser.parse_args()
    if not args.postgres_only:
        with tempfile.TemporaryDirectory() as folder:
            bench("SQLite", f"sqlite:///{folder}/bench.db", args.lines, args.protocol)
    if args.postgres or args.postgres_only:
        name = f"gk_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench("PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.lines, args.protocol)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
