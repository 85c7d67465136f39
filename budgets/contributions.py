"""What budgets adds to grants and exports: a requirement rule, evidence targets, a deadline check, datasets.

Loaded by the composition root after all models. Grants declares the
extension points and never imports budgets; the arrows point down from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from marshmallow import RAISE, Schema, fields
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budgets.ledger import expenditure_ledger
from budgets.models import (
    BudgetAllocation,
    BudgetImport,
    BudgetLine,
    BudgetRevision,
    Expenditure,
    ImportStatus,
    OdooLink,
    RevisionStatus,
    SyncStatus,
)
from budgets.report import budget_vs_actual, variance_flags
from core import clock
from core.datasets import (
    Column,
    Dataset,
    FigureKind,
    FigureQuery,
    Measure,
    add_dataset,
    add_figure_kind,
    as_fraction,
)
from core.formatting import N_, amount, day, label, lazy_gettext, moment, ngettext, pct
from core.formatting import gettext as _
from grants.closing.checklist import CHECKLIST, ClosingContext, Fix, Level, Line
from grants.compliance.rules import RULES, RuleContext, RuleResult, RuleType, Status
from grants.deadlines.missing import MISSING_WORK, listed, reported_period
from grants.deadlines.models import Deadline
from grants.evidence.targets import TARGETS, TargetKind
from grants.landing import FINANCE, LandingContext, LandingItem, LandingSection, Link, Tone, add_section, roles

# ---------------------------------------------------------------- requirement rule: variance within the threshold


class BudgetParams(Schema):
    class Meta:
        unknown = RAISE

    cost_categories = fields.List(fields.String(), load_default=list)


def budget_variance(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    flags = list(variance_flags(ctx.session, ctx.grant.id, ctx.period.id))
    wanted = set(params["cost_categories"])
    if wanted:
        flags = [f for f in flags if str(getattr(f, "cost_category", "")) in wanted]
    if not flags:
        return RuleResult(
            Status.met,
            _("Spending to the end of %(period)s is within the funder's variance rules.", period=ctx.period.label),
        )
    names = "; ".join(str(getattr(f, "message", None) or getattr(f, "name", f)) for f in flags[:3])
    if len(flags) > 3:
        names = _("%(items)s and %(count)d more", items=names, count=len(flags) - 3)
    sentence = ngettext(
        "%(num)d budget row beyond the funder's variance threshold without approval: %(names)s.",
        "%(num)d budget rows beyond the funder's variance threshold without approval: %(names)s.",
        len(flags),
        names=names,
    )
    return RuleResult(Status.not_met if ctx.window_over else Status.at_risk, sentence)


RULES.add(
    "budget_variance",
    RuleType(
        "budget_variance",
        lazy_gettext("Budget variance within the funder's threshold"),
        BudgetParams,
        budget_variance,
    ),
    order=30,
)


# ---------------------------------------------------------------- what evidence can support

TARGETS.add("budget_line", TargetKind("budget line", BudgetLine), order=40)
TARGETS.add("expenditure", TargetKind("expenditure", Expenditure), order=50)


# ---------------------------------------------------------------- still missing for a deadline


def budget_lines_over_threshold(session: Session, deadline: Deadline) -> list[str]:
    """Budget lines overspent beyond the funder's variance rule, up to the deadline's period."""
    period = reported_period(session, deadline)
    if period is None:
        return []
    lines = [
        f"{flag.key} {flag.name}"
        for flag in variance_flags(session, deadline.grant_id, period.id)
        if flag.level == "line"
    ]
    if not lines:
        return []
    return [
        ngettext(
            "%(num)d budget line over the variance threshold (needs the funder's approval): %(lines)s",
            "%(num)d budget lines over the variance threshold (needs the funder's approval): %(lines)s",
            len(lines),
            lines=listed(lines),
        )
    ]


MISSING_WORK.add("budget_lines_over_threshold", budget_lines_over_threshold, order=20)


# ---------------------------------------------------------------- datasets

_BVA_COLUMNS = (
    Column("code", N_("Code"), "text", 12),
    Column("name", N_("Budget line / cost category"), "text", 40),
    Column("cost_category", N_("Cost category"), "text", 10),
    Column("planned", N_("Planned"), "money"),
    Column("actual", N_("Actual"), "money"),
    Column("variance", N_("Variance"), "money"),
    Column("variance_pct", N_("Variance %"), "percent"),
    Column("cumulative_planned", N_("Cumulative planned"), "money", 17),
    Column("cumulative_actual", N_("Cumulative actual"), "money", 17),
    Column("cumulative_variance", N_("Cumulative variance"), "money", 17),
    Column("budget", N_("Total budget"), "money"),
    Column("burn_rate", N_("Burn rate"), "percent"),
    Column("remaining", N_("Remaining"), "money"),
)


def _budget_rows(by: Literal["line", "category"]) -> Callable[[Session, Any, Any], Iterator[dict[str, Any]]]:
    def rows(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
        report = budget_vs_actual(session, grant.id, period.id if period else None, by=by)
        for row in [*report.rows, *([report.total] if report.total else [])]:
            yield {
                "code": row.key,
                "name": row.name,
                "cost_category": row.cost_category,
                "planned": row.planned,
                "actual": row.actual,
                "variance": row.variance,
                "variance_pct": as_fraction(row.variance_pct),
                "cumulative_planned": row.cumulative_planned,
                "cumulative_actual": row.cumulative_actual,
                "cumulative_variance": row.cumulative_variance,
                "budget": row.budget,
                "burn_rate": as_fraction(row.burn_rate),
                "remaining": row.remaining,
            }

    return rows


def _ledger(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for row in expenditure_ledger(session, grant.id, period.id if period else None):
        yield {
            "date": row.spent_on,
            "period": row.period,
            "line": row.line_code,
            "line_description": row.line_description,
            "cost_category": row.cost_category,
            "description": row.description,
            "amount": row.amount,
            "currency": row.currency,
            "rate": row.rate,
            "converted_amount": row.converted_amount,
            "rate_source": row.rate_source,
            "source": row.source,
            "reference": row.external_ref,
        }


def _variance_flags(session: Session, grant: Any, period: Any) -> Iterator[dict[str, Any]]:
    for flag in variance_flags(session, grant.id, period.id if period else None):
        yield {
            "level": flag.level,
            "code": flag.key,
            "name": flag.name,
            "planned": flag.planned,
            "actual": flag.actual,
            "overspend": flag.overspend,
            "overspend_pct": as_fraction(flag.overspend_pct),
            "threshold": as_fraction(flag.threshold_percent),
            "message": flag.message,
        }


add_dataset(Dataset("budget_vs_actual", N_("Budget vs actual by line"), _BVA_COLUMNS, _budget_rows("line")), order=30)
add_dataset(
    Dataset("budget_vs_actual_categories", N_("Budget vs actual by category"), _BVA_COLUMNS, _budget_rows("category")),
    order=31,
)
add_dataset(
    Dataset(
        "expenditure_ledger",
        N_("Expenditure ledger"),
        (
            Column("date", N_("Date"), "date"),
            Column("period", N_("Period"), "text", 8),
            Column("line", N_("Line"), "text", 10),
            Column("line_description", N_("Budget line"), "text", 30),
            Column("cost_category", N_("Cost category"), "text", 10),
            Column("description", N_("Description"), "text", 40),
            Column("amount", N_("Amount"), "money"),
            Column("currency", N_("Currency"), "text", 9),
            Column("rate", N_("Rate"), "number"),
            Column("converted_amount", N_("In grant currency"), "money", 16),
            Column("rate_source", N_("Rate used"), "text", 36),
            Column("source", N_("Source"), "text", 9),
            Column("reference", N_("Reference"), "text", 24),
        ),
        _ledger,
    ),
    order=32,
)
add_dataset(
    Dataset(
        "variance_flags",
        N_("Lines needing donor approval"),
        (
            Column("level", N_("Level"), "text", 9),
            Column("code", N_("Code"), "text", 10),
            Column("name", N_("Name"), "text", 36),
            Column("planned", N_("Planned"), "money"),
            Column("actual", N_("Actual"), "money"),
            Column("overspend", N_("Overspend"), "money"),
            Column("overspend_pct", N_("Overspend %"), "percent"),
            Column("threshold", N_("Threshold"), "percent"),
            Column("message", N_("Why"), "text", 60),
        ),
        _variance_flags,
    ),
    order=33,
)


# ---------------------------------------------------------------- single figures: one line's or category's money

_SCOPES = (
    ("period", "in the period"),
    ("cumulative", "from the start of the grant to the end of the period"),
    ("grant", "the whole grant"),
)
_BUDGET_MEASURES = (
    Measure("name", "Name", "text"),
    Measure("planned", "Planned", "money"),
    Measure("actual", "Actual", "money"),
    Measure("variance", "Variance (planned − actual)", "money"),
    Measure("variance_pct", "Variance %", "percent"),
    Measure("budget", "Total budget of the grant", "money"),
    Measure("burn_rate", "Burn rate (cumulative actual ÷ budget)", "percent"),
    Measure("remaining", "Remaining (budget − cumulative actual)", "money"),
)


def _budget_items(by: Literal["line", "category"]) -> Callable[[Session, Any], list[tuple[str, str]]]:
    def items(session: Session, grant: Any) -> list[tuple[str, str]]:
        report = budget_vs_actual(session, grant.id, None, by=by)
        rows = [*report.rows, *([report.total] if report.total else [])]
        return [(row.key, f"{row.key} — {row.name}" if row.name != row.key else row.key) for row in rows]

    return items


def _budget_figure(row: Any, measure: str, scope: str) -> Any:
    if measure == "name":
        return row.name
    if measure in ("budget", "burn_rate", "remaining"):
        return as_fraction(row.burn_rate) if measure == "burn_rate" else getattr(row, measure)
    if scope == "cumulative":
        measure = {"variance_pct": "cumulative_variance_pct"}.get(measure, f"cumulative_{measure}")
    value = getattr(row, measure)
    return as_fraction(value) if measure.endswith("_pct") else value


def _budget_values(
    by: Literal["line", "category"],
) -> Callable[[Session, Any, Any, Sequence[FigureQuery]], Mapping[FigureQuery, Any]]:
    def values(session: Session, grant: Any, period: Any, queries: Sequence[FigureQuery]) -> Mapping[FigureQuery, Any]:
        answers: dict[FigureQuery, Any] = {}
        reports: dict[bool, dict[str, Any]] = {}
        for query in queries:
            scope = query.scope or "period"
            whole = scope == "grant" or period is None
            if whole not in reports:
                report = budget_vs_actual(session, grant.id, None if whole else period.id, by=by)
                rows = [*report.rows, *([report.total] if report.total else [])]
                reports[whole] = {row.key: row for row in rows}
            row = reports[whole].get(query.item)
            if row is not None:
                answers[query] = _budget_figure(row, query.measure, "period" if whole else scope)
        return answers

    return values


add_figure_kind(
    FigureKind(
        name="budget_line",
        title="Budget line",
        item_label="budget line code",
        measures=_BUDGET_MEASURES,
        items=_budget_items("line"),
        values=_budget_values("line"),
        scopes=_SCOPES,
    ),
    order=30,
)
add_figure_kind(
    FigureKind(
        name="cost_category",
        title="Cost category",
        item_label="cost category code",
        measures=_BUDGET_MEASURES,
        items=_budget_items("category"),
        values=_budget_values("category"),
        scopes=_SCOPES,
    ),
    order=31,
)


# ---------------------------------------------------------------- start page (finance): burn, flags, spending to import


def _burn(ctx: LandingContext) -> list[LandingItem]:
    items = []
    for grant in ctx.grants:
        total = budget_vs_actual(ctx.session, grant.id, by="category").total
        if total is None or not total.budget:
            items.append(
                LandingItem(
                    _("No budget entered yet"), Link.to("BudgetLineView.list"), "warning", None, grant.reference
                )
            )
            continue
        length = (grant.end_date - grant.start_date).days + 1
        elapsed = min(max((ctx.today - grant.start_date).days + 1, 0), length)
        time_pct = Decimal(elapsed * 100) / Decimal(length)
        burn = total.burn_rate or Decimal(0)
        tone: Tone = "warning" if burn > time_pct + 15 else ""
        items.append(
            LandingItem(
                _(
                    "%(spent)s spent of %(budget)s (%(burn)s)",
                    spent=amount(total.cumulative_actual, grant.currency),
                    budget=amount(total.budget, grant.currency),
                    burn=pct(burn),
                ),
                Link.to("BudgetReportView.grant", grant_id=grant.id),
                tone,
                _(
                    "%(share)s of the grant's time has passed; %(remaining)s remains",
                    share=pct(time_pct, 0),
                    remaining=amount(total.remaining, grant.currency),
                ),
                grant.reference,
            )
        )
    return items


def _over_threshold(ctx: LandingContext) -> list[LandingItem]:
    items = []
    for grant in ctx.grants:
        for flag in variance_flags(ctx.session, grant.id, as_of=ctx.today):
            if flag.level != "line":
                continue
            items.append(
                LandingItem(
                    _(
                        "Line %(code)s %(name)s: %(amount)s over plan (%(share)s)",
                        code=flag.key,
                        name=flag.name,
                        amount=amount(flag.overspend, grant.currency),
                        share=pct(flag.overspend_pct),
                    ),
                    Link.to("BudgetReportView.grant", grant_id=grant.id, by="line"),
                    "danger",
                    _(
                        "more than the funder's %(threshold)s; needs the funder's approval",
                        threshold=pct(flag.threshold_percent),
                    ),
                    grant.reference,
                )
            )
    return items


STALE_SYNC_DAYS = 7


def _awaiting_import(ctx: LandingContext) -> list[LandingItem]:
    if not ctx.grant_ids:
        return []
    items = []
    links = ctx.session.scalars(
        select(OdooLink).where(OdooLink.grant_id.in_(ctx.grant_ids)).order_by(OdooLink.grant_id)
    )
    for link in links:
        reference = link.grant.reference
        if not link.enabled:
            items.append(
                LandingItem(
                    _("The Odoo link is switched off: spending is not brought in from Odoo"),
                    Link.to("OdooLinkView.show", pk=link.id),
                    "info",
                    None,
                    reference,
                )
            )
        elif link.last_sync_at is None:
            items.append(
                LandingItem(
                    _("Never synced with Odoo"), Link.to("OdooLinkView.show", pk=link.id), "warning", None, reference
                )
            )
        elif link.last_status in (SyncStatus.failed, SyncStatus.refused):
            items.append(
                LandingItem(
                    _(
                        "The last Odoo sync %(outcome)s on %(when)s",
                        outcome=label(link.last_status).lower(),
                        when=moment(link.last_sync_at),
                    ),
                    Link.to("OdooLinkView.show", pk=link.id),
                    "danger",
                    link.last_message,
                    reference,
                )
            )
        else:
            age = (ctx.today - clock.local(link.last_sync_at).date()).days
            if age > STALE_SYNC_DAYS:
                items.append(
                    LandingItem(
                        _(
                            "Last synced with Odoo %(age)s days ago, on %(date)s",
                            age=age,
                            date=day(link.last_sync_at),
                        ),
                        Link.to("OdooLinkView.show", pk=link.id),
                        "warning",
                        None,
                        reference,
                    )
                )
    pending = ctx.session.scalars(
        select(BudgetImport)
        .where(BudgetImport.grant_id.in_(ctx.grant_ids), BudgetImport.status == ImportStatus.previewed)
        .order_by(BudgetImport.created_at)
    )
    for upload in pending:
        items.append(
            LandingItem(
                ngettext(
                    "%(file)s: %(num)d row checked, not imported yet",
                    "%(file)s: %(num)d rows checked, not imported yet",
                    upload.row_count,
                    file=upload.filename,
                ),
                Link.to("BudgetImportView.show", pk=upload.id),
                "warning",
                _("uploaded %(when)s by %(who)s", when=moment(upload.created_at), who=upload.created_by)
                if upload.created_by
                else _("uploaded %(when)s", when=moment(upload.created_at)),
                upload.grant.reference,
            )
        )
    return items


add_section(
    "budgets.burn",
    LandingSection(
        lazy_gettext("Burn per grant"),
        roles(FINANCE),
        _burn,
        lazy_gettext("No grants yet."),
        Link.to("BudgetReportView.index", lazy_gettext("Budget vs actual")),
    ),
    order=10,
)
add_section(
    "budgets.over_threshold",
    LandingSection(
        lazy_gettext("Lines over the variance threshold"),
        roles(FINANCE),
        _over_threshold,
        lazy_gettext("No budget line is over its threshold."),
    ),
    order=12,
)
add_section(
    "budgets.awaiting_import",
    LandingSection(
        lazy_gettext("Spending awaiting import"),
        roles(FINANCE),
        _awaiting_import,
        lazy_gettext("Spending is up to date: no pending imports or stale Odoo syncs."),
    ),
    order=14,
)


# ---------------------------------------------------------------- lines of the period checklist (grants.closing)


def spending_line(ctx: ClosingContext) -> Line:
    """Spending of the period imported: what is recorded, what is planned, imports left unconfirmed. Four queries."""
    session, grant, period = ctx.session, ctx.grant, ctx.period
    count, total, last = session.execute(
        select(
            func.count(Expenditure.id), func.sum(Expenditure.converted_amount), func.max(Expenditure.spent_on)
        ).where(Expenditure.grant_id == grant.id, Expenditure.period_id == period.id)
    ).one()
    planned = session.scalar(
        select(func.sum(BudgetAllocation.amount)).where(
            BudgetAllocation.grant_id == grant.id, BudgetAllocation.period_id == period.id
        )
    )
    pending = session.execute(
        select(BudgetImport.id, BudgetImport.filename)
        .where(BudgetImport.grant_id == grant.id, BudgetImport.status == ImportStatus.previewed)
        .order_by(BudgetImport.id)
    ).all()
    odoo = session.execute(
        select(OdooLink.id, OdooLink.last_sync_at).where(OdooLink.grant_id == grant.id, OdooLink.enabled.is_(True))
    ).first()
    fixes: list[Fix] = [
        Fix.to(
            _("Confirm the import of %(file)s", file=row.filename),
            "BudgetImportView.show",
            ("can_show", "BudgetImports"),
            pk=row.id,
        )
        for row in pending[:5]
    ]
    if odoo is not None:
        fixes.append(Fix.to(_("Sync from Odoo"), "OdooLinkView.show", ("can_show", "OdooLinks"), pk=odoo.id))
    fixes.append(
        Fix.to(_("Import actuals"), "BudgetImportView.upload", ("can_add", "BudgetImports"), grant_id=grant.id)
    )
    fixes.append(Fix.to(_("Enter an expenditure"), "ExpenditureView.add", ("can_add", "Expenditures")))
    planned_amount = amount(planned or 0, grant.currency)
    details: list[str] = [_("%(file)s: uploaded, not yet confirmed", file=row.filename) for row in pending]
    if odoo is not None:
        details.append(
            _("Odoo: last synced %(when)s", when=moment(odoo.last_sync_at))
            if odoo.last_sync_at
            else _("Odoo: never synced")
        )
    if not count:
        if ctx.period_over and planned:
            level = Level.missing
        else:
            level = Level.attention
        if planned:
            summary = _(
                "No spending is recorded for %(period)s (planned: %(planned)s).",
                period=ctx.period.label,
                planned=planned_amount,
            )
        else:
            summary = _("No spending is recorded for %(period)s.", period=ctx.period.label)
        if not ctx.period_over:
            summary += " " + _("The period ends on %(date)s.", date=day(period.end_date))
    else:
        level = Level.attention if pending else Level.done
        values = {"period": ctx.period.label, "total": amount(total or 0, grant.currency), "last": day(last)}
        if planned:
            summary = ngettext(
                "%(num)d expenditure recorded for %(period)s, %(total)s (planned: %(planned)s); the latest dated %(last)s.",
                "%(num)d expenditures recorded for %(period)s, %(total)s (planned: %(planned)s); the latest dated %(last)s.",
                count,
                planned=planned_amount,
                **values,
            )
        else:
            summary = ngettext(
                "%(num)d expenditure recorded for %(period)s, %(total)s; the latest dated %(last)s.",
                "%(num)d expenditures recorded for %(period)s, %(total)s; the latest dated %(last)s.",
                count,
                **values,
            )
    if pending:
        summary += " " + ngettext(
            "%(num)d import is waiting to be confirmed.", "%(num)d imports are waiting to be confirmed.", len(pending)
        )
    return Line("spending", _("Spending imported"), level, summary, tuple(details), tuple(fixes))


def variance_line(ctx: ClosingContext) -> Line:
    """Lines over the funder's variance threshold: each needs a budget revision sent to (or approved by) the funder."""
    flags = variance_flags(ctx.session, ctx.grant.id, ctx.period.id)
    title = _("Variance flags answered")
    report = Fix.to(
        _("Budget vs actual"),
        "BudgetReportView.grant",
        ("can_show", "BudgetReports"),
        grant_id=ctx.grant.id,
        period_id=ctx.period.id,
    )
    if not flags:
        return Line(
            "variance",
            title,
            Level.done,
            _("Spending to the end of %(period)s is within the funder's variance rules.", period=ctx.period.label),
            fixes=(report,),
        )
    waiting = ctx.session.execute(
        select(BudgetRevision.id, BudgetRevision.title)
        .where(BudgetRevision.grant_id == ctx.grant.id, BudgetRevision.status == RevisionStatus.submitted)
        .order_by(BudgetRevision.id)
    ).all()
    details = [flag.message for flag in flags]
    if waiting:
        return Line(
            "variance",
            title,
            Level.attention,
            ngettext(
                "%(num)d budget row beyond the funder's threshold; a budget revision awaits the funder's decision.",
                "%(num)d budget rows beyond the funder's threshold; a budget revision awaits the funder's decision.",
                len(flags),
            ),
            tuple(details[:5]),
            (
                *(
                    Fix.to(
                        _("Revision “%(title)s”", title=row.title),
                        "BudgetRevisionView.show",
                        ("can_show", "BudgetRevisions"),
                        pk=row.id,
                    )
                    for row in waiting[:3]
                ),
                report,
            ),
        )
    return Line(
        "variance",
        title,
        Level.missing,
        ngettext(
            "%(num)d budget row beyond the funder's threshold with no budget revision sent: "
            "request one, or explain the overspend to the funder.",
            "%(num)d budget rows beyond the funder's threshold with no budget revision sent: "
            "request one, or explain the overspend to the funder.",
            len(flags),
        ),
        tuple(details[:5]),
        (Fix.to(_("Request a budget revision"), "BudgetRevisionView.add", ("can_add", "BudgetRevisions")), report),
    )


CHECKLIST.add("spending", spending_line, order=60)
CHECKLIST.add("variance", variance_line, order=70)


# ---------------------------------------------------------------- background jobs (core.jobs): sync and large imports


def _plain_progress(progress: Any, words: Mapping[str, str]) -> Callable[[str, int, int | None], None]:
    """A domain's progress(stage, done, total) reported to the job in words."""

    def report(stage: str, done: int, total: int | None = None) -> None:
        progress(words.get(stage, stage.replace("_", " ").capitalize()), done, total)

    return report


# What the budgets jobs store as their outcome, in English; the jobs page shows them in the
# reader's language (core.jobs.shown matches each back to its message).
SYNC_LINK_GONE = N_("The Odoo link was removed before the sync started; nothing was done.")
SYNC_FAILED = N_("Odoo sync failed, nothing saved: %(problem)s")
SYNC_STOPPED = N_(
    "Odoo sync stopped, nothing saved: %(problem)s Tick 'confirm removals' on the link's page and sync again."
)
SYNC_REFUSED = N_("Odoo sync refused, nothing saved: %(problem)s")
FILE_GONE = N_("The uploaded file was removed before the import started; nothing was done.")
IMPORTED = {
    (True, True): N_("Imported %(imported)s expenditure; %(unchanged)s was already there."),
    (True, False): N_("Imported %(imported)s expenditure; %(unchanged)s were already there."),
    (False, True): N_("Imported %(imported)s expenditures; %(unchanged)s was already there."),
    (False, False): N_("Imported %(imported)s expenditures; %(unchanged)s were already there."),
}
ACTUALS_REFUSED = N_("Nothing imported: %(count)s problems. Download the error report, fix the file and try again.")
BUDGET_REFUSED = {
    True: N_("Nothing imported: %(count)s problem. Download the error report, fix the file and upload it again."),
    False: N_("Nothing imported: %(count)s problems. Download the error report, fix the file and upload it again."),
}
BUDGET_REVISION = N_(
    "The budget is approved, so the file became draft revision %(revision)s: review it and submit it for approval."
)
BUDGET_IMPORTED = N_("Budget imported: %(added)s lines added, %(changed)s changed, %(unchanged)s already so.")
BUDGET_UNCHANGED = N_("Nothing to change: the %(unchanged)s lines of the file are already so.")
JOB_STAGES = (
    N_("Reading the grant's lines from Odoo"),
    N_("Checking Odoo's lines"),
    N_("Saving the spending"),
    N_("Checking the rows"),
    N_("Saving the rows"),
    N_("Checking the rows and planning the lines"),
    N_("Saving the lines"),
)


def _stored_sentences() -> None:
    from core.jobs import stored_sentence

    for message in (
        SYNC_FAILED,
        SYNC_STOPPED,
        SYNC_REFUSED,
        *IMPORTED.values(),
        ACTUALS_REFUSED,
        *BUDGET_REFUSED.values(),
        BUDGET_REVISION,
        BUDGET_IMPORTED,
        BUDGET_UNCHANGED,
    ):
        stored_sentence(message)


_stored_sentences()


def odoo_sync_job(session: Session, params: Mapping[str, Any], progress: Any) -> Any:
    """``Sync now`` as a job: budgets.odoo_sync.sync_and_commit, its outcome in the job's words."""
    from flask import current_app  # jobs run inside the app's context; the Odoo settings are the app's

    from budgets import odoo_sync
    from budgets.odoo import OdooError
    from core.errors import DomainValidationError
    from core.jobs import JobFailed, JobOutcome

    link = session.get(OdooLink, params["link_id"])
    if link is None:
        raise JobFailed(SYNC_LINK_GONE)
    try:
        client = odoo_sync.client_from_env(current_app.config["GK_SETTINGS"].odoo_env)
    except OdooError as exc:
        raise JobFailed(SYNC_FAILED % {"problem": exc}) from None
    progress(JOB_STAGES[0], 0, None)
    report = _plain_progress(progress, {"checking": JOB_STAGES[1], "saving": JOB_STAGES[2]})
    try:
        result = odoo_sync.sync_and_commit(
            session,
            client,
            link,
            full=bool(params.get("full")),
            confirm_removals=bool(params.get("confirm_removals")),
            progress=report,
        )
    except OdooError as exc:
        raise JobFailed(SYNC_FAILED % {"problem": exc}) from None
    except odoo_sync.RemovalsNeedConfirmation as exc:
        raise JobFailed(SYNC_STOPPED % {"problem": exc}) from None
    except DomainValidationError as exc:
        raise JobFailed(SYNC_REFUSED % {"problem": exc}) from None
    finally:
        client.close()
    return JobOutcome(result.summary(), counts=result.counts())


def _odoo_links(job: Any) -> list[tuple[str, str]]:
    from flask import url_for

    links = [(_("The Odoo link"), url_for("OdooLinkView.show", pk=job.params.get("link_id")))]
    if job.grant_id is not None:
        links.append((_("Budget vs actual"), url_for("BudgetReportView.grant", grant_id=job.grant_id)))
    return links


def actuals_import_job(session: Session, params: Mapping[str, Any], progress: Any) -> Any:
    """A large actuals import confirmed on its page: budgets.imports.run_import, all rows or none."""
    from budgets import imports
    from core.jobs import JobFailed, JobOutcome

    staged = session.get(BudgetImport, params["import_id"])
    if staged is None:
        raise JobFailed(FILE_GONE)
    progress(JOB_STAGES[3], 0, staged.row_count or None)
    report = _plain_progress(progress, {"checking": JOB_STAGES[3], "saving": JOB_STAGES[4]})
    result = imports.run_import(
        session,
        staged,
        dict(params["mapping"]),
        default_currency=params.get("default_currency"),
        date_order=params.get("date_order") or "dayfirst",
        decimal_mark=params.get("decimal_mark") or ".",
        progress=report,
    )
    if result.status == ImportStatus.imported:
        return JobOutcome(
            IMPORTED[result.imported == 1, result.unchanged == 1]
            % {"imported": f"{result.imported:,}", "unchanged": f"{result.unchanged:,}"},
            counts={"imported": result.imported, "unchanged": result.unchanged},
        )
    return JobOutcome(
        ACTUALS_REFUSED % {"count": f"{len(result.errors):,}"},
        counts={"problems": len(result.errors)},
        failed=True,  # the refusal and its error report are kept
    )


def _actuals_import_links(job: Any) -> list[tuple[str, str]]:
    from flask import url_for

    return [(_("The import"), url_for("BudgetImportView.show", pk=job.params.get("import_id")))]


def budget_file_import_job(session: Session, params: Mapping[str, Any], progress: Any) -> Any:
    """A large budget file confirmed on its page: budgets.budget_import.run, all lines or none."""
    from budgets import budget_import
    from budgets.models import BudgetPlanImport
    from core.jobs import JobFailed, JobOutcome

    staged = session.get(BudgetPlanImport, params["import_id"])
    if staged is None:
        raise JobFailed(FILE_GONE)
    progress(JOB_STAGES[5], 0, staged.row_count or None)
    report = _plain_progress(progress, {"checking": JOB_STAGES[3], "saving": JOB_STAGES[6]})
    result = budget_import.run(
        session,
        staged,
        dict(params["mapping"]),
        profile=params.get("profile") or "even",
        category_choices=dict(params.get("category_choices") or {}),
        default_category=params.get("default_category"),
        progress=report,
    )
    outcome = result.outcome
    if outcome is None:
        return JobOutcome(
            BUDGET_REFUSED[len(result.errors) == 1] % {"count": f"{len(result.errors):,}"},
            counts={"problems": len(result.errors)},
            failed=True,
        )
    if outcome.revision is not None:
        sentence = BUDGET_REVISION % {"revision": outcome.revision.id}
    elif outcome.added or outcome.changed:
        sentence = BUDGET_IMPORTED % {
            "added": outcome.added,
            "changed": outcome.changed,
            "unchanged": outcome.unchanged,
        }
    else:
        sentence = BUDGET_UNCHANGED % {"unchanged": outcome.unchanged}
    return JobOutcome(
        sentence, counts={"added": outcome.added, "changed": outcome.changed, "unchanged": outcome.unchanged}
    )


def _budget_file_import_links(job: Any) -> list[tuple[str, str]]:
    from flask import url_for

    return [(_("The import"), url_for("BudgetPlanImportView.show", pk=job.params.get("import_id")))]


def _register_jobs() -> None:
    from core.jobs import JOBS, JobKind

    JOBS.add("odoo_sync", JobKind(N_("Odoo sync"), odoo_sync_job, unit="lines", links=_odoo_links))
    JOBS.add(
        "actuals_import", JobKind(N_("Import of actuals"), actuals_import_job, unit="rows", links=_actuals_import_links)
    )
    JOBS.add(
        "budget_file_import",
        JobKind(N_("Import of a budget file"), budget_file_import_job, unit="rows", links=_budget_file_import_links),
    )


_register_jobs()
