"""Every state change of the exports domain: templates, mappings, generated files, publishing.

Plain functions over a SQLAlchemy session and the file store; no Flask.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from core import clock
from core.errors import DomainValidationError
from core.storage import FileStore
from exports.builtin import ReportSheet, write_report
from exports.datasets import Dataset, all_datasets, catalogue, field_values, report_column, rows_of
from exports.errors import TemplateError
from exports.mapping import MappingSpec, check_against_template, parse_mapping, render
from exports.models import ExportKind, ExportRecord, FunderTemplate, TemplateVersion
from exports.xlsx.inspector import TemplateInfo, inspect_template
from exports.xlsx.recompute import recompute_caches
from grants.models import Funder, Grant, ReportingPeriod

TEMPLATE_MAX_BYTES = 20 * 1024 * 1024
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM_MIME = "application/vnd.ms-excel.sheet.macroEnabled.12"

Progress = Callable[[str, int, int], None]  # (step, done, total)


def _refuse(field: str, message: str) -> DomainValidationError:
    return DomainValidationError({field: [message]})


# ---------------------------------------------------------------- templates


def upload_template(
    session: Session,
    store: FileStore,
    *,
    funder: Funder,
    name: str,
    filename: str,
    data: bytes,
    user: str | None,
    description: str | None = None,
    mapping_text: str | None = None,
    notes: str | None = None,
) -> TemplateVersion:
    """Register a new version of a funder's template (creating the template on first upload).

    The file is inspected before anything is stored: a file that is not a
    workbook, a zip bomb or hostile XML is refused with the inspector's message.
    """
    name = (name or "").strip()
    if not name:
        raise _refuse("name", "is required")
    safe_name = secure_filename(filename or "") or "template.xlsx"
    if not safe_name.lower().endswith((".xlsx", ".xlsm")):
        raise _refuse("file", f"'{filename}' is not an .xlsx or .xlsm workbook")
    if len(data) > TEMPLATE_MAX_BYTES:
        raise _refuse(
            "file",
            f"is {len(data) // 1024 // 1024} MB; templates may be at most {TEMPLATE_MAX_BYTES // 1024 // 1024} MB",
        )
    try:
        info = inspect_template(data)
    except TemplateError as exc:
        raise _refuse("file", str(exc)) from None
    if safe_name.lower().endswith(".xlsx") and info.has_macros:
        raise _refuse("file", "contains macros but is named .xlsx; Excel would refuse it — upload it as .xlsm")
    template = session.scalar(
        select(FunderTemplate).where(FunderTemplate.funder_id == funder.id, FunderTemplate.name == name)
    )
    if template is None:
        template = FunderTemplate(funder=funder, name=name, description=description)
        session.add(template)
        session.flush()
    number = (
        session.scalar(select(func.max(TemplateVersion.version)).where(TemplateVersion.template_id == template.id)) or 0
    ) + 1
    version = TemplateVersion(
        template=template,
        version=number,
        filename=safe_name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        has_macros=info.has_macros,
        uploaded_by=user,
        uploaded_at=clock.now(),
        notes=notes,
    )
    if mapping_text:
        set_mapping(session, store, version, mapping_text, info=info, data=data)
    store.put(data)
    session.add(version)
    session.flush()
    return version


def template_bytes(store: FileStore, version: TemplateVersion) -> bytes:
    return store.read(version.sha256)


def inspect_version(store: FileStore, version: TemplateVersion) -> TemplateInfo:
    return inspect_template(template_bytes(store, version))


def set_mapping(
    session: Session,
    store: FileStore,
    version: TemplateVersion,
    text: str,
    *,
    info: TemplateInfo | None = None,
    data: bytes | None = None,
) -> MappingSpec:
    """Validate a mapping against the catalogue and the template itself, then keep it.

    Errors name the mapping key (``cells.0.source``) and say why; nothing is
    saved when any is found.
    """
    try:
        spec = parse_mapping(text, catalogue())
    except TemplateError as exc:
        raise DomainValidationError(
            {f"mapping.{key}": msgs for key, msgs in exc.details.items()} or {"mapping": [str(exc)]}
        ) from None
    if info is None:
        info = inspect_template(data if data is not None else template_bytes(store, version))
    problems = check_against_template(spec, info)
    if problems:
        raise DomainValidationError({"mapping": problems})
    version.mapping_text = text
    return spec


def templates_for_grant(session: Session, grant: Grant) -> list[FunderTemplate]:
    return list(
        session.scalars(
            select(FunderTemplate).where(FunderTemplate.funder_id == grant.funder_id).order_by(FunderTemplate.name)
        )
    )


def find_template(session: Session, grant: Grant, name: str) -> FunderTemplate:
    template = session.scalar(
        select(FunderTemplate).where(FunderTemplate.funder_id == grant.funder_id, FunderTemplate.name == name)
    )
    if template is None:
        known = ", ".join(t.name for t in templates_for_grant(session, grant)) or "none"
        raise _refuse("template", f"{grant.funder.name} has no template '{name}'; known: {known}")
    return template


# ---------------------------------------------------------------- built-in reports


@dataclass(frozen=True)
class BuiltinReport:
    name: str
    title: str
    datasets: tuple[str, ...]


BUILTIN_REPORTS: dict[str, BuiltinReport] = {
    report.name: report
    for report in (
        BuiltinReport("budget_vs_actual", "Budget vs actual", ("budget_vs_actual_categories", "budget_vs_actual")),
        BuiltinReport("indicator_progress", "Indicator progress (IPTT)", ("indicator_progress",)),
        BuiltinReport("compliance_matrix", "Compliance matrix", ("requirement_status",)),
        BuiltinReport("evidence_register", "Evidence register", ("evidence_register",)),
        BuiltinReport("expenditure_ledger", "Expenditure ledger", ("expenditure_ledger",)),
        BuiltinReport("reporting_periods", "Reporting periods", ("reporting_periods",)),
    )
}


def available_builtin_reports() -> list[BuiltinReport]:
    datasets = all_datasets()
    return [r for r in BUILTIN_REPORTS.values() if all(name in datasets for name in r.datasets)]


def _sheet(
    session: Session, dataset: Dataset, grant: Grant, period: ReportingPeriod | None, progress: Progress | None
) -> ReportSheet:
    scope = (
        f"{period.label} ({period.start_date} to {period.end_date})"
        if period
        else f"{grant.start_date} to {grant.end_date}"
    )

    def rows():
        count = 0
        for row in rows_of(session, dataset, grant, period):
            count += 1
            if progress and count % 1000 == 0:
                progress(dataset.name, count, 0)
            yield [row.get(key) for key in dataset.keys]

    return ReportSheet(
        title=dataset.title,
        columns=[report_column(column) for column in dataset.columns],
        rows=rows(),
        title_rows=(f"{grant.reference} — {grant.title}", f"{dataset.title}, {scope}, amounts in {grant.currency}"),
    )


def _builtin_bytes(
    session: Session, report: BuiltinReport, grant: Grant, period: ReportingPeriod | None, progress: Progress | None
) -> bytes:
    datasets = all_datasets()
    missing = [name for name in report.datasets if name not in datasets]
    if missing:
        raise _refuse("report", f"'{report.name}' needs datasets that are not available: {', '.join(missing)}")
    out = io.BytesIO()
    write_report(out, [_sheet(session, datasets[name], grant, period, progress) for name in report.datasets])
    return out.getvalue()


# ---------------------------------------------------------------- running an export


def _collect(
    session: Session, spec: MappingSpec, grant: Grant, period: ReportingPeriod | None
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    datasets = all_datasets()
    values = field_values(session, grant, period)
    tables = {t.dataset: list(rows_of(session, datasets[t.dataset], grant, period)) for t in spec.tables}
    return values, tables


def _export_name(grant: Grant, period: ReportingPeriod | None, report: str, suffix: str) -> str:
    stem = "_".join(part for part in (grant.reference, period.label if period else "", report) if part)
    return (secure_filename(re.sub(r"\s+", "_", stem)) or "export") + suffix


def run_export(
    session: Session,
    store: FileStore,
    *,
    grant: Grant,
    period: ReportingPeriod | None,
    user: str | None,
    template: FunderTemplate | None = None,
    builtin: str | None = None,
    progress: Progress | None = None,
    note: str | None = None,
    recompute: bool = False,
) -> ExportRecord:
    """Generate one file (a funder template filled, or a built-in report), store it, record it.

    ``recompute`` (funder templates only) has headless LibreOffice compute the
    template's formulas so their cached results are present for readers that do
    not recalculate (pandas, openpyxl data_only); LibreOffice missing or failing
    is refused under the ``recompute`` field, and nothing is stored.
    """
    if (template is None) == (builtin is None):
        raise _refuse("report", "choose either a funder template or a built-in report")
    if period is not None and period.grant_id != grant.id:
        raise _refuse("period", f"{period.label} is not a period of {grant.reference}")
    if template is not None:
        if template.funder_id != grant.funder_id:
            raise _refuse("template", f"'{template.name}' belongs to another funder than {grant.reference}'s")
        version = template.latest
        if version is None:
            raise _refuse("template", f"'{template.name}' has no uploaded file yet")
        if not version.mapping_text:
            raise _refuse(
                "template", f"'{template.name}' v{version.version} has no mapping yet; add one before exporting"
            )
        spec = parse_mapping(version.mapping_text, catalogue())
        if progress:
            progress("collect", 0, 2)
        fields, tables = _collect(session, spec, grant, period)
        if progress:
            progress("fill", 1, 2)
        try:
            data = render(spec, template_bytes(store, version), fields, tables)
        except TemplateError as exc:
            raise _refuse("template", str(exc)) from None
        if progress:
            progress("fill", 2, 2)
        if recompute:
            if progress:
                progress("recompute", 2, 3)
            try:
                data = recompute_caches(data)
            except TemplateError as exc:
                raise _refuse("recompute", str(exc)) from None
            if progress:
                progress("recompute", 3, 3)
        suffix = ".xlsm" if version.filename.lower().endswith(".xlsm") else ".xlsx"
        kind, report_name, version_id = ExportKind.template, template.name, version.id
    else:
        report = BUILTIN_REPORTS.get(builtin or "")
        if report is None:
            raise _refuse("report", f"unknown built-in report '{builtin}'; known: {', '.join(BUILTIN_REPORTS)}")
        data = _builtin_bytes(session, report, grant, period, progress)
        suffix, kind, report_name, version_id = ".xlsx", ExportKind.builtin, report.name, None
    sha = store.put(data)
    record = ExportRecord(
        grant_id=grant.id,
        period_id=period.id if period else None,
        kind=kind,
        report=report_name,
        template_version_id=version_id,
        filename=_export_name(grant, period, report_name, suffix),
        sha256=sha,
        size=len(data),
        created_by=user,
        created_at=clock.now(),
        published=False,
        note=note,
    )
    session.add(record)
    session.flush()
    return record


def export_bytes(store: FileStore, record: ExportRecord) -> bytes:
    """The exact bytes generated then, checked against their SHA-256."""
    return store.read(record.sha256)


def media_type(record: ExportRecord) -> str:
    return XLSM_MIME if record.filename.lower().endswith(".xlsm") else XLSX_MIME


# ---------------------------------------------------------------- history and publishing


def publish(session: Session, record: ExportRecord, *, user: str | None) -> ExportRecord:
    """Make a generated file visible to the grant's Donor users."""
    if record.published:
        raise _refuse("published", f"{record.filename} is already published")
    record.published, record.published_by, record.published_at = True, user, clock.now()
    session.flush()
    return record


def unpublish(session: Session, record: ExportRecord) -> ExportRecord:
    record.published, record.published_by, record.published_at = False, None, None
    session.flush()
    return record


def history(
    session: Session,
    grant_id: int,
    *,
    published_only: bool = False,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Sequence[ExportRecord]:
    """What was generated for a grant, newest first ("what did we send the donor in March?")."""
    query = (
        select(ExportRecord)
        .where(ExportRecord.grant_id == grant_id)
        .order_by(ExportRecord.created_at.desc(), ExportRecord.id.desc())
    )
    if published_only:
        query = query.where(ExportRecord.published.is_(True))
    if since is not None:
        query = query.where(ExportRecord.created_at >= since)
    if until is not None:
        query = query.where(ExportRecord.created_at < until)
    return list(session.scalars(query))
