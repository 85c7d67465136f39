"""The reminder sweep: one pass over the deadline tables that sends each due reminder exactly once.

Shape (SCHEDULER.md, docs/decisions.md): plan every reminder due today in a few
set-based queries; claim them all with one INSERT ... ON CONFLICT DO NOTHING on
the UNIQUE (deadline, offset, recipient) key (on PostgreSQL from a COPY into a
temporary table); each in-app notification refers to its claim's subject and
body rather than copying them; commit; then send only what this sweep claimed. On PostgreSQL a transaction-scoped advisory lock keeps two
sweeps from planning at the same time, as a second guard.

Sending, in short transactions, never holding one open across the network:

- each claim has a lease (``lease_until``); the sweep renews all its leases as
  it goes (a heartbeat every third of the lease), so a live sweep is never
  taken over, and only a stopped or dead sweep's claims are;
- ownership is checked per batch, not per message: messages go out in batches
  over one SMTP connection each, and what SMTP accepted is recorded with one
  ``UPDATE ... WHERE id IN (the batch's) AND claimed_by = me AND status =
  'claimed' RETURNING id``. A row it does not return was taken over by another
  sweep (our lease had passed): it is that sweep's to send and record, and this
  sweep stops. All of a sweep's claims share one lease (claimed and renewed
  together), so they are taken over together: a batch recorded as ours proves
  the next batch is still ours too. The heartbeat checks the same way;
- while sending slowly, outcomes are also recorded every ``record_every``
  (2 s): after a crash, the next sweep sends again only what went out since the
  last record (under the same Message-ID), never less than everything;
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import CursorResult, Engine, String, and_, func, insert, literal, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.audit import Actor, acting_as
from core.clock import as_utc
from core.formatting import in_locale
from grants.deadlines import services
from grants.deadlines.mail import DeliveryError, OutgoingMessage, ReminderWriter, Sender, languages_of
from grants.deadlines.missing import MISSING_WORK, missing_for
from grants.deadlines.models import Deadline, Notification, ReminderLog, ReminderStatus
from grants.deadlines.policies import LEAD_ROLES, ReminderRule, load_rule_book
from grants.models import Grant, GrantMembership, GrantStatus, MemberRole

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = Actor(None, "scheduler", "scheduler")
# pg_try_advisory_xact_lock key: any fixed 64-bit number no other part of the app uses.
ADVISORY_LOCK_KEY = 0x6B_6565_7065_7231  # "keeper1"
# Ids per IN (...) list: SQLite limits the number of bound parameters.
ID_CHUNK = 1000
# SQLite's page cache while the claims are written (KiB): 100,000 claims fill about 60 MB of pages;
# with the default 2 MB cache they are spilled to the WAL mid-transaction and written twice.
_SQLITE_CLAIM_CACHE_KIB = 128 * 1024

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
    # While sending slowly, what SMTP accepted is recorded at least this often (and always once per
    # batch): after a crash, only what went out since is sent again.
    record_every: timedelta = timedelta(seconds=2)
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
            if sender is not None:
                # Before planning: the claims about to be inserted (not analysed yet in this
                # transaction) would otherwise lead PostgreSQL's planner into a nested loop.
                _take_over(session, now, settings, result)
            _plan_and_claim(session, now, today, sender, settings, result)
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


def _titles_by_language(
    session: Session, planned: dict[tuple[int, str, int], Any], languages: Mapping[int, str]
) -> dict[tuple[int, str | None], str]:
    """Deadline titles in each recipient's language, by (deadline id, language), for the non-English ones.

    A period's report and a requirement with a title in that language read differently per
    language (``services.shown_titles``); nothing is asked when every recipient reads English.
    """
    wanted: dict[str, set[int]] = defaultdict(set)
    for deadline_id, _key, recipient_id in planned:
        language = languages.get(recipient_id)
        if language and language != "en":
            wanted[language].add(deadline_id)
    if not wanted:
        return {}
    ids = sorted(set().union(*wanted.values()))
    records: dict[int, Any] = {}
    for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
        for record in session.execute(
            select(Deadline.id, Deadline.title, Deadline.source_kind, Deadline.source_id).where(
                Deadline.id.in_(ids[start : start + 500])
            )
        ):
            records[record.id] = record
    titles: dict[tuple[int, str | None], str] = {}
    for language, deadline_ids in wanted.items():
        with in_locale(language):
            shown = services.shown_titles(session, [records[i] for i in deadline_ids if i in records])
        titles.update(((deadline_id, language), title) for deadline_id, title in shown.items())
    return titles


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
    # Core rather than ORM execution for the bulk reads (plain rows: no ORM loading per row), and
    # rows unpacked once: at 100,000 deadlines attribute access on rows shows in the sweep's time.
    connection = session.connection()
    deadlines = connection.execute(_open_deadlines_query(today, horizon)).all()  # query 2

    # Stages depend on (rule, due date) only: computed once per pair, not once per deadline.
    stage_of: dict[tuple[int, date], tuple[str | None, str | None]] = {}
    catch_up = settings.catch_up_days
    # deadline id -> (its row, its rule, reminder stage, escalation stage)
    stages: dict[int, tuple[Any, ReminderRule, str | None, str | None]] = {}
    rule_for = book.rule_for
    for row in deadlines:
        deadline_id, grant_id, _title, due_date, _owner_id, funder_id, _reference, _grant_title = row
        rule = rule_for(grant_id, funder_id)
        key = (id(rule), due_date)  # the book keeps every rule alive: id() is stable
        found = stage_of.get(key)
        if found is None:
            found = stage_of[key] = (
                reminder_stage(due_date, today, rule, catch_up),
                escalation_stage(due_date, today, rule, catch_up),
            )
        if found[0] or found[1]:
            stages[deadline_id] = (row, rule, found[0], found[1])
    if not stages:
        return

    roles_wanted = set(LEAD_ROLES) | {r for rule in book.all_rules() for r in rule.escalate_roles}
    grant_ids = {row[1] for row, *_ in stages.values()}
    members: dict[int, list[tuple[int, MemberRole]]] = defaultdict(list)
    for grant_id, user_id, role in connection.execute(  # query 3
        select(GrantMembership.grant_id, GrantMembership.user_id, GrantMembership.role)
        .join(Grant, Grant.id == GrantMembership.grant_id)
        .where(Grant.status != GrantStatus.closed, GrantMembership.role.in_(list(roles_wanted)))
    ):
        if grant_id in grant_ids:
            members[grant_id].append((user_id, role))

    # Planned reminders: the claim's unique key (deadline id, offset key, recipient) -> (escalation,
    # reason); the last one planned for a key wins (as before).
    owner_reason = "You are the owner of this deadline."
    lead_reasons: dict[tuple[MemberRole, str], str] = {}
    escalation_reasons: dict[tuple[MemberRole, str], str] = {}
    planned_by_key: dict[tuple[int, str, int], tuple[bool, str]] = {}
    as_owner = (False, owner_reason)
    for deadline_id, (row, rule, stage, escalate) in stages.items():
        _id, grant_id, _title, due_date, owner_id, _funder_id, reference, _grant_title = row
        if stage:
            key_ = offset_key(due_date, stage)
            if owner_id is not None:
                planned_by_key[(deadline_id, key_, owner_id)] = as_owner
            else:
                for user_id, role in members[grant_id]:
                    if role in LEAD_ROLES:
                        reason = lead_reasons.get((role, reference))
                        if reason is None:
                            reason = lead_reasons[(role, reference)] = (
                                f"This deadline has no owner yet; you are the {role.value} lead of {reference}."
                            )
                        planned_by_key[(deadline_id, key_, user_id)] = (False, reason)
        if escalate and owner_id is not None:
            # An unowned deadline is already reminded to the leads themselves: no escalation on top.
            key_ = offset_key(due_date, escalate)
            for user_id, role in members[grant_id]:
                if role in rule.escalate_roles and user_id != owner_id:
                    reason = escalation_reasons.get((role, reference))
                    if reason is None:
                        reason = escalation_reasons[(role, reference)] = (
                            f"You receive this escalation as the {role.value} lead of {reference}."
                        )
                    planned_by_key[(deadline_id, key_, user_id)] = (True, reason)
    result.planned = len(planned_by_key)

    user_ids = {key[2] for key in planned_by_key} | {row[4] for row, *_ in stages.values() if row[4]}
    # user id -> (e-mail, first name, full name); an inactive owner is still named in escalations.
    users: dict[int, tuple[str | None, str, str]] = {}
    active: set[int] = set()
    for user_id, email, first_name, last_name, is_active in connection.execute(  # query 4
        select(User.id, User.email, User.first_name, User.last_name, User.active).where(User.id.in_(user_ids))
    ):
        users[user_id] = (email, first_name, f"{first_name} {last_name}".strip())
        if is_active:
            active.add(user_id)
    planned = {key: plan for key, plan in planned_by_key.items() if key[2] in active}

    keys = {key[1] for key in planned}
    # A stage is only ever claimed on or after its day, and every planned stage's day is at most
    # catch_up_days old: older log rows cannot hold a planned key (a day's margin for time zones).
    since = dt.datetime.combine(today - timedelta(days=settings.catch_up_days + 1), dt.time(), dt.UTC)
    for claimed_deadline, claimed_key, claimed_recipient in connection.execute(  # query 5
        select(ReminderLog.deadline_id, ReminderLog.offset_key, ReminderLog.recipient_id).where(
            ReminderLog.created_at >= since, ReminderLog.offset_key.in_(keys)
        )
    ):
        planned.pop((claimed_deadline, claimed_key, claimed_recipient), None)
    if not planned:
        return

    missing: dict[int, list[str]] = {}
    if MISSING_WORK:
        # Checks ask their own domains, per deadline reminded today (not per deadline swept).
        ids = sorted({key[0] for key in planned})
        for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
            for deadline in session.scalars(select(Deadline).where(Deadline.id.in_(ids[start : start + 500]))):
                missing[deadline.id] = missing_for(session, deadline)

    languages = languages_of(session, {key[2] for key in planned})  # query 6b: each recipient's language
    titles = _titles_by_language(session, planned, languages)  # only for recipients reading another language
    write = ReminderWriter(today, settings.base_url).write
    claimed_status = ReminderStatus.outbox if sender is None else ReminderStatus.claimed
    in_app = ReminderStatus.in_app
    no_missing: list[str] = []
    rows: list[tuple[int, str, int, ReminderStatus, str | None, str, str]] = []
    append = rows.append
    for (deadline_id, key_, recipient_id), (escalation, reason) in planned.items():
        row, rule, _stage, _escalate = stages[deadline_id]
        _id, _grant_id, title, due_date, owner_id, _funder_id, reference, grant_title = row
        email, first_name, _name = users[recipient_id]
        owner = users.get(owner_id) if owner_id else None
        language = languages.get(recipient_id)
        subject, body = write(
            deadline_id,
            titles.get((deadline_id, language), title) if titles else title,
            due_date,
            reference,
            grant_title,
            first_name,
            owner[2] if owner is not None else None,
            escalation,
            reason,
            missing.get(deadline_id, no_missing),
            language,
        )
        append(
            (
                deadline_id,
                key_,
                recipient_id,
                claimed_status if rule.send_email and email else in_app,
                email,
                subject,
                body,
            )
        )

    _claim(session, rows, now=now, sweep_id=result.sweep_id, lease_until=now + settings.lease)  # query 7
    table = ReminderLog.__table__
    # The claims just won: taken-over ones carry our sweep id too, but were created by an earlier sweep.
    ours = and_(table.c.claimed_by == result.sweep_id, table.c.created_at == now)
    counts: dict[Any, int] = {
        status: count  # query 8
        for status, count in session.execute(select(table.c.status, func.count()).where(ours).group_by(table.c.status))
    }
    result.claimed = sum(counts.values())
    result.outbox = counts.get(ReminderStatus.outbox, 0)
    result.in_app_only = counts.get(ReminderStatus.in_app, 0)
    if result.claimed:
        # Same transaction as the claim: an in-app notification exists exactly when its claim does.
        # Set-based, from the claims themselves: nothing goes back and forth for each row. The
        # notification shows the claim's subject and body (Notification.title/body): not copied.
        notifications = Notification.__table__
        link = literal("/deadlines/show/", String) + sql_cast(table.c.deadline_id, String)
        session.execute(  # query 9
            insert(notifications).from_select(
                ["user_id", "deadline_id", "reminder_log_id", "link", "created_at"],
                select(
                    table.c.recipient_id,
                    table.c.deadline_id,
                    table.c.id,
                    link,
                    literal(now, table.c.created_at.type),
                ).where(ours),
            )
        )
        result.notifications = result.claimed


_CLAIM_COLUMNS = (
    "deadline_id",
    "offset_key",
    "recipient_id",
    "status",
    "to_address",
    "subject",
    "body",
    "created_at",
    "claimed_at",
    "claimed_by",
    "lease_until",
    "attempts",
)


def _claim(
    session: Session,
    rows: list[tuple[int, str, int, ReminderStatus, str | None, str, str]],
    *,
    now: dt.datetime,
    sweep_id: str,
    lease_until: dt.datetime,
) -> None:
    """INSERT the claims; a key another sweep holds already is skipped (the claims won carry our sweep id).

    ``rows`` are (deadline, offset key, recipient, status, address, subject, body). The values that
    are the same for every row (the moments, the sweep, the number of attempts) are converted once
    by the columns' own types and sent once, not once per row. On SQLite one executemany straight
    through the driver, with a page cache large enough that the claims are not spilled to the WAL
    before the commit; on PostgreSQL the rows are COPYed into a temporary table (dropped at commit)
    and claimed from it with one INSERT ... SELECT ... ON CONFLICT DO NOTHING.
    """
    table = ReminderLog.__table__
    connection = session.connection()
    dialect = connection.dialect
    claimed = ReminderStatus.claimed

    def bound(column: str, value: Any) -> Any:
        processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return processor(value) if processor is not None else value

    statuses = {status: bound("status", status) for status in ReminderStatus}
    if dialect.name == "sqlite":

        def quoted(value: Any) -> str:
            return "'" + str(value).replace("'", "''") + "'"

        at = quoted(bound("created_at", now))
        sql = (
            f"INSERT INTO {table.name} ({', '.join(_CLAIM_COLUMNS)})"
            f" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {at}, {at}, {quoted(sweep_id)},"
            f" CASE ?4 WHEN {quoted(statuses[claimed])} THEN {quoted(bound('lease_until', lease_until))} END, 0)"
            " ON CONFLICT (deadline_id, offset_key, recipient_id) DO NOTHING"
        )
        cache_size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        connection.exec_driver_sql(f"PRAGMA cache_size = {-_SQLITE_CLAIM_CACHE_KIB}")
        try:
            connection.exec_driver_sql(
                sql,
                [
                    (deadline_id, key, recipient_id, statuses[status], address, subject, body)
                    for deadline_id, key, recipient_id, status, address, subject, body in rows
                ],
            )
        finally:
            # Only the cache's limit: the pages written stay in it until the commit.
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache_size or -2000)}")
        return
    if dialect.name != "postgresql":  # pragma: no cover - the project supports SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database {dialect.name}")
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE reminder_claims_in (deadline_id integer, offset_key varchar(40),"
        " recipient_id integer, status varchar(20), to_address varchar(320), subject varchar(300), body text)"
        " ON COMMIT DROP"
    )
    # COPY goes through the driver (psycopg): a statement that SQLAlchemy's events do not see.
    driver = cast(Any, connection.connection.driver_connection)
    with driver.cursor() as cursor, cursor.copy("COPY reminder_claims_in FROM STDIN") as copy:
        write_row = copy.write_row
        for deadline_id, key, recipient_id, status, address, subject, body in rows:
            write_row((deadline_id, key, recipient_id, statuses[status], address, subject, body))
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(_CLAIM_COLUMNS)})"
        " SELECT deadline_id, offset_key, recipient_id, status, to_address, subject, body,"
        " %(now)s, %(now)s, %(sweep_id)s, CASE WHEN status = %(claimed)s THEN %(lease_until)s END, 0"
        " FROM reminder_claims_in"
        " ON CONFLICT ON CONSTRAINT uq_reminder_logs_key DO NOTHING",
        {"now": now, "sweep_id": sweep_id, "claimed": statuses[claimed], "lease_until": lease_until},
    )


def _rowcount(result: Any) -> int:
    # DML returns a CursorResult (which has rowcount); Session.execute is typed as a plain Result.
    return cast(CursorResult[Any], result).rowcount or 0


def _take_over(session: Session, now: dt.datetime, settings: SweepSettings, result: SweepResult) -> None:
    """Claim what a stopped or dead sweep left (released, or lease passed) and failures due for a retry.

    A stopped or dead sweep recorded what SMTP accepted at least once per batch (and every
    ``record_every`` while sending slowly): what it sent after that is sent again, under the
    same Message-ID, so nothing is lost and at most those few messages repeat.
    """
    table = ReminderLog.__table__
    claimed = table.c.status == ReminderStatus.claimed.value
    free = and_(claimed, or_(table.c.claimed_by.is_(None), table.c.lease_until.is_(None), table.c.lease_until < now))
    retryable = or_(
        free,
        and_(
            table.c.status == ReminderStatus.failed.value,
            table.c.next_attempt_at.is_not(None),
            table.c.next_attempt_at <= now,
        ),
    )
    # EXISTS rather than IN (SELECT ...): PostgreSQL runs NOT IN over 100,000 deadlines row by row
    # once the list outgrows work_mem; EXISTS is a hash (anti-)join on both databases.
    still_open = (
        select(Deadline.id)
        .where(Deadline.id == table.c.deadline_id, Deadline.submitted_on.is_(None), Deadline.waived.is_(False))
        .exists()
    )
    # Submitted or waived since: the reminder is moot; say so in the outbox instead of sending it.
    session.execute(
        update(table)
        .where(retryable, ~still_open)
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
            .where(retryable, still_open)
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
    """The sending phase of one sweep: batches over one SMTP connection each, ownership checked per batch.

    Statements: one SELECT of this sweep's claims, then per batch one UPDATE that records what SMTP
    accepted and proves the claims are still this sweep's (``WHERE claimed_by = me``, RETURNING the
    ids it recorded), plus a constant (PostgreSQL's lock timeout, the release of what was never
    tried). Failures (rare) add one UPDATE per batch and number of attempts; the heartbeat and the
    ``record_every`` flush depend on time, not on the number of messages.
    """

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
        self.failures: list[tuple[Any, str]] = []  # refused by SMTP, outcome not recorded yet
        self.position = 0  # pending[:position] were tried: the rest never was
        self.pending_count = 0
        self.down: DeliveryError | None = None  # the SMTP server cannot be reached: the rest fails at once

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        bind = self.session.get_bind()
        if not (self.postgres and isinstance(bind, Engine)):
            self._run()
            return
        # PostgreSQL: one lock timeout for the whole sending phase, on a connection of its own
        # (set once rather than once per transaction; reset before the connection goes back to the pool).
        ms = int(self.settings.lock_timeout.total_seconds() * 1000)
        outer = self.session
        with bind.connect() as connection:
            connection.exec_driver_sql(f"SET lock_timeout = {ms}")
            connection.commit()
            self.session = Session(bind=connection)
            try:
                self._run()
            finally:
                self.session.close()
                self.session = outer
                connection.rollback()
                connection.exec_driver_sql("RESET lock_timeout")
                connection.commit()

    def _run(self) -> None:
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
            .order_by(table.c.id)  # tried in id order: "id >= the first untried" is what was never tried
        ).all()
        self.session.commit()
        self.pending_count = len(pending)
        ends_at = self.now + self.settings.budget
        last_beat = last_record = self.clock()
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
                            if not self._heartbeat(moment):
                                break
                            last_beat = moment
                        if self.delivered and moment - last_record >= self.settings.record_every:
                            # Slow sending: record what went out so far, so a crash repeats little.
                            if not self._record():
                                break
                            last_record = moment
                        if not self._send(row, moment):
                            break
                finally:
                    # Whatever happened (even a crash-like exit), close the batch's connection and
                    # record the batch's outcomes: one statement, which also proves the claims are ours.
                    self.sender.close()
                    self._record()
                    last_record = self.clock()
        except Exception:
            self._finish(pending)
            raise
        self._finish(pending)

    def _send(self, row: Any, moment: dt.datetime) -> bool:
        """Hand the message to SMTP and note the outcome in memory. False: stop the loop."""
        self.position += 1
        try:
            self.sender.send(self._message(row), now=moment)
        except DeliveryError as exc:
            log.warning(
                "reminder %d to user %d failed (attempt %d): %s", row.id, row.recipient_id, row.attempts + 1, exc
            )
            self.failures.append((row, str(exc)))
            self.result.failed += 1
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
            if self._write("record failures", lambda: self._fail([(row, str(down)) for row in rest])) is not None:
                self.result.failed += len(rest)
        elif rest or self.result.stopped:
            first_untried = rest[0].id if rest else None
            self.result.released = self._write("release unsent claims", lambda: self._release(first_untried)) or 0
        self.result.unrecorded = len(self.delivered) + len(self.failures)

    def _message(self, row: Any) -> OutgoingMessage:
        return OutgoingMessage(
            to_address=row.to_address or "",
            subject=row.subject,
            body=row.body,
            message_id=f"<reminder.{row.deadline_id}.{row.offset_key.replace(':', '.')}.{row.recipient_id}@{self.domain}>",
        )

    # ------------------------------------------------------------ short transactions

    def _write(self, what: str, work: Callable[[], T]) -> T | None:
        """Run ``work`` in one short transaction and commit; while the database is busy, retry with backoff.

        Returns None when the database stayed busy for the whole patience.
        """
        delay, waited = 0.05, 0.0
        patience = self.settings.record_patience.total_seconds()
        while True:
            try:
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

    def _heartbeat(self, moment: dt.datetime) -> bool:
        """Renew this sweep's leases; a claim no longer ours means another sweep took over: stop (False)."""
        table = self.table
        # Still "claimed" by this sweep: the untried claims and the tried ones not recorded yet.
        expected = self.pending_count - self.position + len(self.delivered) + len(self.failures)
        renewed = self._write(
            "renew the leases",
            lambda: _rowcount(
                self.session.execute(update(table).where(self.mine).values(lease_until=moment + self.settings.lease))
            ),
        )
        if renewed is None:
            self.result.stopped = "database"
            return False
        if renewed < expected:
            self._lost(expected - renewed)
            return False
        return True

    def _lost(self, count: int) -> None:
        self.result.lost += count
        self.result.stopped = "lost claim"
        log.warning("%d reminders were taken over by another sweep: this sweep stops sending", count)

    def _record(self) -> bool:
        """Record the outcomes noted in memory; claims no longer ours are left to their new owner.

        Kept in memory (and retried at the next record) if the database stays busy. False: stop.
        """
        if not self.delivered and not self.failures:
            return True
        table = self.table
        delivered, failures = list(self.delivered), list(self.failures)
        moment = self.clock()

        def record() -> tuple[int, int]:
            recorded = 0
            for chunk in _chunks(delivered, ID_CHUNK):
                recorded += len(
                    self.session.execute(
                        update(table)
                        .where(table.c.id.in_(chunk), self.mine)
                        .values(
                            status=ReminderStatus.sent.value,
                            sent_at=moment,
                            attempts=table.c.attempts + 1,
                            last_error=None,
                            next_attempt_at=None,
                            lease_until=None,
                        )
                        .returning(table.c.id)
                    ).all()
                )
            return recorded, self._fail(failures)

        outcome = self._write("record sent reminders", record)
        if outcome is None:
            self.result.stopped = "database"
            return False
        recorded, failed = outcome
        self.delivered, self.failures = [], []
        lost = len(delivered) - recorded + len(failures) - failed
        if lost:
            # Another sweep took these claims over (our lease had passed): it sends and records them.
            self._lost(lost)
            return False
        return True

    def _fail(self, rows: Sequence[tuple[Any, str]]) -> int:
        """Record failed sends (one UPDATE per number of attempts and error), with the next try after a backoff."""
        table = self.table
        groups: dict[tuple[int, str], list[int]] = defaultdict(list)
        for row, error in rows:
            groups[(row.attempts + 1, error)].append(row.id)
        recorded = 0
        for (attempts, error), ids in groups.items():
            gave_up = attempts >= self.settings.max_attempts
            delay = min(self.settings.retry_cap, self.settings.retry_base * (2 ** (attempts - 1)))
            for chunk in _chunks(ids, ID_CHUNK):
                recorded += _rowcount(
                    self.session.execute(
                        update(table)
                        .where(table.c.id.in_(chunk), self.mine)
                        .values(
                            status=ReminderStatus.failed.value,
                            attempts=attempts,
                            last_error=error,
                            next_attempt_at=None if gave_up else self.now + delay,
                            lease_until=None,
                        )
                    )
                )
        return recorded

    def _release(self, first_untried: int | None) -> int:
        """Hand back every claim never tried (sent in id order: id >= the first untried one)."""
        table = self.table
        if first_untried is None:
            return 0
        return _rowcount(
            self.session.execute(
                update(table).where(self.mine, table.c.id >= first_untried).values(claimed_by=None, lease_until=None)
            )
        )


# ---------------------------------------------------------------- the message


# Written in each recipient's language by grants.deadlines.mail.ReminderWriter (render_reminder for one message).
