"""What is still missing for a deadline: the ``MISSING_WORK`` registry of checks other domains add.

A check is ``check(session, deadline) -> ["3 indicators without results for S1", ...]``
(an empty list when nothing is missing). The domains that know about the
work add theirs from their ``contributions`` module: grants (evidence awaiting
verification), budgets and indicators; this package never imports them.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.formatting import gettext as _
from core.registry import Registry
from grants.deadlines.models import Deadline, DeadlineKind, DeadlineSource
from grants.models import ReportingPeriod

MissingCheck = Callable[[Session, Deadline], list[str]]

MISSING_WORK: Registry[MissingCheck] = Registry("still-missing check")

# Deadlines whose content is a report on a period's work: indicators and budget matter to them.
REPORTING_KINDS = (DeadlineKind.report, DeadlineKind.disbursement_request, DeadlineKind.requirement)
MAX_LISTED = 3


def missing_for(session: Session, deadline: Deadline) -> list[str]:
    """Every check's missing items for an open deadline (nothing for submitted/waived ones)."""
    if deadline.submitted_on is not None or deadline.waived:
        return []
    items: list[str] = []
    for check in MISSING_WORK.values():
        items.extend(check(session, deadline))
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


def reported_period(session: Session, deadline: Deadline) -> ReportingPeriod | None:
    """The period a reporting deadline is about, or None when the deadline is not a report on work."""
    if deadline.kind not in REPORTING_KINDS:
        return None
    return period_for_deadline(session, deadline)


def listed(items: list[str]) -> str:
    """'a, b, c and 2 more': a reminder names a few items, never a whole register."""
    shown = ", ".join(items[:MAX_LISTED])
    if len(items) <= MAX_LISTED:
        return shown
    return _("%(items)s and %(count)d more", items=shown, count=len(items) - MAX_LISTED)
