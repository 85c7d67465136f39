"""What grants itself adds to the shared extension points: its datasets and the evidence check for deadlines.

Loaded by the composition root like every domain's ``contributions`` module,
after all models. ``order`` keeps listings in the order people know them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.datasets import Column, Dataset, FigureKind, FigureQuery, Measure, add_dataset, add_figure_kind
from core.formatting import N_, ngettext
from grants.compliance.models import Requirement
from grants.compliance.services import refresh_requirement_deadlines, requirement_status
from grants.deadlines.missing import MISSING_WORK, REPORTING_KINDS
from grants.deadlines.models import Deadline, DeadlineKind
from grants.deadlines.services import sync_period_deadlines
from grants.evidence.models import SHARED_WITH_DONORS, Sensitivity
from grants.evidence.services import evidence_register
from grants.services import PERIODS_CHANGED

# ---------------------------------------------------------------- still missing for a deadline


def evidence_awaiting_verification(session: Session, deadline: Deadline) -> list[str]:
    """A count only: evidence titles can be sensitive and reminders travel by e-mail."""
    if deadline.kind not in (*REPORTING_KINDS, DeadlineKind.audit):
        return []
    waiting = sum(
        1 for row in evidence_register(session, deadline.grant_id, all_levels=True) if row.status == "submitted"
    )
    if not waiting:
        return []
    return [
        ngettext("%(num)d evidence item awaiting verification", "%(num)d evidence items awaiting verification", waiting)
    ]


MISSING_WORK.add("evidence_awaiting_verification", evidence_awaiting_verification, order=30)


# ---------------------------------------------------------------- after periods are generated: their deadlines


def _period_deadlines(session: Session, grant: Any, today: Any) -> None:
    sync_period_deadlines(session, today=today)


PERIODS_CHANGED.add("period_deadlines", _period_deadlines, order=10)
PERIODS_CHANGED.add("requirement_deadlines", refresh_requirement_deadlines, order=20)


# ---------------------------------------------------------------- datasets


def _periods(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for p in grant.periods:
        yield {
            "label": p.label,
            "start_date": p.start_date,
            "end_date": p.end_date,
            "report_due": p.report_due,
            "status": p.status.value,
        }


def _evidence(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    # Only what is shared with donors: an export can end up on a donor's desk (all_levels stays False).
    for row in evidence_register(session, grant.id):
        if period is not None and not (period.start_date <= row.evidence_date <= period.end_date):
            continue
        yield {
            "date": row.evidence_date,
            "title": row.title,
            "kind": row.kind,
            "sensitivity": Sensitivity(row.sensitivity).label,
            "status": row.status,
            "file": row.file_name or row.url or "",
            "sha256": row.sha256 or "",
            "verified_at": row.verified_at.date() if row.verified_at else None,
            "supports": row.supports,
        }


def _requirements(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    # Explained over what donors may see: an export can end up on a donor's desk.
    for row in requirement_status(session, grant.id, period.id if period else None, levels=SHARED_WITH_DONORS):
        yield {
            "code": row.requirement_code,
            "requirement": row.shown_title,
            "category": row.category,
            "period": row.period_label,
            "due": row.due_date,
            "status": row.status_label,
            "explanation": row.explanation,
            "waiver": row.waiver_justification or "",
        }


add_dataset(
    Dataset(
        name="reporting_periods",
        title=N_("Reporting periods"),
        columns=(
            Column("label", N_("Period"), "text", 10),
            Column("start_date", N_("Start"), "date"),
            Column("end_date", N_("End"), "date"),
            Column("report_due", N_("Report due"), "date"),
            Column("status", N_("Status"), "text", 12),
        ),
        rows=_periods,
    ),
    order=10,
)
add_dataset(
    Dataset(
        "evidence_register",
        N_("Evidence register"),
        (
            Column("date", N_("Date"), "date"),
            Column("title", N_("Title"), "text", 40),
            Column("kind", N_("Kind"), "text", 16),
            Column("sensitivity", N_("Sensitivity"), "text", 11),
            Column("status", N_("Status"), "text", 11),
            Column("file", N_("File or link"), "text", 30),
            Column("sha256", N_("SHA-256"), "text", 20),
            Column("verified_at", N_("Verified"), "date"),
            Column("supports", N_("Supports"), "text", 30),
        ),
        _evidence,
    ),
    order=40,
)
add_dataset(
    Dataset(
        "requirement_status",
        N_("Compliance matrix"),
        (
            Column("code", N_("Code"), "text", 10),
            Column("requirement", N_("Requirement"), "text", 44),
            Column("category", N_("Category"), "text", 16),
            Column("period", N_("Period"), "text", 8),
            Column("due", N_("Due"), "date"),
            Column("status", N_("Status"), "text", 12),
            Column("explanation", N_("Why"), "text", 70),
            Column("waiver", N_("Waiver justification"), "text", 30),
        ),
        _requirements,
    ),
    order=50,
)


# ---------------------------------------------------------------- single figures: one requirement's status


def _requirement_items(session: Session, grant: Any) -> list[tuple[str, str]]:
    return [
        (code, f"{code} — {title}")
        for code, title in session.execute(
            select(Requirement.code, Requirement.title)
            .where(Requirement.grant_id == grant.id)
            .order_by(Requirement.code)
        )
    ]


def _requirement_values(
    session: Session, grant: Any, period: Any, queries: Sequence[FigureQuery]
) -> Mapping[FigureQuery, Any]:
    latest: dict[str, Any] = {}
    # Several windows of one requirement may fall in a period: the last one speaks for it.
    for row in requirement_status(session, grant.id, period.id if period else None, levels=SHARED_WITH_DONORS):
        latest[row.requirement_code] = row
    known = {code: title for code, title in _requirement_items(session, grant)}
    answers: dict[FigureQuery, Any] = {}
    for query in queries:
        if query.item not in known:
            continue
        found = latest.get(query.item)
        if found is None:  # not judged in this period
            answers[query] = None
            continue
        answers[query] = {
            "title": found.shown_title,
            "category": found.category,
            "status": found.status_label,
            "explanation": found.explanation,
            "due": found.due_date,
            "waiver": found.waiver_justification or "",
        }.get(query.measure)
    return answers


add_figure_kind(
    FigureKind(
        name="requirement",
        title=N_("Requirement"),
        item_label=N_("requirement code"),
        measures=(
            Measure("title", N_("Requirement"), "text"),
            Measure("category", N_("Category"), "text"),
            Measure("status", N_("Status"), "text"),
            Measure("explanation", N_("Why (explanation)"), "text"),
            Measure("due", N_("Due"), "date"),
            Measure("waiver", N_("Waiver justification"), "text"),
        ),
        items=_requirement_items,
        values=_requirement_values,
    ),
    order=50,
)
