"""Every state change of evidence, and the one rule for who sees which evidence.

Plain functions over a SQLAlchemy session (no Flask). The web views, the REST
API, the demo loader and the exports all go through ``visible_evidence`` /
``evidence_register``, so only evidence shared with donors reaches them, in one place.
Checking an upload's bytes lives in ``uploads``; meetings in ``consultations``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any, BinaryIO

from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from core import clock
from core.errors import DomainValidationError, ErrorCollector
from core.formatting import gettext as _
from core.records import parse_enum, validate_record
from core.storage import FileStore
from grants.evidence.consultations import (  # noqa: F401  (re-exported: older callers import them from here)
    consultations_between,
    create_body,
    get_body,
    record_consultation,
)
from grants.evidence.models import (
    DEFAULT_SENSITIVITY,
    SHARED_WITH_DONORS,
    Evidence,
    EvidenceKind,
    EvidenceLink,
    Sensitivity,
    VerificationStatus,
)
from grants.evidence.targets import describe_target_problem, resolve, target_kinds
from grants.evidence.uploads import (
    DEFAULT_MAX_BYTES,
    CheckedUpload,
    check_upload,
    read_capped,
)
from grants.models import Grant
from grants.services import can_see_grant, user_role_names, visible_grant_ids_query

# ---------------------------------------------------------------- who sees which evidence


def visible_sensitivities(user: Any) -> frozenset[Sensitivity] | None:
    """The sensitivity levels ``user`` may see; None for every level.

    Donors (and anyone signed in with no staff or auditor role) see only what is
    shared with donors; staff and auditors of a grant see its staff-only and
    restricted items too.
    """
    names = user_role_names(user)
    if "Admin" in names:
        return None
    if not names or "Donor" in names or not getattr(user, "is_authenticated", False):
        return SHARED_WITH_DONORS
    return None


def can_see_confidential(user: Any) -> bool:
    """True when ``user`` sees staff-only and restricted evidence (staff and auditors, never donors)."""
    return visible_sensitivities(user) is None


def visible_evidence_clause(user: Any) -> ColumnElement[bool]:
    """The WHERE clause limiting Evidence to what ``user`` may see: their grants, and for donors
    only what is shared with donors. Every path uses this one rule."""
    clauses: list[ColumnElement[bool]] = []
    grants = visible_grant_ids_query(user)
    if grants is not None:
        clauses.append(Evidence.grant_id.in_(grants))
    levels = visible_sensitivities(user)
    if levels is not None:
        clauses.append(Evidence.sensitivity.in_(sorted(levels)))
    return and_(true(), *clauses)


def visible_evidence(user: Any) -> Select[tuple[Evidence]]:
    return select(Evidence).where(visible_evidence_clause(user))


def get_visible_evidence(session: Session, user: Any, evidence_id: Any) -> Evidence | None:
    try:
        evidence_id = int(evidence_id)
    except (TypeError, ValueError):
        return None
    return session.scalar(visible_evidence(user).where(Evidence.id == evidence_id))


def evidence_for_target(session: Session, user: Any, kind: str, target_id: int) -> list[Evidence]:
    """Evidence linked to a target that ``user`` may see, newest first."""
    query = (
        visible_evidence(user)
        .join(EvidenceLink, EvidenceLink.evidence_id == Evidence.id)
        .where(EvidenceLink.target_kind == kind, EvidenceLink.target_id == target_id)
        .order_by(Evidence.evidence_date.desc(), Evidence.id)
    )
    return list(session.scalars(query))


# ---------------------------------------------------------------- creating and changing evidence


def create_evidence(
    session: Session,
    store: FileStore | None,
    *,
    grant: Grant | int,
    title: str,
    kind: EvidenceKind | str,
    evidence_date: date | None,
    sensitivity: Sensitivity | str = DEFAULT_SENSITIVITY,
    uploaded_by: Any = None,
    content: bytes | IO[bytes] | None = None,
    filename: str | None = None,
    url: str | None = None,
    description: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
    is_demo: bool = False,
) -> Evidence:
    """Record an evidence item: an uploaded file (checked, stored by checksum) or a link.

    Everything is checked before the file is stored; if anything is wrong,
    DomainValidationError names the field and neither a blob nor a row is left.
    The returned item's ``looks_like_people_list`` tells the caller to warn.
    """
    grant_id = grant.id if isinstance(grant, Grant) else grant
    errors = ErrorCollector()
    if uploaded_by is not None and not can_see_grant(session, uploaded_by, grant_id):
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
    kind = parse_enum(EvidenceKind, kind, "kind")
    sensitivity = parse_enum(Sensitivity, sensitivity, "sensitivity")
    has_content = content is not None
    url = (url or "").strip() or None
    if has_content and url:
        errors.add("url", _("an evidence item is either an uploaded file or a link, not both"))
    errors.raise_if_any()
    evidence = Evidence(
        grant_id=grant_id,
        title=(title or "").strip(),
        kind=kind,
        evidence_date=evidence_date,
        sensitivity=sensitivity,
        status=VerificationStatus.submitted,
        description=description,
        url=url,
        uploaded_by_id=getattr(uploaded_by, "id", None),
        uploaded_at=now or clock.now(),
        is_demo=is_demo,
    )
    checked: CheckedUpload | None = None
    data = b""
    if content is not None:  # has_content
        display = (filename or "").rsplit("/", 1)[-1] or "the file"
        data = read_capped(content, max_bytes, display)
        checked = check_upload(data, filename)
        evidence.file_name = checked.file_name
        evidence.display_name = checked.display_name
        evidence.content_type = checked.content_type
        evidence.size_bytes = len(data)
        evidence.looks_like_people_list = checked.looks_like_people_list
        # A placeholder checksum so validation sees "a file"; replaced once stored.
        evidence.sha256 = "0" * 64
    validate_record(session, evidence)
    if checked is None:
        session.add(evidence)
        session.flush()
        return evidence
    if store is None:
        raise DomainValidationError({"file": [_("file storage is not configured")]})
    existed = store.exists(_sha(data))
    sha = store.put(data)
    try:
        evidence.sha256 = sha
        session.add(evidence)
        session.flush()
    except Exception:
        session.rollback()
        if not existed and not _blob_in_use(session, sha):
            store.delete(sha)  # no orphan blob when the row could not be saved
        raise
    return evidence


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blob_in_use(session: Session, sha: str) -> bool:
    return bool(session.scalar(select(func.count(Evidence.id)).where(Evidence.sha256 == sha)))


def delete_evidence(session: Session, evidence: Evidence) -> str | None:
    """Delete an evidence item and its links; returns the checksum of its blob, to
    pass to ``discard_blob_if_unused`` once the deleting transaction has committed."""
    sha = evidence.sha256
    session.delete(evidence)
    return sha


def discard_blob_if_unused(session: Session, store: FileStore, sha: str | None) -> bool:
    """Delete a blob nothing refers to any more (call after the deleting transaction committed)."""
    if not sha or _blob_in_use(session, sha):
        return False
    return store.delete(sha)


def read_evidence_file(store: FileStore, evidence: Evidence) -> BinaryIO:
    """The stored bytes of a file item, verified against its checksum. The caller checked access."""
    if not evidence.sha256:
        raise DomainValidationError({"file": [_("this evidence is a link, not a stored file")]})
    return store.open(evidence.sha256)


def verify_evidence(
    session: Session,
    evidence: Evidence,
    reviewer: Any,
    decision: VerificationStatus | str,
    comment: str | None = None,
    now: datetime | None = None,
) -> Evidence:
    """Mark evidence verified or rejected; the reviewer must not be the uploader."""
    decision = parse_enum(VerificationStatus, decision, "decision")
    errors = ErrorCollector()
    if decision == VerificationStatus.submitted:
        errors.add("decision", _("choose verified or rejected"))
    if reviewer is None or getattr(reviewer, "id", None) is None:
        errors.add("reviewer", _("is required"))
    elif reviewer.id == evidence.uploaded_by_id:
        errors.add("reviewer", _("evidence must be verified by someone other than the person who uploaded it"))
    elif not can_see_grant(session, reviewer, evidence.grant_id) or (
        (levels := visible_sensitivities(reviewer)) is not None and evidence.sensitivity not in levels
    ):
        errors.add("reviewer", _("may not review this evidence"))
    if decision == VerificationStatus.rejected and not (comment or "").strip():
        errors.add("comment", _("say why the evidence is rejected"))
    errors.raise_if_any()
    evidence.status = decision
    evidence.verified_by_id = reviewer.id
    evidence.verified_at = now or clock.now()
    evidence.verification_comment = (comment or "").strip() or None
    validate_record(session, evidence)
    session.flush()
    return evidence


def link_evidence(
    session: Session, evidence: Evidence, target_kind: str, target_id: Any, user: Any = None, note: str | None = None
) -> EvidenceLink:
    """Say that ``evidence`` supports a target; the target must be of the same grant and visible to ``user``."""
    try:
        target_id = int(target_id)
    except (TypeError, ValueError):
        raise DomainValidationError({"target_id": [_("'%(value)s' is not a record number", value=target_id)]}) from None
    if user is not None:
        target = resolve(session, target_kind, target_id)
        if target is not None and not can_see_grant(session, user, target.grant_id):
            # Same words as a missing record: never confirm that a hidden record exists.
            label = target_kinds().get(target_kind, target_kind)
            raise DomainValidationError({"target": [_("there is no %(kind)s #%(id)s", kind=label, id=target_id)]})
        if get_visible_evidence(session, user, evidence.id) is None:
            raise DomainValidationError({"evidence": [_("is not evidence you have access to")]})
    problem = describe_target_problem(session, target_kind, target_id, evidence.grant_id)
    if problem:
        raise DomainValidationError({"target": [problem]})
    clash = session.scalar(
        select(EvidenceLink.id).where(
            EvidenceLink.evidence_id == evidence.id,
            EvidenceLink.target_kind == target_kind,
            EvidenceLink.target_id == target_id,
        )
    )
    if clash:
        raise DomainValidationError({"target": [_("this evidence is already linked to it")]})
    link = EvidenceLink(
        evidence=evidence,
        grant_id=evidence.grant_id,
        target_kind=target_kind,
        target_id=target_id,
        note=(note or "").strip() or None,
    )
    session.add(link)
    session.flush()
    return link


def unlink_evidence(session: Session, link: EvidenceLink) -> None:
    session.delete(link)
    session.flush()


def describe_links(session: Session, evidence: Evidence) -> list[tuple[EvidenceLink, str]]:
    """Each link of ``evidence`` with a readable label of what it supports."""
    out = []
    for link in evidence.links:
        target = resolve(session, link.target_kind, link.target_id)
        label = (
            target.label
            if target
            else _("%(kind)s #%(id)s (no longer exists)", kind=link.target_kind, id=link.target_id)
        )
        out.append((link, label))
    return out


# ---------------------------------------------------------------- the evidence register (exports)


@dataclass(frozen=True)
class EvidenceRow:
    id: int
    grant_id: int
    title: str
    kind: str
    evidence_date: date
    sensitivity: str
    status: str
    file_name: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    url: str | None
    verified_at: datetime | None
    supports: str  # "requirement #3; consultation #7"


def evidence_register(session: Session, grant_id: int, all_levels: bool = False) -> list[EvidenceRow]:
    """The evidence of a grant as plain rows for exports (named dataset ``evidence_register``).

    Only what is shared with donors, unless ``all_levels`` is True, which only an
    internal caller that never shows the rows to a donor (e.g. "still missing"
    checks) may pass; anything that may reach a donor uses the default. Stable:
    ordered by date, id.
    """
    columns = (
        Evidence.id,
        Evidence.grant_id,
        Evidence.title,
        Evidence.kind,
        Evidence.evidence_date,
        Evidence.sensitivity,
        Evidence.status,
        Evidence.display_name,
        Evidence.content_type,
        Evidence.size_bytes,
        Evidence.sha256,
        Evidence.url,
        Evidence.verified_at,
    )
    query = select(*columns).where(Evidence.grant_id == grant_id).order_by(Evidence.evidence_date, Evidence.id)
    if not all_levels:
        query = query.where(Evidence.sensitivity.in_(sorted(SHARED_WITH_DONORS)))
    links: dict[int, list[str]] = {}
    link_rows = session.execute(
        select(EvidenceLink.evidence_id, EvidenceLink.target_kind, EvidenceLink.target_id)
        .where(EvidenceLink.grant_id == grant_id)
        .order_by(EvidenceLink.id)
    )
    for evidence_id, kind, target_id in link_rows:
        links.setdefault(evidence_id, []).append(f"{kind} #{target_id}")
    return [
        EvidenceRow(
            id=row.id,
            grant_id=row.grant_id,
            title=row.title,
            kind=row.kind.value,
            evidence_date=row.evidence_date,
            sensitivity=row.sensitivity.value,
            status=row.status.value,
            file_name=row.display_name,
            content_type=row.content_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            url=row.url,
            verified_at=row.verified_at,
            supports="; ".join(links.get(row.id, [])),
        )
        for row in session.execute(query)
    ]


def evidence_counts(session: Session, user: Any, grant_id: int) -> dict[str, int]:
    """Visible evidence of a grant counted by verification status (for the grant page)."""
    query = (
        select(Evidence.status, func.count(Evidence.id))
        .where(visible_evidence_clause(user), Evidence.grant_id == grant_id)
        .group_by(Evidence.status)
    )
    return {status.value: count for status, count in session.execute(query)}
