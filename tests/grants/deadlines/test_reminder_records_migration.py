"""Migration 0016: a reminder's notification refers to the reminder's words instead of copying them.

Upgraded from 0015 with a reminder and two notifications (one of the reminder, one of its own),
then downgraded back: the copies return from the reminders they were taken from. On SQLite, and
on PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import _postgres_database, make_app


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        yield from _postgres_database(base)
    else:
        yield f"sqlite:///{tmp_path / 'records.db'}"


ROWS = [
    "INSERT INTO ab_user (id, first_name, last_name, username, email, active)"
    " VALUES (1, 'Ana', 'Lima', 'ana', 'ana@example.org', true)",
    "INSERT INTO funders (id, name, code, default_currency, cost_categories, is_demo)"
    " VALUES (1, 'Fund', 'F', 'USD', '[]', false)",
    "INSERT INTO grants (id, funder_id, reference, title, recipient, currency, amount, start_date, end_date,"
    " status, countries, is_demo) VALUES (1, 1, 'GA-1', 'Water', 'Org', 'USD', 1, '2026-01-01', '2026-12-31',"
    " 'active', '', false)",
    "INSERT INTO deadlines (id, grant_id, source_kind, kind, title, due_date, waived)"
    " VALUES (1, 1, 'manual', 'other', 'Audit', '2026-09-30', false)",
    "INSERT INTO reminder_logs (id, deadline_id, offset_key, recipient_id, status, subject, body, created_at, attempts)"
    " VALUES (1, 1, '20260930:before-7', 1, 'outbox', 'Audit due in 7 days', 'Hello Ana', '2026-09-23 06:00:00', 0)",
    "INSERT INTO notifications (id, user_id, deadline_id, reminder_log_id, title, body, created_at) VALUES"
    " (1, 1, 1, 1, 'Audit due in 7 days', 'Hello Ana', '2026-09-23 06:00:00'),"
    " (2, 1, NULL, NULL, 'Welcome', 'Your own words', '2026-09-23 06:00:00')",
]


def _notifications(db) -> list[tuple]:
    with db.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text("SELECT id, title, body FROM notifications ORDER BY id"))]


def test_0016_stops_copying_a_reminders_words_and_gives_them_back_on_downgrade(fresh_database_url, tmp_path):
    from core.extensions import db
    from grants.deadlines import notifications

    app = make_app(tmp_path / "instance", fresh_database_url)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="0015")
        with db.engine.begin() as connection:
            for statement in ROWS:
                connection.execute(text(statement))

        upgrade(directory=directory, revision="0016")
        assert _notifications(db) == [(1, None, None), (2, "Welcome", "Your own words")]
        shown = {(n.title, n.body) for n in notifications.notifications_for(db.session, 1)}
        assert shown == {("Audit due in 7 days", "Hello Ana"), ("Welcome", "Your own words")}
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("reminder_logs")}
        assert "ix_reminder_logs_open" in indexes and "ix_reminder_logs_claimed_by" not in indexes
        db.session.remove()

        downgrade(directory=directory, revision="0015")
        assert _notifications(db) == [(1, "Audit due in 7 days", "Hello Ana"), (2, "Welcome", "Your own words")]
        indexes = {index["name"] for index in inspect(db.engine).get_indexes("reminder_logs")}
        assert {"ix_reminder_logs_retry", "ix_reminder_logs_lease", "ix_reminder_logs_claimed_by"} <= indexes
        db.engine.dispose()
