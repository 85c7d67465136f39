"""Every state change of deadlines, reminder policies, notifications and calendar tokens.

Plain functions over a SQLAlchemy session; no Flask. ``today`` and ``now`` are
always passed in, so tests and the scheduler decide what time it is. The
reminder sweep itself lives in ``grants.deadlines.reminders``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from grants.deadlines.models import (
    CalendarToken,
    Deadline,
    DeadlineKind,
    DeadlineSource,
    DeadlineState,
    Notification,
    ReminderLog,
    ReminderPolicy,
    ReminderStatus,
)
from grants.errors import DomainValidationError
from grants.models import Grant, GrantMembership, MemberRole, PeriodStatus, ReportingPeriod
from grants.records import validate_record
from grants.services import visible_grant_ids_query

# Members who hear about a deadline nobody owns, and who are told when one is late.
LEAD_ROLES = (MemberRole.lead, MemberRole.finance, MemberRole.program)


def utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (a naive one is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


# ---------------------------------------------------------------- what is still missing

MissingProvider = Callable[[Session, Deadline], list[str]]
_missing_providers: list[MissingProvider] = []


def register_missing_provider(provider: MissingProvider) -> None:
    """Let another domain say what is still missing for a deadline.

    ``provider(session, deadline) -> ["3 indicators without results for S1", ...]``;
    an empty list when nothing is missing. Registering twice is harmless.
    """
    if provider not in _missing_providers:
        _missing_providers.append(provider)


def missing_providers() -> tuple[MissingProvider, ...]:
    return tuple(_missing_providers)


def missing_for(session: Session, deadline: Deadline) -> list[str]:
    """Every provider's missing items for an open deadline (nothing for submitted/waived ones)."""
    if deadline.submitted_on is not None or deadline.waived:
        return []
    items: list[str] = []
    for provider in _missing_providers:
        items.extend(provider(session, deadline))
    return items


def period_for_deadline(session: Session, deadline: Deadline) -> ReportingPeriod | None:
    """The reporting period a deadline reports on: its source period, else the last one ended before it."""
    if deadline.source_kind == DeadlineSource.period and deadline.source_id is not None:
        return session.get(ReportingPeriod, deadline.source_id)
    return session.scalar(
        select(ReportingPeriod)
        .where(ReportingPeriod.grant_id == deadline.grant_id, ReportingPeriod.end_date < deadline.due_date)
        .order_by(ReportingPeriod.end_date.desc())
        .limit(1)
    ) or session.scalar(
        select(ReportingPeriod).where(
            ReportingPeriod.grant_id == deadline.grant_id,
            ReportingPeriod.start_date <= deadline.due_date,
            ReportingPeriod.end_date >= deadline.due_date,
        )
    )


# ---------------------------------------------------------------- deadlines


def _kind(value: DeadlineKind | str | None, default: DeadlineKind) -> DeadlineKind:
    if value is None:
        return default
    try:
        return DeadlineKind(value)
    except ValueError:
        known = ", ".join(k.value for k in DeadlineKind)
        raise DomainValidationError({"kind": [f"'{value}' is not one of {known}"]}) from None


def _date(value: date | str | None, field_name: str) -> date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DomainValidationError({field_name: [f"'{value}' is not a date (use YYYY-MM-DD, e.g. 2027-03-01)"]})


def create_deadline(
    session: Session,
    *,
    grant_id: int,
    title: str,
    due_date: date | str,
    kind: DeadlineKind | str | None = None,
    owner_id: int | None = None,
    notes: str | None = None,
) -> Deadline:
    """A one-off deadline entered by hand (audit, disbursement request, board meeting...)."""
    deadline = Deadline(
        grant_id=grant_id,
        source_kind=DeadlineSource.manual,
        kind=_kind(kind, DeadlineKind.other),
        title=(title or "").strip(),
        due_date=_date(due_date, "due_date"),
        owner_id=owner_id,
        notes=notes,
        waived=False,
    )
    validate_record(session, deadline)
    session.add(deadline)
    session.flush()
    return deadline


def upsert_deadline(
    session: Session,
    *,
    grant_id: int,
    source_kind: DeadlineSource | str,
    source_id: int,
    title: str,
    due_date: date | str,
    owner_id: int | None = None,
    kind: DeadlineKind | str | None = None,
) -> Deadline:
    """Create or update the deadline of a source record (a requirement, a period); idempotent.

    Other domains call this (e.g. compliance for a requirement's due rule).
    The owner is only changed when one is given; submitted/waived flags are kept.
    """
    try:
        source = DeadlineSource(source_kind)
    except ValueError:
        source = None
    if source is None or source == DeadlineSource.manual:
        known = ", ".join(s.value for s in DeadlineSource if s != DeadlineSource.manual)
        raise DomainValidationError({"source_kind": [f"'{source_kind}' is not one of {known}"]})
    default_kind = DeadlineKind.report if source == DeadlineSource.period else DeadlineKind.requirement
    deadline = deadline_for_source(session, source, source_id)
    if deadline is None:
        deadline = Deadline(source_kind=source, source_id=source_id, waived=False)
        session.add(deadline)
    deadline.grant_id = grant_id
    deadline.title = (title or "").strip()
    deadline.due_date = _date(due_date, "due_date")
    deadline.kind = _kind(kind, deadline.kind or default_kind)
    if owner_id is not None:
        deadline.owner_id = owner_id
    with session.no_autoflush:
        validate_record(session, deadline)
    session.flush()
    return deadline


def deadline_for_source(session: Session, source_kind: DeadlineSource | str, source_id: int) -> Deadline | None:
    return session.scalar(
        select(Deadline).where(Deadline.source_kind == DeadlineSource(source_kind), Deadline.source_id == source_id)
    )


def remove_source_deadline(session: Session, *, source_kind: DeadlineSource | str, source_id: int) -> bool:
    """Delete the deadline of a source record that no longer exists. True if one was deleted."""
    deadline = deadline_for_source(session, source_kind, source_id)
    if deadline is None:
        return False
    session.delete(deadline)
    session.flush()
    return True


def update_deadline(session: Session, deadline: Deadline, **values: Any) -> Deadline:
    """Change a deadline. Title and date of a synced deadline belong to its source and are refused."""
    allowed = {"title", "due_date", "kind", "owner_id", "notes"}
    unknown = set(values) - allowed
    if unknown:
        raise DomainValidationError({name: ["cannot be changed here"] for name in sorted(unknown)})
    if "due_date" in values:
        values["due_date"] = _date(values["due_date"], "due_date")
    if "kind" in values:
        values["kind"] = _kind(values["kind"], deadline.kind)
    for key, value in values.items():
        setattr(deadline, key, value)
    refuse_source_field_edits(deadline)
    validate_record(session, deadline)
    session.flush()
    return deadline


def refuse_source_field_edits(deadline: Deadline) -> None:
    """A period's or requirement's deadline takes its title and date from the source record."""
    from sqlalchemy import inspect

    if deadline.source_kind in (None, DeadlineSource.manual) or inspect(deadline).transient:
        return
    state = inspect(deadline)
    errors: dict[str, list[str]] = {}
    for name in ("title", "due_date", "grant_id", "source_kind", "source_id"):
        if state.attrs[name].history.has_changes():
            where = "reporting period" if deadline.source_kind == DeadlineSource.period else "requirement"
            errors[name] = [f"comes from the {where}; change it there"]
    if errors:
        raise DomainValidationError(errors)


def mark_submitted(session: Session, deadline: Deadline, *, on: date) -> Deadline:
    """Record that what was due has been submitted; reminders stop. A period's report is marked too."""
    deadline.submitted_on = on
    deadline.waived = False
    if deadline.source_kind == DeadlineSource.period and deadline.source_id is not None:
        period = session.get(ReportingPeriod, deadline.source_id)
        if period is not None and period.status == PeriodStatus.open:
            period.status = PeriodStatus.submitted
    session.flush()
    return deadline


def waive_deadline(session: Session, deadline: Deadline, *, reason: str) -> Deadline:
    deadline.waived = True
    deadline.waived_reason = (reason or "").strip()
    validate_record(session, deadline)
    session.flush()
    return deadline


def reopen_deadline(session: Session, deadline: Deadline) -> Deadline:
    deadline.submitted_on = None
    deadline.waived = False
    deadline.waived_reason = None
    session.flush()
    return deadline


def delete_deadline(session: Session, deadline: Deadline) -> None:
    if deadline.source_kind != DeadlineSource.manual:
        raise DomainValidationError(
            {"_": [f"this deadline comes from a {deadline.source_kind.value}; remove or change it there"]}
        )
    session.delete(deadline)
    session.flush()


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    removed: int = 0


def period_deadline_title(label: str, start: date, end: date) -> str:
    return f"Report for {label} ({start.day} {start:%b %Y} – {end.day} {end:%b %Y})"


def sync_period_deadlines(session: Session, *, today: date) -> SyncResult:
    """Keep one deadline per reporting period's report_due; idempotent, two queries when nothing changed.

    A submitted or accepted period marks its deadline submitted (on ``today``
    if no date was recorded); a period without a due date, or deleted, loses
    its deadline.
    """
    result = SyncResult()
    periods = session.execute(
        select(
            ReportingPeriod.id, ReportingPeriod.grant_id, ReportingPeriod.label, ReportingPeriod.start_date,
            ReportingPeriod.end_date, ReportingPeriod.report_due, ReportingPeriod.status,
        )
    ).all()
    existing = {
        d.source_id: d for d in session.scalars(select(Deadline).where(Deadline.source_kind == DeadlineSource.period))
    }
    seen: set[int] = set()
    for period in periods:
        if period.report_due is None:
            continue
        seen.add(period.id)
        title = period_deadline_title(period.label, period.start_date, period.end_date)
        done = period.status != PeriodStatus.open
        deadline = existing.get(period.id)
        if deadline is None:
            session.add(
                Deadline(
                    grant_id=period.grant_id, source_kind=DeadlineSource.period, source_id=period.id,
                    kind=DeadlineKind.report, title=title, due_date=period.report_due,
                    submitted_on=today if done else None, waived=False,
                )
            )
            result.created += 1
            continue
        changed = False
        for name, value in (("grant_id", period.grant_id), ("title", title), ("due_date", period.report_due)):
            if getattr(deadline, name) != value:
                setattr(deadline, name, value)
                changed = True
        if done and deadline.submitted_on is None and not deadline.waived:
            deadline.submitted_on = today
            changed = True
        result.updated += changed
    for source_id, deadline in existing.items():
        if source_id not in seen:
            session.delete(deadline)
            result.removed += 1
    if result.created or result.updated or result.removed:
        session.flush()
    return result


# ---------------------------------------------------------------- deadline views


@dataclass
class DeadlineRow:
    deadline: Deadline
    state: DeadlineState
    days_left: int
    missing: list[str] = field(default_factory=list)

    @property
    def when(self) -> str:
        return describe_days(self.days_left)


_URGENCY = {
    DeadlineState.overdue: 0,
    DeadlineState.due: 1,
    DeadlineState.upcoming: 2,
    DeadlineState.submitted: 3,
    DeadlineState.waived: 4,
}


def describe_days(days_left: int) -> str:
    if days_left > 1:
        return f"in {days_left} days"
    if days_left == 1:
        return "tomorrow"
    if days_left == 0:
        return "today"
    if days_left == -1:
        return "1 day overdue"
    return f"{-days_left} days overdue"


def deadlines_for_user(
    session: Session,
    user: Any,
    *,
    today: date,
    mine_only: bool = True,
    grant_id: int | None = None,
    include_done: bool = False,
    with_missing: bool = True,
) -> list[DeadlineRow]:
    """The user's deadlines, most urgent first, each with what is still missing.

    ``mine_only``: those they own, plus unowned ones of grants where they are a
    lead, finance or program member (the people reminded about them).
    Otherwise every deadline of every grant they may see. Row-level
    visibility always applies.
    """
    query = select(Deadline).join(Grant, Grant.id == Deadline.grant_id).options(joinedload(Deadline.grant))
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(Deadline.grant_id.in_(visible))
    if grant_id is not None:
        query = query.where(Deadline.grant_id == grant_id)
    if mine_only:
        led = select(GrantMembership.grant_id).where(
            GrantMembership.user_id == user.id, GrantMembership.role.in_(LEAD_ROLES)
        )
        query = query.where(
            or_(Deadline.owner_id == user.id, and_(Deadline.owner_id.is_(None), Deadline.grant_id.in_(led)))
        )
    if not include_done:
        query = query.where(Deadline.submitted_on.is_(None), Deadline.waived.is_(False))
    rows = []
    for deadline in session.scalars(query):
        state = deadline.state_on(today)
        missing = missing_for(session, deadline) if with_missing else []
        rows.append(DeadlineRow(deadline, state, (deadline.due_date - today).days, missing))
    rows.sort(key=lambda row: (_URGENCY[row.state], row.deadline.due_date, row.deadline.id))
    return rows


def visible_deadline(session: Session, user: Any, deadline_id: int) -> Deadline | None:
    query = select(Deadline).where(Deadline.id == deadline_id)
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(Deadline.grant_id.in_(visible))
    return session.scalar(query)


# ---------------------------------------------------------------- reminder policies


@dataclass(frozen=True)
class ReminderRule:
    """A reminder policy as plain values: what the sweep needs, whether from a row or the default."""

    days_before: tuple[int, ...] = (30, 14, 7, 1)
    on_due_day: bool = True
    overdue_every_days: int = 7
    escalate_after_days: int | None = 14
    escalate_roles: tuple[MemberRole, ...] = LEAD_ROLES
    send_email: bool = True

    @classmethod
    def from_policy(cls, policy: ReminderPolicy) -> ReminderRule:
        return cls(
            days_before=tuple(policy.offsets()),
            on_due_day=bool(policy.on_due_day),
            overdue_every_days=policy.overdue_every_days or 0,
            escalate_after_days=policy.escalate_after_days,
            escalate_roles=tuple(policy.roles()),
            send_email=bool(policy.send_email),
        )


DEFAULT_RULE = ReminderRule()


@dataclass
class RuleBook:
    """Every policy, loaded in one query: the grant's, else its funder's, else the default."""

    by_grant: dict[int, ReminderRule]
    by_funder: dict[int, ReminderRule]
    default: ReminderRule = DEFAULT_RULE

    def rule_for(self, grant_id: int, funder_id: int | None) -> ReminderRule:
        if grant_id in self.by_grant:
            return self.by_grant[grant_id]
        if funder_id is not None and funder_id in self.by_funder:
            return self.by_funder[funder_id]
        return self.default

    def all_rules(self) -> list[ReminderRule]:
        return [self.default, *self.by_grant.values(), *self.by_funder.values()]


def load_rule_book(session: Session) -> RuleBook:
    by_grant: dict[int, ReminderRule] = {}
    by_funder: dict[int, ReminderRule] = {}
    for policy in session.scalars(select(ReminderPolicy)):
        rule = ReminderRule.from_policy(policy)
        if policy.grant_id is not None:
            by_grant[policy.grant_id] = rule
        elif policy.funder_id is not None:
            by_funder[policy.funder_id] = rule
    return RuleBook(by_grant, by_funder)


def rule_for_grant(session: Session, grant: Grant) -> ReminderRule:
    return load_rule_book(session).rule_for(grant.id, grant.funder_id)


def set_reminder_policy(
    session: Session,
    *,
    grant_id: int | None = None,
    funder_id: int | None = None,
    days_before: str | list[int] = "30,14,7,1",
    on_due_day: bool = True,
    overdue_every_days: int = 7,
    escalate_after_days: int | None = 14,
    escalate_roles: str | list[str] = "lead,finance,program",
    send_email: bool = True,
) -> ReminderPolicy:
    """Create or replace the policy of a grant, or the default policy of a funder's grants."""
    if (grant_id is None) == (funder_id is None):
        raise DomainValidationError({"grant": ["choose either a grant or a funder"]})
    column = ReminderPolicy.grant_id if grant_id is not None else ReminderPolicy.funder_id
    policy = session.scalar(select(ReminderPolicy).where(column == (grant_id or funder_id)))
    if policy is None:
        policy = ReminderPolicy(grant_id=grant_id, funder_id=funder_id)
        session.add(policy)
    policy.days_before = ",".join(str(d) for d in days_before) if isinstance(days_before, list) else days_before
    policy.on_due_day = on_due_day
    policy.overdue_every_days = overdue_every_days
    policy.escalate_after_days = escalate_after_days
    policy.escalate_roles = ",".join(escalate_roles) if isinstance(escalate_roles, list) else escalate_roles
    policy.send_email = send_email
    with session.no_autoflush:
        validate_record(session, policy)
    session.flush()
    return policy


# ---------------------------------------------------------------- in-app notifications


def notifications_for(session: Session, user_id: int, *, limit: int = 100, unread_only: bool = False) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(
        select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ) or 0


def mark_read(session: Session, user_id: int, notification_ids: list[int] | None, *, now: dt.datetime) -> int:
    """Mark some (or, with None, all) of a user's notifications read. Others' are never touched."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_ids is not None:
        stmt = stmt.where(Notification.id.in_(notification_ids))
    result = session.execute(stmt.values(read_at=utc(now)).execution_options(synchronize_session=False))
    return result.rowcount or 0


# ---------------------------------------------------------------- calendar feed tokens


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_calendar_token(session: Session, user_id: int, *, now: dt.datetime) -> str:
    """A new secret for the user's feed URL; any previous URL stops working. Shown once, stored hashed."""
    token = secrets.token_urlsafe(32)
    row = session.scalar(select(CalendarToken).where(CalendarToken.user_id == user_id))
    if row is None:
        row = CalendarToken(user_id=user_id)
        session.add(row)
    row.token_sha256 = _token_hash(token)
    row.created_at = utc(now)
    row.last_used_at = None
    session.flush()
    return token


def revoke_calendar_token(session: Session, user_id: int) -> bool:
    result = session.execute(delete(CalendarToken).where(CalendarToken.user_id == user_id))
    return bool(result.rowcount)


def calendar_token_created(session: Session, user_id: int) -> dt.datetime | None:
    return session.scalar(select(CalendarToken.created_at).where(CalendarToken.user_id == user_id))


def user_for_calendar_token(session: Session, token: str) -> Any | None:
    """The active user whose feed this token opens, or None (unknown, revoked, or deactivated)."""
    from flask_appbuilder.security.sqla.models import User

    if not token or len(token) > 200:
        return None
    user = session.scalar(
        select(User).join(CalendarToken, CalendarToken.user_id == User.id).where(
            CalendarToken.token_sha256 == _token_hash(token)
        )
    )
    if user is None or not user.active:
        return None
    return user


# ---------------------------------------------------------------- the outbox


def requeue_reminders(session: Session, log_ids: list[int], *, now: dt.datetime) -> int:
    """Send failed (or outbox) reminders again at the next sweep. Sent ones are never resent."""
    result = session.execute(
        update(ReminderLog)
        .where(
            ReminderLog.id.in_(log_ids),
            ReminderLog.status.in_([ReminderStatus.failed, ReminderStatus.outbox]),
        )
        .values(status=ReminderStatus.failed, next_attempt_at=utc(now))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


# ---------------------------------------------------------------- built-in "still missing" providers

# Deadlines whose content is a report on a period's work: indicators and budget matter to them.
REPORTING_KINDS = (DeadlineKind.report, DeadlineKind.disbursement_request, DeadlineKind.requirement)
MAX_LISTED = 3


def register_builtin_providers() -> None:
    """Providers for the domains this installation has (by the domain list, not by trial imports)."""
    from app.domains import DOMAINS

    if "indicators" in DOMAINS:
        register_missing_provider(indicators_without_results)
    if "budgets" in DOMAINS:
        register_missing_provider(budget_lines_over_threshold)
    if "grants.evidence" in DOMAINS:
        register_missing_provider(evidence_awaiting_verification)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def indicators_without_results(session: Session, deadline: Deadline) -> list[str]:
    """'2 indicators without results for S1: KP-1c, HR-TRAIN' for a report on a period."""
    from indicators.services import indicator_progress

    if deadline.kind not in REPORTING_KINDS:
        return []
    period = period_for_deadline(session, deadline)
    if period is None:
        return []
    rows = indicator_progress(session, deadline.grant_id, period.id)
    empty = sorted({row.indicator_code for row in rows if row.disaggregation is None and row.applicable
                    and row.actual is None})
    if not empty:
        return []
    noun = "indicator" if len(empty) == 1 else "indicators"
    return [f"{len(empty)} {noun} without results for {period.label}: {_listed(empty)}"]


def budget_lines_over_threshold(session: Session, deadline: Deadline) -> list[str]:
    """Budget lines overspent beyond the funder's variance rule, up to the deadline's period."""
    from budgets.report import variance_flags

    if deadline.kind not in REPORTING_KINDS:
        return []
    period = period_for_deadline(session, deadline)
    if period is None:
        return []
    lines = [f"{flag.key} {flag.name}" for flag in variance_flags(session, deadline.grant_id, period.id)
             if flag.level == "line"]
    if not lines:
        return []
    noun = "budget line" if len(lines) == 1 else "budget lines"
    return [f"{len(lines)} {noun} over the variance threshold (needs the funder's approval): {_listed(lines)}"]


def evidence_awaiting_verification(session: Session, deadline: Deadline) -> list[str]:
    """A count only: evidence titles can be sensitive and reminders travel by e-mail."""
    from grants.evidence.services import evidence_register

    if deadline.kind not in (*REPORTING_KINDS, DeadlineKind.audit):
        return []
    waiting = sum(1 for row in evidence_register(session, deadline.grant_id, include_confidential=True)
                  if row.status == "submitted")
    if not waiting:
        return []
    return [f"{waiting} evidence item{'s' if waiting != 1 else ''} awaiting verification"]
