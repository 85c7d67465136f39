"""Evidence items, their links to what they prove, coordinating bodies and their consultations."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    inspect,
)
from sqlalchemy import (
    Enum as SAEnum,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import ErrorCollector
from core.formatting import N_, lazy_gettext
from core.formatting import gettext as _
from core.records import Audited, check_unique, enum_column
from grants.evidence.targets import TARGETS, TargetKind, describe_target_problem
from grants.models import Grant

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User


class EvidenceKind(str, enum.Enum):
    minutes = "minutes"
    attendance_summary = "attendance_summary"
    photo = "photo"
    receipt = "receipt"
    report = "report"
    policy = "policy"
    contract = "contract"
    other = "other"


class Sensitivity(str, enum.Enum):
    """Who may see an item, named by its audience (least to most protected)."""

    shared_with_donors = "shared_with_donors"
    staff_only = "staff_only"
    restricted = "restricted"

    @classmethod
    def _missing_(cls, value: object) -> Sensitivity | None:
        # The words used before 2026 (API clients may still send them): read by what they meant.
        return {"public": cls.shared_with_donors, "internal": cls.staff_only, "confidential": cls.restricted}.get(
            str(value).strip().lower()
        )

    @property
    def label(self) -> str:
        """The level in the reader's words ("Staff only", "Personnel uniquement")."""
        return _(SENSITIVITY_LABELS[self])

    @property
    def rank(self) -> int:
        return SENSITIVITY_RANK[self]


# English, as imports, exports and audit entries write them; ``Sensitivity.label`` gives the reader's words.
SENSITIVITY_LABELS = {
    Sensitivity.shared_with_donors: N_("Shared with donors"),
    Sensitivity.staff_only: N_("Staff only"),
    Sensitivity.restricted: N_("Restricted"),
}
SENSITIVITY_HELP = {
    Sensitivity.shared_with_donors: lazy_gettext("donors of the grant, exports and published data may show it"),
    Sensitivity.staff_only: lazy_gettext("the organisation's staff and auditors of the grant only (the default)"),
    Sensitivity.restricted: lazy_gettext("staff and auditors only; lowering it needs a second person's approval"),
}
SENSITIVITY_RANK = {level: rank for rank, level in enumerate(Sensitivity)}
# The default on every upload path: nobody outside the organisation sees an item until someone says so.
DEFAULT_SENSITIVITY = Sensitivity.staff_only
# The only levels a donor, an export or a published file (IATI) may show. Import this; never list values.
SHARED_WITH_DONORS: frozenset[Sensitivity] = frozenset({Sensitivity.shared_with_donors})


def is_shared_with_donors(value: object) -> bool:
    """True for a level (member, stored value or label) a donor may see; anything unknown is not."""
    if isinstance(value, Sensitivity):
        return value in SHARED_WITH_DONORS
    text = str(value or "").strip()
    by_label = {label.lower(): level for level, label in SENSITIVITY_LABELS.items()}  # English, as imports write
    level = by_label.get(text.lower())
    if level is None:
        try:
            level = Sensitivity(text)
        except ValueError:
            return False
    return level in SHARED_WITH_DONORS


class VerificationStatus(str, enum.Enum):
    submitted = "submitted"
    verified = "verified"
    rejected = "rejected"


VERIFICATION_LABELS = {
    VerificationStatus.submitted: lazy_gettext("awaiting verification"),
    VerificationStatus.verified: lazy_gettext("verified"),
    VerificationStatus.rejected: lazy_gettext("rejected"),
}
KIND_LABELS = {
    EvidenceKind.minutes: lazy_gettext("minutes"),
    EvidenceKind.attendance_summary: lazy_gettext("attendance summary"),
    EvidenceKind.photo: lazy_gettext("photo"),
    EvidenceKind.receipt: lazy_gettext("receipt"),
    EvidenceKind.report: lazy_gettext("report"),
    EvidenceKind.policy: lazy_gettext("policy"),
    EvidenceKind.contract: lazy_gettext("contract"),
    EvidenceKind.other: lazy_gettext("other"),
}


class Evidence(Audited, Model):
    """One file (stored by checksum in the FileStore) or one link, belonging to a grant."""

    __tablename__ = "evidence_items"
    __table_args__ = (
        # Exactly one of a stored file or a link.
        CheckConstraint("(sha256 IS NULL) <> (url IS NULL)", name="ck_evidence_items_file_or_link"),
        CheckConstraint("size_bytes IS NULL OR size_bytes >= 0", name="ck_evidence_items_size"),
        Index("ix_evidence_items_grant_kind", "grant_id", "kind", "evidence_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[EvidenceKind] = mapped_column(enum_column(EvidenceKind, 30), default=EvidenceKind.other)
    evidence_date: Mapped[date] = mapped_column(Date, index=True)
    sensitivity: Mapped[Sensitivity] = mapped_column(enum_column(Sensitivity), default=DEFAULT_SENSITIVITY, index=True)
    status: Mapped[VerificationStatus] = mapped_column(
        enum_column(VerificationStatus), default=VerificationStatus.submitted, index=True
    )
    description: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(1000))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    file_name: Mapped[str | None] = mapped_column(String(255))  # sanitised (secure_filename)
    display_name: Mapped[str | None] = mapped_column(String(255))  # as the uploader named it
    content_type: Mapped[str | None] = mapped_column(String(120))
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    # Set when the upload looked like a list of people (a name column, rows of names).
    looks_like_people_list: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    uploaded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verification_comment: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    grant: Mapped[Grant] = relationship()
    uploaded_by: Mapped[User | None] = relationship("User", foreign_keys=[uploaded_by_id])
    verified_by: Mapped[User | None] = relationship("User", foreign_keys=[verified_by_id])
    links: Mapped[list[EvidenceLink]] = relationship(
        back_populates="evidence", cascade="all, delete-orphan", order_by="EvidenceLink.id"
    )

    def __repr__(self) -> str:
        return self.title or f"evidence #{self.id}"

    def _lowers_restricted(self) -> bool:
        """True when this unsaved change takes a restricted item to a level more people see."""
        history: Any = inspect(self).attrs.sensitivity.history
        if not history.deleted or history.deleted[0] is None:
            return False
        try:
            before, after = Sensitivity(history.deleted[0]), Sensitivity(self.sensitivity)
        except ValueError:
            return False
        return before == Sensitivity.restricted and after.rank < before.rank

    @property
    def sensitivity_label(self) -> str:
        return Sensitivity(self.sensitivity).label

    @property
    def is_file(self) -> bool:
        return self.sha256 is not None

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))

    @property
    def status_label(self) -> str:
        """The verification status in words, in the reader's language."""
        return str(VERIFICATION_LABELS.get(VerificationStatus(self.status), self.status))

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.title or "").strip():
            errors.add("title", _("is required"))
        if self.grant_id is None and self.grant is None:
            errors.add("grant", _("is required"))
        if self.evidence_date is None:
            errors.add("evidence_date", _("is required (the date of the meeting, receipt or document)"))
        if self.kind is None:
            errors.add("kind", _("is required"))
        if self.sensitivity is None:
            errors.add("sensitivity", _("is required"))
        elif self._lowers_restricted() and not getattr(self, "_lowering_approved", False):
            errors.add(
                "sensitivity",
                "restricted evidence is made visible to more people only with a second person's approval: "
                "ask for it on the evidence page (another Admin, Finance or Program member of the grant approves it)",
            )
        if self.url is not None and not self.url.strip():
            self.url = None  # an empty form field means "no link", not a link to ""
        has_file, has_url = bool(self.sha256), self.url is not None
        if has_file and has_url:
            errors.add("url", _("an evidence item is either an uploaded file or a link, not both"))
        elif not has_file and not has_url:
            errors.add("url", _("upload a file or give a link (https://...)"))
        elif self.url is not None:  # has_url
            parsed = urlparse(self.url.strip())
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                errors.add(
                    "url", _("'%(value)s' is not a web address starting with https:// or http://", value=self.url)
                )
        if self.status in (VerificationStatus.verified, VerificationStatus.rejected):
            if self.verified_by_id is None:
                errors.add("status", _("a verified or rejected item needs the reviewer"))
            elif self.uploaded_by_id is not None and self.verified_by_id == self.uploaded_by_id:
                errors.add("status", _("evidence must be verified by someone other than the person who uploaded it"))
            if self.status == VerificationStatus.rejected and not (self.verification_comment or "").strip():
                errors.add("verification_comment", _("say why the evidence is rejected"))
        errors.raise_if_any()


class EvidenceLink(Audited, Model):
    """Evidence item X supports target (kind, id): a requirement, a consultation, an indicator result..."""

    __tablename__ = "evidence_links"
    __table_args__ = (
        UniqueConstraint("evidence_id", "target_kind", "target_id", name="uq_evidence_links_target"),
        Index("ix_evidence_links_target", "target_kind", "target_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence_items.id", ondelete="CASCADE"), index=True)
    # Copied from the evidence so row-level filters need no join; validate() keeps it in step.
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    target_kind: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(300))

    evidence: Mapped[Evidence] = relationship(back_populates="links")

    def __repr__(self) -> str:
        return f"{self.evidence} → {self.target_kind} #{self.target_id}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        evidence = self.evidence or (session.get(Evidence, self.evidence_id) if self.evidence_id else None)
        if evidence is None:
            errors.add("evidence", _("is required"))
            errors.raise_if_any()
        assert evidence is not None  # raise_if_any() raised above
        self.grant_id = evidence.grant_id if evidence.grant_id is not None else evidence.grant.id
        problem = describe_target_problem(session, self.target_kind, self.target_id, self.grant_id)
        if problem:
            errors.add("target", problem)
        errors.raise_if_any()


# ---------------------------------------------------------------- lowering a restricted item: two people


def _level_column(name: str) -> SAEnum:
    """A sensitivity column with a CHECK of its own name (two on one table may not share one)."""
    return SAEnum(Sensitivity, native_enum=False, length=20, validate_strings=True, create_constraint=True, name=name)


class RequestStatus(str, enum.Enum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class SensitivityRequest(Audited, Model):
    """A request to make a restricted item visible to more people; someone else decides it."""

    __tablename__ = "sensitivity_requests"
    __table_args__ = (Index("ix_sensitivity_requests_evidence_status", "evidence_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence_items.id", ondelete="CASCADE"))
    # Copied from the evidence so row-level filters and the audit trail need no join.
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    from_level: Mapped[Sensitivity] = mapped_column(_level_column("ck_sensitivity_from"))
    to_level: Mapped[Sensitivity] = mapped_column(_level_column("ck_sensitivity_to"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus), default=RequestStatus.pending)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_comment: Mapped[str | None] = mapped_column(Text)

    evidence: Mapped[Evidence] = relationship()
    requested_by: Mapped[User | None] = relationship("User", foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship("User", foreign_keys=[decided_by_id])

    def __repr__(self) -> str:
        return f"sensitivity change of evidence #{self.evidence_id} to {SENSITIVITY_LABELS.get(self.to_level, '')}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.reason or "").strip():
            errors.add("reason", _("say why more people should see it"))
        if self.status != RequestStatus.pending:
            if self.decided_by_id is None:
                errors.add("status", _("a decided request needs who decided it"))
            elif self.decided_by_id == self.requested_by_id:
                errors.add("status", _("a second person decides: not the one who asked"))
        errors.raise_if_any()


# ---------------------------------------------------------------- consultations

# Attendance is counted by constituency, never listed by name (privacy by design).
# English, as attendance files are written; shown through gettext (``_(label)``).
ATTENDANCE = {
    "government": N_("Government"),
    "civil_society": N_("Civil society"),
    "sex_workers": N_("Sex workers"),
    "msm": N_("Men who have sex with men"),
    "transgender": N_("Transgender people"),
    "people_who_use_drugs": N_("People who use drugs"),
    "plhiv": N_("People living with HIV"),
    "donors": N_("Donors and partners"),
    "other": N_("Other"),
}
KEY_POPULATIONS = ("sex_workers", "msm", "transgender", "people_who_use_drugs", "plhiv")


class CoordinatingBody(Audited, Model):
    """A coordinating body whose meetings are consultations (e.g. the RCM, a CCM)."""

    __tablename__ = "coordinating_bodies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return self.code

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.code or "").strip():
            errors.add("code", _("is required (e.g. RCM)"))
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
        check_unique(session, self, errors, "code")
        errors.raise_if_any()


class Consultation(Audited, Model):
    """A meeting of a coordinating body: agenda, decisions, attendance counts by constituency."""

    __tablename__ = "consultations"
    __table_args__ = (
        Index("ix_consultations_grant_body_date", "grant_id", "body_id", "held_on"),
        *(CheckConstraint(f"attendance_{key} >= 0", name=f"ck_consultations_{key}") for key in ATTENDANCE),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    body_id: Mapped[int] = mapped_column(ForeignKey("coordinating_bodies.id"), index=True)
    held_on: Mapped[date] = mapped_column(Date, index=True)
    title: Mapped[str] = mapped_column(String(300))
    location: Mapped[str | None] = mapped_column(String(200))
    agenda: Mapped[str | None] = mapped_column(Text)
    decisions: Mapped[str | None] = mapped_column(Text)
    attendance_government: Mapped[int] = mapped_column(Integer, default=0)
    attendance_civil_society: Mapped[int] = mapped_column(Integer, default=0)
    attendance_sex_workers: Mapped[int] = mapped_column(Integer, default=0)
    attendance_msm: Mapped[int] = mapped_column(Integer, default=0)
    attendance_transgender: Mapped[int] = mapped_column(Integer, default=0)
    attendance_people_who_use_drugs: Mapped[int] = mapped_column(Integer, default=0)
    attendance_plhiv: Mapped[int] = mapped_column(Integer, default=0)
    attendance_donors: Mapped[int] = mapped_column(Integer, default=0)
    attendance_other: Mapped[int] = mapped_column(Integer, default=0)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)

    grant: Mapped[Grant] = relationship()
    body: Mapped[CoordinatingBody] = relationship()

    def __repr__(self) -> str:
        code = self.body.code if self.body else "meeting"
        return f"{code} {self.held_on}: {self.title}" if self.held_on else (self.title or "")

    def count(self, constituency: str) -> int:
        return int(getattr(self, f"attendance_{constituency}") or 0)

    @property
    def attendance(self) -> dict[str, int]:
        return {key: self.count(key) for key in ATTENDANCE}

    @property
    def total_attendance(self) -> int:
        return sum(self.attendance.values())

    @property
    def total(self) -> int:  # the list view's "Attendance" column
        return self.total_attendance

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if self.grant_id is None and self.grant is None:
            errors.add("grant", _("is required"))
        if self.body_id is None and self.body is None:
            errors.add("body", _("is required (e.g. RCM)"))
        if self.held_on is None:
            errors.add("held_on", _("is required"))
        if not (self.title or "").strip():
            errors.add("title", _("is required"))
        for key, label in ATTENDANCE.items():
            value = getattr(self, f"attendance_{key}")
            if value is None:
                setattr(self, f"attendance_{key}", 0)
            elif not isinstance(value, int) or value < 0:
                errors.add(
                    f"attendance_{key}",
                    _("%(constituency)s: enter a count of 0 or more (a number, never names)", constituency=_(label)),
                )
        errors.raise_if_any()


TARGETS.add("consultation", TargetKind("consultation", Consultation), order=10)
