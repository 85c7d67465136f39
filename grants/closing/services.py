"""Submitting a reporting period to the donor and reopening it: the one write path for both.

``submit_period`` marks the period submitted (who, when) and closes its report
deadline, so it is no longer overdue and its reminders stop; ``reopen_period``
undoes both. Exports calls them from the same operation that publishes or
unpublishes the donor's file, so everything happens in one commit. Plain
functions over a session; no Flask.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock, formatting
from core.errors import DomainValidationError
from core.formatting import gettext as _
from grants.deadlines.mail import describe_days
from grants.deadlines.models import Deadline, DeadlineSource
from grants.deadlines.services import (
    deadline_for_source,
    mark_submitted,
    period_deadline_title,
    reopen_deadline,
    upsert_deadline,
)
from grants.models import PeriodStatus, ReportingPeriod


def period_deadline(session: Session, period: ReportingPeriod) -> Deadline | None:
    """The report deadline of a period, created now if the reminder sweep has not made it yet."""
    deadline = deadline_for_source(session, DeadlineSource.period, period.id)
    if deadline is None and period.report_due is not None:
        deadline = upsert_deadline(
            session,
            grant_id=period.grant_id,
            source_kind=DeadlineSource.period,
            source_id=period.id,
            title=period_deadline_title(period.label, period.start_date, period.end_date),
            due_date=period.report_due,
        )
    return deadline


def submit_period(
    session: Session, period: ReportingPeriod, *, user: str | None, at: dt.datetime | None = None
) -> ReportingPeriod:
    """Record that the period's report went to the donor: status, who and when, and its deadline closed.

    An accepted period stays accepted; a period already submitted keeps its first
    submission's who and when (a corrected file sent later does not rewrite history).
    """
    at = at or clock.now()
    if period.status == PeriodStatus.open:
        period.status = PeriodStatus.submitted
        period.submitted_at = at
        period.submitted_by = user
    deadline = period_deadline(session, period)
    if deadline is not None and deadline.submitted_on is None:
        mark_submitted(session, deadline, on=clock.local(at).date())
    session.flush()
    return period


def reopen_period(session: Session, period: ReportingPeriod, *, reason: str) -> ReportingPeriod:
    """Take a submission back: the period is open again and its deadline counts (and reminds) again."""
    if not (reason or "").strip():
        raise DomainValidationError({"reason": [_("say why the period is reopened")]})
    if period.status == PeriodStatus.accepted:
        raise DomainValidationError(
            {"period": [_("%(period)s was accepted by the donor; it cannot be reopened here", period=period.label)]}
        )
    period.status = PeriodStatus.open
    period.submitted_at = None
    period.submitted_by = None
    deadline = deadline_for_source(session, DeadlineSource.period, period.id)
    if deadline is not None and deadline.submitted_on is not None:
        reopen_deadline(session, deadline)
    session.flush()
    return period


def display_names(session: Session, usernames: set[str | None]) -> dict[str, str]:
    """'petra' -> 'Petra Alexander' for the given usernames, in one query (the username when no name is set)."""
    from flask_appbuilder.security.sqla.models import User

    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    found = {
        row.username: " ".join(p for p in (row.first_name, row.last_name) if p and p.strip() not in ("-", "")).strip()
        or row.username
        for row in session.execute(
            select(User.username, User.first_name, User.last_name).where(User.username.in_(wanted))
        )
    }
    return {name: found.get(name, name) for name in wanted}


def who_and_when(session: Session, username: str | None, at: dt.datetime | None) -> str:
    """'on 1 Dec 2026 by Petra Alexander' (the organisation's date)."""
    parts = []
    if at is not None:
        parts.append(_("on %(date)s", date=formatting.day(clock.local(at).date())))
    if username:
        parts.append(_("by %(name)s", name=display_names(session, {username}).get(username, username)))
    return " ".join(parts)


def period_state(session: Session, period: ReportingPeriod) -> dict[str, Any]:
    """What the period page says about the submission and the deadline, in words."""
    deadline = deadline_for_source(session, DeadlineSource.period, period.id)
    today = clock.today()
    if period.status == PeriodStatus.accepted:
        status = _("Accepted by the donor")
    elif period.status == PeriodStatus.submitted:
        status = _(
            "Submitted to the donor %(who_and_when)s",
            who_and_when=who_and_when(session, period.submitted_by, period.submitted_at),
        )
    else:
        status = _("Open: not yet submitted")
    if period.report_due is None:
        due = _("No report date is set for this period.")
    elif deadline is not None and deadline.submitted_on is not None:
        due = _(
            "Report was due %(due)s; deadline closed on %(closed)s.",
            due=formatting.day(period.report_due),
            closed=formatting.day(deadline.submitted_on),
        )
    else:
        when = describe_days((period.report_due - today).days)
        due = _("Report due %(date)s (%(when)s).", date=formatting.day(period.report_due), when=when)
    return {"status": status.strip(), "due": due, "deadline": deadline}
