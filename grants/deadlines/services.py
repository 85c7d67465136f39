"""Every state change of deadlines, and the lists of deadlines people see.

Plain functions over a SQLAlchemy session; no Flask. ``today`` is always
passed in, so tests and the scheduler decide what day it is. Reminder
policies live in ``policies``, notifications in ``notifications``, calendar
feed tokens in ``calendar``, "still missing" checks in ``missing``, and the
reminder sweep in ``reminders``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, joinedload

from core.errors import DomainValidationError
from core.formatting import current_language, day, ngettext
from core.formatting import gettext as _
from core.records import validate_record
from grants.compliance.models import Requirement
from grants.deadlines.missing import missing_for
from grants.deadlines.models import Deadline, DeadlineKind, DeadlineSource, DeadlineState
from grants.deadlines.policies import LEAD_ROLES
from grants.models import Grant, GrantMembership, PeriodStatus, ReportingPeriod
from grants.services import visible_grant_ids_query

# ---------------------------------------------------------------- deadlines


def _kind(value: DeadlineKind | str | None, default: DeadlineKind) -> DeadlineKind:
    if value is None:
        return default
    try:
        return DeadlineKind(value)
    except ValueError:
        known = ", ".join(k.value for k in DeadlineKind)
        raise DomainValidationError(
            {"kind": [_("'%(value)s' is not one of %(known)s", value=value, known=known)]}
        ) from None


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
    raise DomainValidationError(
        {field_name: [_("'%(value)s' is not a date (use YYYY-MM-DD, e.g. 2027-03-01)", value=value)]}
    )


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
        raise DomainValidationError(
            {"source_kind": [_("'%(value)s' is not one of %(known)s", value=source_kind, known=known)]}
        )
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
        raise DomainValidationError({name: [_("cannot be changed here")] for name in sorted(unknown)})
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
            errors[name] = [
                _("comes from the reporting period; change it there")
                if deadline.source_kind == DeadlineSource.period
                else _("comes from the requirement; change it there")
            ]
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
        raise DomainValidationError({"_": [comes_from_message(deadline.source_kind)]})
    session.delete(deadline)
    session.flush()


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    removed: int = 0


def period_deadline_title(label: str, start: date, end: date) -> str:
    """The stored title of a period's deadline (English, as it was always stored); shown through ``shown_titles``."""
    return f"Report for {label} ({start.day} {start:%b %Y} – {end.day} {end:%b %Y})"


def shown_titles(session: Session, deadlines: Iterable[Any]) -> dict[int, str]:
    """Each deadline's title as the reader reads it, by deadline id (a query or two for any number of deadlines).

    A period's deadline is titled by the system, so it is written in the reader's language from its
    period; a requirement's deadline takes the requirement's title in the reader's language when
    one was given (``Requirement.titles``); every other title was typed by someone and stays as
    entered. English keeps the stored title. ``deadlines``: anything with ``id``, ``title``,
    ``source_kind`` and ``source_id`` (Deadline records, or rows of those columns).
    """
    deadlines = list(deadlines)
    titles = {d.id: d.title for d in deadlines}
    language = current_language()
    if language == "en":
        return titles
    period_ids = {d.source_id for d in deadlines if d.source_kind == DeadlineSource.period and d.source_id}
    requirement_ids = {d.source_id for d in deadlines if d.source_kind == DeadlineSource.requirement and d.source_id}
    periods: dict[int, Any] = {}
    for chunk in _chunks(sorted(period_ids)):
        periods.update(
            (row.id, row)
            for row in session.execute(
                select(
                    ReportingPeriod.id, ReportingPeriod.label, ReportingPeriod.start_date, ReportingPeriod.end_date
                ).where(ReportingPeriod.id.in_(chunk))
            )
        )
    # A requirement's deadline is stored as "<code> <title> (<window>)" (compliance.register_deadlines):
    # the title part is swapped for the reader's when the requirement has one in that language.
    requirement_titles: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(sorted(requirement_ids)):
        for requirement_id, code, title, translated in session.execute(
            select(Requirement.id, Requirement.code, Requirement.title, Requirement.titles).where(
                Requirement.id.in_(chunk), Requirement.titles.is_not(None)
            )
        ):
            found = (translated or {}).get(language)
            if isinstance(found, str) and found.strip():
                requirement_titles[requirement_id] = (f"{code} {title} (", f"{code} {found} (")
    for deadline in deadlines:
        if deadline.source_kind == DeadlineSource.requirement:
            stored, shown = requirement_titles.get(deadline.source_id, ("", ""))
            if stored and (deadline.title or "").startswith(stored):
                titles[deadline.id] = shown + deadline.title[len(stored) :]
            continue
        period = periods.get(deadline.source_id) if deadline.source_kind == DeadlineSource.period else None
        if period is not None:
            titles[deadline.id] = _(
                "Report for %(period)s (%(start)s – %(end)s)",
                period=period.label,
                start=day(period.start_date),
                end=day(period.end_date),
            )
    return titles


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    """``ids`` a few hundred at a time: SQLite limits the number of bound parameters."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


_PERIOD_TITLE = re.compile(
    r"Report for (?P<label>.+) \((?P<start>\d{1,2} \w{3} \d{4}) – (?P<end>\d{1,2} \w{3} \d{4})\)"
)


def title_in_reader_language(title: str | None) -> str:
    """A stored title in the reader's language when the system wrote it (a period's report), else as entered.

    For lists that are given only the stored text (FAB's list and show columns); pages that have the
    deadlines use ``shown_titles``.
    """
    found = _PERIOD_TITLE.fullmatch(title or "")
    if found is None or current_language() == "en":
        return title or ""
    try:
        start = dt.datetime.strptime(found["start"], "%d %b %Y").date()
        end = dt.datetime.strptime(found["end"], "%d %b %Y").date()
    except ValueError:
        return title or ""
    return _("Report for %(period)s (%(start)s – %(end)s)", period=found["label"], start=day(start), end=day(end))


def comes_from_message(source_kind: DeadlineSource) -> str:
    """Why a synced deadline cannot be deleted here, in the reader's language."""
    if source_kind == DeadlineSource.period:
        return _("this deadline comes from a reporting period; remove or change it there")
    return _("this deadline comes from a requirement; remove or change it there")


def sync_period_deadlines(session: Session, *, today: date) -> SyncResult:
    """Keep one deadline per reporting period's report_due; idempotent, two queries when nothing changed.

    A submitted or accepted period marks its deadline submitted (on ``today``
    if no date was recorded); a period without a due date, or deleted, loses
    its deadline.
    """
    result = SyncResult()
    periods = session.execute(
        select(
            ReportingPeriod.id,
            ReportingPeriod.grant_id,
            ReportingPeriod.label,
            ReportingPeriod.start_date,
            ReportingPeriod.end_date,
            ReportingPeriod.report_due,
            ReportingPeriod.status,
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
                    grant_id=period.grant_id,
                    source_kind=DeadlineSource.period,
                    source_id=period.id,
                    kind=DeadlineKind.report,
                    title=title,
                    due_date=period.report_due,
                    submitted_on=today if done else None,
                    waived=False,
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
    """ "in 3 days", "tomorrow", "today", "2 days overdue", in the reader's language."""
    if days_left > 1:
        return ngettext("in %(num)d day", "in %(num)d days", days_left)
    if days_left == 1:
        return _("tomorrow")
    if days_left == 0:
        return _("today")
    return ngettext("%(num)d day overdue", "%(num)d days overdue", -days_left)


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
