"""What the benchmark scripts share: a scratch database and a migrated app on it.

Imported by the scripts in this folder (``from support import ...``); they run as
``python benchmarks/<script>.py``, which puts this folder on the path.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def scratch_database(base: str | None, tmp: Path, stem: str) -> tuple[str, Callable[[], None]]:
    """A database of its own: a SQLite file under ``tmp``, or a new PostgreSQL database on ``base``'s server.

    Returns its URL and the function that drops it (nothing to do for SQLite).
    """
    if not base:
        return f"sqlite:///{tmp / f'{stem}.db'}", lambda: None
    url = make_url(base)
    name = f"gk_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def make_app(database_url: str, instance: str | Path) -> Any:
    """The app on ``database_url``, migrated to head, with its roles."""
    from app import create_app
    from app.bootstrap import ensure_roles, upgrade_database
    from config.settings import TestConfig

    os.environ["DATABASE_URL"] = database_url
    try:
        app = create_app(TestConfig, INSTANCE_PATH=instance)
    finally:
        os.environ.pop("DATABASE_URL", None)
    upgrade_database(app)
    ensure_roles(app)
    return app
