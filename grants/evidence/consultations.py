"""Every state change of coordinating bodies and consultations (meetings counted by constituency, never by name)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import DomainValidationError, ErrorCollector
from core.formatting import gettext as _
from core.records import validate_record
from grants.evidence.models import ATTENDANCE, Consultation, CoordinatingBody
from grants.models import Grant
from grants.services import can_see_grant


def create_body(
    session: Session, *, code: str, name: str, description: str | None = None, is_demo: bool = False
) -> CoordinatingBody:
    body = CoordinatingBody(
        code=(code or "").strip(), name=(name or "").strip(), description=description, is_demo=is_demo
    )
    validate_record(session, body)
    session.add(body)
    session.flush()
    return body


def get_body(session: Session, code: str) -> CoordinatingBody | None:
    return session.scalar(select(CoordinatingBody).where(CoordinatingBody.code == code))


def record_consultation(
    session: Session,
    *,
    grant: Grant | int,
    body: CoordinatingBody,
    held_on: date,
    title: str,
    attendance: dict[str, int] | None = None,
    agenda: str | None = None,
    decisions: str | None = None,
    location: str | None = None,
    user: Any = None,
    is_demo: bool = False,
) -> Consultation:
    """Record a meeting with attendance COUNTS by constituency (never names)."""
    grant_id = grant.id if isinstance(grant, Grant) else grant
    if user is not None and not can_see_grant(session, user, grant_id):
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
    errors = ErrorCollector()
    counts: dict[str, int] = {}
    for key, value in (attendance or {}).items():
        if key not in ATTENDANCE:
            errors.add(
                f"attendance.{key}", _("unknown constituency; use one of: %(known)s", known=", ".join(ATTENDANCE))
            )
            continue
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < 0:
            errors.add(
                f"attendance.{key}",
                _(
                    "'%(value)s' is not a whole number of 0 or more (attendance is counted, never listed by name)",
                    value=value,
                ),
            )
            continue
        counts[key] = number
    errors.raise_if_any()
    consultation = Consultation(
        grant_id=grant_id,
        body=body,
        held_on=held_on,
        title=(title or "").strip(),
        agenda=agenda,
        decisions=decisions,
        location=location,
        is_demo=is_demo,
        **{f"attendance_{key}": counts.get(key, 0) for key in ATTENDANCE},
    )
    validate_record(session, consultation)
    session.add(consultation)
    session.flush()
    return consultation


def consultations_between(
    session: Session, grant_id: int, body_id: int | None, start: date, end: date
) -> list[Consultation]:
    query = select(Consultation).where(
        Consultation.grant_id == grant_id, Consultation.held_on >= start, Consultation.held_on <= end
    )
    if body_id is not None:
        query = query.where(Consultation.body_id == body_id)
    return list(session.scalars(query.order_by(Consultation.held_on, Consultation.id)))
