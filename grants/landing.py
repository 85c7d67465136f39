"""The start page per role: each domain contributes sections without the page knowing it.

A domain adds a ``LandingSection`` to ``LANDING`` from its ``contributions``
module: which roles see it, and ``build(ctx)`` giving its lines for the
signed-in user (plain values, no Flask). The start page (``app.dashboard``)
shows the sections of the user's roles, ordered by ``order``, turns each
``Link`` into a URL and drops any link the user could not follow.

Privacy: ``ctx.user`` is the viewer, ``ctx.grants`` only the grants they may
see; a section a donor sees must never count or name confidential records.

Grants' own sections are added at the bottom of this module: deadlines the
user owns, evidence awaiting verification, periods to close, each grant's
compliance, setup gaps, and recent changes for the auditor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.audit import AuditEntry
from core.formatting import day, label, lazy_gettext, moment, ngettext, words
from core.formatting import gettext as _
from core.registry import Registry
from grants.compliance.models import Requirement
from grants.compliance.services import compliance_matrix, current_period
from grants.deadlines.models import DeadlineState
from grants.deadlines.services import deadlines_for_user, describe_days, shown_titles
from grants.evidence.models import Evidence, VerificationStatus
from grants.evidence.services import visible_evidence_clause
from grants.models import Funder, Grant, GrantMembership, PeriodStatus, ReportingPeriod

Tone = Literal["danger", "warning", "info", "success", ""]

FINANCE, PROGRAM, DONOR, AUDITOR, ADMIN = "Finance", "Program", "Donor", "Auditor", "Admin"


@dataclass(frozen=True)
class Link:
    """Where a line leads: a Flask endpoint and its arguments (resolved by the page)."""

    endpoint: str
    values: tuple[tuple[str, Any], ...] = ()
    text: str | None = None  # the link's own words; else the line's text is the link

    @classmethod
    def to(cls, endpoint: str, text: str | None = None, **values: Any) -> Link:
        return cls(endpoint, tuple(sorted(values.items())), text)


@dataclass(frozen=True)
class LandingItem:
    text: str
    link: Link | None = None
    tone: Tone = ""
    detail: str | None = None  # a second, smaller line
    grant: str | None = None  # the grant's reference, shown first


@dataclass(frozen=True)
class LandingContext:
    session: Session
    user: Any
    roles: frozenset[str]
    grants: Sequence[Grant]  # only those the user may see
    today: dt.date
    settings: Any = None  # config.settings.Settings, when the page has it

    @property
    def grant_ids(self) -> list[int]:
        return [grant.id for grant in self.grants]

    @property
    def donor_only(self) -> bool:
        return bool(self.roles) and self.roles <= {DONOR}


@dataclass(frozen=True)
class LandingSection:
    """One box of the start page. ``build`` returns its lines ([] shows ``empty``; None hides the box)."""

    title: str
    roles: frozenset[str]
    build: Callable[[LandingContext], list[LandingItem] | None]
    empty: str = lazy_gettext("Nothing here.")
    link: Link | None = None  # "see all"


@dataclass
class BuiltSection:
    key: str
    title: str
    items: list[LandingItem] = field(default_factory=list)
    empty: str = ""
    link: Link | None = None


LANDING: Registry[LandingSection] = Registry("start page section")


def add_section(key: str, section: LandingSection, *, order: int = 0) -> LandingSection:
    return LANDING.add(key, section, order=order)


def sections_for(ctx: LandingContext) -> list[BuiltSection]:
    """The sections of the user's roles, built, in order."""
    built = []
    for key, section in LANDING.items():
        if not (section.roles & ctx.roles):
            continue
        items = section.build(ctx)
        if items is None:
            continue
        built.append(BuiltSection(key, section.title, items, section.empty, section.link))
    return built


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def days_phrase(days_left: int) -> str:
    """ "in 3 days", "tomorrow", "today", "2 days overdue", in the reader's language."""
    return describe_days(days_left)


# ---------------------------------------------------------------- deadlines the user owns


def _my_deadlines(ctx: LandingContext) -> list[LandingItem]:
    rows = deadlines_for_user(ctx.session, ctx.user, today=ctx.today, mine_only=True, with_missing=False)
    tones: dict[Any, Tone] = {DeadlineState.overdue: "danger", DeadlineState.due: "warning"}
    titles = shown_titles(ctx.session, [row.deadline for row in rows[:8]])
    return [
        LandingItem(
            text=titles[row.deadline.id],
            link=Link.to("DeadlineView.show", pk=row.deadline.id),
            tone=tones.get(row.state, ""),
            detail=_("due %(date)s, %(when)s", date=day(row.deadline.due_date), when=days_phrase(row.days_left)),
            grant=row.deadline.grant.reference,
        )
        for row in rows[:8]
    ]


# ---------------------------------------------------------------- evidence awaiting verification


def _evidence_to_verify(ctx: LandingContext) -> list[LandingItem]:
    query = (
        select(Evidence.id, Evidence.title, Evidence.evidence_date, Grant.reference)
        .join(Grant, Grant.id == Evidence.grant_id)
        .where(visible_evidence_clause(ctx.user), Evidence.status == VerificationStatus.submitted)
        .order_by(Evidence.evidence_date, Evidence.id)
        .limit(10)
    )
    return [
        LandingItem(
            text=title,
            link=Link.to("EvidenceView.show", pk=evidence_id),
            tone="warning",
            detail=_("dated %(date)s, awaiting verification", date=day(dated)),
            grant=reference,
        )
        for evidence_id, title, dated, reference in ctx.session.execute(query)
    ]


# ---------------------------------------------------------------- periods to close


def _periods_to_close(ctx: LandingContext) -> list[LandingItem]:
    if not ctx.grant_ids:
        return []
    periods = ctx.session.scalars(
        select(ReportingPeriod)
        .join(Grant, Grant.id == ReportingPeriod.grant_id)
        .where(
            ReportingPeriod.grant_id.in_(ctx.grant_ids),
            ReportingPeriod.status == PeriodStatus.open,
            ReportingPeriod.end_date < ctx.today,
        )
        .order_by(ReportingPeriod.report_due, ReportingPeriod.end_date)
    )
    items = []
    for period in periods:
        due = period.report_due
        if due is None:
            detail, tone = _("ended %(date)s", date=day(period.end_date)), "info"
        else:
            left = (due - ctx.today).days
            detail = _(
                "ended %(end)s; report due %(due)s, %(when)s",
                end=day(period.end_date),
                due=day(due),
                when=days_phrase(left),
            )
            tone = "danger" if left < 0 else ("warning" if left <= 14 else "info")
        items.append(
            LandingItem(
                text=_("Close %(period)s and send the report", period=period.label),
                link=Link.to("PeriodClosingView.page", period_id=period.id),  # the period's checklist
                tone=tone,  # type: ignore[arg-type]
                detail=detail,
                grant=period.grant.reference,
            )
        )
    return items


# ---------------------------------------------------------------- each grant's compliance (donor, staff)


_COMPLIANCE_ORDER = ("not_met", "overdue", "at_risk", "met", "waived", "pending", "not_evaluable")


def _compliance(ctx: LandingContext) -> list[LandingItem]:
    items = []
    for grant in ctx.grants:
        matrix = compliance_matrix(ctx.session, grant, today=ctx.today)
        if not matrix.requirements:
            items.append(
                LandingItem(
                    _("No requirements recorded yet"),
                    Link.to("RequirementView.matrix", grant_id=grant.id),
                    "",
                    None,
                    grant.reference,
                )
            )
            continue
        period = current_period(matrix.periods, ctx.today)
        counts = matrix.counts(period.id if period else None)
        parts = [f"{counts[s]} {label(s).lower()}" for s in _COMPLIANCE_ORDER if counts.get(s)]
        bad = counts.get("not_met", 0) + counts.get("overdue", 0)
        tone: Tone = "danger" if bad else ("warning" if counts.get("at_risk") else "success")
        items.append(
            LandingItem(
                text=(
                    _(
                        "%(period)s: %(counts)s",
                        period=period.label,
                        counts=", ".join(parts) or _("nothing to judge yet"),
                    )
                    if period
                    else ", ".join(parts) or _("nothing to judge yet")
                ),
                link=Link.to("RequirementView.matrix", grant_id=grant.id),
                tone=tone,
                detail=ngettext(
                    "%(num)d requirement with %(funder)s",
                    "%(num)d requirements with %(funder)s",
                    len(matrix.requirements),
                    funder=grant.funder.name,
                ),
                grant=grant.reference,
            )
        )
    return items


# ---------------------------------------------------------------- setup gaps (admin)


def _setup_gaps(ctx: LandingContext) -> list[LandingItem]:
    session = ctx.session
    items: list[LandingItem] = []
    funders_with_grants = select(Grant.funder_id).distinct()
    for funder in session.scalars(select(Funder).where(Funder.id.in_(funders_with_grants)).order_by(Funder.name)):
        if not funder.cost_categories:
            items.append(
                LandingItem(
                    _(
                        "%(funder)s has no cost categories: budget lines cannot be grouped the funder's way",
                        funder=funder.name,
                    ),
                    Link.to("FunderView.edit", pk=funder.id),
                    "warning",
                )
            )
    grants = list(session.scalars(select(Grant).order_by(Grant.reference)))
    with_periods = set(session.scalars(select(ReportingPeriod.grant_id).distinct()))
    with_members = set(session.scalars(select(GrantMembership.grant_id).distinct()))
    with_requirements = set(session.scalars(select(Requirement.grant_id).distinct()))
    for grant in grants:
        missing = (grant.id not in with_periods, grant.id not in with_members, grant.id not in with_requirements)
        if any(missing):
            items.append(
                LandingItem(
                    str(_SETUP_MISSING[missing]),
                    Link.to("GrantView.show", pk=grant.id),
                    "warning",
                    grant=grant.reference,
                )
            )
    smtp = getattr(getattr(ctx.settings, "smtp", None), "host", None)
    if ctx.settings is not None and not smtp:
        items.append(
            LandingItem(
                _("E-mail is not configured: reminders wait in the outbox until GRANTKEEPER_SMTP_HOST is set"),
                Link.to("ReminderOutboxView.list"),
                "info",
            )
        )
    return items


# What a grant still lacks, by (no periods, no members, no requirements): one whole sentence each.
_SETUP_MISSING = {
    (True, False, False): lazy_gettext("No reporting periods yet"),
    (False, True, False): lazy_gettext("No members yet"),
    (False, False, True): lazy_gettext("No requirements yet"),
    (True, True, False): lazy_gettext("No reporting periods or members yet"),
    (True, False, True): lazy_gettext("No reporting periods or requirements yet"),
    (False, True, True): lazy_gettext("No members or requirements yet"),
    (True, True, True): lazy_gettext("No reporting periods, members or requirements yet"),
}


# ---------------------------------------------------------------- recent changes (auditor)

# Record kinds in words, per table; other tables are named from their table name.
RECORD_KINDS: dict[str, str] = {
    "grants": "grant",
    "funders": "funder",
    "grant_memberships": "grant membership",
    "reporting_periods": "reporting period",
    "export_records": "export",
    "template_versions": "funder template version",
    "funder_templates": "funder template",
    "indicator_results": "indicator result",
    "indicator_targets": "indicator target",
    "indicator_codes": "donor indicator code",
    "budget_allocations": "planned amount",
    "expenditures": "expenditure",
    "evidence": "evidence",
    "evidence_links": "evidence link",
    "requirement_waivers": "waiver",
    "odoo_links": "Odoo link",
    "odoo_account_maps": "Odoo account mapping",
    "audit_log": "audit entry",
}
SOURCES = {
    "web": "in the browser",
    "api": "through the API",
    "cli": "from the command line",
    "scheduler": "by the reminder scheduler",
    "system": "by the system",
    "sync": "by the Odoo sync",
}
ACTIONS = {"insert": "added", "update": "changed", "delete": "deleted"}


def record_kind(table_name: str) -> str:
    """A table's records in words: "export_records" → "export"."""
    known = RECORD_KINDS.get(table_name)
    if known:
        return known
    text = words(table_name).lower()
    if text.endswith("ies"):
        return text[:-3] + "y"
    if text.endswith("s") and not text.endswith("ss"):
        return text[:-1]
    return text


def source_words(source: str | None) -> str:
    return SOURCES.get(source or "", words(source or "unknown").lower())


def _grant_of(entry: AuditEntry, created: dict[tuple[str, str], Any]) -> int | None:
    if entry.table_name == "grants":
        try:
            return int(entry.record_id)
        except ValueError:
            return None
    for changes in (entry.changes or {}, created.get((entry.table_name, entry.record_id)) or {}):
        pair = changes.get("grant_id") if isinstance(changes, dict) else None
        if isinstance(pair, list):
            value = next((v for v in reversed(pair) if v is not None), None)
            if value is not None:
                return int(value)
    return None


def recent_changes(
    session: Session, grant_ids: Iterable[int] | None, limit: int = 12, scan: int = 600
) -> list[AuditEntry]:
    """The latest audit entries about records of the given grants (None: every entry).

    An entry belongs to a grant when it is the grant, or its record carries the
    grant's id (read from the entry's own changes, or from the record's first entry).
    """
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(scan)))
    if grant_ids is None:
        return entries[:limit]
    wanted = set(grant_ids)
    unknown = {(e.table_name, e.record_id) for e in entries if e.action != "insert" and e.table_name != "grants"}
    created: dict[tuple[str, str], Any] = {}
    if unknown:
        keys = list(unknown)[:500]
        for table_name, record_id, changes in session.execute(
            select(AuditEntry.table_name, AuditEntry.record_id, AuditEntry.changes).where(
                AuditEntry.action == "insert",
                or_(*(and_(AuditEntry.table_name == t, AuditEntry.record_id == r) for t, r in keys)),
            )
        ):
            created[(table_name, record_id)] = changes
    picked = [e for e in entries if _grant_of(e, created) in wanted]
    return picked[:limit]


# One whole sentence per action; the kind of record and where from are looked up in the catalogues
# (``core.labels`` lists them), the record's own name stays as entered.
_CHANGE_SENTENCES = {
    "insert": lazy_gettext("%(user)s added the %(what)s%(name)s %(source)s"),
    "update": lazy_gettext("%(user)s changed the %(what)s%(name)s %(source)s"),
    "delete": lazy_gettext("%(user)s deleted the %(what)s%(name)s %(source)s"),
}


def describe_change(entry: AuditEntry) -> str:
    """ "ana changed the grant “GA-1” in the browser", in the reader's language."""
    what = _(record_kind(entry.table_name))
    name = f" “{entry.record_label}”" if entry.record_label else ""
    source = _(source_words(entry.source))
    sentence = _CHANGE_SENTENCES.get(entry.action)
    if sentence is None:
        return f"{entry.username} {entry.action} the {what}{name} {source}"
    return str(sentence) % {"user": entry.username, "what": what, "name": name, "source": source}


def _recent_changes(ctx: LandingContext) -> list[LandingItem]:
    sees_all = bool(ctx.roles & {ADMIN, FINANCE})
    entries = recent_changes(ctx.session, None if sees_all else ctx.grant_ids)
    return [
        LandingItem(describe_change(entry), Link.to("AuditLogView.show", pk=entry.id), "", moment(entry.at))
        for entry in entries
    ]


# ---------------------------------------------------------------- registered here: grants' own sections

add_section(
    "grants.my_deadlines",
    LandingSection(
        lazy_gettext("Your deadlines"),
        roles(FINANCE, PROGRAM),
        _my_deadlines,
        lazy_gettext("No open deadlines are yours."),
        Link.to("MyDeadlinesView.index", lazy_gettext("All my deadlines")),
    ),
    order=40,
)
add_section(
    "grants.evidence_to_verify",
    LandingSection(
        lazy_gettext("Evidence awaiting verification"),
        roles(PROGRAM),
        _evidence_to_verify,
        lazy_gettext("No evidence is waiting to be verified."),
        Link.to("EvidenceView.list", lazy_gettext("All evidence")),
    ),
    order=22,
)
add_section(
    "grants.periods_to_close",
    LandingSection(
        lazy_gettext("Periods to close"),
        roles(PROGRAM, FINANCE),
        _periods_to_close,
        lazy_gettext("No ended period is waiting for its report."),
    ),
    order=24,
)
add_section(
    "grants.compliance",
    LandingSection(lazy_gettext("Compliance"), roles(DONOR), _compliance, lazy_gettext("No grants to show yet.")),
    order=20,
)
add_section(
    "grants.setup_gaps",
    LandingSection(
        lazy_gettext("Setup gaps"), roles(ADMIN), _setup_gaps, lazy_gettext("Nothing is missing from the setup.")
    ),
    order=5,
)
add_section(
    "grants.recent_changes",
    LandingSection(
        lazy_gettext("Recent changes"),
        roles(AUDITOR),
        _recent_changes,
        lazy_gettext("No changes recorded yet."),
        Link.to("AuditLogView.list", lazy_gettext("The whole audit trail")),
    ),
    order=10,
)
