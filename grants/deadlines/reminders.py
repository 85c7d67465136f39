"""The reminder sweep: one pass over the deadline tables that sends each due reminder exactly once.

Shape (SCHEDULER.md): plan every reminder due today in a few set-based
queries; claim them all with one INSERT ... ON CONFLICT DO NOTHING on the
UNIQUE (deadline, offset, recipient) key; commit; then send only what this
sweep claimed, recording each outcome as soon as it is known. A claim left
behind by a crashed sweep is taken over after a lease; a sent reminder is
never sent again. On PostgreSQL a transaction-scoped advisory lock keeps two
sweeps from planning at the same time, as a second guard.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CursorResult, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.audit import Actor, acting_as
from core.clock import as_utc
from grants.deadlines import services
from grants.deadlines.mail import DeliveryError, OutgoingMessage, Sender
from grants.deadlines.missing import MISSING_WORK, missing_for
from grants.deadlines.models import Deadline, Notification, ReminderLog, ReminderStatus
from grants.deadlines.policies import LEAD_ROLES, ReminderRule, load_rule_book
from grants.deadlines.services import describe_days
from grants.models import Grant, GrantMembership, GrantStatus, MemberRole

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = Actor(None, "scheduler", "scheduler")
# pg_try_advisory_xact_lock key: any fixed 64-bit number no other part of the app uses.
ADVISORY_LOCK_KEY = 0x6B_6565_7065_7231  # "keeper1"


@dataclass(frozen=True)
class SweepSettings:
    base_url: str = "http://127.0.0.1:8080"
    timezone: str = "UTC"  # whose "today" decides what is due
    # A stage missed while the machine was off is still sent if at most this old.
    catch_up_days: int = 6
    # A claim this old whose sweep never recorded an outcome (crash) is taken over.
    lease: timedelta = timedelta(minutes=30)
    retry_base: timedelta = timedelta(minutes=5)
    retry_cap: timedelta = timedelta(hours=6)
    max_attempts: int = 8
    use_advisory_lock: bool = True

    @classmethod
    def from_config(cls, config: Any) -> SweepSettings:
        return cls(
            base_url=config.get("BASE_URL") or cls.base_url,
            timezone=config.get("REMINDER_TIMEZONE") or "UTC",
        )


@dataclass
class SweepResult:
    sweep_id: str
    today: date
    locked_out: bool = False
    planned: int = 0
    claimed: int = 0
    taken_over: int = 0
    sent: int = 0
    failed: int = 0
    outbox: int = 0
    in_app_only: int = 0
    notifications: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Planned:
    deadline_id: int
    offset_key: str
    recipient_id: int
    escalation: bool
    reason: str  # why this person receives it, said in the message


# ---------------------------------------------------------------- which stage is due


@lru_cache(maxsize=4096)  # many deadlines share a due date and a rule: compute each pair once
def reminder_stage(due: date, today: date, rule: ReminderRule, catch_up_days: int) -> str | None:
    """The latest reminder stage whose day has come and is at most ``catch_up_days`` old.

    Only the latest: after a night off, "due tomorrow" is sent rather than both
    "in 7 days" and "tomorrow"; an older stage never follows a newer one.
    """
    triggers = [(due - timedelta(days=days), f"before-{days}") for days in rule.days_before]
    if rule.on_due_day:
        triggers.append((due, "due-day"))
    every = rule.overdue_every_days
    if every and today > due:
        step = (today - due).days // every * every
        if step:
            triggers.append((due + timedelta(days=step), f"overdue-{step}"))
    oldest = today - timedelta(days=catch_up_days)
    eligible = [t for t in triggers if oldest <= t[0] <= today]
    return max(eligible)[1] if eligible else None


@lru_cache(maxsize=4096)
def escalation_stage(due: date, today: date, rule: ReminderRule, catch_up_days: int) -> str | None:
    """``escalate-N`` once the deadline is N days overdue, repeated at the overdue interval."""
    first = rule.escalate_after_days
    if first is None:
        return None
    overdue = (today - due).days
    if overdue < first:
        return None
    step = first
    if rule.overdue_every_days:
        step += (overdue - first) // rule.overdue_every_days * rule.overdue_every_days
    if due + timedelta(days=step) < today - timedelta(days=catch_up_days):
        return None
    return f"escalate-{step}"


@lru_cache(maxsize=4096)
def offset_key(due: date, stage: str) -> str:
    # The due date is part of the key: when a deadline moves, its reminders start afresh.
    return f"{due:%Y%m%d}:{stage}"


# ---------------------------------------------------------------- the sweep


def sweep(
    session: Session,
    *,
    now: dt.datetime,
    sender: Sender | None,
    settings: SweepSettings = SweepSettings(),
) -> SweepResult:
    """Send every reminder due at ``now`` that no sweep has claimed yet; commits as it goes.

    ``sender`` None means no SMTP is configured: reminders are kept in the
    outbox (and as in-app notifications), never dropped.
    """
    now = as_utc(now)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    result = SweepResult(sweep_id=uuid.uuid4().hex, today=today)
    with acting_as(SCHEDULER_ACTOR):
        try:
            if not _take_lock(session, settings):
                session.rollback()
                result.locked_out = True
                log.info("reminder sweep skipped: another sweep holds the lock")
                return result
            services.sync_period_deadlines(session, today=today)
            _plan_and_claim(session, now, today, sender, settings, result)
            if sender is not None:
                result.taken_over = _take_over(session, now, result.sweep_id, settings)
            session.commit()
        except (IntegrityError, OperationalError) as exc:
            # Another sweep wrote the same rows first (or SQLite was busy): nothing was
            # claimed by us, so nothing is lost; the next sweep plans again.
            session.rollback()
            result.locked_out = True
            result.errors.append(type(exc).__name__)
            log.warning("reminder sweep backed off: %s", type(exc).__name__)
            return result
        if sender is not None:
            _deliver(session, sender, now, settings, result)
    log.info(
        "reminder sweep %s for %s: planned %d, claimed %d, taken over %d, sent %d, failed %d, outbox %d",
        result.sweep_id[:8],
        today,
        result.planned,
        result.claimed,
        result.taken_over,
        result.sent,
        result.failed,
        result.outbox,
    )
    return result


def _take_lock(session: Session, settings: SweepSettings) -> bool:
    if not settings.use_advisory_lock or session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_KEY))))


def _open_deadlines_query(today: date, horizon_days: int):
    return (
        select(
            Deadline.id,
            Deadline.grant_id,
            Deadline.title,
            Deadline.due_date,
            Deadline.owner_id,
            Grant.funder_id,
            Grant.reference,
            Grant.title.label("grant_title"),
        )
        .join(Grant, Grant.id == Deadline.grant_id)
        .where(
            Deadline.submitted_on.is_(None),
            Deadline.waived.is_(False),
            Grant.status != GrantStatus.closed,
            Deadline.due_date <= today + timedelta(days=horizon_days),
        )
    )


def _plan_and_claim(
    session: Session,
    now: dt.datetime,
    today: date,
    sender: Sender | None,
    settings: SweepSettings,
    result: SweepResult,
) -> None:
    book = load_rule_book(session)  # query 1
    horizon = max((max(rule.days_before, default=0) for rule in book.all_rules()), default=0)
    deadlines = session.execute(_open_deadlines_query(today, horizon)).all()  # query 2

    stages: dict[int, tuple[Any, ReminderRule, str | None, str | None]] = {}
    for row in deadlines:
        rule = book.rule_for(row.grant_id, row.funder_id)
        stage = reminder_stage(row.due_date, today, rule, settings.catch_up_days)
        escalate = escalation_stage(row.due_date, today, rule, settings.catch_up_days)
        if stage or escalate:
            stages[row.id] = (row, rule, stage, escalate)
    if not stages:
        return

    roles_wanted = set(LEAD_ROLES) | {r for rule in book.all_rules() for r in rule.escalate_roles}
    grant_ids = {row.grant_id for row, *_ in stages.values()}
    members: dict[int, list[tuple[int, MemberRole]]] = defaultdict(list)
    for grant_id, user_id, role in session.execute(  # query 3
        select(GrantMembership.grant_id, GrantMembership.user_id, GrantMembership.role)
        .join(Grant, Grant.id == GrantMembership.grant_id)
        .where(Grant.status != GrantStatus.closed, GrantMembership.role.in_(list(roles_wanted)))
    ):
        if grant_id in grant_ids:
            members[grant_id].append((user_id, role))

    planned: list[Planned] = []
    for deadline_id, (row, rule, stage, escalate) in stages.items():
        if stage:
            if row.owner_id is not None:
                planned.append(
                    Planned(
                        deadline_id,
                        offset_key(row.due_date, stage),
                        row.owner_id,
                        False,
                        "You are the owner of this deadline.",
                    )
                )
            else:
                for user_id, role in members[row.grant_id]:
                    if role in LEAD_ROLES:
                        planned.append(
                            Planned(
                                deadline_id,
                                offset_key(row.due_date, stage),
                                user_id,
                                False,
                                f"This deadline has no owner yet; you are the {role.value} lead of {row.reference}.",
                            )
                        )
        if escalate and row.owner_id is not None:
            # An unowned deadline is already reminded to the leads themselves: no escalation on top.
            for user_id, role in members[row.grant_id]:
                if role in rule.escalate_roles and user_id != row.owner_id:
                    planned.append(
                        Planned(
                            deadline_id,
                            offset_key(row.due_date, escalate),
                            user_id,
                            True,
                            f"You receive this escalation as the {role.value} lead of {row.reference}.",
                        )
                    )
    planned = list({(p.deadline_id, p.offset_key, p.recipient_id): p for p in planned}.values())
    result.planned = len(planned)

    user_ids = {p.recipient_id for p in planned} | {row.owner_id for row, *_ in stages.values() if row.owner_id}
    users = {
        u.id: u
        for u in session.execute(  # query 4
            select(User.id, User.email, User.first_name, User.last_name, User.active).where(User.id.in_(user_ids))
        )
    }
    planned = [p for p in planned if p.recipient_id in users and users[p.recipient_id].active]

    keys = {p.offset_key for p in planned}
    # A stage is only ever claimed on or after its day, and every planned stage's day is at most
    # catch_up_days old: older log rows cannot hold a planned key (a day's margin for time zones).
    since = dt.datetime.combine(today - timedelta(days=settings.catch_up_days + 1), dt.time(), dt.UTC)
    existing = {
        tuple(row)
        for row in session.execute(  # query 5
            select(ReminderLog.deadline_id, ReminderLog.offset_key, ReminderLog.recipient_id).where(
                ReminderLog.created_at >= since, ReminderLog.offset_key.in_(keys)
            )
        )
    }
    new = [p for p in planned if (p.deadline_id, p.offset_key, p.recipient_id) not in existing]
    if not new:
        return

    missing: dict[int, list[str]] = {}
    if MISSING_WORK:
        # Checks ask their own domains, per deadline reminded today (not per deadline swept).
        ids = sorted({p.deadline_id for p in new})
        for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
            for deadline in session.scalars(select(Deadline).where(Deadline.id.in_(ids[start : start + 500]))):
                missing[deadline.id] = missing_for(session, deadline)

    rows = []
    for p in new:
        row, rule, *_ = stages[p.deadline_id]
        user = users[p.recipient_id]
        owner = users.get(row.owner_id) if row.owner_id else None
        subject, body = render_reminder(
            row=row,
            today=today,
            recipient=user,
            owner=owner,
            escalation=p.escalation,
            reason=p.reason,
            missing=missing.get(p.deadline_id, []),
            base_url=settings.base_url,
        )
        if not rule.send_email or not user.email:
            status = ReminderStatus.in_app
        elif sender is None:
            status = ReminderStatus.outbox
        else:
            status = ReminderStatus.claimed
        rows.append(
            {
                "deadline_id": p.deadline_id,
                "offset_key": p.offset_key,
                "recipient_id": p.recipient_id,
                "status": status,
                "to_address": user.email,
                "subject": subject,
                "body": body,
                "created_at": now,
                "claimed_at": now,
                "claimed_by": result.sweep_id,
                "attempts": 0,
            }
        )

    won = _claim(session, rows)  # query 7 (one statement per 1000 rows)
    result.claimed = len(won)
    by_key = {(r["deadline_id"], r["offset_key"], r["recipient_id"]): r for r in rows}
    notifications = []
    for log_id, deadline_id, key, recipient_id in won:
        claim = by_key[(deadline_id, key, recipient_id)]
        if claim["status"] == ReminderStatus.outbox:
            result.outbox += 1
        elif claim["status"] == ReminderStatus.in_app:
            result.in_app_only += 1
        notifications.append(
            {
                "user_id": recipient_id,
                "deadline_id": deadline_id,
                "reminder_log_id": log_id,
                "title": claim["subject"],
                "body": claim["body"],
                "link": f"/deadlines/show/{deadline_id}",
                "created_at": now,
            }
        )
    if notifications:
        # Same transaction as the claim: an in-app notification exists exactly when its claim does.
        session.execute(insert(Notification.__table__), notifications)  # query 8
        result.notifications = len(notifications)


def _claim(session: Session, rows: list[dict[str, Any]]) -> list[tuple[int, int, str, int]]:
    """INSERT the claims; a key another sweep holds already is skipped. Returns the claims won."""
    table = ReminderLog.__table__
    dialect = session.get_bind().dialect.name
    claims: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        claims = postgresql.insert(table).on_conflict_do_nothing(constraint="uq_reminder_logs_key")
    elif dialect == "sqlite":
        claims = sqlite.insert(table).on_conflict_do_nothing(
            index_elements=["deadline_id", "offset_key", "recipient_id"]
        )
    else:  # pragma: no cover - the project supports SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = claims.returning(table.c.id, table.c.deadline_id, table.c.offset_key, table.c.recipient_id)
    return [tuple(r) for r in session.execute(stmt, rows)]


def _take_over(session: Session, now: dt.datetime, sweep_id: str, settings: SweepSettings) -> int:
    """Claim what a crashed sweep left (claimed, lease expired) and failures due for a retry."""
    table = ReminderLog.__table__
    retryable = or_(
        and_(table.c.status == ReminderStatus.claimed.value, table.c.claimed_at < now - settings.lease),
        and_(
            table.c.status == ReminderStatus.failed.value,
            table.c.next_attempt_at.is_not(None),
            table.c.next_attempt_at <= now,
        ),
    )
    still_open = select(Deadline.id).where(Deadline.submitted_on.is_(None), Deadline.waived.is_(False))
    # Submitted or waived since: the reminder is moot; say so in the outbox instead of sending it.
    session.execute(
        update(table)
        .where(retryable, table.c.deadline_id.not_in(still_open))
        .values(
            status=ReminderStatus.failed.value,
            next_attempt_at=None,
            last_error="not sent again: the deadline was submitted or waived meanwhile",
        )
    )
    # DML returns a CursorResult (which has rowcount); Session.execute is typed as a plain Result.
    result = cast(
        CursorResult[Any],
        session.execute(
            update(table)
            .where(retryable, table.c.deadline_id.in_(still_open))
            .values(status=ReminderStatus.claimed.value, claimed_at=now, claimed_by=sweep_id)
        ),
    )
    return result.rowcount or 0


def _deliver(session: Session, sender: Sender, now: dt.datetime, settings: SweepSettings, result: SweepResult) -> None:
    table = ReminderLog.__table__
    pending = session.execute(
        select(
            table.c.id,
            table.c.deadline_id,
            table.c.offset_key,
            table.c.recipient_id,
            table.c.to_address,
            table.c.subject,
            table.c.body,
            table.c.attempts,
        )
        .where(table.c.claimed_by == result.sweep_id, table.c.status == ReminderStatus.claimed.value)
        .order_by(table.c.id)
    ).all()
    session.commit()
    domain = urlsplit(settings.base_url).hostname or "grantkeeper.local"
    mine = and_(table.c.claimed_by == result.sweep_id, table.c.status == ReminderStatus.claimed.value)
    try:
        for row in pending:
            message = OutgoingMessage(
                to_address=row.to_address or "",
                subject=row.subject,
                body=row.body,
                message_id=f"<reminder.{row.deadline_id}.{row.offset_key.replace(':', '.')}.{row.recipient_id}@{domain}>",
            )
            attempts = row.attempts + 1
            try:
                sender.send(message, now=now)
            except DeliveryError as exc:
                gave_up = attempts >= settings.max_attempts
                delay = min(settings.retry_cap, settings.retry_base * (2 ** (attempts - 1)))
                session.execute(
                    update(table)
                    .where(table.c.id == row.id, mine)
                    .values(
                        status=ReminderStatus.failed.value,
                        attempts=attempts,
                        last_error=str(exc),
                        next_attempt_at=None if gave_up else now + delay,
                    )
                )
                result.failed += 1
                log.warning("reminder %d to user %d failed (attempt %d): %s", row.id, row.recipient_id, attempts, exc)
            else:
                session.execute(
                    update(table)
                    .where(table.c.id == row.id, mine)
                    .values(
                        status=ReminderStatus.sent.value,
                        attempts=attempts,
                        sent_at=now,
                        last_error=None,
                        next_attempt_at=None,
                    )
                )
                result.sent += 1
            # Each outcome is committed at once: a crash can leave at most the message in
            # flight unrecorded, never a batch of already-sent ones to be sent again.
            session.commit()
    finally:
        sender.close()


# ---------------------------------------------------------------- the message


def _long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def render_reminder(
    *,
    row: Any,
    today: date,
    recipient: Any,
    owner: Any,
    escalation: bool,
    reason: str,
    missing: list[str],
    base_url: str,
) -> tuple[str, str]:
    """Subject and plain-text body: what is due, when, for which grant, what is missing, the link."""
    days_left = (row.due_date - today).days
    when = describe_days(days_left)
    if escalation:
        subject = f"[Grantkeeper] Escalation: {row.reference} — {row.title} is {when}"
    elif days_left < 0:
        subject = f"[Grantkeeper] Overdue: {row.reference} — {row.title} ({when})"
    else:
        subject = f"[Grantkeeper] {row.reference} — {row.title} due {when} ({row.due_date:%d %b %Y})"
    link = f"{base_url.rstrip('/')}/deadlines/show/{row.id}"
    owner_name = f"{owner.first_name} {owner.last_name}".strip() if owner is not None else "nobody yet"
    lines = [
        f"Hello {recipient.first_name},",
        "",
        f"What is due: {row.title}",
        f"Grant:       {row.reference} — {row.grant_title}",
        f"Due:         {_long_date(row.due_date)} ({when})",
        f"Owner:       {owner_name}",
        "",
    ]
    if missing:
        lines.append("Still missing:")
        lines.extend(f"  - {item}" for item in missing)
    else:
        lines.append("Still missing: nothing recorded in Grantkeeper.")
    lines += [
        "",
        f"Open it: {link}",
        "Mark it submitted there once it has gone to the donor, and these reminders stop.",
        "",
        reason,
        "-- Grantkeeper",
    ]
    return subject[:300], "\n".join(lines)
