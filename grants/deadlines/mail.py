"""E-mail delivery over SMTP (smtplib + email.message), with settings that never show the password."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """Where reminders are sent from. ``repr`` leaves the password out, so logging it is safe."""

    host: str = ""
    port: int = 587
    user: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = True
    ssl: bool = False
    sender: str = "grantkeeper@localhost"
    timeout: float = 30.0

    @property
    def configured(self) -> bool:
        return bool(self.host)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        return cls(
            host=config.get("SMTP_HOST") or "",
            port=int(config.get("SMTP_PORT") or (465 if config.get("SMTP_SSL") else 587)),
            user=config.get("SMTP_USER") or "",
            password=config.get("SMTP_PASSWORD") or "",
            starttls=bool(config.get("SMTP_STARTTLS", True)),
            ssl=bool(config.get("SMTP_SSL", False)),
            sender=config.get("SMTP_FROM") or "grantkeeper@localhost",
            timeout=float(config.get("SMTP_TIMEOUT") or 30),
        )


@dataclass(frozen=True)
class OutgoingMessage:
    to_address: str
    subject: str
    body: str
    # Stable per reminder key, so a mail client or server can recognise a resend as the same message.
    message_id: str


class DeliveryError(Exception):
    """A message could not be delivered; the text is safe to store and show (no secrets).

    ``connection`` is True when the server could not be reached or logged into at all:
    the other messages of the batch would fail the same way, so they are not tried.
    """

    def __init__(self, text: str, *, connection: bool = False) -> None:
        super().__init__(text)
        self.connection = connection


class Sender(Protocol):
    def send(self, message: OutgoingMessage, *, now: dt.datetime) -> None: ...

    def close(self) -> None: ...


# The server closed a connection we kept open (idle timeout, restart): worth one fresh connection.
_DROPPED = (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError)


class SmtpSender:
    """Sends messages over one SMTP connection, opened on first use and reused until ``close``.

    The sweep closes it after each batch. A reused connection the server has
    dropped meanwhile is reopened once for the message at hand.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.configured:
            raise ValueError("SMTP_HOST: not configured; reminders go to the outbox instead")
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if s.ssl:
            connection: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.starttls:
                connection.starttls(context=context)
        if s.user:
            connection.login(s.user, s.password)
        return connection

    def build(self, message: OutgoingMessage, now: dt.datetime) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.settings.sender
        email["To"] = message.to_address
        email["Subject"] = message.subject
        email["Date"] = format_datetime(now)
        email["Message-ID"] = message.message_id
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to reminders
        email.set_content(message.body)
        return email

    def send(self, message: OutgoingMessage, *, now: dt.datetime) -> None:
        try:
            email = self.build(message, now)
        except (ValueError, TypeError) as exc:  # e.g. a header no e-mail can carry
            raise DeliveryError(safe_error(exc, self.settings)) from None
        reused = self._connection is not None
        try:
            connection = self._open()
            try:
                connection.send_message(email)
            except _DROPPED:
                if not reused:
                    raise
                self.close()
                self._open().send_message(email)
        except DeliveryError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self.close()  # the next message starts on a fresh connection
            raise DeliveryError(safe_error(exc, self.settings)) from None

    def _open(self) -> smtplib.SMTP:
        if self._connection is None:
            try:
                self._connection = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                raise DeliveryError(safe_error(exc, self.settings), connection=True) from None
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._connection = None


def safe_error(exc: BaseException, settings: SmtpSettings) -> str:
    """An error text fit for the outbox and the logs: the password is never in it."""
    text = f"{type(exc).__name__}: {exc}"
    if settings.password:
        text = text.replace(settings.password, "***")
    return text[:1000]
