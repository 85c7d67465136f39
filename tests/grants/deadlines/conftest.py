"""Fixtures for the deadline and reminder tests: a real SMTP server on loopback, deadlines on GA-1/GB-1."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from datetime import date
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

SMTP_USER = "reminders"
SMTP_PASSWORD = "s3cret-smtp-Pa55word"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Inbox:
    """What the loopback SMTP server received; ``reject_next`` makes it refuse the next N messages."""

    messages: list[EmailMessage] = field(default_factory=list)
    reject_next: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_next > 0:
            self.reject_next -= 1
            return "451 4.3.0 Mailbox temporarily unavailable, try later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def keys(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


class _Authenticator:
    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    """An aiosmtpd server on 127.0.0.1 at a free port, with login required; yields (inbox, settings)."""
    from aiosmtpd.controller import Controller

    from grants.deadlines.mail import SmtpSettings

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_Authenticator(),
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    settings = SmtpSettings(
        host="127.0.0.1",
        port=port,
        user=SMTP_USER,
        password=SMTP_PASSWORD,
        starttls=False,
        sender="grantkeeper@coalition.example.org",
        timeout=10,
    )
    try:
        yield inbox, settings
    finally:
        controller.stop()


@pytest.fixture
def quiet_periods(app, world):
    """Every report of the world's periods already accepted: only the deadlines a test adds are open."""
    from core.extensions import db
    from grants.models import PeriodStatus, ReportingPeriod

    with app.app_context():
        for period in db.session.query(ReportingPeriod):
            period.status = PeriodStatus.accepted
        db.session.commit()


@pytest.fixture
def deadlines(app, world, quiet_periods):
    """GA-1: an audit owned by program; GB-1: a board meeting nobody but Admin/Finance sees."""
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.deadlines import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        audit = services.create_deadline(
            db.session,
            grant_id=world.grant_a,
            kind="audit",
            title="External audit 2025",
            due_date=date(2026, 9, 30),
            owner_id=world.users["Program"],
            notes="confidential auditor remarks",
        )
        board = services.create_deadline(
            db.session,
            grant_id=world.grant_b,
            kind="board_meeting",
            title="Secret board meeting",
            due_date=date(2026, 9, 30),
            owner_id=world.users["Finance"],
        )
        db.session.commit()
        ids = {"audit": audit.id, "board": board.id}
    return ids


def at(day: date, hour: int = 6) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=dt.UTC)
