"""Every state change of evidence and consultations, and the one rule for who sees which evidence.

Plain functions over a SQLAlchemy session (no Flask). The web views, the REST
API, the demo loader and the exports all go through ``visible_evidence`` /
``evidence_register``, so confidential evidence is kept from donors in one place.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, BinaryIO

import filetype
from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select
from werkzeug.utils import secure_filename

from grants.errors import DomainValidationError, ErrorCollector
from grants.evidence.models import (
    ATTENDANCE,
    Consultation,
    CoordinatingBody,
    Evidence,
    EvidenceKind,
    EvidenceLink,
    Sensitivity,
    VerificationStatus,
)
from grants.evidence.targets import describe_target_problem, resolve, target_kinds
from grants.models import Grant
from grants.records import validate_record
from grants.services import can_see_grant, user_role_names, visible_grant_ids_query
from grants.storage import FileStore

DEFAULT_MAX_BYTES = 25 * 1024 * 1024

# ---------------------------------------------------------------- who sees which evidence


def can_see_confidential(user: Any) -> bool:
    """Donors never see confidential evidence; staff and auditors of the grant do."""
    names = user_role_names(user)
    if "Admin" in names:
        return True
    return bool(names) and "Donor" not in names and getattr(user, "is_authenticated", False)


def visible_evidence_clause(user: Any) -> ColumnElement[bool]:
    """The WHERE clause limiting Evidence to what ``user`` may see: their grants, and no
    confidential item unless their role allows it. Every path uses this one rule."""
    clauses: list[ColumnElement[bool]] = []
    grants = visible_grant_ids_query(user)
    if grants is not None:
        clauses.append(Evidence.grant_id.in_(grants))
    if not can_see_confidential(user):
        clauses.append(Evidence.sensitivity != Sensitivity.confidential)
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


# ---------------------------------------------------------------- checking uploads

_TEXT = "text"
_OLE = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
_OOXML_FOLDER = {"docx": "word/", "xlsx": "xl/", "pptx": "ppt/"}
# extension -> (content types the file's bytes may show, what to call it in a message)
ALLOWED_TYPES: dict[str, tuple[frozenset[str], str]] = {
    "pdf": (frozenset({"application/pdf"}), "a PDF document"),
    "png": (frozenset({"image/png"}), "a PNG image"),
    "jpg": (frozenset({"image/jpeg"}), "a JPEG image"),
    "jpeg": (frozenset({"image/jpeg"}), "a JPEG image"),
    "gif": (frozenset({"image/gif"}), "a GIF image"),
    "webp": (frozenset({"image/webp"}), "a WebP image"),
    "heic": (frozenset({"image/heic"}), "a HEIC photo"),
    "tif": (frozenset({"image/tiff"}), "a TIFF image"),
    "tiff": (frozenset({"image/tiff"}), "a TIFF image"),
    "doc": (frozenset(_OLE), "a Word document"),
    "xls": (frozenset(_OLE), "an Excel workbook"),
    "ppt": (frozenset(_OLE), "a PowerPoint presentation"),
    "docx": (frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}), "a Word document"),
    "xlsx": (frozenset({"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}), "an Excel workbook"),
    "pptx": (
        frozenset({"application/vnd.openxmlformats-officedocument.presentationml.presentation"}),
        "a PowerPoint presentation",
    ),
    "odt": (frozenset({"application/vnd.oasis.opendocument.text"}), "an OpenDocument text"),
    "ods": (frozenset({"application/vnd.oasis.opendocument.spreadsheet"}), "an OpenDocument spreadsheet"),
    "odp": (frozenset({"application/vnd.oasis.opendocument.presentation"}), "an OpenDocument presentation"),
    "csv": (frozenset({_TEXT}), "a CSV file"),
    "txt": (frozenset({_TEXT}), "a plain-text file"),
}
_TEXT_CONTENT_TYPES = {"csv": "text/csv", "txt": "text/plain"}


@dataclass(frozen=True)
class CheckedUpload:
    file_name: str  # sanitised, safe on any filesystem and in a header
    display_name: str  # what the uploader called it, for people
    extension: str
    content_type: str
    looks_like_people_list: bool


def _decode_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f")
        return text if controls == 0 else None
    return None


def _detected_type(data: bytes, extension: str) -> str | None:
    kind = filetype.guess(data[:8192] if extension not in _OOXML_FOLDER else data)
    mime = kind.mime if kind else None
    if mime == "application/zip" and extension in _OOXML_FOLDER:
        # Some generators order the parts so the signature check misses them: look inside.
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            return mime
        if "[Content_Types].xml" in names and any(n.startswith(_OOXML_FOLDER[extension]) for n in names):
            return next(iter(ALLOWED_TYPES[extension][0]))
    return mime


def check_upload(data: bytes, filename: str | None) -> CheckedUpload:
    """Accept a file only if its bytes are what its name says (magic bytes, not just the extension).

    Raises DomainValidationError on the ``file`` field naming what is wrong.
    """
    display = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:255]
    safe = secure_filename(display)[:255]
    if not display or not safe:
        raise DomainValidationError({"file": ["choose a file with a name, e.g. minutes.pdf"]})
    extension = safe.rsplit(".", 1)[-1].lower() if "." in safe else ""
    if extension not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise DomainValidationError(
            {"file": [f"'{display}': files ending in .{extension or '(nothing)'} are not accepted; allowed: {allowed}"]}
        )
    if not data:
        raise DomainValidationError({"file": [f"'{display}' is empty"]})
    expected, what = ALLOWED_TYPES[extension]
    detected = _detected_type(data, extension)
    if _TEXT in expected:
        text = _decode_text(data) if detected is None else None
        if text is None:
            found = f"looks like {detected}" if detected else "is not plain text"
            raise DomainValidationError(
                {"file": [f"'{display}' should be {what}, but its content {found}; nothing was stored"]}
            )
        content_type = _TEXT_CONTENT_TYPES[extension]
        people = looks_like_people_csv(text) if extension == "csv" else False
    else:
        if detected not in expected:
            found = f"is {detected}" if detected else "is of an unknown type"
            raise DomainValidationError(
                {"file": [f"'{display}' should be {what}, but its content {found}; nothing was stored"]}
            )
        content_type = detected
        people = looks_like_people_workbook(data) if extension == "xlsx" else False
    return CheckedUpload(safe, display, extension, content_type, people)


# ---------------------------------------------------------------- does it list people?

# Column headings that hold people's names or contact details (English, Spanish, French).
_PERSON_HEADERS = {
    "name", "names", "first name", "firstname", "given name", "given names", "last name", "lastname",
    "surname", "family name", "full name", "fullname", "participant", "participants", "participant name",
    "attendee", "attendees", "beneficiary", "beneficiary name", "client", "client name", "member name",
    "nombre", "nombres", "apellido", "apellidos", "nombre completo", "participante", "nom", "prenom",
    "nom complet", "phone", "phone number", "telephone", "mobile", "whatsapp", "email", "e-mail",
    "email address", "address", "home address", "date of birth", "dob", "id number", "national id",
    "passport", "signature",
}
# Words that make a "Something Something" cell a label rather than a person's name.
_NOT_NAME_WORDS = {
    "society", "civil", "government", "workers", "worker", "people", "living", "with", "hiv", "donors",
    "donor", "other", "total", "ministry", "health", "network", "coalition", "group", "groups", "men",
    "women", "transgender", "drugs", "who", "use", "key", "population", "populations", "partners", "sex",
    "community", "national", "regional", "council", "office", "unit", "fund", "programme", "program",
}
_NAME_CELL = re.compile(r"^[A-ZÀ-Ý][a-zà-ÿ'’-]+(?: [A-ZÀ-Ý][a-zà-ÿ'’-]+){1,3}$")


def _normalise_header(cell: Any) -> str:
    text = unicodedata.normalize("NFKD", str(cell or "")).encode("ascii", "ignore").decode()
    return re.sub(r"[\s_]+", " ", text).strip().lower()


def _rows_look_like_people(rows: list[list[Any]]) -> bool:
    if rows and any(_normalise_header(cell) in _PERSON_HEADERS for cell in rows[0]):
        return True
    data = rows[1:] if len(rows) > 1 else rows
    named = 0
    for row in data:
        for cell in row:
            value = str(cell or "").strip()
            if _NAME_CELL.match(value) and not set(value.lower().split()) & _NOT_NAME_WORDS:
                named += 1
                break
    return named >= 5 and named * 2 >= len(data)


def looks_like_people_csv(text: str, max_rows: int = 500) -> bool:
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = []
    for index, row in enumerate(csv.reader(io.StringIO(text), dialect)):
        if index >= max_rows:
            break
        rows.append(row)
    return _rows_look_like_people(rows)


def looks_like_people_workbook(data: bytes, max_rows: int = 500) -> bool:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # an unreadable workbook is stored as-is; it just isn't inspected
        return False
    try:
        for sheet in workbook.worksheets:
            rows = [list(row) for row in sheet.iter_rows(max_row=max_rows, values_only=True)]
            if _rows_look_like_people(rows):
                return True
        return False
    finally:
        workbook.close()


# ---------------------------------------------------------------- creating and changing evidence


def _enum(cls: type, value: Any, field: str) -> Any:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        known = ", ".join(member.value for member in cls)
        raise DomainValidationError({field: [f"'{value}' is not one of {known}"]}) from None


def _read_capped(content: bytes | BinaryIO, max_bytes: int, display: str) -> bytes:
    if isinstance(content, (bytes, bytearray)):
        data = bytes(content)
    else:
        data = content.read(max_bytes + 1)
    if len(data) > max_bytes:
        megabytes = max_bytes / (1024 * 1024)
        raise DomainValidationError(
            {"file": [f"'{display}' is larger than the {megabytes:g} MB limit; nothing was stored"]}
        )
    return data


def create_evidence(
    session: Session,
    store: FileStore | None,
    *,
    grant: Grant | int,
    title: str,
    kind: EvidenceKind | str,
    evidence_date: date | None,
    sensitivity: Sensitivity | str = Sensitivity.internal,
    uploaded_by: Any = None,
    content: bytes | BinaryIO | None = None,
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
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})
    kind = _enum(EvidenceKind, kind, "kind")
    sensitivity = _enum(Sensitivity, sensitivity, "sensitivity")
    has_content = content is not None
    url = (url or "").strip() or None
    if has_content and url:
        errors.add("url", "an evidence item is either an uploaded file or a link, not both")
    errors.raise_if_any()
    evidence = Evidence(
        grant_id=grant_id, title=(title or "").strip(), kind=kind, evidence_date=evidence_date,
        sensitivity=sensitivity, status=VerificationStatus.submitted, description=description, url=url,
        uploaded_by_id=getattr(uploaded_by, "id", None), uploaded_at=now or datetime.now(timezone.utc),
        is_demo=is_demo,
    )
    checked: CheckedUpload | None = None
    data = b""
    if has_content:
        display = (filename or "").rsplit("/", 1)[-1] or "the file"
        data = _read_capped(content, max_bytes, display)
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
        raise DomainValidationError({"file": ["file storage is not configured"]})
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
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _blob_in_use(session: Session, sha: str) -> bool:
    return bool(session.scalar(select(func.count(Evidence.id)).where(Evidence.sha256 == sha)))


def discard_blob_if_unused(session: Session, store: FileStore, sha: str | None) -> bool:
    """Delete a blob nothing refers to any more (call after the deleting transaction committed)."""
    if not sha or _blob_in_use(session, sha):
        return False
    return store.delete(sha)


def read_evidence_file(store: FileStore, evidence: Evidence) -> BinaryIO:
    """The stored bytes of a file item, verified against its checksum. The caller checked access."""
    if not evidence.sha256:
        raise DomainValidationError({"file": ["this evidence is a link, not a stored file"]})
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
    decision = _enum(VerificationStatus, decision, "decision")
    errors = ErrorCollector()
    if decision == VerificationStatus.submitted:
        errors.add("decision", "choose verified or rejected")
    if reviewer is None or getattr(reviewer, "id", None) is None:
        errors.add("reviewer", "is required")
    elif reviewer.id == evidence.uploaded_by_id:
        errors.add("reviewer", "evidence must be verified by someone other than the person who uploaded it")
    elif not can_see_grant(session, reviewer, evidence.grant_id) or (
        evidence.sensitivity == Sensitivity.confidential and not can_see_confidential(reviewer)
    ):
        errors.add("reviewer", "may not review this evidence")
    if decision == VerificationStatus.rejected and not (comment or "").strip():
        errors.add("comment", "say why the evidence is rejected")
    errors.raise_if_any()
    evidence.status = decision
    evidence.verified_by_id = reviewer.id
    evidence.verified_at = now or datetime.now(timezone.utc)
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
        raise DomainValidationError({"target_id": [f"'{target_id}' is not a record number"]}) from None
    if user is not None:
        target = resolve(session, target_kind, target_id)
        if target is not None and not can_see_grant(session, user, target.grant_id):
            # Same words as a missing record: never confirm that a hidden record exists.
            label = target_kinds().get(target_kind, target_kind)
            raise DomainValidationError({"target": [f"there is no {label} #{target_id}"]})
        if get_visible_evidence(session, user, evidence.id) is None:
            raise DomainValidationError({"evidence": ["is not evidence you have access to"]})
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
        raise DomainValidationError({"target": ["this evidence is already linked to it"]})
    link = EvidenceLink(evidence=evidence, grant_id=evidence.grant_id, target_kind=target_kind,
                        target_id=target_id, note=(note or "").strip() or None)
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
        label = target.label if target else f"{link.target_kind} #{link.target_id} (no longer exists)"
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


def evidence_register(session: Session, grant_id: int, include_confidential: bool = False) -> list[EvidenceRow]:
    """The evidence of a grant as plain rows for exports (named dataset ``evidence_register``).

    Confidential items are left out unless ``include_confidential`` is True, which
    only an internal, non-donor caller (e.g. an auditor's own download) may pass;
    anything published to a donor must use the default. Stable: ordered by date, id.
    """
    columns = (
        Evidence.id, Evidence.grant_id, Evidence.title, Evidence.kind, Evidence.evidence_date, Evidence.sensitivity,
        Evidence.status, Evidence.display_name, Evidence.content_type, Evidence.size_bytes, Evidence.sha256,
        Evidence.url, Evidence.verified_at,
    )
    query = select(*columns).where(Evidence.grant_id == grant_id).order_by(Evidence.evidence_date, Evidence.id)
    if not include_confidential:
        query = query.where(Evidence.sensitivity != Sensitivity.confidential)
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
            id=row.id, grant_id=row.grant_id, title=row.title, kind=row.kind.value, evidence_date=row.evidence_date,
            sensitivity=row.sensitivity.value, status=row.status.value, file_name=row.display_name,
            content_type=row.content_type, size_bytes=row.size_bytes, sha256=row.sha256, url=row.url,
            verified_at=row.verified_at, supports="; ".join(links.get(row.id, [])),
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


# ---------------------------------------------------------------- bodies and consultations


def create_body(session: Session, *, code: str, name: str, description: str | None = None, is_demo: bool = False) -> CoordinatingBody:
    body = CoordinatingBody(code=(code or "").strip(), name=(name or "").strip(), description=description, is_demo=is_demo)
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
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})
    errors = ErrorCollector()
    counts: dict[str, int] = {}
    for key, value in (attendance or {}).items():
        if key not in ATTENDANCE:
            errors.add(f"attendance.{key}", f"unknown constituency; use one of: {', '.join(ATTENDANCE)}")
            continue
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if number is None or number < 0:
            errors.add(
                f"attendance.{key}",
                f"'{value}' is not a whole number of 0 or more (attendance is counted, never listed by name)",
            )
            continue
        counts[key] = number
    errors.raise_if_any()
    consultation = Consultation(
        grant_id=grant_id, body=body, held_on=held_on, title=(title or "").strip(), agenda=agenda,
        decisions=decisions, location=location, is_demo=is_demo,
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
