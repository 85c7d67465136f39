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

from config.settings import BaseConfig
from core import clock
from core.errors import DomainValidationError
from core.formatting import current_language, day, in_locale, lazy_gettext
from core.formatting import gettext as _
from core.storage import FileStore
from exports.builtin import ReportSheet, write_report
from exports.datasets import (
    Dataset,
    FigureQuery,
    all_datasets,
    all_figure_kinds,
    catalogue,
    dataset_title,
    field_values,
    figure_values,
    report_column,
    rows_of,
)
from exports.errors import TemplateError
from exports.mapping import MappingSpec, Period, check_mapping, describe_cell, parse_mapping, render
from exports.models import ExportKind, ExportRecord, FunderTemplate, TemplateVersion
from exports.xlsx.inspector import TemplateInfo, inspect_template
from exports.xlsx.recompute import recompute_caches
from grants.closing.services import reopen_period, submit_period
from grants.models import Funder, Grant, PeriodStatus, ReportingPeriod

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
        raise _refuse("name", _("is required"))
    safe_name = secure_filename(filename or "") or "template.xlsx"
    if not safe_name.lower().endswith((".xlsx", ".xlsm")):
        raise _refuse("file", _("'%(file)s' is not an .xlsx or .xlsm workbook", file=filename))
    if len(data) > TEMPLATE_MAX_BYTES:
        raise _refuse(
            "file",
            _(
                "is %(size)s MB; templates may be at most %(limit)s MB",
                size=len(data) // 1024 // 1024,
                limit=TEMPLATE_MAX_BYTES // 1024 // 1024,
            ),
        )
    try:
        info = inspect_template(data)
    except TemplateError as exc:
        raise _refuse("file", str(exc)) from None
    if safe_name.lower().endswith(".xlsx") and info.has_macros:
        raise _refuse("file", _("contains macros but is named .xlsx; Excel would refuse it — upload it as .xlsm"))
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
    problems = check_mapping(spec, info)
    if problems:
        raise DomainValidationError({"mapping": problems})
    version.mapping_text = text
    return spec


def check_mapping_text(text: str, info: TemplateInfo) -> tuple[MappingSpec | None, list[str]]:
    """The one check for the mapper: (spec, problems in words), without saving anything."""
    try:
        spec = parse_mapping(text, catalogue())
    except TemplateError as exc:
        return None, [f"{key}: {m}" for key, msgs in exc.details.items() for m in msgs] or [str(exc)]
    return spec, check_mapping(spec, info)


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
        known = ", ".join(t.name for t in templates_for_grant(session, grant)) or _("none")
        raise _refuse(
            "template",
            _(
                "%(funder)s has no template '%(name)s'; known: %(known)s",
                funder=grant.funder.name,
                name=name,
                known=known,
            ),
        )
    return template


# ---------------------------------------------------------------- built-in reports


@dataclass(frozen=True)
class BuiltinReport:
    name: str
    title: str  # a lazy text: shown in the reader's language, written in the workbook's
    datasets: tuple[str, ...]


BUILTIN_REPORTS: dict[str, BuiltinReport] = {
    report.name: report
    for report in (
        BuiltinReport(
            "budget_vs_actual",
            lazy_gettext("Budget vs actual"),
            ("budget_vs_actual_categories", "budget_vs_actual"),
        ),
        BuiltinReport("indicator_progress", lazy_gettext("Indicator progress (IPTT)"), ("indicator_progress",)),
        BuiltinReport("compliance_matrix", lazy_gettext("Compliance matrix"), ("requirement_status",)),
        BuiltinReport("evidence_register", lazy_gettext("Evidence register"), ("evidence_register",)),
        BuiltinReport("expenditure_ledger", lazy_gettext("Expenditure ledger"), ("expenditure_ledger",)),
        BuiltinReport("reporting_periods", lazy_gettext("Reporting periods"), ("reporting_periods",)),
    )
}


def available_builtin_reports() -> list[BuiltinReport]:
    datasets = all_datasets()
    return [r for r in BUILTIN_REPORTS.values() if all(name in datasets for name in r.datasets)]


def _sheet(
    session: Session, dataset: Dataset, grant: Grant, period: ReportingPeriod | None, progress: Progress | None
) -> ReportSheet:
    # Called inside in_locale(language): titles, headers and dates come out in the workbook's language.
    if period:
        scope = _(
            "%(period)s (%(start)s to %(end)s)",
            period=period.label,
            start=day(period.start_date),
            end=day(period.end_date),
        )
    else:
        scope = _("%(start)s to %(end)s", start=day(grant.start_date), end=day(grant.end_date))
    title = dataset_title(dataset)

    def rows():
        count = 0
        for row in rows_of(session, dataset, grant, period):
            count += 1
            if progress and count % 1000 == 0:
                progress(dataset.name, count, 0)
            yield [row.get(key) for key in dataset.keys]

    return ReportSheet(
        title=title,
        columns=[report_column(column) for column in dataset.columns],
        rows=rows(),
        title_rows=(
            f"{grant.reference} — {grant.title}",
            _(
                "%(report)s, %(scope)s, amounts in %(currency)s",
                report=title,
                scope=scope,
                currency=grant.currency,
            ),
        ),
    )


def _builtin_bytes(
    session: Session,
    report: BuiltinReport,
    grant: Grant,
    period: ReportingPeriod | None,
    progress: Progress | None,
    language: str,
) -> bytes:
    datasets = all_datasets()
    missing = [name for name in report.datasets if name not in datasets]
    if missing:
        raise _refuse(
            "report",
            _(
                "'%(report)s' needs datasets that are not available: %(missing)s",
                report=str(report.title),
                missing=", ".join(missing),
            ),
        )
    out = io.BytesIO()
    with in_locale(language):
        write_report(out, [_sheet(session, datasets[name], grant, period, progress) for name in report.datasets])
    return out.getvalue()


def builtin_languages() -> list[str]:
    """The languages a built-in report can be written in (those the interface speaks)."""
    return list(BaseConfig.LANGUAGES)


# ---------------------------------------------------------------- running an export


def resolve_period(grant: Grant, wanted: Period, default: ReportingPeriod | None) -> ReportingPeriod | None:
    """A mapping's period: None is the export's, N the grant's Nth period, a text its label."""
    if wanted is None:
        return default
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    if isinstance(wanted, int):
        if wanted > len(periods):
            raise _refuse(
                "period",
                _(
                    "the mapping asks for period %(wanted)s but %(grant)s has %(count)s periods",
                    wanted=wanted,
                    grant=grant.reference,
                    count=len(periods),
                ),
            )
        return periods[wanted - 1]
    for candidate in periods:
        if candidate.label.lower() == wanted.lower():
            return candidate
    known = ", ".join(p.label for p in periods) or _("none")
    raise _refuse(
        "period",
        _(
            "%(grant)s has no period '%(wanted)s'; its periods are %(known)s",
            grant=grant.reference,
            wanted=wanted,
            known=known,
        ),
    )


@dataclass
class Collected:
    """What one export fills: single fields, figures per cell mapping, rows per table."""

    fields: dict[str, Any]
    figures: dict[int, Any]
    tables: dict[int, list[dict[str, Any]]]


def collect(session: Session, spec: MappingSpec, grant: Grant, period: ReportingPeriod | None) -> Collected:
    """Every value the spec asks for, for this grant and period; refuses naming each unknown item.

    Figures are asked of each kind once per period, whatever the number of cells.
    """
    datasets = all_datasets()
    kinds = all_figure_kinds()
    values = field_values(session, grant, period)
    problems: list[str] = []
    figures: dict[int, Any] = {}
    per_period_fields: dict[int | None, dict[str, Any]] = {period.id if period else None: values}
    wanted: dict[tuple[str, int | None], list[tuple[int, FigureQuery]]] = {}
    periods: dict[int | None, ReportingPeriod | None] = {period.id if period else None: period}
    for i, cell in enumerate(spec.cells):
        if cell.formula is not None:
            continue
        try:
            chosen = resolve_period(grant, cell.period, period)
        except DomainValidationError as exc:
            problems.extend(f"cell {cell.target}: {m}" for msgs in exc.errors.values() for m in msgs)
            continue
        key = chosen.id if chosen else None
        periods[key] = chosen
        if cell.source is not None:
            if cell.period is not None:
                if key not in per_period_fields:
                    per_period_fields[key] = field_values(session, grant, chosen)
                figures[i] = per_period_fields[key][cell.source]
            continue
        assert cell.figure is not None and cell.item is not None and cell.measure is not None
        query = FigureQuery(cell.item, cell.measure, cell.category, cell.scope)
        wanted.setdefault((cell.figure, key), []).append((i, query))
    for (kind_name, key), asked in wanted.items():
        kind = kinds.get(kind_name)
        if kind is None:
            problems.append(f"figures of kind {kind_name!r} are not available")
            continue
        try:
            answers = figure_values(session, grant, periods[key], kind_name, [q for _, q in asked])
        except DomainValidationError as exc:
            problems.extend(m for msgs in exc.errors.values() for m in msgs)
            continue
        for i, query in asked:
            if query in answers:
                figures[i] = answers[query]
            elif not spec.cells[i].optional:
                problems.append(
                    f"cell {spec.cells[i].target} ({describe_cell(spec.cells[i])}): {grant.reference} has no "
                    f"{kind.item_label} {query.item!r}"
                )
    tables: dict[int, list[dict[str, Any]]] = {}
    fetched: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for i, table in enumerate(spec.tables):
        try:
            chosen = resolve_period(grant, table.period, period)
        except DomainValidationError as exc:
            problems.extend(f"table {i + 1} ({table.dataset}): {m}" for msgs in exc.errors.values() for m in msgs)
            continue
        wanted_rows = (table.dataset, chosen.id if chosen else None)
        if wanted_rows not in fetched:
            fetched[wanted_rows] = list(rows_of(session, datasets[table.dataset], grant, chosen))
        tables[i] = fetched[wanted_rows]
    if problems:
        raise _refuse("template", "; ".join(dict.fromkeys(problems)))
    return Collected(values, figures, tables)


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
    language: str | None = None,
) -> ExportRecord:
    """Generate one file (a funder template filled, or a built-in report), store it, record it.

    ``recompute`` (funder templates only) has headless LibreOffice compute the
    template's formulas so their cached results are present for readers that do
    not recalculate (pandas, openpyxl data_only); LibreOffice missing or failing
    is refused under the ``recompute`` field, and nothing is stored.

    ``language`` (built-in reports only; default: the reader's) is the language of
    the workbook's titles, headers and date formats; a file in another language
    than English says so in its name (``..._fr.xlsx``).  A funder template is
    filled as it is, in its own language, whoever generates it.
    """
    if (template is None) == (builtin is None):
        raise _refuse("report", _("choose either a funder template or a built-in report"))
    if period is not None and period.grant_id != grant.id:
        raise _refuse(
            "period", _("%(period)s is not a period of %(grant)s", period=period.label, grant=grant.reference)
        )
    if template is not None:
        if template.funder_id != grant.funder_id:
            raise _refuse(
                "template",
                _(
                    "'%(template)s' belongs to another funder than %(grant)s's",
                    template=template.name,
                    grant=grant.reference,
                ),
            )
        version = template.latest
        if version is None:
            raise _refuse("template", _("'%(template)s' has no uploaded file yet", template=template.name))
        if not version.mapping_text:
            raise _refuse(
                "template",
                _(
                    "'%(template)s' v%(version)s has no mapping yet; add one before exporting",
                    template=template.name,
                    version=version.version,
                ),
            )
        try:
            spec = parse_mapping(version.mapping_text, catalogue())
        except TemplateError as exc:
            raise _refuse(
                "template",
                _("the mapping of '%(template)s' no longer reads: %(problem)s", template=template.name, problem=exc),
            ) from None
        source = template_bytes(store, version)
        problems = check_mapping(spec, inspect_template(source))
        if problems:
            raise DomainValidationError({"template": problems})
        if progress:
            progress("collect", 0, 2)
        collected = collect(session, spec, grant, period)
        if progress:
            progress("fill", 1, 2)
        try:
            data = render(spec, source, collected.fields, collected.tables, figures=collected.figures)
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
            raise _refuse(
                "report",
                _(
                    "unknown built-in report '%(report)s'; known: %(known)s",
                    report=builtin,
                    known=", ".join(BUILTIN_REPORTS),
                ),
            )
        language = language or current_language()
        if language not in builtin_languages():
            raise _refuse(
                "language",
                _("choose one of the languages %(known)s", known=", ".join(builtin_languages())),
            )
        data = _builtin_bytes(session, report, grant, period, progress, language)
        suffix, kind, report_name, version_id = ".xlsx", ExportKind.builtin, report.name, None
        if language != "en":
            suffix = f"_{language}{suffix}"
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
    if record.filename.lower().endswith(".xml"):
        return "application/xml"  # an IATI activity file (exports.iati)
    return XLSM_MIME if record.filename.lower().endswith(".xlsm") else XLSX_MIME


# ---------------------------------------------------------------- history and publishing


def publish(session: Session, record: ExportRecord, *, user: str | None) -> ExportRecord:
    """Send a generated file to the grant's Donor users, in one operation (the caller commits once).

    A file about a reporting period also submits that period: it is marked
    submitted (who, when) and its report deadline is closed, so it is no longer
    overdue and its reminders stop (``grants.closing.services.submit_period``).
    """
    if record.published:
        raise _refuse("published", _("%(file)s is already published", file=record.filename))
    now = clock.now()
    record.published, record.published_by, record.published_at = True, user, now
    if record.period_id is not None:
        period = record.period or session.get(ReportingPeriod, record.period_id)
        if period is not None:
            submit_period(session, period, user=user, at=now)
    session.flush()
    return record


def unpublish(session: Session, record: ExportRecord, *, user: str | None, reason: str) -> ExportRecord:
    """Take a published file back from the donors, saying why; its period is reopened with its deadline.

    The period stays submitted while another file of it is still published.
    """
    reason = (reason or "").strip()
    if not reason:
        raise _refuse("reason", _("say why the file is taken back from the donor (e.g. 'wrong figures for KP-1c')"))
    if not record.published:
        raise _refuse("published", _("%(file)s is not published", file=record.filename))
    record.published, record.published_by, record.published_at = False, None, None
    record.unpublished_at, record.unpublished_by, record.unpublish_reason = clock.now(), user, reason
    session.flush()
    if record.period_id is not None:
        still_published = session.scalar(
            select(func.count(ExportRecord.id)).where(
                ExportRecord.period_id == record.period_id, ExportRecord.published.is_(True)
            )
        )
        period = record.period or session.get(ReportingPeriod, record.period_id)
        if period is not None and not still_published and period.status == PeriodStatus.submitted:
            reopen_period(session, period, reason=reason)
    session.flush()
    return record


def last_published(session: Session, record: ExportRecord) -> ExportRecord | None:
    """The latest file of the same grant, period and report published before ``record`` (the last submission)."""
    query = (
        select(ExportRecord)
        .where(
            ExportRecord.grant_id == record.grant_id,
            ExportRecord.report == record.report,
            ExportRecord.published.is_(True),
            ExportRecord.id != record.id,
        )
        .order_by(ExportRecord.published_at.desc(), ExportRecord.id.desc())
        .limit(1)
    )
    if record.period_id is None:
        query = query.where(ExportRecord.period_id.is_(None))
    else:
        query = query.where(ExportRecord.period_id == record.period_id)
    return session.scalar(query)


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
