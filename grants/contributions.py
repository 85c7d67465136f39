"""What grants itself adds to the shared extension points: its datasets and the evidence check for deadlines.

Loaded by the composition root like every domain's ``contributions`` module,
after all models. ``order`` keeps listings in the order people know them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.orm import Session

from core.datasets import Column, Dataset, add_dataset
from grants.compliance.services import requirement_status
from grants.deadlines.missing import MISSING_WORK, REPORTING_KINDS
from grants.deadlines.models import Deadline, DeadlineKind
from grants.evidence.services import evidence_register

# ---------------------------------------------------------------- still missing for a deadline


def evidence_awaiting_verification(session: Session, deadline: Deadline) -> list[str]:
    """A count only: evidence titles can be sensitive and reminders travel by e-mail."""
    if deadline.kind not in (*REPORTING_KINDS, DeadlineKind.audit):
        return []
    waiting = sum(
        1
        for row in evidence_register(session, deadline.grant_id, include_confidential=True)
        if row.status == "submitted"
    )
    if not waiting:
        return []
    return [f"{waiting} evidence item{'s' if waiting != 1 else ''} awaiting verification"]


MISSING_WORK.add("evidence_awaiting_verification", evidence_awaiting_verification, order=30)


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
    # Never confidential: an export can end up on a donor's desk (include_confidential stays False).
    for row in evidence_register(session, grant.id):
        if period is not None and not (period.start_date <= row.evidence_date <= period.end_date):
            continue
        yield {
            "date": row.evidence_date,
            "title": row.title,
            "kind": row.kind,
            "sensitivity": row.sensitivity,
            "status": row.status,
            "file": row.file_name or row.url or "",
            "sha256": row.sha256 or "",
            "verified_at": row.verified_at.date() if row.verified_at else None,
            "supports": row.supports,
        }


def _requirements(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for row in requirement_status(session, grant.id, period.id if period else None):
        yield {
            "code": row.requirement_code,
            "requirement": row.requirement_title,
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
        title="Reporting periods",
        columns=(
            Column("label", "Period", "text", 10),
            Column("start_date", "Start", "date"),
            Column("end_date", "End", "date"),
            Column("report_due", "Report due", "date"),
            Column("status", "Status", "text", 12),
        ),
        rows=_periods,
    ),
    order=10,
)
add_dataset(
    Dataset(
        "evidence_register",
        "Evidence register",
        (
            Column("date", "Date", "date"),
            Column("title", "Title", "text", 40),
            Column("kind", "Kind", "text", 16),
            Column("sensitivity", "Sensitivity", "text", 11),
            Column("status", "Status", "text", 11),
            Column("file", "File or link", "text", 30),
            Column("sha256", "SHA-256", "text", 20),
            Column("verified_at", "Verified", "date"),
            Column("supports", "Supports", "text", 30),
        ),
        _evidence,
    ),
    order=40,
)
add_dataset(
    Dataset(
        "requirement_status",
        "Compliance matrix",
        (
            Column("code", "Code", "text", 10),
            Column("requirement", "Requirement", "text", 44),
            Column("category", "Category", "text", 16),
            Column("period", "Period", "text", 8),
            Column("due", "Due", "date"),
            Column("status", "Status", "text", 12),
            Column("explanation", "Why", "text", 70),
            Column("waiver", "Waiver justification", "text", 30),
        ),
        _requirements,
    ),
    order=50,
)
