"""`python run.py scheduler` stopped mid-sweep (systemctl/docker stop, or a kill -9), then started again.

The scheduler runs as its own process against the test database and a slow SMTP
sink on loopback, exactly as an operator runs it.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.grants.deadlines.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
COUNT = 40


class SlowSink:
    """An SMTP server that takes ``delay`` seconds to accept each message."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def keys(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def sink():
    from aiosmtpd.controller import Controller

    handler = SlowSink(delay=0.15)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def due_in_a_week(app, world, quiet_periods):
    """COUNT deliverables due seven days from today (the real today: the scheduler process reads the clock)."""
    from core import clock
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.deadlines import services

    due = (clock.now().date() + timedelta(days=7)).isoformat()
    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        for index in range(COUNT):
            services.create_deadline(
                db.session,
                grant_id=world.grant_a,
                title=f"Deliverable {index + 1}",
                due_date=due,
                owner_id=world.users["Program"],
            )
        db.session.commit()


def _environment(app, tmp_path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env.update(
        {
            "GRANTKEEPER_INSTANCE": str(tmp_path / "instance"),
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "GRANTKEEPER_SMTP_HOST": "127.0.0.1",
            "GRANTKEEPER_SMTP_PORT": str(port),
            "GRANTKEEPER_SMTP_STARTTLS": "0",
            "GRANTKEEPER_SMTP_FROM": "grantkeeper@coalition.example.org",
        }
    )
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(sink: SlowSink, count: int, process: subprocess.Popen) -> None:
    for _ in range(1800):  # polling, not timing: give up after a few minutes of a stuck process
        if len(sink.messages) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"the scheduler ended early:\n{process.stdout.read()}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"only {len(sink.messages)} messages arrived:\n{process.stdout.read()}")


def _claims(app) -> list[tuple[str, str | None, bool]]:
    from core.extensions import db
    from grants.deadlines.models import ReminderLog

    with app.app_context():
        rows = db.session.execute(
            select(ReminderLog.status, ReminderLog.claimed_by, ReminderLog.handed_over_at).order_by(ReminderLog.id)
        ).all()
        db.session.remove()
    return [(status.value, claimed_by, handed is not None) for status, claimed_by, handed in rows]


def test_sigterm_mid_sweep_finishes_the_message_in_flight_and_a_restart_sends_the_rest_at_once(
    app, due_in_a_week, sink, tmp_path
):
    handler, port = sink
    env = _environment(app, tmp_path, port)
    scheduler = _start(["scheduler"], env)
    _wait_for(handler, 5, scheduler)
    scheduler.send_signal(signal.SIGTERM)
    output, _ = scheduler.communicate(timeout=120)
    assert scheduler.returncode == 0, output

    sent_before = len(handler.messages)
    assert 5 <= sent_before < COUNT
    claims = _claims(app)
    assert sorted(status for status, *_ in claims).count("sent") == sent_before  # every accepted one recorded
    held = [c for c in claims if c[0] == "claimed" and c[1] is not None]
    assert held == []  # unsent claims released at once, none left waiting for a lease
    # The scheduler said what its sweep did, in its own output.
    assert f"{sent_before} sent" in output and "released for the next sweep" in output
    assert "Stopped on request after the message in flight." in output

    # Restarted at once (well inside the 30-minute lease): the rest goes out now, once.
    restart = subprocess.run(
        [sys.executable, "run.py", "scheduler", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert f"{COUNT - sent_before} taken over or retried, {COUNT - sent_before} sent" in restart.stdout
    assert len(handler.messages) == COUNT and len(set(handler.keys())) == COUNT
    assert [status for status, *_ in _claims(app)] == ["sent"] * COUNT


def test_a_killed_scheduler_resends_only_what_it_had_not_recorded_with_the_same_message_id(
    app, due_in_a_week, sink, tmp_path
):
    from core import clock
    from core.extensions import db
    from grants.deadlines.mail import SmtpSender, SmtpSettings
    from grants.deadlines.reminders import SweepSettings, sweep

    handler, port = sink
    scheduler = _start(["scheduler", "--once"], _environment(app, tmp_path, port))
    _wait_for(handler, 20, scheduler)  # 3 s of sending at 0.15 s a message: past one ``record_every``
    scheduler.kill()  # kill -9: no chance to record or release anything
    scheduler.communicate(timeout=60)

    time.sleep(0.5)  # let the sink finish a message the killed process had fully handed over
    delivered = len(handler.messages)
    recorded = [status for status, *_ in _claims(app)].count("sent")
    # Sending slowly (0.15 s a message), the sweep recorded what SMTP accepted every 2 seconds
    # (``record_every``) rather than only once per batch of 500: little was left unrecorded.
    assert recorded >= 1 and delivered - recorded <= math.ceil(2 / 0.15) + 1
    handler.delay = 0
    with app.app_context():
        try:
            after_lease = clock.now() + SweepSettings().lease + timedelta(minutes=1)
            smtp = SmtpSettings(host="127.0.0.1", port=port, starttls=False, timeout=10)
            sweep(db.session, now=after_lease, sender=SmtpSender(smtp), settings=SweepSettings())
        finally:
            db.session.remove()
    keys = handler.keys()
    assert len(set(keys)) == COUNT  # nothing lost
    # Only what went out after the last record went out twice, each under its own Message-ID.
    assert len(keys) - COUNT == delivered - recorded
    assert [status for status, *_ in _claims(app)] == ["sent"] * COUNT
