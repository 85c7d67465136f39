"""Evidence attached where the work is: from the form of the record it proves (a result, a meeting).

One operation for every such form: link evidence already on the grant that
the user may see, and store a new upload (or link) and link it too, in the
caller's transaction. Anything refused raises DomainValidationError naming the
field; the caller rolls back, so the record and its evidence are saved together
or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.storage import FileStore
from grants.evidence import services
from grants.evidence.models import DEFAULT_SENSITIVITY, Evidence, EvidenceKind, EvidenceLink
from grants.evidence.uploads import DEFAULT_MAX_BYTES


@dataclass
class NewEvidence:
    """What a form's "upload new evidence" boxes hold."""

    title: str = ""
    kind: str = EvidenceKind.other.value
    evidence_date: str = ""
    sensitivity: str = DEFAULT_SENSITIVITY.value
    content: IO[bytes] | None = None
    filename: str | None = None
    url: str | None = None

    @property
    def given(self) -> bool:
        return self.content is not None or bool((self.url or "").strip())


def candidates(session: Session, user: Any, grant_id: int, exclude: Iterable[int] = ()) -> list[Evidence]:
    """Evidence of this grant that ``user`` may see, newest first: what a form offers to attach."""
    skip = set(exclude)
    query = (
        services.visible_evidence(user)
        .where(Evidence.grant_id == grant_id)
        .order_by(Evidence.evidence_date.desc(), Evidence.id.desc())
        .limit(200)
    )
    return [e for e in session.scalars(query) if e.id not in skip]


def attach_evidence(
    session: Session,
    store: FileStore | None,
    *,
    target_kind: str,
    target_id: int,
    grant_id: int,
    user: Any,
    existing: Iterable[Any] = (),
    new: NewEvidence | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Evidence]:
    """Link the chosen evidence and the new upload to (target_kind, target_id); returns what was linked."""
    linked: list[Evidence] = []
    for raw in existing:
        evidence = services.get_visible_evidence(session, user, raw)
        if evidence is None or evidence.grant_id != grant_id:
            raise DomainValidationError({"evidence": [_("choose evidence of this grant that you can see")]})
        already = session.scalar(
            select(EvidenceLink.id).where(
                EvidenceLink.evidence_id == evidence.id,
                EvidenceLink.target_kind == target_kind,
                EvidenceLink.target_id == target_id,
            )
        )
        if already is None:
            services.link_evidence(session, evidence, target_kind, target_id, user)
        linked.append(evidence)
    if new is not None and new.given:
        try:
            day = date.fromisoformat((new.evidence_date or "").strip())
        except ValueError:
            raise DomainValidationError(
                {"evidence_date": [_("give the date of the document (day, month, year)")]}
            ) from None
        evidence = services.create_evidence(
            session,
            store,
            grant=grant_id,
            title=new.title,
            kind=new.kind or EvidenceKind.other.value,
            evidence_date=day,
            sensitivity=new.sensitivity or DEFAULT_SENSITIVITY.value,
            uploaded_by=user,
            content=new.content,
            filename=new.filename,
            url=new.url,
            max_bytes=max_bytes,
        )
        services.link_evidence(session, evidence, target_kind, target_id, user)
        linked.append(evidence)
    return linked


def new_evidence_from(form: Any, files: Any, prefix: str = "evidence_") -> NewEvidence:
    """The "upload new evidence" boxes of a submitted form (any mapping with ``get``)."""
    upload = files.get(f"{prefix}file") if files is not None else None
    if upload is not None and not getattr(upload, "filename", None):
        upload = None
    return NewEvidence(
        title=form.get(f"{prefix}title") or "",
        kind=form.get(f"{prefix}kind") or EvidenceKind.other.value,
        evidence_date=form.get(f"{prefix}date") or "",
        sensitivity=form.get(f"{prefix}sensitivity") or DEFAULT_SENSITIVITY.value,
        content=upload.stream if upload is not None else None,
        filename=upload.filename if upload is not None else None,
        url=(form.get(f"{prefix}url") or "").strip() or None,
    )
