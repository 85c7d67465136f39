"""Issue 16: the sweep's sending phase records outcomes in batches, whatever the number of messages.

Statements of the sending phase only (``_Delivery.run``), counted with a ``before_cursor_execute``
listener, over real SMTP on loopback (aiosmtpd). Ownership is checked per batch by the same
UPDATE that records the batch, so there is no statement per message left.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from sqlalchemy import event, select

from tests.grants.deadlines.conftest import at

BATCH = 25


def _due_on(app, world, count: int, due: date) -> None:
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.deadlines import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        for index in range(count):
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                title=f"Report {due:%d%m}-{index}",
                due_date=due.isoformat(),
                owner_id=world.users["Program"],
            )
        db.session.commit()


def _settings(**kw):
    from grants.deadlines.reminders import SweepSettings

    # record_every: an hour, so a slow machine's clock never adds a time-based record to the count.
    return SweepSettings(base_url="https://gk.coalition.example.org", record_every=timedelta(hours=1), **kw)


def _sending_statements(app, day: date, sender, monkeypatch) -> tuple[object, list[str]]:
    """Run one sweep at ``day``; the statements of its sending phase."""
    from core.extensions import db
    from grants.deadlines import reminders

    sending: list[str] = []
    phase = {"on": False}
    original = reminders._Delivery.run

    def run(self):
        phase["on"] = True
        try:
            return original(self)
        finally:
            phase["on"] = False

    def listener(conn, cursor, statement, parameters, context, executemany):
        if phase["on"]:
            sending.append(statement)

    monkeypatch.setattr(reminders._Delivery, "run", run)
    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", listener)
        try:
            result = reminders.sweep(db.session, now=at(day), sender=sender, settings=_settings(batch_size=BATCH))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
            db.session.remove()
    return result, sending


def _outcomes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("UPDATE") and "sent_at=" in s]


def test_the_sending_phase_takes_one_statement_per_batch_plus_a_constant(
    app, world, quiet_periods, smtp_server, monkeypatch
):
    from grants.deadlines.mail import SmtpSender
    from grants.deadlines.missing import MISSING_WORK
    from grants.deadlines.reminders import SweepSettings, sweep

    inbox, smtp = smtp_server
    assert SweepSettings().batch_size == 500  # the default: one outcome statement per 500 messages
    with MISSING_WORK.replaced():
        with app.app_context():
            from core.extensions import db

            sweep(db.session, now=at(date(2026, 9, 1)), sender=None, settings=_settings())  # periods synced once
            db.session.remove()
        _due_on(app, world, 10, date(2026, 10, 12))
        small, small_statements = _sending_statements(app, date(2026, 10, 5), SmtpSender(smtp), monkeypatch)
        # Three days later: the first ten have no new stage, the 130 their "in 7 days".
        _due_on(app, world, 130, date(2026, 10, 15))
        large, large_statements = _sending_statements(app, date(2026, 10, 8), SmtpSender(smtp), monkeypatch)

    assert (small.sent, large.sent) == (10, 130)
    assert len(inbox.messages) == 140 and len(set(inbox.keys())) == 140
    small_outcomes, large_outcomes = _outcomes(small_statements), _outcomes(large_statements)
    assert (len(small_outcomes), len(large_outcomes)) == (1, math.ceil(130 / BATCH))
    small_fixed = len(small_statements) - len(small_outcomes)
    large_fixed = len(large_statements) - len(large_outcomes)
    assert small_fixed == large_fixed <= 4, (
        f"sending 10 took {len(small_statements)} statements, 130 took {len(large_statements)}: "
        f"besides one per batch of {BATCH}, {small_fixed} vs {large_fixed}\n" + "\n".join(large_statements)
    )


def test_refused_messages_are_recorded_with_the_batch_and_retried_later(
    app, world, quiet_periods, smtp_server, monkeypatch
):
    """Failures add at most one statement per batch and number of attempts, not one per message."""
    from core.extensions import db
    from grants.deadlines.mail import SmtpSender
    from grants.deadlines.missing import MISSING_WORK
    from grants.deadlines.models import ReminderLog, ReminderStatus

    inbox, smtp = smtp_server
    inbox.reject_next = 30  # the server answers 451 "try later" to every one of them
    with MISSING_WORK.replaced():
        _due_on(app, world, 30, date(2026, 10, 12))
        result, statements = _sending_statements(app, date(2026, 10, 5), SmtpSender(smtp), monkeypatch)

    assert (result.failed, result.sent) == (30, 0)
    failures = [s for s in statements if s.lstrip().upper().startswith("UPDATE") and "last_error=" in s]
    assert len(failures) == math.ceil(30 / BATCH), "\n".join(statements)
    with app.app_context():
        rows = db.session.execute(
            select(ReminderLog.status, ReminderLog.attempts, ReminderLog.next_attempt_at, ReminderLog.last_error)
        ).all()
        db.session.remove()
    assert len(rows) == 30
    assert {(r.status, r.attempts) for r in rows} == {(ReminderStatus.failed, 1)}
    assert all(r.next_attempt_at is not None and "451" in r.last_error for r in rows)
    assert inbox.messages == []


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
