"""Deadline, ReminderPolicy, ReminderLog (the outbox), Notification and CalendarToken models."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import date
from typing import TYPE_CHECKING

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core import clock
from core.errors import ErrorCollector
from core.records import Audited, enum_column
from grants.models import Funder, Grant, MemberRole

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User

# A deadline is "due" (rather than "upcoming") this many days before its date.
DUE_SOON_DAYS = 7


class DeadlineSource(str, enum.Enum):
    period = "period"  # a reporting period's report_due, kept in step by sync_period_deadlines
    requirement = "requirement"  # a compliance requirement's due rule, via upsert_deadline
    manual = "manual"  # a one-off date entered by hand


class DeadlineKind(str, enum.Enum):
    report = "report"
    audit = "audit"
    disbursement_request = "disbursement_request"
    board_meeting = "board_meeting"
    requirement = "requirement"
    other = "other"


class DeadlineState(str, enum.Enum):
    upcoming = "upcoming"
    due = "due"
    overdue = "overdue"
    submitted = "submitted"
    waived = "waived"


class ReminderStatus(str, enum.Enum):
    claimed = "claimed"  # the claim won; the e-mail is being (or was about to be) sent
    sent = "sent"  # the SMTP server accepted it
    failed = "failed"  # the last attempt failed; next_attempt_at says when to retry (None: gave up)
    outbox = "outbox"  # no SMTP configured: kept here for an admin to read, never dropped
    in_app = "in_app"  # no e-mail address, or e-mail off for the grant: in-app notification only


def deadline_state(
    due_date: date, today: date, *, submitted_on: date | None = None, waived: bool = False
) -> DeadlineState:
    """The state of a deadline on ``today`` (injected, never read from the clock here)."""
    if waived:
        return DeadlineState.waived
    if submitted_on is not None:
        return DeadlineState.submitted
    if due_date < today:
        return DeadlineState.overdue
    if (due_date - today).days <= DUE_SOON_DAYS:
        return DeadlineState.due
    return DeadlineState.upcoming


class Deadline(Audited, Model):
    __tablename__ = "deadlines"
    __table_args__ = (
        # One deadline per source record; manual deadlines have no source_id (NULLs never clash).
        UniqueConstraint("source_kind", "source_id", name="uq_deadlines_source"),
        Index("ix_deadlines_open_due", "submitted_on", "waived", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    source_kind: Mapped[DeadlineSource] = mapped_column(enum_column(DeadlineSource), default=DeadlineSource.manual)
    source_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[DeadlineKind] = mapped_column(enum_column(DeadlineKind, 30), default=DeadlineKind.other)
    title: Mapped[str] = mapped_column(String(300))
    due_date: Mapped[date] = mapped_column(Date, index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    # Internal notes: shown to staff, never in the calendar feed.
    notes: Mapped[str | None] = mapped_column(Text)
    submitted_on: Mapped[date | None] = mapped_column(Date)
    waived: Mapped[bool] = mapped_column(Boolean, default=False)
    waived_reason: Mapped[str | None] = mapped_column(String(300))

    grant: Mapped[Grant] = relationship()
    owner: Mapped[User | None] = relationship("User")

    def __repr__(self) -> str:
        return f"{self.grant.reference}: {self.title}" if self.grant else (self.title or "deadline")

    def state_on(self, today: date) -> DeadlineState:
        return deadline_state(self.due_date, today, submitted_on=self.submitted_on, waived=bool(self.waived))

    @property
    def state(self) -> str:
        """Today's state, for list pages (services take ``today`` explicitly)."""
        return self.state_on(clock.today()).value

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.title or "").strip():
            errors.add("title", "is required")
        if self.due_date is None:
            errors.add("due_date", "is required")
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", "is required")
        if self.source_kind not in (None, DeadlineSource.manual) and self.source_id is None:
            errors.add("source_id", f"a {self.source_kind.value} deadline needs the id of its source")
        if self.waived and not (self.waived_reason or "").strip():
            errors.add("waived_reason", "say why the deadline is waived (e.g. 'donor agreed by e-mail on 3 May')")
        owner_id = self.owner_id or (self.owner.id if self.owner is not None else None)
        if grant is not None and owner_id is not None and not _user_can_see_grant(session, owner_id, grant.id):
            errors.add("owner", "must be a user who can see this grant (a member, or Finance/Admin)")
        errors.raise_if_any()


def _user_can_see_grant(session: Session, user_id: int, grant_id: int) -> bool:
    from flask_appbuilder.security.sqla.models import User

    from grants.services import can_see_grant

    user = session.get(User, user_id)
    return user is not None and can_see_grant(session, user, grant_id)


class ReminderPolicy(Audited, Model):
    """When reminders go out: per grant, else the funder's default, else the built-in default."""

    __tablename__ = "reminder_policies"
    __table_args__ = (
        CheckConstraint(
            "(grant_id IS NULL AND funder_id IS NOT NULL) OR (grant_id IS NOT NULL AND funder_id IS NULL)",
            name="ck_reminder_policies_scope",
        ),
        CheckConstraint("overdue_every_days >= 0", name="ck_reminder_policies_every"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    funder_id: Mapped[int | None] = mapped_column(ForeignKey("funders.id", ondelete="CASCADE"), unique=True)
    # Comma-separated days before the due date, e.g. "30,14,7,1".
    days_before: Mapped[str] = mapped_column(String(100), default="30,14,7,1")
    on_due_day: Mapped[bool] = mapped_column(Boolean, default=True)
    # Repeat while overdue every N days (0: never).
    overdue_every_days: Mapped[int] = mapped_column(Integer, default=7)
    # Escalate to the grant's leads after N days overdue (None: never).
    escalate_after_days: Mapped[int | None] = mapped_column(Integer, default=14)
    escalate_roles: Mapped[str] = mapped_column(String(100), default="lead,finance,program")
    send_email: Mapped[bool] = mapped_column(Boolean, default=True)

    grant: Mapped[Grant | None] = relationship()
    funder: Mapped[Funder | None] = relationship()

    def __repr__(self) -> str:
        if self.grant is not None:
            return f"Reminders for {self.grant.reference}"
        return f"Reminders for {self.funder.name if self.funder else 'a funder'}'s grants"

    def offsets(self) -> list[int]:
        return sorted({int(part) for part in (self.days_before or "").split(",") if part.strip()}, reverse=True)

    def roles(self) -> list[MemberRole]:
        return [MemberRole(part.strip()) for part in (self.escalate_roles or "").split(",") if part.strip()]

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        has_grant = self.grant_id is not None or self.grant is not None
        has_funder = self.funder_id is not None or self.funder is not None
        if has_grant == has_funder:
            errors.add("grant", "choose either a grant or a funder (a funder's policy is the default for its grants)")
        try:
            days = [int(part) for part in (self.days_before or "").split(",") if part.strip()]
        except ValueError:
            errors.add("days_before", f"'{self.days_before}' is not a list of whole days, e.g. 30,14,7,1")
        else:
            if any(day < 1 or day > 366 for day in days):
                errors.add("days_before", "each value must be between 1 and 366 days")
        if self.overdue_every_days is not None and self.overdue_every_days < 0:
            errors.add("overdue_every_days", "must be 0 (never) or a number of days")
        if self.escalate_after_days is not None and self.escalate_after_days < 1:
            errors.add("escalate_after_days", "must be empty (never) or at least 1 day")
        known = {role.value for role in MemberRole}
        unknown = [r.strip() for r in (self.escalate_roles or "").split(",") if r.strip() and r.strip() not in known]
        if unknown:
            errors.add(
                "escalate_roles", f"unknown member roles: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        errors.raise_if_any()


class ReminderLog(Model):
    """One reminder (deadline, offset, recipient): claimed before sending, then its outcome.

    The UNIQUE key is what makes a reminder go out exactly once, whatever number
    of sweeps run: only the sweep whose INSERT wins the key sends it.
    """

    __tablename__ = "reminder_logs"
    __table_args__ = (
        UniqueConstraint("deadline_id", "offset_key", "recipient_id", name="uq_reminder_logs_key"),
        # Few indexes, as every claim of a sweep is written into each (100,000 claims on a busy day).
        # Each one serves a query of the sweep (EXPLAIN QUERY PLAN checked on SQLite and PostgreSQL):
        # - the key above: the claim's INSERT ... ON CONFLICT, and a deadline's reminders (its page);
        # - this one: claims to take over (status 'claimed', by lease), failures due for a retry
        #   (status 'failed', by next try), a sweep's own claims (status 'claimed', then claimed_by);
        # - created_at: the planned keys already claimed in the last few days, the outbox's order.
        Index("ix_reminder_logs_open", "status", "lease_until", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadlines.id", ondelete="CASCADE"))
    offset_key: Mapped[str] = mapped_column(String(40))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    status: Mapped[ReminderStatus] = mapped_column(enum_column(ReminderStatus), default=ReminderStatus.claimed)
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    # Until when the sweep in claimed_by owns the claim; it renews this as it goes (a heartbeat).
    # A claim whose lease has passed, or that was released (claimed_by empty), may be taken over.
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set by the owning sweep just before it hands the message to SMTP (while still "claimed"):
    # a later handed-over claim of the same sweep proves this one's outcome was known.
    handed_over_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)

    deadline: Mapped[Deadline] = relationship()
    recipient: Mapped[User] = relationship("User")

    def __repr__(self) -> str:
        return f"{self.subject} → user {self.recipient_id} ({self.status.value})"


class Notification(Model):
    """An in-app message for one user; read_at is set when they open or dismiss it.

    A reminder's notification shows the reminder's own subject and body (``reminder_log``):
    they are not copied, so the sweep writes a narrow row per reminder. Other notifications
    carry their own title and body.
    """

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_unread", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    deadline_id: Mapped[int | None] = mapped_column(ForeignKey("deadlines.id", ondelete="CASCADE"), index=True)
    reminder_log_id: Mapped[int | None] = mapped_column(ForeignKey("reminder_logs.id", ondelete="CASCADE"), unique=True)
    # Empty for a reminder's notification: its words are the reminder's (see ``title`` and ``body``).
    own_title: Mapped[str | None] = mapped_column("title", String(300))
    own_body: Mapped[str | None] = mapped_column("body", Text)
    link: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    reminder_log: Mapped[ReminderLog | None] = relationship()

    @property
    def title(self) -> str:
        if self.own_title is not None:
            return self.own_title
        return self.reminder_log.subject if self.reminder_log is not None else ""

    @title.setter
    def title(self, value: str | None) -> None:
        self.own_title = value

    @property
    def body(self) -> str:
        if self.own_body is not None:
            return self.own_body
        return self.reminder_log.body if self.reminder_log is not None else ""

    @body.setter
    def body(self, value: str | None) -> None:
        self.own_body = value


class CalendarToken(Model):
    """The secret of a user's calendar feed URL, stored only as its SHA-256."""

    __tablename__ = "calendar_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
