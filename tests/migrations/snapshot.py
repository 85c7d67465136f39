"""Demo databases frozen at a schema revision, to test that later migrations upgrade real data.

``python -m tests.migrations.snapshot`` builds the demo organisation on a fresh SQLite
database at the current head and writes every row of every table to
``tests/migrations/snapshots/demo_at_<revision>.json.gz`` (values tagged with their type,
so the file loads the same into SQLite and PostgreSQL). Make one each time a schema
revision is released; the upgrade test then loads every snapshot at its own revision and
upgrades it to the head.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
# The day the snapshot's demo is built as of: fixed, so the file is the same on every run.
DEMO_DAY = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)
# Tables the database keeps itself (triggers, from 0015 on): not dumped, and filled again by the
# triggers as a snapshot's rows are loaded. Loading them too would count every expenditure twice.
DERIVED_TABLES = {"budget_line_totals"}


def _tag(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$": "decimal", "v": str(value)}
    if isinstance(value, bytes | memoryview):
        return {"$": "bytes", "v": base64.b64encode(bytes(value)).decode()}
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$", "v"}:
        kind, raw = value["$"], value["v"]
        if kind == "datetime":
            return dt.datetime.fromisoformat(raw)
        if kind == "date":
            return dt.date.fromisoformat(raw)
        if kind == "decimal":
            return Decimal(raw)
        if kind == "bytes":
            return base64.b64decode(raw)
    return value


def dump(connection: Connection) -> dict[str, Any]:
    """Every row of every table, with the revision the database is at."""
    metadata = MetaData()
    metadata.reflect(bind=connection)
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version" or table.name in DERIVED_TABLES:
            continue
        order = list(table.primary_key.columns) or list(table.columns)
        rows = connection.execute(table.select().order_by(*order)).mappings()
        tables[table.name] = [{key: _tag(value) for key, value in row.items()} for row in rows]
    return {"revision": revision, "tables": tables}


def load(engine: Engine, snapshot: dict[str, Any]) -> None:
    """Insert a snapshot's rows into a database migrated to the snapshot's revision."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            rows = snapshot["tables"].get(table.name)
            if rows and table.name not in DERIVED_TABLES:
                connection.execute(table.insert(), [{k: _untag(v) for k, v in row.items()} for row in rows])
        if engine.dialect.name == "postgresql":
            # Rows came with their ids: move each id sequence past them.
            for table in metadata.sorted_tables:
                for column in table.primary_key.columns:
                    sequence = connection.execute(
                        text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
                    ).scalar()
                    if sequence:
                        connection.execute(
                            text(
                                f'SELECT setval(:s, COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 0) + 1, false)'
                            ),
                            {"s": sequence},
                        )


def figures(session: Any) -> dict[str, list[Any]]:
    """Per grant: planned and actual of the whole grant, and its number of progress rows.

    Stored in the snapshot as computed by the code of the snapshot's release, so the
    upgrade test compares today's figures with what that release showed.
    """
    from sqlalchemy import select

    from budgets.report import budget_vs_actual
    from grants.models import Grant
    from indicators.progress import indicator_progress

    result = {}
    for grant in session.scalars(select(Grant).order_by(Grant.id)):
        report = budget_vs_actual(session, grant.id)
        planned = sum((row.planned for row in report.rows), Decimal(0))
        actual = sum((row.actual for row in report.rows), Decimal(0))
        result[grant.reference] = [str(planned), str(actual), len(indicator_progress(session, grant.id))]
    return result


def read(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def make() -> Path:
    """Build the demo at the current head on a throw-away SQLite database and write its snapshot."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from app import create_app
    from app.bootstrap import initialise
    from config.settings import Settings
    from core import clock
    from core.extensions import db

    with tempfile.TemporaryDirectory() as tmp, clock.frozen_at(DEMO_DAY):
        settings = Settings.from_env({"GRANTKEEPER_INSTANCE": tmp}, instance_path=Path(tmp))
        app = create_app(settings=settings, INSTANCE_PATH=Path(tmp))
        initialise(app, demo=True)
        with app.app_context():
            with db.engine.connect() as connection:
                snapshot = dump(connection)
                inspect(connection)  # the connection is still good: nothing left half-read
            snapshot["figures"] = figures(db.session)
    SNAPSHOTS.mkdir(exist_ok=True)
    target = SNAPSHOTS / f"demo_at_{snapshot['revision']}.json.gz"
    with gzip.GzipFile(target, "wb", mtime=0) as raw:
        raw.write(json.dumps(snapshot, sort_keys=True, indent=0).encode())
    return target


if __name__ == "__main__":
    print(f"wrote {make()}")
