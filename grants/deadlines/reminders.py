"""The reminder sweep: one pass over the deadline tables that sends each due reminder exactly once.

Shape (SCHEDULER.md, docs/decisions.md): plan every reminder due today in a few
set-based queries; claim them all with one INSERT ... ON CONFLICT DO NOTHING on
the UNIQUE (deadline, offset, recipient) key; commit; then send only what this
sweep claimed. On PostgreSQL a transaction-scoped advisory lock keeps two
sweeps from planning at the same time, as a second guard.

Sending, in short transactions, never holding one open across the network:

- each claim has a lease (``lease_until``); the sweep renews all its leases as
  it goes (a heartbeat every third of the lease), so a live sweep is never
  taken over, and only a stopped or dead sweep's claims are;
- right before each message, a conditional renewal (``UPDATE ... WHERE
  claimed_by = me AND status = 'claimed'``) proves the claim is still this
  sweep's and marks it handed over; a sweep that lost a claim sends nothing more;
- messages go out in batches over one SMTP connection each; what SMTP accepted
  is recorded once per batch (one UPDATE), failures at once. A claim handed
  over before a later claim of the same sweep was handed over had its outcome
  known, so after a crash the next sweep counts it as sent: only the one
  message in flight can go out twice (with the same Message-ID);
- recording an outcome while the database is busy is retried with backoff and
  never aborts the batch;
- at the end of the time budget, or when asked to stop (SIGTERM), the message
  in flight is finished, outcomes are recorded and the unsent claims are
  released at once, so the next sweep sends them straight away.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CursorResult, and_, func, insert, or_, select, text, update
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
# Ids per IN (...) list: SQLite limits the number of bound parameters.
ID_CHUNK = 1000

T = TypeVar("T")
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class SweepSettings:
    base_url: str = "http://127.0.0.1:8080"
    timezone: str = "UTC"  # whose "today" decides what is due
    # A stage missed while the machine was off is still sent if at most this old.
    catch_up_days: int = 6
    # How long a claim stays this sweep's without renewal; renewed every third of it while sending.
    lease: timedelta = timedelta(minutes=30)
    # Messages sent over one SMTP connection, whose outcomes are recorded with one statement.
    batch_size: int = 500
    # After this long a sweep stops sending and releases what it has not sent, for the next sweep.
    budget: timedelta = timedelta(minutes=10)
    retry_base: timedelta = timedelta(minutes=5)
    retry_cap: timedelta = timedelta(hours=6)
    max_attempts: int = 8
    use_advisory_lock: bool = True
    # How long to keep retrying a write while the database is busy (sum of the pauses between tries).
    record_patience: timedelta = timedelta(seconds=60)
    # PostgreSQL: how long one recording statement waits for a row or table lock before retrying.
    lock_timeout: timedelta = timedelta(seconds=5)

    @classmethod
    def from_config(cls, config: Any) -> SweepSettings:
        return cls(
            base_url=config.get("BASE_URL") or cls.base_url,
            timezone=config.get("REMINDER_TIMEZONE") or "UTC",
            lease=timedelta(minutes=int(config.get("REMINDER_LEASE_MINUTES") or 30)),
            batch_size=int(config.get("REMINDER_BATCH_SIZE") or 500),
            budget=timedelta(seconds=int(config.get("REMINDER_SWEEP_BUDGET_SECONDS") or 600)),
        )


@dataclass
class SweepResult:
    sweep_id: str
    today: date
    locked_out: bool = False  # another sweep held the planning lock: this one did nothing
    busy: bool = False  # the database was busy while planning: nothing claimed, the next sweep plans again
    planned: int = 0
    claimed: int = 0
    taken_over: int = 0
    recovered: int = 0  # claims of a stopped sweep found already delivered, recorded as sent
    held_elsewhere: int = 0  # claims another live sweep is sending right now
    sent: int = 0
    failed: int = 0
    outbox: int = 0
    in_app_only: int = 0
    notifications: int = 0
    released: int = 0  # unsent claims handed back for the next sweep (stop, time budget, lost claim)
    lost: int = 0  # claims another sweep took over before this one sent them
    unrecorded: int = 0  # delivered, but the database never let us record it (the next sweep will)
    stopped: str | None = None  # why sending ended early: "stop", "budget", "lost claim", "database"
    errors: list[str] = field(default_factory=list)

    @property
    def nothing_due(self) -> bool:
        return not (self.locked_out or self.busy) and self.claimed == 0 and self.taken_over == 0

    def summary(self) -> str:
        """One plain sentence of what this sweep did, for the scheduler's output and logs."""
        if self.locked_out:
            return f"Sweep for {self.today}: skipped, another sweep holds the lock (it sends what is due)."
        if self.busy:
            return f"Sweep for {self.today}: skipped, the database was busy; nothing was claimed, the next sweep tries again."
        parts = [
            f"{self.claimed} reminders claimed",
            f"{self.taken_over} taken over or retried",
            f"{self.sent} sent",
            f"{self.failed} failed",
            f"{self.outbox} to the outbox",
        ]
        if self.in_app_only:
            parts.append(f"{self.in_app_only} in-app only")
        if self.recovered:
            parts.append(f"{self.recovered} found already sent")
        if self.released:
            parts.append(f"{self.released} released for the next sweep")
        if self.unrecorded:
            parts.append(f"{self.unrecorded} sent but not yet recorded")
        text_ = f"Sweep for {self.today}: " + ", ".join(parts) + "."
        if self.held_elsewhere:
            text_ += f" {self.held_elsewhere} reminders are being sent by another sweep."
        elif self.nothing_due:
            text_ += " Nothing was due."
        if self.stopped:
            text_ += " " + STOP_REASONS[self.stopped]
        return text_


STOP_REASONS = {
    "stop": "Stopped on request after the message in flight.",
    "budget": "Stopped at the end of the sweep's time budget.",
    "lost claim": "Stopped: another sweep took over this sweep's claims.",
    "database": "Stopped: the database stayed busy.",
}


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
    clock: Clock | None = None,
    stop: threading.Event | None = None,
) -> SweepResult:
    """Send every reminder due at ``now`` that no sweep has claimed yet; commits as it goes.

    ``sender`` None means no SMTP is configured: reminders are kept in the
    outbox (and as in-app notifications), never dropped. ``clock`` tells the
    time while the sweep runs (leases, heartbeat, time budget); by default
    ``now`` plus the time elapsed since the call. ``stop``, once set, ends the
    sweep after the message in flight and releases what is left.
    """
    now = as_utc(now)
    if clock is None:
        started = time.monotonic()
        clock = lambda: now + timedelta(seconds=time.monotonic() - started)  # noqa: E731
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
                _take_over(session, now, settings, result)
            result.held_elsewhere = _held_elsewhere(session, now, result.sweep_id)
            session.commit()
        except (IntegrityError, OperationalError) as exc:
            # Another sweep wrote the same rows first (or SQLite was busy): nothing was
            # claimed by us, so nothing is lost; the next sweep plans again.
            session.rollback()
            result.busy = True
            result.errors.append(type(exc).__name__)
            log.warning("reminder sweep backed off: %s", type(exc).__name__)
            return result
        if sender is not None:
            _Delivery(session, sender, now, clock, settings, result, stop).run()
    log.info("reminder sweep %s: %s", result.sweep_id[:8], result.summary())
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
                "lease_until": now + settings.lease if status == ReminderStatus.claimed else None,
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


def _rowcount(result: Any) -> int:
    # DML returns a CursorResult (which has rowcount); Session.execute is typed as a plain Result.
    return cast(CursorResult[Any], result).rowcount or 0


def _take_over(session: Session, now: dt.datetime, settings: SweepSettings, result: SweepResult) -> None:
    """Claim what a stopped or dead sweep left (released, or lease passed) and failures due for a retry.

    First, a claim that sweep handed over to SMTP before another of its claims was
    handed over is recorded as sent: the sweep knew its outcome before moving on
    (a failure is recorded at once), so it was delivered. Only its last handed-over
    claim, the message that may have been in flight, is sent again.
    """
    table = ReminderLog.__table__
    claimed = table.c.status == ReminderStatus.claimed.value
    free = and_(claimed, or_(table.c.claimed_by.is_(None), table.c.lease_until.is_(None), table.c.lease_until < now))
    later = table.alias("later")
    last_handed_over = (
        select(func.max(later.c.id))
        .where(
            later.c.claimed_by == table.c.claimed_by,
            later.c.status == ReminderStatus.claimed.value,
            later.c.handed_over_at.is_not(None),
        )
        .scalar_subquery()
    )
    result.recovered = _rowcount(
        session.execute(
            update(table)
            .where(free, table.c.handed_over_at.is_not(None), table.c.id < last_handed_over)
            .values(
                status=ReminderStatus.sent.value,
                sent_at=table.c.handed_over_at,
                attempts=table.c.attempts + 1,
                last_error=None,
                next_attempt_at=None,
                lease_until=None,
            )
        )
    )
    retryable = or_(
        free,
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
            lease_until=None,
            last_error="not sent again: the deadline was submitted or waived meanwhile",
        )
    )
    result.taken_over = _rowcount(
        session.execute(
            update(table)
            .where(retryable, table.c.deadline_id.in_(still_open))
            .values(
                status=ReminderStatus.claimed.value,
                claimed_at=now,
                claimed_by=result.sweep_id,
                lease_until=now + settings.lease,
                handed_over_at=None,
            )
        )
    )


def _held_elsewhere(session: Session, now: dt.datetime, sweep_id: str) -> int:
    """Claims another sweep holds with a live lease: it is sending them right now."""
    table = ReminderLog.__table__
    return (
        session.scalar(
            select(func.count()).where(
                table.c.status == ReminderStatus.claimed.value,
                table.c.lease_until >= now,
                table.c.claimed_by.is_not(None),
                table.c.claimed_by != sweep_id,
            )
        )
        or 0
    )


def _pause(seconds: float) -> None:
    """The wait between two tries of a write while the database is busy (tests observe it)."""
    time.sleep(seconds)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class _Delivery:
    """The sending phase of one sweep: batches over one SMTP connection each, ownership checked per message."""

    def __init__(
        self,
        session: Session,
        sender: Sender,
        now: dt.datetime,
        clock: Clock,
        settings: SweepSettings,
        result: SweepResult,
        stop: threading.Event | None,
    ) -> None:
        self.session = session
        self.sender = sender
        self.now = now
        self.clock = clock
        self.settings = settings
        self.result = result
        self.stop = stop
        self.table = ReminderLog.__table__
        self.me = result.sweep_id
        self.mine = and_(self.table.c.claimed_by == self.me, self.table.c.status == ReminderStatus.claimed.value)
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.domain = urlsplit(settings.base_url).hostname or "grantkeeper.local"
        self.delivered: list[int] = []  # accepted by SMTP, outcome not recorded yet
        self.position = 0  # pending[:position] were handed over (or failed): the rest was never tried
        self.down: DeliveryError | None = None  # the SMTP server cannot be reached: the rest fails at once

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        table = self.table
        pending = self.session.execute(
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
            .where(self.mine)
            .order_by(table.c.id)  # sent in id order: what "a later handed-over claim" relies on
        ).all()
        self.session.commit()
        ends_at = self.now + self.settings.budget
        last_beat = self.clock()
        try:
            while self.position < len(pending) and self.result.stopped is None and self.down is None:
                try:
                    for row in pending[self.position : self.position + self.settings.batch_size]:
                        moment = self.clock()
                        if self.stop is not None and self.stop.is_set():
                            self.result.stopped = "stop"
                        elif moment >= ends_at:
                            self.result.stopped = "budget"
                        if self.result.stopped:
                            break
                        if moment - last_beat >= self.settings.lease / 3:
                            self._heartbeat(moment)
                            last_beat = moment
                        if not self._send(row, moment):
                            break
                finally:
                    # Whatever happened (even a crash-like exit), close the batch's connection and
                    # record what SMTP accepted.
                    self.sender.close()
                    self._flush()
        except Exception:
            self._finish(pending)
            raise
        self._finish(pending)

    def _send(self, row: Any, moment: dt.datetime) -> bool:
        """Check the claim is still ours, hand the message to SMTP, note the outcome. False: stop the loop."""
        owned = self._write("check the claim", lambda: self._renew(row.id, moment), lock_timeout=False)
        if owned is None:
            self.result.stopped = "database"
            return False
        if not owned:
            self.result.lost += 1
            self.result.stopped = "lost claim"
            log.warning("reminder %d was taken over by another sweep: this sweep stops sending", row.id)
            return False
        self.position += 1
        try:
            self.sender.send(self._message(row), now=moment)
        except DeliveryError as error:
            exc = error
            self.result.failed += 1
            log.warning(
                "reminder %d to user %d failed (attempt %d): %s", row.id, row.recipient_id, row.attempts + 1, exc
            )
            # Recorded before the next claim is handed over: what _take_over relies on.
            if self._write("record a failure", lambda: self._fail([row], str(exc))) is None:
                self.result.stopped = "database"
                return False
            if exc.connection:
                self.down = exc
                return False
            return True
        self.delivered.append(row.id)
        self.result.sent += 1
        return True

    def _finish(self, pending: Sequence[Any]) -> None:
        """Fail the rest at once if SMTP is down; otherwise hand back the claims never tried."""
        rest = pending[self.position :]
        down = self.down
        if rest and down is not None:
            if self._write("record failures", lambda: self._fail(rest, str(down))) is not None:
                self.result.failed += len(rest)
        elif rest or self.result.stopped:
            self.result.released = self._write("release unsent claims", self._release) or 0
        self.result.unrecorded = len(self.delivered)

    def _message(self, row: Any) -> OutgoingMessage:
        return OutgoingMessage(
            to_address=row.to_address or "",
            subject=row.subject,
            body=row.body,
            message_id=f"<reminder.{row.deadline_id}.{row.offset_key.replace(':', '.')}.{row.recipient_id}@{self.domain}>",
        )

    # ------------------------------------------------------------ short transactions

    def _write(self, what: str, work: Callable[[], T], *, lock_timeout: bool = True) -> T | None:
        """Run ``work`` in one short transaction and commit; while the database is busy, retry with backoff.

        Returns None when the database stayed busy for the whole patience.
        """
        delay, waited = 0.05, 0.0
        patience = self.settings.record_patience.total_seconds()
        while True:
            try:
                if lock_timeout and self.postgres:
                    ms = int(self.settings.lock_timeout.total_seconds() * 1000)
                    self.session.execute(text(f"SET LOCAL lock_timeout = {ms}"))
                value = work()
                self.session.commit()
                return value
            except OperationalError as exc:
                self.session.rollback()
                if waited >= patience:
                    log.error("reminder sweep could not %s: the database stayed busy (%s)", what, type(exc).__name__)
                    return None
                log.warning(
                    "reminder sweep: database busy (%s) while trying to %s; trying again in %.2f s",
                    type(exc).__name__,
                    what,
                    delay,
                )
                _pause(delay)
                waited += delay
                delay = min(delay * 2, 5.0)

    def _renew(self, log_id: int, moment: dt.datetime) -> bool:
        """The ownership check right before sending: renew the lease only if the claim is still ours."""
        table = self.table
        return (
            _rowcount(
                self.session.execute(
                    update(table)
                    .where(table.c.id == log_id, self.mine)
                    .values(lease_until=moment + self.settings.lease, handed_over_at=moment)
                )
            )
            == 1
        )

    def _heartbeat(self, moment: dt.datetime) -> None:
        table = self.table
        self._write(
            "renew the leases",
            lambda: self.session.execute(
                update(table).where(self.mine).values(lease_until=moment + self.settings.lease)
            ),
        )

    def _flush(self) -> None:
        """Record what SMTP accepted: one UPDATE per batch. Kept in memory if the database stays busy."""
        if not self.delivered:
            return
        table = self.table
        ids = list(self.delivered)

        def record() -> bool:
            for chunk in _chunks(ids, ID_CHUNK):
                self.session.execute(
                    update(table)
                    .where(table.c.id.in_(chunk), self.mine)
                    .values(
                        status=ReminderStatus.sent.value,
                        sent_at=table.c.handed_over_at,
                        attempts=table.c.attempts + 1,
                        last_error=None,
                        next_attempt_at=None,
                        lease_until=None,
                    )
                )
            return True

        if self._write("record sent reminders", record):
            self.delivered = []

    def _fail(self, rows: Sequence[Any], error: str) -> bool:
        """Record failed sends (one UPDATE per number of attempts so far), with the next try after a backoff."""
        table = self.table
        by_attempts: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            by_attempts[row.attempts + 1].append(row.id)
        for attempts, ids in by_attempts.items():
            gave_up = attempts >= self.settings.max_attempts
            delay = min(self.settings.retry_cap, self.settings.retry_base * (2 ** (attempts - 1)))
            for chunk in _chunks(ids, ID_CHUNK):
                self.session.execute(
                    update(table)
                    .where(table.c.id.in_(chunk), self.mine)
                    .values(
                        status=ReminderStatus.failed.value,
                        attempts=attempts,
                        last_error=error,
                        next_attempt_at=None if gave_up else self.now + delay,
                        lease_until=None,
                        handed_over_at=None,
                    )
                )
        return True

    def _release(self) -> int:
        """Hand back every claim not yet handed to SMTP: the next sweep takes them at once."""
        table = self.table
        return _rowcount(
            self.session.execute(
                update(table)
                .where(self.mine, table.c.handed_over_at.is_(None))
                .values(claimed_by=None, lease_until=None)
            )
        )


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
