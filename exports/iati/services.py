"""Making, keeping and publishing IATI activity files; choosing a grant's sectors. No Flask.

A file is built, then validated against the IATI 2.03 schemas; only a valid file is
returned, stored or recorded. Kept files go to the export history (``ExportRecord``) with their
SHA-256, one record per grant in the file, like the spreadsheets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from config.settings import IatiSettings
from core import clock
from core.errors import DomainValidationError
from core.storage import FileStore
from exports import services as exports
from exports.iati import validation
from exports.iati.builder import build_activities, publisher_from, references
from exports.iati.codes import codelist
from exports.models import ExportKind, ExportRecord
from grants import services as grants
from grants.models import Grant

REPORT = "IATI activity file"
MEDIA_TYPE = "application/xml"


@dataclass(frozen=True)
class IatiFile:
    data: bytes
    filename: str
    grants: tuple[str, ...]


def filename_for(grants_in_file: Sequence[Grant]) -> str:
    stem = grants_in_file[0].reference if len(grants_in_file) == 1 else f"{len(grants_in_file)}_grants"
    return (secure_filename(re.sub(r"\s+", "_", f"{stem}_iati_activities")) or "iati_activities") + ".xml"


def make_file(
    session: Session,
    grants_in_file: Sequence[Grant],
    settings: IatiSettings,
    *,
    base_url: str,
    today: dt.date | None = None,
    generated_at: dt.datetime | None = None,
) -> IatiFile:
    """Build the activity file of these grants and validate it; an invalid file is refused, naming grant and element."""
    unique = list({grant.id: grant for grant in grants_in_file}.values())
    publisher = publisher_from(settings)
    data = build_activities(session, unique, publisher, base_url=base_url, today=today, generated_at=generated_at)
    validation.check(data, references(unique))
    return IatiFile(data, filename_for(unique), tuple(references(unique)))


def keep(
    session: Session,
    store: FileStore,
    iati_file: IatiFile,
    grants_in_file: Sequence[Grant],
    *,
    user: str | None,
    publish: bool = False,
) -> list[ExportRecord]:
    """Store a validated file and record it in each grant's export history (and publish it to their donors)."""
    validation.check(iati_file.data, list(iati_file.grants))  # never keep what was not checked
    sha = store.put(iati_file.data)
    records = []
    now = clock.now()
    for grant in {grant.id: grant for grant in grants_in_file}.values():
        record = ExportRecord(
            grant_id=grant.id,
            period_id=None,
            kind=ExportKind.builtin,
            report=REPORT,
            template_version_id=None,
            filename=iati_file.filename,
            sha256=sha,
            size=len(iati_file.data),
            created_by=user,
            created_at=now,
            published=False,
            note=None,
        )
        session.add(record)
        session.flush()
        if publish:
            exports.publish(session, record, user=user)
        records.append(record)
    return records


def set_sectors(session: Session, grant: Grant, codes: Sequence[str]) -> Grant:
    """Choose the grant's DAC 5-digit sectors from IATI's Sector list (the grant's own write path saves it)."""
    chosen = [str(code).strip() for code in codes if str(code).strip()]
    sectors = codelist("Sector")
    for code in chosen:
        sectors.check(code, "iati_sectors")
    if len(set(chosen)) != len(chosen):
        raise DomainValidationError({"iati_sectors": ["choose each sector once"]})
    grant.iati_sectors = chosen
    return grants.save_grant(session, grant)


def history(session: Session, grant_id: int, *, published_only: bool = False) -> list[ExportRecord]:
    return [r for r in exports.history(session, grant_id, published_only=published_only) if r.report == REPORT]
