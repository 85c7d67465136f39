"""Changing who sees an evidence item: raising it is one step, lowering a restricted item takes two people.

Plain functions over a SQLAlchemy session (no Flask). Anyone who may edit an
item may make it *more* protected at once (``change_sensitivity``). Lowering a
*restricted* item is a request (``request_lowering``) that another Admin, or a
Finance or Program member of the grant, approves (``decide``); the change and
the decision are both in the audit trail (``SensitivityRequest`` is audited).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.roles import SENSITIVITY_APPROVER_ROLES
from core import clock
from core.errors import DomainValidationError, ErrorCollector
from core.formatting import gettext as _
from core.records import parse_enum, validate_record
from grants.evidence.models import (
    Evidence,
    RequestStatus,
    Sensitivity,
    SensitivityRequest,
)
from grants.models import GrantMembership
from grants.services import can_see_grant, user_role_names


def needs_second_person(evidence: Evidence, to_level: Sensitivity) -> bool:
    return evidence.sensitivity == Sensitivity.restricted and to_level.rank < Sensitivity.restricted.rank


def change_sensitivity(session: Session, evidence: Evidence, to_level: Sensitivity | str, user: Any = None) -> Evidence:
    """Set the level directly; refused (naming the field) when it would lower a restricted item."""
    level = parse_enum(Sensitivity, to_level, "sensitivity")
    if user is not None and not can_see_grant(session, user, evidence.grant_id):
        raise DomainValidationError({"evidence": [_("is not evidence you have access to")]})
    evidence.sensitivity = level
    validate_record(session, evidence)  # refuses lowering a restricted item without approval
    session.flush()
    return evidence


def pending_request(session: Session, evidence: Evidence) -> SensitivityRequest | None:
    return session.scalar(
        select(SensitivityRequest).where(
            SensitivityRequest.evidence_id == evidence.id, SensitivityRequest.status == RequestStatus.pending
        )
    )


def request_lowering(
    session: Session,
    evidence: Evidence,
    to_level: Sensitivity | str,
    requested_by: Any,
    reason: str | None,
    now: datetime | None = None,
) -> SensitivityRequest:
    """Ask for a restricted item to be seen by more people; nothing changes until someone else approves."""
    level = parse_enum(Sensitivity, to_level, "to_level")
    errors = ErrorCollector()
    if requested_by is None or getattr(requested_by, "id", None) is None:
        errors.add("requested_by", _("is required"))
    elif not can_see_grant(session, requested_by, evidence.grant_id):
        errors.add("evidence", _("is not evidence you have access to"))
    if not needs_second_person(evidence, level):
        errors.add("to_level", _("only lowering a restricted item needs approval; change the level directly"))
    if not (reason or "").strip():
        errors.add("reason", _("say why more people should see it"))
    if pending_request(session, evidence) is not None:
        errors.add("to_level", _("a request for this item is already waiting for a decision"))
    errors.raise_if_any()
    request = SensitivityRequest(
        evidence_id=evidence.id,
        grant_id=evidence.grant_id,
        from_level=evidence.sensitivity,
        to_level=level,
        reason=(reason or "").strip(),
        status=RequestStatus.pending,
        requested_by_id=requested_by.id,
        requested_at=now or clock.now(),
    )
    validate_record(session, request)
    session.add(request)
    session.flush()
    return request


def may_decide(session: Session, request: SensitivityRequest, user: Any) -> str | None:
    """None when ``user`` may approve or reject the request, else why not (in words)."""
    if user is None or getattr(user, "id", None) is None:
        return _("sign in to decide")
    if user.id == request.requested_by_id:
        return _("a second person decides: not the one who asked")
    names = user_role_names(user)
    if not names & SENSITIVITY_APPROVER_ROLES:
        return _("only an Admin, or a Finance or Program member of the grant, decides")
    if "Admin" in names:
        return None
    member = session.scalar(
        select(GrantMembership.id).where(
            GrantMembership.grant_id == request.grant_id, GrantMembership.user_id == user.id
        )
    )
    if member is None or not can_see_grant(session, user, request.grant_id):
        return _("only an Admin, or a Finance or Program member of the grant, decides")
    return None


def decide(
    session: Session,
    request: SensitivityRequest,
    user: Any,
    approve: bool,
    comment: str | None = None,
    now: datetime | None = None,
) -> SensitivityRequest:
    """Approve (the item takes the requested level) or reject a pending request; the caller commits."""
    errors = ErrorCollector()
    if request.status != RequestStatus.pending:
        errors.add(
            "request",
            _("was already approved") if request.status == RequestStatus.approved else _("was already rejected"),
        )
    problem = may_decide(session, request, user)
    if problem:
        errors.add("decided_by", problem)
    if not approve and not (comment or "").strip():
        errors.add("comment", _("say why the request is rejected"))
    errors.raise_if_any()
    request.status = RequestStatus.approved if approve else RequestStatus.rejected
    request.decided_by_id = user.id
    request.decided_at = now or clock.now()
    request.decision_comment = (comment or "").strip() or None
    validate_record(session, request)
    if approve:
        evidence = request.evidence or session.get(Evidence, request.evidence_id)
        assert evidence is not None  # the request goes with its evidence (ON DELETE CASCADE)
        evidence.sensitivity = request.to_level
        evidence._lowering_approved = True  # type: ignore[attr-defined]
        try:
            validate_record(session, evidence)
            session.flush()
        finally:
            evidence.__dict__.pop("_lowering_approved", None)
    else:
        session.flush()
    return request


def describe(request: SensitivityRequest) -> str:
    """The request in words, for the page that shows it (in the reader's language; never stored)."""
    return _(
        "From %(before)s to %(after)s: %(reason)s",
        before=Sensitivity(request.from_level).label.lower(),
        after=Sensitivity(request.to_level).label.lower(),
        reason=request.reason,
    )
