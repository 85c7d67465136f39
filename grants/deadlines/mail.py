"""E-mail delivery over SMTP (smtplib + email.message), with settings that never show the password.

Also the reminder's words: ``render_reminder`` writes a reminder in its recipient's
language (``languages_of``, answered by the app through ``set_language_lookup``),
with dates and amounts as that language writes them (``core.formatting``).
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from core import formatting
from core.formatting import gettext as _
from core.formatting import ngettext

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- the recipient's language

LanguageLookup = Callable[[Any, Iterable[int]], Mapping[int, str]]
_language_lookup: LanguageLookup | None = None


def set_language_lookup(lookup: LanguageLookup | None) -> None:
    """The app's answer to "which language does each of these users read?" (their preference)."""
    global _language_lookup
    _language_lookup = lookup


def languages_of(session: Any, user_ids: Iterable[int]) -> Mapping[int, str]:
    """The chosen language of each user that chose one, in one query; {} without the app's lookup."""
    if _language_lookup is None:
        return {}
    return _language_lookup(session, user_ids)


def describe_days(days_left: int) -> str:
    """ "in 3 days", "tomorrow", "today", "2 days overdue", in the reader's language."""
    if days_left > 1:
        return ngettext("in %(num)d day", "in %(num)d days", days_left)
    if days_left == 1:
        return _("tomorrow")
    if days_left == 0:
        return _("today")
    return ngettext("%(num)d day overdue", "%(num)d days overdue", -days_left)


def _short_day(day: dt.date) -> str:
    """The due day in a subject: "30 Sep 2026" in English (as reminders always wrote it), "30 sept. 2026" in French."""
    if formatting.current_language() == "en":
        return f"{day:%d %b %Y}"
    return formatting.day(day)


def render_reminder(
    *,
    row: Any,
    today: dt.date,
    recipient: Any,
    owner: Any,
    escalation: bool,
    reason: str,
    missing: list[str],
    base_url: str,
    language: str | None = None,
) -> tuple[str, str]:
    """Subject and plain-text body in ``language``: what is due, when, for which grant, what is missing, the link."""
    return ReminderWriter(today, base_url).render(
        row=row,
        recipient_name=recipient.first_name,
        owner=owner,
        escalation=escalation,
        reason=reason,
        missing=missing,
        language=language,
    )


def _literal(text: str) -> str:
    """A text put into a %-template as it is (its own "%" kept)."""
    return text.replace("%", "%%")


class _Phrases:
    """One language's reminder wording, looked up once: the translated templates, filled in per message.

    ``gettext(message)`` without values returns the translated template itself, and
    ``gettext(message, **values)`` is that template ``% values``. The body's lines are joined
    into one template (placeholders that two lines share renamed apart, fixed lines kept as
    they are), so a message is one ``%`` that writes exactly what the lines' ``gettext`` calls
    would, without a catalogue lookup per message.
    """

    def __init__(self, language: str | None) -> None:
        self.language = language
        with formatting.in_locale(language):
            self.english = formatting.current_language() == "en"
            self.escalation = _("[Grantkeeper] Escalation: %(reference)s — %(title)s is %(when)s")
            self.overdue = _("[Grantkeeper] Overdue: %(reference)s — %(title)s (%(when)s)")
            self.due = _("[Grantkeeper] %(reference)s — %(title)s due %(when)s (%(date)s)")
            self.nobody = _("nobody yet")
            head = [
                _("Hello %(name)s,"),
                "",
                _("What is due: %(title)s"),
                _("Grant:       %(reference)s — %(title)s").replace("%(title)s", "%(grant_title)s"),
                _("Due:         %(date)s (%(when)s)").replace("%(date)s", "%(long_date)s"),
                _("Owner:       %(name)s").replace("%(name)s", "%(owner_name)s"),
                "",
            ]
            tail = [
                "",
                _("Open it: %(link)s"),
                _literal(_("Mark it submitted there once it has gone to the donor, and these reminders stop.")),
                "",
                "%(reason)s",
                "-- Grantkeeper",
            ]
            # With missing items: the heading, then the items (a value); without: one fixed line.
            self.body_missing = "\n".join([*head, _literal(_("Still missing:")), "%(missing)s", *tail])
            self.body_complete = "\n".join(
                [*head, _literal(_("Still missing: nothing recorded in Grantkeeper.")), *tail]
            )
        self._when: dict[int, str] = {}
        self._short: dict[dt.date, str] = {}
        self._long: dict[dt.date, str] = {}

    def when(self, days_left: int) -> str:
        found = self._when.get(days_left)
        if found is None:
            with formatting.in_locale(self.language):
                found = self._when[days_left] = describe_days(days_left)
        return found

    def short_day(self, day: dt.date) -> str:
        found = self._short.get(day)
        if found is None:
            if self.english:
                found = f"{day:%d %b %Y}"  # as reminders always wrote it
            else:
                with formatting.in_locale(self.language):
                    found = _short_day(day)
            self._short[day] = found
        return found

    def long_day(self, day: dt.date) -> str:
        found = self._long.get(day)
        if found is None:
            with formatting.in_locale(self.language):
                found = self._long[day] = formatting.long_day(day)
        return found


class ReminderWriter:
    """Writes reminders for one sweep: each language's wording and each date are looked up once, not per message.

    A sweep writes 100,000 reminders over a few languages and a few hundred dates; per
    message only the names, titles and the link are filled in.
    """

    def __init__(self, today: dt.date, base_url: str) -> None:
        self.today = today
        self.link_base = f"{base_url.rstrip('/')}/deadlines/show/"
        self._phrases: dict[str | None, _Phrases] = {}
        # (language, due date) -> (days left, "in 3 days", the long date, the short date): once per pair.
        self._days: dict[tuple[str | None, dt.date], tuple[int, str, str, str]] = {}

    def _day(self, words: _Phrases, due_date: dt.date) -> tuple[int, str, str, str]:
        days_left = (due_date - self.today).days
        return days_left, words.when(days_left), words.long_day(due_date), words.short_day(due_date)

    def phrases(self, language: str | None) -> _Phrases:
        found = self._phrases.get(language)
        if found is None:
            found = self._phrases[language] = _Phrases(language)
        return found

    def render(
        self,
        *,
        row: Any,
        recipient_name: Any,
        owner: Any,
        escalation: bool,
        reason: str,
        missing: list[str],
        language: str | None = None,
    ) -> tuple[str, str]:
        """Subject and body of one reminder (``row`` has id, title, due_date, reference, grant_title)."""
        owner_name = f"{owner.first_name} {owner.last_name}".strip() if owner is not None else None
        return self.write(
            row.id,
            row.title,
            row.due_date,
            row.reference,
            row.grant_title,
            recipient_name,
            owner_name,
            escalation,
            reason,
            missing,
            language,
        )

    def write(
        self,
        deadline_id: int,
        title: str,
        due_date: dt.date,
        reference: str,
        grant_title: str,
        recipient_name: Any,
        owner_name: str | None,
        escalation: bool,
        reason: str,
        missing: list[str],
        language: str | None,
    ) -> tuple[str, str]:
        """``render`` with plain values: the sweep's path (``owner_name`` None: the deadline has no owner)."""
        words = self._phrases.get(language) or self.phrases(language)
        day = self._days.get((language, due_date))
        if day is None:
            day = self._days[(language, due_date)] = self._day(words, due_date)
        days_left, when, long_date, short_date = day
        values = {
            "reference": reference,
            "title": title,
            "when": when,
            "grant_title": grant_title,
            "name": recipient_name,
            "long_date": long_date,
            "owner_name": words.nobody if owner_name is None else owner_name,
            "link": f"{self.link_base}{deadline_id}",
            "reason": reason,
        }
        if escalation:
            subject = words.escalation % values
        elif days_left < 0:
            subject = words.overdue % values
        else:
            values["date"] = short_date
            subject = words.due % values
        if missing:
            values["missing"] = "\n".join(f"  - {item}" for item in missing)
            body = words.body_missing % values
        else:
            body = words.body_complete % values
        return subject[:300], body


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
