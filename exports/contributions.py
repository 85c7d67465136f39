"""What exports adds to the extension points below it: the donor's published spreadsheets on the start page.

Loaded by the composition root after all models, like every domain's
``contributions`` module.
"""

from __future__ import annotations

from sqlalchemy import select

from core.formatting import day, moment
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
        scope = f"{period.label} ({day(period.start_date)} to {day(period.end_date)})" if period else "the whole grant"
        items.append(
            landing.LandingItem(
                record.filename,
                landing.Link.to("ExportRecordView.file", pk=record.id),
                "",
                f"for {scope}; published {moment(record.published_at)}",
                record.grant.reference,
            )
        )
    return items


landing.add_section(
    "exports.published",
    landing.LandingSection(
        "Published spreadsheets",
        landing.roles(landing.DONOR),
        _published,
        "Nothing has been published to you yet.",
        landing.Link.to("ExportRecordView.list", "All published files"),
    ),
    order=30,
)
