"""Reminders stay exactly-once when a sweep is slow, the database is busy, or a sweep is told to stop.

Real SMTP on loopback (aiosmtpd), injected time: a sweep's clock is a ``FakeTime``
that the sending wrapper moves on by a minute per message, so "slow" costs nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from tests.grants.deadlines.conftest import at

START = at(date(2026, 9, 30))  # seven days before the deliverables fall due


class FakeTime:
    """A clock the test moves on; every sweep of the test can read it."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment
        self.lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self.lock:
            return self.moment

    def advance(self, delta: timedelta) -> None:
        with self.lock:
            self.moment += delta


class SlowSender:
    """Real SMTP; each message 'takes' ``per_message`` of injected time; ``during(n)`` runs while message n is in flight."""

    def __init__(self, smtp, time: FakeTime | None = None, per_message=timedelta(minutes=1), during=None) -> None:
        from grants.deadlines.mail import SmtpSender

        self.inner = SmtpSender(smtp)
        self.time = time
        self.per_message = per_message
        self.during = during or {}
        self.count = 0
        self.message_ids: list[str] = []

    def send(self, message, *, now):
        self.count += 1
        self.message_ids.append(message.message_id)
        if self.count in self.during:
            self.during[self.count]()
        self.inner.send(message, now=now)
        if self.time is not None:
            self.time.advance(self.per_message)

    def close(self):
        self.inner.close()


def _settings(**kw):
    from grants.deadlines.reminders import SweepSettings

    return SweepSettings(base_url="https://gk.coalition.example.org", **kw)


def _due(app, world, count: int) -> None:
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.deadlines import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        for index in range(count):
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                title=f"Deliverable {index + 1:03d}",
                due_date="2026-10-07",
                owner_id=world.users["Program"],
            )
        db.session.commit()


def _statuses(app) -> list[str]:
    from core.extensions import db
    from grants.deadlines.models import ReminderLog

    with app.app_context():
        rows = db.session.scalars(select(ReminderLog.status).order_by(ReminderLog.id)).all()
        db.session.remove()
    return [status.value for status in rows]


def _engine(app, **sqlite_args):
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    return create_engine(url, connect_args=sqlite_args if url.startswith("sqlite") else {})


def _sweep_on(app, engine, now, sender, settings, **kw):
    from grants.deadlines.reminders import sweep

    with app.app_context(), Session(engine) as session:
        return sweep(session, now=now, sender=sender, settings=settings, **kw)


def _sweep_in_thread(app, now, smtp, settings):
    """Another scheduler on the same database (own engine, own connection), run to its end."""
    from grants.deadlines.mail import SmtpSender

    out: dict = {}

    def run() -> None:
        engine = _engine(app, timeout=30)
        try:
            out["result"] = _sweep_on(app, engine, now, SmtpSender(smtp), settings)
        except Exception as exc:  # surfaced to the test below
            out["error"] = exc
        finally:
            engine.dispose()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert "error" not in out, out.get("error")
    return out["result"]


def _titles(inbox) -> list[str]:
    return sorted(m["Subject"].split(" — ")[1].split(" due")[0] for m in inbox.messages)


def test_a_slow_sweep_overtaken_by_a_second_one_after_the_lease_sends_every_reminder_once(
    app, world, quiet_periods, smtp_server
):
    inbox, smtp = smtp_server
    _due(app, world, 60)
    time = FakeTime(START)
    second = {}
    # 35 minutes into the first sweep (past its 30-minute lease), a second sweep starts.
    sender = SlowSender(
        smtp,
        time,
        during={36: lambda: second.update(result=_sweep_in_thread(app, time(), smtp, _settings()))},
    )
    engine = _engine(app, timeout=30)
    try:
        first = _sweep_on(app, engine, START, sender, _settings(budget=timedelta(hours=2)), clock=time)
    finally:
        engine.dispose()

    assert time() - START == timedelta(minutes=60)  # the first sweep really ran an hour
    assert second["result"].taken_over == 0 and second["result"].sent == 0
    # It saw a live sweep's claims and left them alone: the 25 not sent yet (sending slowly, the
    # first sweep recorded each message's outcome as it went, every ``record_every``).
    assert second["result"].held_elsewhere == 25
    assert (first.sent, first.lost, first.stopped) == (60, 0, None)
    assert len(inbox.messages) == 60 and len(set(inbox.keys())) == 60
    assert _titles(inbox) == [f"Deliverable {i:03d}" for i in range(1, 61)]
    assert _statuses(app) == ["sent"] * 60


def test_a_sweep_whose_claims_were_taken_over_sends_nothing_after_its_batch_and_only_that_batch_repeats(
    app, world, quiet_periods, smtp_server
):
    """A sweep frozen past its lease (its clock stands still, so no heartbeat) is taken over by the next one.

    Ownership is checked once per batch (issue 16): the frozen sweep finds out when it records
    the batch in flight, and stops there; only that batch can go out twice, each message under
    its own Message-ID.
    """
    inbox, smtp = smtp_server
    _due(app, world, 12)
    frozen = FakeTime(START)
    later = START + timedelta(minutes=31)
    second = {}
    # The second sweep starts while the first of the second batch (message 5) is in flight.
    sender = SlowSender(
        smtp, None, during={5: lambda: second.update(result=_sweep_in_thread(app, later, smtp, _settings()))}
    )
    engine = _engine(app, timeout=30)
    try:
        first = _sweep_on(app, engine, START, sender, _settings(batch_size=4), clock=frozen)
    finally:
        engine.dispose()

    takeover = second["result"]
    assert (takeover.taken_over, takeover.sent) == (8, 8)  # 1-4 were recorded with the first batch
    assert (first.sent, first.lost, first.stopped) == (8, 4, "lost claim")  # nothing after its second batch
    keys = inbox.keys()
    assert len(keys) == 16 and len(set(keys)) == 12
    repeated = sorted({key for key in keys if keys.count(key) == 2})
    assert repeated == sorted(sender.message_ids[4:8])  # only the batch in flight, with their own Message-IDs
    assert _statuses(app) == ["sent"] * 12


@pytest.fixture
def write_lock(app):
    """Hold the database's write lock from another connection, like a long transaction elsewhere."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    state: dict = {}

    def take() -> None:
        if url.startswith("sqlite"):
            connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
            connection.execute("BEGIN IMMEDIATE")  # the write lock: every other writer gets "database is locked"
            state["release"] = lambda: (connection.execute("ROLLBACK"), connection.close())
        else:
            engine = create_engine(url)
            connection = engine.connect()
            transaction = connection.begin()
            connection.execute(text("LOCK TABLE reminder_logs IN EXCLUSIVE MODE"))

            def release() -> None:
                transaction.rollback()
                connection.close()
                engine.dispose()

            state["release"] = release

    def release() -> None:
        if "release" in state:
            state.pop("release")()

    yield take, release
    release()


def test_a_database_lock_while_recording_outcomes_loses_and_duplicates_nothing(
    app, world, quiet_periods, smtp_server, write_lock, monkeypatch
):
    from grants.deadlines import reminders

    inbox, smtp = smtp_server
    take, release = write_lock
    _due(app, world, 12)
    pauses: list[float] = []
    real_pause = reminders._pause

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:  # busy through three tries, then the other transaction ends
            release()
        real_pause(seconds)

    monkeypatch.setattr(reminders, "_pause", pause)
    # SMTP accepts the 5th message (the end of the first batch), then the database is locked.
    sender = SlowSender(smtp)
    original = sender.inner.send

    def send_then_lock(message, *, now):
        original(message, now=now)
        if sender.count == 5:
            take()

    sender.inner.send = send_then_lock
    engine = _engine(app, timeout=0.2)  # SQLite gives up on a lock after 0.2 s (PostgreSQL: lock_timeout)
    try:
        result = _sweep_on(
            app, engine, START, sender, _settings(batch_size=5, lock_timeout=timedelta(milliseconds=200))
        )
    finally:
        engine.dispose()

    assert len(pauses) >= 3  # the recording really met the lock and was retried with backoff
    assert pauses[:3] == sorted(pauses[:3]) and pauses[1] > pauses[0]
    assert (result.sent, result.failed, result.unrecorded, result.stopped) == (12, 0, 0, None)
    assert len(inbox.messages) == 12 and len(set(inbox.keys())) == 12
    assert _statuses(app) == ["sent"] * 12
    # And nothing is left for a later sweep to send again.
    engine = _engine(app, timeout=30)
    try:
        later = _sweep_on(app, engine, START + timedelta(hours=1), SlowSender(smtp), _settings())
    finally:
        engine.dispose()
    assert later.sent == 0 and len(inbox.messages) == 12


def test_after_its_time_budget_a_sweep_releases_what_it_has_not_sent_and_the_next_sends_it_at_once(
    app, world, quiet_periods, smtp_server
):
    inbox, smtp = smtp_server
    _due(app, world, 8)
    time = FakeTime(START)
    engine = _engine(app, timeout=30)
    try:
        first = _sweep_on(
            app, engine, START, SlowSender(smtp, time), _settings(budget=timedelta(minutes=5)), clock=time
        )
        assert (first.sent, first.released, first.stopped) == (5, 3, "budget")
        assert sorted(_statuses(app)) == ["claimed"] * 3 + ["sent"] * 5
        # Well inside the 30-minute lease: released claims are not held, the next sweep sends them now.
        nxt = _sweep_on(app, engine, START + timedelta(minutes=6), SlowSender(smtp), _settings())
    finally:
        engine.dispose()
    assert (nxt.taken_over, nxt.sent) == (3, 3)
    assert _titles(inbox) == [f"Deliverable {i:03d}" for i in range(1, 9)]
    assert _statuses(app) == ["sent"] * 8


def test_a_stopped_sweep_finishes_the_message_in_flight_and_hands_back_the_rest(app, world, quiet_periods, smtp_server):
    inbox, smtp = smtp_server
    _due(app, world, 7)
    stop = threading.Event()
    engine = _engine(app, timeout=30)
    try:
        first = _sweep_on(app, engine, START, SlowSender(smtp, during={3: stop.set}), _settings(), stop=stop)
        assert (first.sent, first.released, first.stopped) == (3, 4, "stop")  # the 3rd was in flight: finished
        nxt = _sweep_on(app, engine, START + timedelta(minutes=1), SlowSender(smtp), _settings())
    finally:
        engine.dispose()
    assert (nxt.taken_over, nxt.sent) == (4, 4)
    assert len(inbox.messages) == 7 and len(set(inbox.keys())) == 7


def test_each_batch_uses_one_smtp_connection_and_a_dropped_connection_is_reopened(
    app, world, quiet_periods, smtp_server
):
    inbox, smtp = smtp_server
    _due(app, world, 12)
    connections: list[int] = []
    sender = SlowSender(smtp)
    original_connect = sender.inner._connect

    def counting_connect():
        connections.append(1)
        return original_connect()

    sender.inner._connect = counting_connect
    # While the 3rd message is on its way, the server has dropped the idle connection.
    sender.during = {3: lambda: sender.inner._connection.close()}
    result = _sweep_on(app, _engine(app, timeout=30), START, sender, _settings(batch_size=5))
    assert (result.sent, result.failed) == (12, 0)
    assert len(connections) == 4  # batches of 5, 5 and 2, plus one reconnection
    assert len(inbox.messages) == 12 and len(set(inbox.keys())) == 12


def test_an_unreachable_smtp_server_fails_the_rest_of_the_sweep_at_once_with_backoff(app, world, quiet_periods):
    from grants.deadlines.mail import SmtpSettings
    from tests.grants.deadlines.conftest import free_port

    _due(app, world, 6)
    attempts: list[int] = []
    sender = SlowSender(SmtpSettings(host="127.0.0.1", port=free_port(), starttls=False, timeout=5))
    original_connect = sender.inner._connect

    def counting_connect():
        attempts.append(1)
        return original_connect()

    sender.inner._connect = counting_connect
    result = _sweep_on(app, _engine(app, timeout=30), START, sender, _settings())
    assert (result.sent, result.failed, result.released) == (0, 6, 0)
    assert len(attempts) == 1  # one refused connection, not one timeout per message
    assert _statuses(app) == ["failed"] * 6


def test_lease_batch_size_and_budget_are_settings_with_clear_errors(tmp_path):
    from config.settings import SettingsError
    from grants.deadlines.reminders import SweepSettings
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path,
        GRANTKEEPER_REMINDER_LEASE_MINUTES="45",
        GRANTKEEPER_REMINDER_BATCH_SIZE="200",
        GRANTKEEPER_REMINDER_SWEEP_BUDGET_SECONDS="300",
    )
    sweep_settings = SweepSettings.from_config(settings.flask_config())
    assert sweep_settings.lease == timedelta(minutes=45)
    assert sweep_settings.batch_size == 200
    assert sweep_settings.budget == timedelta(seconds=300)
    defaults = SweepSettings.from_config(make_settings(tmp_path).flask_config())
    assert (defaults.lease, defaults.batch_size, defaults.budget) == (
        timedelta(minutes=30),
        500,
        timedelta(minutes=10),
    )
    with pytest.raises(SettingsError, match="GRANTKEEPER_REMINDER_BATCH_SIZE: 'lots' is not a positive whole number"):
        make_settings(tmp_path, GRANTKEEPER_REMINDER_BATCH_SIZE="lots")
    with pytest.raises(SettingsError, match="GRANTKEEPER_REMINDER_LEASE_MINUTES: 2 is too small"):
        make_settings(tmp_path, GRANTKEEPER_REMINDER_LEASE_MINUTES="2")


def test_the_sweep_says_whether_nothing_was_due_or_another_sweep_holds_the_lock(
    app, world, quiet_periods, smtp_server, write_lock
):
    from grants.deadlines.mail import SmtpSender

    inbox, smtp = smtp_server
    engine = _engine(app, timeout=0.2)
    try:
        idle = _sweep_on(app, engine, START, SmtpSender(smtp), _settings())
        assert idle.nothing_due and idle.summary().endswith("Nothing was due.")

        _due(app, world, 3)
        if engine.dialect.name == "postgresql":
            # Another sweep is planning: it holds the advisory lock for its transaction.
            from grants.deadlines.reminders import ADVISORY_LOCK_KEY

            with engine.connect() as other, other.begin():
                other.execute(select(text(f"pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")))
                skipped = _sweep_on(app, engine, START, SmtpSender(smtp), _settings())
            assert skipped.locked_out and "another sweep holds the lock" in skipped.summary()
        else:
            take, release = write_lock
            take()  # SQLite: another sweep is writing its claims
            skipped = _sweep_on(app, engine, START, SmtpSender(smtp), _settings())
            release()
            assert skipped.busy and "the database was busy" in skipped.summary()
        assert not skipped.nothing_due and skipped.claimed == 0 and inbox.messages == []

        done = _sweep_on(app, engine, START + timedelta(minutes=1), SmtpSender(smtp), _settings())
    finally:
        engine.dispose()
    assert done.sent == 3 and "3 sent" in done.summary() and "Nothing was due" not in done.summary()
