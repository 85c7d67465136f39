"""Reminders: what is sent when, over a real SMTP server on loopback, exactly once whatever happens."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.grants.deadlines.conftest import SMTP_PASSWORD, at

SETTINGS_KW = dict(base_url="https://gk.coalition.example.org")


def _settings(**kw):
    from grants.deadlines.reminders import SweepSettings

    return SweepSettings(**{**SETTINGS_KW, **kw})


def _sweep(app, now, smtp=None, **kw):
    from core.extensions import db
    from grants.deadlines.mail import SmtpSender
    from grants.deadlines.reminders import sweep

    with app.app_context():
        try:
            return sweep(db.session, now=now, sender=SmtpSender(smtp) if smtp else None, settings=_settings(**kw))
        finally:
            db.session.remove()


def _logs(app):
    from core.extensions import db
    from grants.deadlines.models import ReminderLog

    with app.app_context():
        rows = db.session.scalars(select(ReminderLog).order_by(ReminderLog.id)).all()
        out = [
            (r.offset_key, r.recipient_id, r.status.value, r.attempts, r.last_error, r.next_attempt_at) for r in rows
        ]
        db.session.remove()
        return out


def test_stage_offsets_before_on_the_day_and_while_overdue():
    from grants.deadlines.policies import ReminderRule
    from grants.deadlines.reminders import escalation_stage, reminder_stage

    rule = ReminderRule(days_before=(30, 14, 7, 1), overdue_every_days=7, escalate_after_days=14)
    due = date(2026, 8, 14)
    stage = lambda day: reminder_stage(due, day, rule, catch_up_days=6)  # noqa: E731
    assert stage(date(2026, 7, 14)) is None  # 31 days before
    assert stage(date(2026, 7, 15)) == "before-30"
    assert stage(date(2026, 7, 31)) == "before-14"
    assert stage(date(2026, 8, 13)) == "before-1"
    assert stage(date(2026, 8, 14)) == "due-day"
    assert stage(date(2026, 8, 21)) == "overdue-7"
    assert stage(date(2026, 8, 28)) == "overdue-14"
    # A sweep that only runs 2 days later still sends the latest stage, not the missed older ones.
    assert stage(date(2026, 7, 17)) == "before-30"
    assert stage(date(2026, 8, 9)) == "before-7"
    assert escalation_stage(due, date(2026, 8, 27), rule, 6) is None
    assert escalation_stage(due, date(2026, 8, 28), rule, 6) == "escalate-14"
    assert escalation_stage(due, date(2026, 9, 4), rule, 6) == "escalate-21"


def test_reminder_arrives_by_smtp_with_what_when_grant_missing_and_link(app, world, deadlines, smtp_server):
    from grants.deadlines.missing import MISSING_WORK

    inbox, smtp = smtp_server
    MISSING_WORK.add(
        "test: audited statements",
        lambda session, d: ["Audited financial statements"] if d.kind.value == "audit" else [],
    )
    try:
        result = _sweep(app, at(date(2026, 9, 23)), smtp)  # 7 days before 30 Sep
    finally:
        MISSING_WORK.remove("test: audited statements")
    assert result.sent == 2  # the program user (GA-1 audit) and finance (GB-1 board meeting)
    [message] = inbox.to("program@test.example.org")
    assert message["Subject"] == "[Grantkeeper] GA-1 — External audit 2025 due in 7 days (30 Sep 2026)"
    assert message["From"] == "grantkeeper@coalition.example.org"
    body = message.get_content()
    assert "What is due: External audit 2025" in body
    assert "Grant:       GA-1 — Grant A" in body
    assert "Wednesday 30 September 2026 (in 7 days)" in body
    assert "  - Audited financial statements" in body
    assert f"Open it: https://gk.coalition.example.org/deadlines/show/{deadlines['audit']}" in body
    assert "confidential auditor remarks" not in body  # internal notes stay in the app
    assert _logs(app)[0][2] == "sent"


def test_repeated_sweeps_send_each_reminder_once(app, world, deadlines, smtp_server):
    inbox, smtp = smtp_server
    for minute in range(0, 60, 15):
        _sweep(app, at(date(2026, 9, 23)) + timedelta(minutes=minute), smtp)
    _sweep(app, at(date(2026, 9, 24)), smtp)  # the next day: no stage falls on it
    assert len(inbox.messages) == 2
    _sweep(app, at(date(2026, 9, 29)), smtp)  # 1 day before
    _sweep(app, at(date(2026, 9, 30)), smtp)  # on the day
    subjects = [m["Subject"] for m in inbox.to("program@test.example.org")]
    assert subjects == [
        "[Grantkeeper] GA-1 — External audit 2025 due in 7 days (30 Sep 2026)",
        "[Grantkeeper] GA-1 — External audit 2025 due tomorrow (30 Sep 2026)",
        "[Grantkeeper] GA-1 — External audit 2025 due today (30 Sep 2026)",
    ]
    assert len(set(inbox.keys())) == len(inbox.messages)


def test_without_smtp_reminders_wait_in_the_outbox_and_as_notifications(app, world, deadlines):
    from core.extensions import db
    from grants.deadlines import notifications
    from grants.deadlines.models import ReminderLog

    result = _sweep(app, at(date(2026, 9, 23)), None)
    again = _sweep(app, at(date(2026, 9, 23), 7), None)
    assert (result.outbox, again.outbox) == (2, 0)
    with app.app_context():
        rows = db.session.scalars(select(ReminderLog).order_by(ReminderLog.id)).all()
        assert [r.status.value for r in rows] == ["outbox", "outbox"]
        assert "External audit 2025" in rows[0].subject and rows[0].to_address == "program@test.example.org"
        assert notifications.unread_count(db.session, world.users["Program"]) == 1
        [note] = notifications.notifications_for(db.session, world.users["Program"])
        assert note.link == f"/deadlines/show/{deadlines['audit']}"
        # The notification shows its reminder's words, which it refers to rather than copies.
        mine = next(r for r in rows if r.recipient_id == world.users["Program"])
        assert (note.title, note.body) == (mine.subject, mine.body)
        assert "External audit 2025" in note.body
        assert (note.own_title, note.own_body) == (None, None)
        assert notifications.mark_read(db.session, world.users["Program"], None, now=at(date(2026, 9, 23))) == 1
        # Marking one's own notifications never touches someone else's.
        assert notifications.unread_count(db.session, world.users["Finance"]) == 1


def test_a_refused_message_is_retried_with_backoff_and_shows_its_error(app, world, deadlines, smtp_server):
    inbox, smtp = smtp_server
    inbox.reject_next = 2
    now = at(date(2026, 9, 23))
    first = _sweep(app, now, smtp)
    assert (first.sent, first.failed) == (0, 2)
    failed = _logs(app)
    assert {row[2] for row in failed} == {"failed"}
    assert "451" in failed[0][4] and SMTP_PASSWORD not in failed[0][4]
    retry_at = failed[0][5].replace(tzinfo=None)
    assert retry_at == (now + timedelta(minutes=5)).replace(tzinfo=None)  # first backoff: 5 minutes

    early = _sweep(app, now + timedelta(minutes=4), smtp)
    assert early.sent == 0 and early.taken_over == 0
    later = _sweep(app, now + timedelta(minutes=5), smtp)
    assert later.taken_over == 2 and later.sent == 2
    assert [row[2:4] for row in _logs(app)] == [("sent", 2), ("sent", 2)]
    assert len(inbox.messages) == 2


def test_backoff_doubles_and_gives_up_visibly(app, world, deadlines, smtp_server):
    inbox, smtp = smtp_server
    inbox.reject_next = 100
    now = at(date(2026, 9, 23))
    _sweep(app, now, smtp, max_attempts=3)
    _sweep(app, now + timedelta(minutes=5), smtp, max_attempts=3)
    second = _logs(app)[0]
    assert second[3] == 2
    assert second[5].replace(tzinfo=None) == (now + timedelta(minutes=15)).replace(tzinfo=None)  # 5 + 10
    _sweep(app, now + timedelta(minutes=15), smtp, max_attempts=3)
    gave_up = _logs(app)[0]
    assert gave_up[2:4] == ("failed", 3) and gave_up[5] is None  # no further try, still in the outbox
    assert _sweep(app, now + timedelta(days=1), smtp, max_attempts=3).taken_over == 0
    assert inbox.messages == []


def test_wrong_smtp_password_fails_without_the_password_in_logs_or_outbox(app, world, deadlines, smtp_server, caplog):
    import dataclasses
    import logging

    inbox, smtp = smtp_server
    wrong = dataclasses.replace(smtp, password="wrong-" + SMTP_PASSWORD)
    with caplog.at_level(logging.DEBUG):
        result = _sweep(app, at(date(2026, 9, 23)), wrong)
    assert result.failed == 2
    logs = _logs(app)
    assert "SMTPAuthenticationError" in logs[0][4]
    assert SMTP_PASSWORD not in caplog.text and SMTP_PASSWORD not in logs[0][4]
    assert SMTP_PASSWORD not in repr(wrong)


def test_escalation_goes_to_the_grant_leads_after_n_days_overdue(app, world, deadlines, smtp_server):
    from flask_appbuilder.security.sqla.models import User

    from core.extensions import db
    from grants import services as grant_services
    from grants.deadlines import policies
    from grants.models import Grant, MemberRole

    inbox, smtp = smtp_server
    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        grant_services.add_member(db.session, grant, db.session.get(User, world.users["Finance"]), MemberRole.finance)
        policies.set_reminder_policy(
            db.session, grant_id=world.grant_a, days_before="7", escalate_after_days=10, overdue_every_days=7
        )
        db.session.commit()
    due = date(2026, 9, 30)
    _sweep(app, at(due + timedelta(days=9)), smtp)
    assert [m["Subject"] for m in inbox.to("finance@test.example.org") if "GA-1" in m["Subject"]] == []
    _sweep(app, at(due + timedelta(days=10)), smtp)
    escalations = [m for m in inbox.to("finance@test.example.org") if "GA-1" in m["Subject"]]
    assert [m["Subject"] for m in escalations] == [
        "[Grantkeeper] Escalation: GA-1 — External audit 2025 is 10 days overdue"
    ]
    assert "as the finance lead of GA-1" in escalations[0].get_content()
    # The owner (program) is reminded, not escalated to; the program member is the owner here.
    assert all("Escalation" not in m["Subject"] for m in inbox.to("program@test.example.org"))


def test_a_machine_off_for_a_night_catches_up_once(app, world, deadlines, smtp_server):
    inbox, smtp = smtp_server
    # Off on the 29th (the "tomorrow" stage); back on the 30th at 09:00: one catch-up, the latest stage.
    _sweep(app, at(date(2026, 9, 30), 9), smtp)
    _sweep(app, at(date(2026, 9, 30), 9) + timedelta(minutes=15), smtp)
    assert [m["Subject"] for m in inbox.to("program@test.example.org")] == [
        "[Grantkeeper] GA-1 — External audit 2025 due today (30 Sep 2026)"
    ]


class SimulatedCrash(BaseException):
    """Stands for the process dying (kill -9, power cut): not an error the sweep can handle."""


class CrashingSender:
    """Sends through SMTP until ``crash_after`` messages went out, then the process 'dies'."""

    def __init__(self, smtp, crash_after: int) -> None:
        from grants.deadlines.mail import SmtpSender

        self.inner = SmtpSender(smtp)
        self.crash_after = crash_after

    def send(self, message, *, now):
        if self.crash_after == 0:
            raise SimulatedCrash()
        self.crash_after -= 1
        self.inner.send(message, now=now)

    def close(self):
        self.inner.close()


def _many_due_reminders(app, world, count: int) -> None:  # with the quiet_periods fixture
    from core.extensions import db
    from grants.deadlines import services

    with app.app_context():
        for index in range(count):
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                title=f"Deliverable {index + 1}",
                due_date="2026-10-07",
                owner_id=world.users["Program"],
            )
        db.session.commit()


def test_a_sweep_killed_part_way_is_finished_by_the_next_sweep_exactly_once(app, world, quiet_periods, smtp_server):
    from core.extensions import db
    from grants.deadlines.reminders import SweepSettings, sweep

    inbox, smtp = smtp_server
    _many_due_reminders(app, world, 5)
    now = at(date(2026, 9, 30))  # 7 days before: five reminders due
    with app.app_context():
        with pytest.raises(SimulatedCrash):
            sweep(db.session, now=now, sender=CrashingSender(smtp, crash_after=2), settings=_settings())
        db.session.remove()
    assert len(inbox.messages) == 2
    assert sorted(row[2] for row in _logs(app)) == ["claimed", "claimed", "claimed", "sent", "sent"]

    # A sweep right after must not touch claims that may still be in flight...
    assert _sweep(app, now + timedelta(minutes=1), smtp).sent == 0
    # ...once the lease has passed, the next sweep sends the three that were left, once.
    resumed = _sweep(app, now + SweepSettings().lease + timedelta(minutes=1), smtp)
    assert (resumed.taken_over, resumed.sent) == (3, 3)
    _sweep(app, now + timedelta(hours=3), smtp)
    titles = sorted(m["Subject"].split(" — ")[1].split(" due")[0] for m in inbox.messages)
    assert titles == [f"Deliverable {i}" for i in range(1, 6)]
    assert [row[2] for row in _logs(app)] == ["sent"] * 5


def test_a_crash_before_the_claims_commit_leaves_nothing_half_done(app, world, quiet_periods, smtp_server, monkeypatch):
    from grants.deadlines import reminders

    inbox, smtp = smtp_server
    _many_due_reminders(app, world, 3)
    original = reminders._claim

    def claim_then_die(session, rows, **claim):
        original(session, rows, **claim)
        raise SimulatedCrash()

    monkeypatch.setattr(reminders, "_claim", claim_then_die)
    with pytest.raises(SimulatedCrash):
        _sweep(app, at(date(2026, 9, 30)), smtp)
    monkeypatch.setattr(reminders, "_claim", original)
    assert _logs(app) == [] and inbox.messages == []
    assert _sweep(app, at(date(2026, 9, 30), 7), smtp).sent == 3
    assert len(inbox.messages) == 3


def _concurrent_sweeps(app, smtp, now, *, use_lock: bool, sweeps: int = 2):
    """Sweeps in threads, each with its own engine and session: separate schedulers on one database."""
    import threading

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from grants.deadlines.mail import SmtpSender
    from grants.deadlines.reminders import sweep

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    barrier = threading.Barrier(sweeps)
    results, errors = [], []

    def run() -> None:
        engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        try:
            with app.app_context(), Session(engine) as session:
                barrier.wait()
                results.append(
                    sweep(session, now=now, sender=SmtpSender(smtp), settings=_settings(use_advisory_lock=use_lock))
                )
        except Exception as exc:  # surfaced below: the test must see it
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(sweeps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.parametrize("use_lock", [True, False], ids=["advisory-lock", "unique-key-only"])
def test_two_schedulers_on_one_database_never_send_a_duplicate(app, world, quiet_periods, smtp_server, use_lock):
    inbox, smtp = smtp_server
    _many_due_reminders(app, world, 20)
    now = at(date(2026, 9, 30))
    for round_ in range(3):
        _concurrent_sweeps(app, smtp, now + timedelta(minutes=round_), use_lock=use_lock)
    assert len(inbox.messages) == 20
    assert len(set(inbox.keys())) == 20
    assert sorted(row[2] for row in _logs(app)) == ["sent"] * 20


@pytest.mark.postgres_only
def test_two_schedulers_on_one_postgresql_database_never_send_a_duplicate(app, world, quiet_periods, smtp_server):
    import os

    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    inbox, smtp = smtp_server
    _many_due_reminders(app, world, 50)
    now = at(date(2026, 9, 30))
    results = _concurrent_sweeps(app, smtp, now, use_lock=True, sweeps=4)
    assert sum(r.claimed for r in results) == 50
    assert len(inbox.messages) == 50 and len(set(inbox.keys())) == 50


def test_a_moved_deadline_gets_fresh_reminders(app, world, deadlines, smtp_server):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline

    inbox, smtp = smtp_server
    _sweep(app, at(date(2026, 9, 23)), smtp)
    with app.app_context():
        services.update_deadline(db.session, db.session.get(Deadline, deadlines["audit"]), due_date="2026-10-31")
        db.session.commit()
    _sweep(app, at(date(2026, 10, 24)), smtp)
    assert [m["Subject"][-27:] for m in inbox.to("program@test.example.org")] == [
        "due in 7 days (30 Sep 2026)",
        "due in 7 days (31 Oct 2026)",
    ]


def test_submitted_and_waived_deadlines_are_not_reminded(app, world, deadlines, smtp_server):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline

    inbox, smtp = smtp_server
    with app.app_context():
        services.mark_submitted(db.session, db.session.get(Deadline, deadlines["audit"]), on=date(2026, 9, 20))
        services.waive_deadline(db.session, db.session.get(Deadline, deadlines["board"]), reason="donor agreed")
        db.session.commit()
    assert _sweep(app, at(date(2026, 9, 23)), smtp).planned == 0
    assert inbox.messages == []


def test_sweep_issues_a_fixed_number_of_queries_whatever_the_number_of_deadlines(app, world, quiet_periods):
    from sqlalchemy import event

    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.missing import MISSING_WORK

    def queries_for(count: int) -> int:
        with app.app_context():
            for index in range(count):
                services.create_deadline(
                    db.session, grant_id=world.grant_a, title=f"D{count}-{index}", due_date="2026-10-07"
                )
            db.session.commit()
            statements = []
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            engine = db.engine
            event.listen(engine, "before_cursor_execute", listener)
            try:
                _sweep(app, at(date(2026, 9, 30), 6) + timedelta(minutes=count), None)
            finally:
                event.remove(engine, "before_cursor_execute", listener)
            return len(statements)

    # "Still missing" checks ask their own domains once per deadline reminded; this counts the sweep's own.
    with MISSING_WORK.replaced():
        _sweep(app, at(date(2026, 9, 1)), None)  # period deadlines synced once, so both runs do the same work
        small = queries_for(3)
        large = queries_for(60)
    assert small == large, (small, large)


def test_a_failed_reminder_is_not_retried_once_the_deadline_is_submitted(app, world, deadlines, smtp_server):
    from core.extensions import db
    from grants.deadlines import services
    from grants.deadlines.models import Deadline

    inbox, smtp = smtp_server
    inbox.reject_next = 2
    now = at(date(2026, 9, 23))
    _sweep(app, now, smtp)
    with app.app_context():
        services.mark_submitted(db.session, db.session.get(Deadline, deadlines["audit"]), on=date(2026, 9, 23))
        db.session.commit()
    retry = _sweep(app, now + timedelta(hours=1), smtp)
    assert retry.sent == 1  # only GB-1's board meeting
    audit_log = [row for row in _logs(app) if row[1] == world.users["Program"]][0]
    assert audit_log[2] == "failed" and audit_log[5] is None and "submitted or waived" in audit_log[4]
    assert inbox.to("program@test.example.org") == []


def test_the_claims_page_cache_is_given_back_after_the_claim(app, world, quiet_periods, monkeypatch):
    """SQLite: the claims are written with a large page cache; the connection gets its own limit back."""
    from grants.deadlines import reminders

    seen: list[tuple[int, int]] = []
    original = reminders._claim

    def claim_and_look(session, rows, **claim):
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            return original(session, rows, **claim)
        before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        original(session, rows, **claim)
        seen.append((before, connection.exec_driver_sql("PRAGMA cache_size").scalar()))

    _many_due_reminders(app, world, 3)
    monkeypatch.setattr(reminders, "_claim", claim_and_look)
    result = _sweep(app, at(date(2026, 9, 30)), None)
    assert result.outbox == 3
    if seen:  # SQLite only
        [(before, after)] = seen
        assert after == before and before != -reminders._SQLITE_CLAIM_CACHE_KIB
