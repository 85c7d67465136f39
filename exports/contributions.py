"""What exports adds to the extension points below it: the donor's published spreadsheets on the start page.

Loaded by the composition root after all models, like every domain's
``contributions`` module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.formatting import N_, day, lazy_gettext, moment
from core.formatting import gettext as _
from exports.models import ExportRecord
from grants import landing
from grants.models import ReportingPeriod


def _published(ctx: landing.LandingContext) -> list[landing.LandingItem]:
    """What was published to the donor for the grants they see, newest first: the files, nothing else."""
    if not ctx.grant_ids:
        return []
    rows = ctx.session.execute(
        select(ExportRecord, ReportingPeriod)
        .outerjoin(ReportingPeriod, ReportingPeriod.id == ExportRecord.period_id)
        .where(ExportRecord.grant_id.in_(ctx.grant_ids), ExportRecord.published.is_(True))
        .order_by(ExportRecord.published_at.desc(), ExportRecord.id.desc())
        .limit(10)
    )
    items = []
    for record, period in rows:
        if period:
            scope = _(
                "%(period)s (%(start)s to %(end)s)",
                period=period.label,
                start=day(period.start_date),
                end=day(period.end_date),
            )
        else:
            scope = _("the whole grant")
        items.append(
            landing.LandingItem(
                record.filename,
                landing.Link.to("ExportRecordView.file", pk=record.id),
                "",
                _("for %(scope)s; published %(moment)s", scope=scope, moment=moment(record.published_at)),
                record.grant.reference,
            )
        )
    return items


landing.add_section(
    "exports.published",
    landing.LandingSection(
        lazy_gettext("Published spreadsheets"),
        landing.roles(landing.DONOR),
        _published,
        lazy_gettext("Nothing has been published to you yet."),
        landing.Link.to("ExportRecordView.list", lazy_gettext("All published files")),
    ),
    order=30,
)


# ---------------------------------------------------------------- background jobs (core.jobs): exports LibreOffice recomputes

# Kept in the job record as written (marked for the catalogues; the jobs page translates what it shows).
_EXPORT_STEPS = {
    "collect": N_("Collecting the figures"),
    "fill": N_("Filling the template"),
    "recompute": N_("LibreOffice is computing the formulas (this can take two minutes)"),
}


def export_job(session: Any, params: Any, progress: Any) -> Any:
    """An export generated off the request (a funder template recomputed by LibreOffice): exports.services.run_export."""
    from core.errors import DomainValidationError
    from core.jobs import JobFailed, JobOutcome
    from core.storage import file_store
    from exports import services
    from exports.models import FunderTemplate
    from grants.models import Grant

    grant = session.get(Grant, params["grant_id"])
    period = session.get(ReportingPeriod, params["period_id"]) if params.get("period_id") else None
    template = session.get(FunderTemplate, params["template_id"]) if params.get("template_id") else None
    if grant is None or (params.get("template_id") and template is None):
        raise JobFailed("The grant or the template was removed before the export started; nothing was made.")

    def report(step: str, done: int, total: int) -> None:
        progress(_EXPORT_STEPS.get(step, step.capitalize()), done, total)

    try:
        record = services.run_export(
            session,
            file_store(),
            grant=grant,
            period=period,
            user=params.get("user"),
            template=template,
            builtin=None if template is not None else params.get("builtin"),
            recompute=bool(params.get("recompute")),
            progress=report,
            # The language chosen when the job was started, not the worker's (built-in reports only).
            language=params.get("language") or "en",
        )
    except DomainValidationError as exc:
        raise JobFailed(f"Nothing was generated: {exc.summary()}") from None
    return JobOutcome(f"Generated {record.filename}.", record_id=record.id)


def _export_links(job: Any) -> list[tuple[str, str]]:
    from flask import url_for

    links = []
    record_id, grant_id = getattr(job, "record_id", None), getattr(job, "grant_id", None)
    if record_id is not None:
        links.append(("Download the file", url_for("ExportRecordView.file", pk=record_id)))
    if grant_id is not None:
        links.append(("Back to the grant", url_for("GrantView.show", pk=grant_id)))
    return links


def _register_jobs() -> None:
    from core.jobs import JOBS, JobKind

    JOBS.add("export", JobKind("Export", export_job, unit="steps", links=_export_links))


_register_jobs()
