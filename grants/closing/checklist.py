"""The checklist that closes a reporting period: the ``CHECKLIST`` registry of lines each domain adds.

A line provider is ``provider(ctx) -> Line | None``: it looks at one grant and
one period (``ClosingContext``) and says, in words, what is done, what needs a
look and what is missing, with the exact form that fixes it. Grants adds its
own lines here (evidence, consultations, requirements); indicators and budgets
add theirs from their ``contributions`` module (results entered and verified,
evidence on results, spending imported, variance flags answered). This package
never imports them.

Providers run a fixed number of queries for a grant and period, never one per
row (``tests/grants/closing`` counts them). Links are ``Fix`` values naming a
Flask endpoint and its arguments, so this stays free of Flask; the page turns
them into URLs and leaves out those the user may not follow.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock, formatting
from core.formatting import gettext as _
from core.formatting import lazy_gettext, ngettext
from core.registry import Registry
from grants.compliance.models import Requirement
from grants.compliance.rules import Status
from grants.compliance.services import requirement_status
from grants.evidence.models import Consultation, CoordinatingBody, Evidence, EvidenceLink, VerificationStatus
from grants.evidence.services import visible_evidence_clause
from grants.models import Grant, PeriodStatus, ReportingPeriod


class Level(str, enum.Enum):
    """Green, amber, red: always shown with its words, never by colour alone."""

    done = "done"
    attention = "attention"
    missing = "missing"


LEVEL_LABELS = {
    Level.done: lazy_gettext("Done"),
    Level.attention: lazy_gettext("Needs a look"),
    Level.missing: lazy_gettext("Missing"),
}
# Bootstrap classes and a symbol that reads without colour.
LEVEL_CLASSES = {Level.done: "success", Level.attention: "warning", Level.missing: "danger"}
LEVEL_SYMBOLS = {Level.done: "✓", Level.attention: "!", Level.missing: "✗"}
SEVERITY = {Level.done: 0, Level.attention: 1, Level.missing: 2}
MAX_NAMED = 5  # items named on a line before "and N more"


@dataclass(frozen=True)
class Fix:
    """A link to the form that fixes a line: a Flask endpoint, its arguments, and the permission it needs."""

    text: str
    endpoint: str
    args: tuple[tuple[str, Any], ...] = ()
    permission: tuple[str, str] | None = None  # (permission, view name), e.g. ("can_add", "Evidence")

    @classmethod
    def to(cls, text: str, endpoint: str, permission: tuple[str, str] | None = None, **args: Any) -> Fix:
        return cls(text, endpoint, tuple(args.items()), permission)


@dataclass(frozen=True)
class Line:
    """One line of the checklist: what is checked, how it stands, and what to do about it."""

    key: str
    title: str
    level: Level
    summary: str  # one or two sentences: what is there and what is missing
    details: tuple[str, ...] = ()  # the items still open, named ("KP-1c: no result")
    fixes: tuple[Fix, ...] = ()

    @property
    def level_label(self) -> str:
        return str(LEVEL_LABELS[self.level])


@dataclass
class ClosingContext:
    """What a line provider is asked about: one grant, one period, today, and who is looking."""

    session: Session
    grant: Grant
    period: ReportingPeriod
    today: date
    user: Any = None  # the person looking (evidence they may not see is never counted); None: everything
    cache: dict[str, Any] = field(default_factory=dict)  # for providers that share a query

    @property
    def period_over(self) -> bool:
        return self.today > self.period.end_date

    @property
    def started(self) -> bool:
        return self.today >= self.period.start_date

    @property
    def window(self) -> str:
        return _(
            "%(period)s (%(start)s to %(end)s)",
            period=self.period.label,
            start=fmt_day(self.period.start_date),
            end=fmt_day(self.period.end_date),
        )


LineProvider = Callable[[ClosingContext], "Line | None"]

CHECKLIST: Registry[LineProvider] = Registry("period checklist line")


@dataclass(frozen=True)
class Checklist:
    grant: Grant
    period: ReportingPeriod
    lines: tuple[Line, ...]

    @property
    def level(self) -> Level:
        return max((line.level for line in self.lines), key=SEVERITY.__getitem__, default=Level.done)

    @property
    def counts(self) -> dict[Level, int]:
        return {level: sum(1 for line in self.lines if line.level == level) for level in Level}

    @property
    def summary(self) -> str:
        counts = self.counts
        if not self.lines:
            return _("Nothing to check for this period.")
        total, done = len(self.lines), counts[Level.done]
        missing, attention = counts[Level.missing], counts[Level.attention]
        if missing == 0 and attention == 0:
            return ngettext(
                "The %(num)d check is done: the period is ready to report.",
                "All %(num)d checks are done: the period is ready to report.",
                total,
            )
        if missing and attention:
            return _(
                "%(missing)d missing and %(attention)d to look at, %(done)d of %(total)d done.",
                missing=missing,
                attention=attention,
                done=done,
                total=total,
            )
        if missing:
            return _("%(missing)d missing, %(done)d of %(total)d done.", missing=missing, done=done, total=total)
        return _("%(attention)d to look at, %(done)d of %(total)d done.", attention=attention, done=done, total=total)


def build_checklist(
    session: Session, grant: Grant, period: ReportingPeriod, *, today: date | None = None, user: Any = None
) -> Checklist:
    """Every line the installed domains contribute, in the registry's order."""
    if period.grant_id != grant.id:
        raise ValueError(f"{period.label} is not a period of {grant.reference}")  # a programming error
    ctx = ClosingContext(session, grant, period, today or clock.today(), user)
    lines = [line for line in (provider(ctx) for provider in CHECKLIST.values()) if line is not None]
    return Checklist(grant, period, tuple(lines))


# ---------------------------------------------------------------- helpers for providers


def fmt_day(value: date | None) -> str:
    """'1 Dec 2026', the one way dates are written (``core.formatting``)."""
    return formatting.day(value)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def named(items: Iterable[str]) -> tuple[str, ...]:
    """Up to MAX_NAMED items, then 'and N more'."""
    items = list(items)
    shown = items[:MAX_NAMED]
    if len(items) > MAX_NAMED:
        shown.append(_("and %(count)d more", count=len(items) - MAX_NAMED))
    return tuple(shown)


def worst(levels: Iterable[Level]) -> Level:
    return max(levels, key=SEVERITY.__getitem__, default=Level.done)


# ---------------------------------------------------------------- grants' own lines


def _evidence_line(ctx: ClosingContext) -> Line:
    """Evidence dated in the period: attached, and verified by someone other than who uploaded it."""
    query = select(Evidence.id, Evidence.title, Evidence.status).where(
        Evidence.grant_id == ctx.grant.id,
        Evidence.evidence_date >= ctx.period.start_date,
        Evidence.evidence_date <= ctx.period.end_date,
    )
    if ctx.user is not None:
        query = query.where(visible_evidence_clause(ctx.user))
    rows = ctx.session.execute(query.order_by(Evidence.evidence_date, Evidence.id)).all()
    rejected = [r for r in rows if r.status == VerificationStatus.rejected]
    waiting = [r for r in rows if r.status == VerificationStatus.submitted]
    add = Fix.to(_("Add evidence"), "EvidenceView.add", ("can_add", "Evidence"))
    listed = Fix.to(
        _("Evidence of this grant"), "EvidenceView.list", ("can_list", "Evidence"), _flt_0_grant=ctx.grant.id
    )
    title = _("Evidence attached and verified")
    if not rows:
        level = Level.missing if ctx.period_over else Level.attention
        return Line(
            "evidence",
            title,
            level,
            _(
                "No evidence is dated in %(window)s: attach the minutes, attendance summaries or receipts.",
                window=ctx.window,
            ),
            fixes=(add,),
        )
    details = [_("%(title)s: rejected, replace it", title=r.title) for r in rejected] + [
        _("%(title)s: awaiting verification", title=r.title) for r in waiting
    ]
    fixes = tuple(
        Fix.to(_("Open “%(title)s”", title=r.title), "EvidenceView.show", ("can_show", "Evidence"), pk=r.id)
        for r in (rejected + waiting)[:MAX_NAMED]
    )
    verified = len(rows) - len(rejected) - len(waiting)
    summary = ngettext(
        "%(num)d evidence item dated in %(period)s, %(verified)d verified.",
        "%(num)d evidence items dated in %(period)s, %(verified)d verified.",
        len(rows),
        period=ctx.period.label,
        verified=verified,
    )
    if rejected:
        summary += " " + ngettext("%(num)d item was rejected.", "%(num)d items were rejected.", len(rejected))
    if waiting:
        summary += " " + ngettext(
            "%(num)d item awaits verification by a colleague.",
            "%(num)d items await verification by a colleague.",
            len(waiting),
        )
    level = Level.missing if rejected else Level.attention if waiting else Level.done
    return Line("evidence", title, level, summary, named(details), (*fixes, listed))


def _consultations_line(ctx: ClosingContext) -> Line:
    """Consultations held in the period, each with its minutes or attendance summary attached."""
    linked = (
        select(EvidenceLink.target_id)
        .where(EvidenceLink.grant_id == ctx.grant.id, EvidenceLink.target_kind == "consultation")
        .distinct()
        .subquery()
    )
    rows = ctx.session.execute(
        select(Consultation.id, Consultation.title, Consultation.held_on, CoordinatingBody.code, linked.c.target_id)
        .join(CoordinatingBody, CoordinatingBody.id == Consultation.body_id)
        .outerjoin(linked, linked.c.target_id == Consultation.id)
        .where(
            Consultation.grant_id == ctx.grant.id,
            Consultation.held_on >= ctx.period.start_date,
            Consultation.held_on <= ctx.period.end_date,
        )
        .order_by(Consultation.held_on, Consultation.id)
    ).all()
    add = Fix.to(_("Record a consultation"), "ConsultationView.add", ("can_add", "Consultations"))
    title = _("Consultations recorded")
    if not rows:
        return Line(
            "consultations",
            title,
            Level.attention,
            _(
                "No consultation is recorded in %(window)s. If a meeting was held, record it with its attendance counts.",
                window=ctx.window,
            ),
            fixes=(add,),
        )
    bare = [r for r in rows if r.target_id is None]
    summary = ngettext(
        "%(num)d consultation recorded in %(period)s.",
        "%(num)d consultations recorded in %(period)s.",
        len(rows),
        period=ctx.period.label,
    )
    if bare:
        summary += " " + ngettext(
            "%(num)d has no minutes or attendance summary attached.",
            "%(num)d have no minutes or attendance summary attached.",
            len(bare),
        )
    fixes = tuple(
        Fix.to(
            _("Open %(body)s %(date)s", body=r.code, date=fmt_day(r.held_on)),
            "ConsultationView.show",
            ("can_show", "Consultations"),
            pk=r.id,
        )
        for r in bare[:MAX_NAMED]
    )
    details = named(
        _("%(body)s %(date)s “%(title)s”: nothing attached", body=r.code, date=fmt_day(r.held_on), title=r.title)
        for r in bare
    )
    return Line(
        "consultations",
        title,
        Level.attention if bare else Level.done,
        summary,
        details,
        (*fixes, add),
    )


def _requirements_line(ctx: ClosingContext) -> Line | None:
    """Every requirement judged in this period: met, waived with a reason, or not yet due."""
    has_any = ctx.session.scalar(select(func.count(Requirement.id)).where(Requirement.grant_id == ctx.grant.id))
    title = _("Requirements met or explained")
    if not has_any:
        return Line(
            "requirements",
            title,
            Level.done,
            _("This grant has no compliance requirements."),
            fixes=(Fix.to(_("Add a requirement"), "RequirementView.add", ("can_add", "Requirements")),),
        )
    rows = requirement_status(ctx.session, ctx.grant.id, ctx.period.id, today=ctx.today)
    red = {Status.not_met.value, Status.overdue.value}
    amber = {Status.at_risk.value, Status.not_evaluable.value}
    open_rows = [r for r in rows if r.status in red | amber]
    if not rows:
        return Line(
            "requirements",
            title,
            Level.done,
            _("No requirement is judged in %(period)s.", period=ctx.period.label),
        )
    done = len(rows) - len(open_rows)
    summary = ngettext(
        "%(done)d of %(num)d requirement met, waived or not yet due in %(period)s.",
        "%(done)d of %(num)d requirements met, waived or not yet due in %(period)s.",
        len(rows),
        done=done,
        period=ctx.period.label,
    )
    if open_rows:
        summary += " " + _("Meet the others, or record why they are waived.")
    details = named(f"{r.requirement_code} {r.shown_title}: {r.status_label}. {r.explanation}" for r in open_rows)
    fixes: list[Fix] = [
        Fix.to(
            _("Details of %(code)s", code=r.requirement_code),
            "RequirementView.cell",
            ("can_show", "Requirements"),
            requirement_id=r.requirement_id,
            period_id=ctx.period.id,
        )
        for r in open_rows[:MAX_NAMED]
    ]
    if open_rows:
        fixes.append(Fix.to(_("Waive with a reason"), "RequirementWaiverView.add", ("can_add", "RequirementWaivers")))
    fixes.append(
        Fix.to(_("Compliance matrix"), "RequirementView.matrix", ("can_list", "Requirements"), grant_id=ctx.grant.id)
    )
    level = worst(Level.missing if r.status in red else Level.attention for r in open_rows)
    return Line("requirements", title, level, summary, details, tuple(fixes))


CHECKLIST.add("evidence", _evidence_line, order=30)
CHECKLIST.add("consultations", _consultations_line, order=40)
CHECKLIST.add("requirements", _requirements_line, order=50)


# ---------------------------------------------------------------- periods waiting to be closed


def periods_to_close(session: Session, grant_ids: Iterable[int] | None = None) -> list[ReportingPeriod]:
    """Open periods that have ended, oldest first (for landing pages and the periods list)."""
    query = select(ReportingPeriod).where(
        ReportingPeriod.status == PeriodStatus.open, ReportingPeriod.end_date < clock.today()
    )
    if grant_ids is not None:
        query = query.where(ReportingPeriod.grant_id.in_(list(grant_ids)))
    return list(session.scalars(query.order_by(ReportingPeriod.end_date, ReportingPeriod.id)))


__all__ = [
    "CHECKLIST",
    "Checklist",
    "ClosingContext",
    "Fix",
    "LEVEL_CLASSES",
    "LEVEL_LABELS",
    "LEVEL_SYMBOLS",
    "Level",
    "Line",
    "LineProvider",
    "build_checklist",
    "fmt_day",
    "named",
    "periods_to_close",
    "plural",
    "worst",
]
