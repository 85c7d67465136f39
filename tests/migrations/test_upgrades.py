"""Every released schema upgrades real data: each demo snapshot, loaded at its own revision,
is migrated to the head and still gives the same figures, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, inspect, select, text

from tests.conftest import _postgres_database, make_app
from tests.migrations.snapshot import SNAPSHOTS, figures, load, read

SNAPSHOT_FILES = sorted(SNAPSHOTS.glob("demo_at_*.json.gz"))


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        yield from _postgres_database(base)
    else:
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"


def test_there_is_a_snapshot_of_the_first_released_schema():
    assert any(path.name == "demo_at_0001.json.gz" for path in SNAPSHOT_FILES)


@pytest.mark.parametrize("snapshot_file", SNAPSHOT_FILES, ids=lambda p: p.name)
def test_demo_database_at_an_earlier_revision_upgrades_to_head_with_its_data(
    snapshot_file: Path, fresh_database_url: str, tmp_path: Path
):
    from core.extensions import db

    snapshot = read(snapshot_file)
    app = make_app(tmp_path / "instance", fresh_database_url)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision=snapshot["revision"])
        load(db.engine, snapshot)

        upgrade(directory=directory)

        with db.engine.connect() as connection:
            heads = set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            tables = set(inspect(connection).get_table_names())
            for name, rows in snapshot["tables"].items():
                if name in tables:  # a later revision may retire a table; none does yet
                    count = connection.execute(select(func.count()).select_from(text(f'"{name}"'))).scalar_one()
                    assert count >= len(rows), f"{name}: {len(rows)} rows before the upgrade, {count} after"
        assert heads == _head_revisions(directory)
        # The figures the snapshot's own release computed from the same rows.
        assert figures(db.session) == snapshot["figures"]
        # 0015 filled the spending totals budget vs actual reads from the expenditures already there.
        from tests.budgets.test_line_totals import assert_totals_match

        spent = db.session.scalar(text("SELECT COUNT(*) FROM expenditures"))
        assert spent > 0 and assert_totals_match(db.session, rows=spent)
        db.session.remove()
    engine = create_engine(fresh_database_url)
    engine.dispose()


def _head_revisions(directory: str) -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", directory)
    return set(ScriptDirectory.from_config(config).get_heads())
