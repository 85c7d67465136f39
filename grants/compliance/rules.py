"""The rules a requirement can combine: each checks its parameters and explains its status in a sentence.

A requirement stores its rules as JSON, ``[{"rule": "<name>", "params": {...}}]``.
Parameters are validated with marshmallow (unknown names refused, naming the
parameter). Evaluation gets a ``RuleContext`` (the grant, the window being
judged, its due date, ``today`` injected for testability, and ``levels``: the
evidence sensitivities the viewer may see, None for all) and returns a
``RuleResult``. A rule that counts evidence (``sees_evidence``) counts only
the levels in ``levels``; ``services.evaluate`` compares that with the count
over all evidence and, where hidden items change the status, shows the viewer
a neutral sentence instead (``HELD_BY_THE_ORGANISATION``). Rule types are contributions to ``RULES``: those about
indicators and budgets are added by ``indicators.contributions`` and
``budgets.contributions`` (this package never imports them); ``order`` keeps
the catalogue in the order people know it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.formatting import N_, day, lazy_gettext, ngettext
from core.formatting import gettext as _
from core.registry import Registry
from grants.evidence.models import (
    KEY_POPULATIONS,
    KIND_LABELS,
    CoordinatingBody,
    Evidence,
    EvidenceKind,
    EvidenceLink,
    Sensitivity,
    VerificationStatus,
)
from grants.evidence.targets import target_kinds
from grants.models import Grant, PeriodStatus, ReportingPeriod


class Status(str, enum.Enum):
    met = "met"
    pending = "pending"  # nothing is wrong yet: the window or its due date is still ahead
    not_evaluable = "not_evaluable"
    at_risk = "at_risk"
    not_met = "not_met"
    overdue = "overdue"
    waived = "waived"


# Translated when shown (``str(label)`` in the reader's language); rows carry the text, never store it.
STATUS_LABELS = {
    Status.met: lazy_gettext("met"),
    Status.pending: lazy_gettext("not yet due"),
    Status.not_evaluable: lazy_gettext("not evaluable"),
    Status.at_risk: lazy_gettext("at risk"),
    Status.not_met: lazy_gettext("not met"),
    Status.overdue: lazy_gettext("overdue"),
    Status.waived: lazy_gettext("waived"),
}
# When rules are combined the worst status wins.
SEVERITY = {
    Status.met: 0,
    Status.pending: 1,
    Status.not_evaluable: 2,
    Status.at_risk: 3,
    Status.not_met: 4,
    Status.overdue: 5,
}


def worst(statuses: Iterable[Status]) -> Status:
    found = list(statuses)
    return max(found, key=SEVERITY.__getitem__) if found else Status.not_evaluable


@dataclass
class RuleContext:
    session: Session
    grant: Grant
    requirement: Any  # grants.compliance.models.Requirement
    period: ReportingPeriod  # the period whose column is being judged (the last one of an annual window)
    start: date  # the window judged: a period, a grant year, or the whole grant
    end: date
    due: date
    today: date
    label: str | None = None  # how people call the window ("S1", "Semester 1 (...)")
    # The evidence sensitivities the viewer may see (None: all, for staff, auditors and deadlines).
    levels: frozenset[Sensitivity] | None = None

    def evidence_visible(self) -> Any:
        """A WHERE clause keeping the evidence the viewer may see (true when they see every level)."""
        if self.levels is None:
            return Evidence.id.isnot(None)
        return Evidence.sensitivity.in_(sorted(self.levels))

    def visible_evidence_ids(self, ids: Iterable[int]) -> tuple[int, ...]:
        """Of these evidence ids, those the viewer may see, in the same order."""
        wanted = tuple(dict.fromkeys(ids))
        if self.levels is None or not wanted:
            return wanted
        seen = set(self.session.scalars(select(Evidence.id).where(Evidence.id.in_(wanted), self.evidence_visible())))
        return tuple(i for i in wanted if i in seen)

    @property
    def window(self) -> str:
        if self.label:
            return self.label
        return (
            self.period.label
            if (self.start, self.end) == (self.period.start_date, self.period.end_date)
            else _("%(start)s to %(end)s", start=fmt_day(self.start), end=fmt_day(self.end))
        )

    @property
    def window_over(self) -> bool:
        return self.today > self.end

    @property
    def past_due(self) -> bool:
        return self.today > self.due


@dataclass(frozen=True)
class RuleResult:
    status: Status
    explanation: str
    evidence_ids: tuple[int, ...] = ()
    consultation_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class RuleType:
    name: str
    label: str
    schema: type[Schema]
    evaluate: Callable[[RuleContext, dict[str, Any]], RuleResult]
    # Checks needing the database: (session, grant_id, params) -> problems in words.
    check: Callable[[Session, int, dict[str, Any]], list[str]] = field(default=lambda s, g, p: [])
    # True when the status or sentence depends on evidence items (which a viewer may not all see).
    sees_evidence: bool = False


RULES: Registry[RuleType] = Registry("requirement rule")
MAX_IDS = 100  # evidence ids a status row carries for the click-through
# What a viewer reads where records they may not see decide the status: nothing of their number or kind.
# (English here; ``neutral_explanation`` gives them in the reader's language.)
HELD_BY_THE_ORGANISATION = N_("Supported by records held by the organisation.")
JUDGED_ON_HELD_RECORDS = N_("Judged on records held by the organisation.")


def neutral_explanation(status: Status) -> str:
    return _(HELD_BY_THE_ORGANISATION if status == Status.met else JUDGED_ON_HELD_RECORDS)


def fmt_percent(value: Decimal) -> str:
    return f"{value.normalize():f}"


def fmt_day(value: date) -> str:
    """A date in a sentence, the reader's way ("5 Jan 2026", "5 janv. 2026")."""
    return day(value)


# ---------------------------------------------------------------- evidence of kind K, verified


class EvidenceParams(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in EvidenceKind]))
    min_count = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))
    linked_only = fields.Boolean(load_default=False)


def _evidence(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    kind = EvidenceKind(params["kind"])
    label = KIND_LABELS[kind]
    linked = select(EvidenceLink.evidence_id).where(
        EvidenceLink.target_kind == "requirement", EvidenceLink.target_id == ctx.requirement.id
    )
    # Dated inside the window judged (and, with linked_only, linked to this requirement).
    # A one-off requirement also accepts a linked document from before the grant (a policy
    # adopted earlier still proves it is in place).
    in_window = Evidence.evidence_date.between(ctx.start, ctx.end)
    if ctx.requirement.frequency.value == "once":
        linked_scope = Evidence.id.in_(linked) & (Evidence.evidence_date <= ctx.end)
    else:
        linked_scope = Evidence.id.in_(linked) & in_window
    scope = linked_scope if params["linked_only"] else or_(linked_scope, in_window)
    where_clause = (
        Evidence.grant_id == ctx.grant.id,
        Evidence.kind == kind,
        Evidence.status != VerificationStatus.rejected,
        scope,
        ctx.evidence_visible(),
    )
    # Counts in SQL, and only a bounded list of ids for the click-through.
    counts = dict(
        ctx.session.execute(
            select(Evidence.status, func.count(Evidence.id)).where(*where_clause).group_by(Evidence.status)
        )
        .tuples()
        .all()
    )
    ids = tuple(
        ctx.session.scalars(
            select(Evidence.id)
            .where(*where_clause)
            .order_by(Evidence.status.desc(), Evidence.evidence_date.desc(), Evidence.id)
            .limit(MAX_IDS)
        )
    )
    verified = counts.get(VerificationStatus.verified, 0)
    waiting = counts.get(VerificationStatus.submitted, 0)
    items = verified + waiting
    need = params["min_count"]
    where = _("linked to this requirement") if params["linked_only"] else _("for %(window)s", window=ctx.window)
    due = fmt_day(ctx.due)
    if verified >= need:
        text = _(
            "%(count)s verified %(kind)s item(s) %(where)s (needed %(need)s).",
            count=verified,
            kind=label,
            where=where,
            need=need,
        )
        return RuleResult(Status.met, text, ids)
    if waiting and verified + waiting >= need:
        detail = _(
            "%(kind)s %(where)s: %(waiting)s item(s) still await verification",
            kind=label,
            where=where,
            waiting=waiting,
        )
    elif waiting:
        detail = _(
            "%(count)s of %(need)s verified %(kind)s item(s) %(where)s, %(waiting)s awaiting verification",
            count=verified,
            need=need,
            kind=label,
            where=where,
            waiting=waiting,
        )
    else:
        detail = _(
            "%(count)s of %(need)s verified %(kind)s item(s) %(where)s",
            count=verified,
            need=need,
            kind=label,
            where=where,
        )
    if ctx.past_due:
        status = Status.not_met if items else Status.overdue
        return RuleResult(status, _("%(detail)s; due %(date)s.", detail=detail, date=due), ids)
    if not ctx.window_over and not items:
        text = _("No %(kind)s yet %(where)s; due %(date)s.", kind=label, where=where, date=due)
        return RuleResult(Status.pending, text, ids)
    return RuleResult(Status.at_risk, _("%(detail)s; due %(date)s.", detail=detail, date=due), ids)


RULES.add(
    "evidence_verified",
    RuleType(
        "evidence_verified",
        lazy_gettext("Evidence present and verified"),
        EvidenceParams,
        _evidence,
        sees_evidence=True,
    ),
    order=10,
)


# ---------------------------------------------------------------- report submitted by its due date


class ReportParams(Schema):
    class Meta:
        unknown = RAISE

    grace_days = fields.Integer(load_default=0, validate=validate.Range(min=0, max=365))
    warn_days = fields.Integer(load_default=14, validate=validate.Range(min=0, max=365))


def _report(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    from datetime import timedelta

    period = ctx.period
    due = period.report_due or ctx.due
    if period.status == PeriodStatus.submitted:
        text = _("The %(period)s report was submitted (due %(date)s).", period=period.label, date=fmt_day(due))
        return RuleResult(Status.met, text)
    if period.status == PeriodStatus.accepted:
        text = _("The %(period)s report was accepted (due %(date)s).", period=period.label, date=fmt_day(due))
        return RuleResult(Status.met, text)
    if ctx.today > due + timedelta(days=params["grace_days"]):
        late = (ctx.today - due).days
        text = ngettext(
            "The %(period)s report was due on %(date)s and is %(num)d day late.",
            "The %(period)s report was due on %(date)s and is %(num)d days late.",
            late,
            period=period.label,
            date=fmt_day(due),
        )
        return RuleResult(Status.overdue, text)
    if ctx.today >= due - timedelta(days=params["warn_days"]) or (ctx.window_over and params["warn_days"] == 0):
        text = _(
            "The %(period)s report is due on %(date)s and not yet submitted.", period=period.label, date=fmt_day(due)
        )
        return RuleResult(Status.at_risk, text)
    return RuleResult(
        Status.pending, _("The %(period)s report is due on %(date)s.", period=period.label, date=fmt_day(due))
    )


RULES.add(
    "report_submitted",
    RuleType("report_submitted", lazy_gettext("Report submitted by its due date"), ReportParams, _report),
    order=40,
)


# ---------------------------------------------------------------- key population representation at every meeting


class RepresentationParams(Schema):
    class Meta:
        unknown = RAISE

    body = fields.String(required=True)
    population = fields.String(required=True, validate=validate.OneOf(list(KEY_POPULATIONS)))
    min_count = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))
    shortfall_status = fields.String(load_default="at_risk", validate=validate.OneOf(["at_risk", "not_met"]))


REPRESENTATIVE = {
    "sex_workers": "sex worker",
    "msm": "MSM",
    "transgender": "transgender",
    "people_who_use_drugs": "people-who-use-drugs",
    "plhiv": "PLHIV",
}


def representatives(population: str, count: int) -> str:
    """ "2 sex worker representatives" in the reader's language (one message per constituency)."""
    if population == "sex_workers":
        return ngettext("%(num)d sex worker representative", "%(num)d sex worker representatives", count)
    if population == "msm":
        return ngettext("%(num)d MSM representative", "%(num)d MSM representatives", count)
    if population == "transgender":
        return ngettext("%(num)d transgender representative", "%(num)d transgender representatives", count)
    if population == "people_who_use_drugs":
        return ngettext(
            "%(num)d people-who-use-drugs representative", "%(num)d people-who-use-drugs representatives", count
        )
    if population == "plhiv":
        return ngettext("%(num)d PLHIV representative", "%(num)d PLHIV representatives", count)
    who = population.replace("_", " ")
    return ngettext("%(num)d %(who)s representative", "%(num)d %(who)s representatives", count, who=who)


def _representation_check(session: Session, grant_id: int, params: dict[str, Any]) -> list[str]:
    if session.scalar(select(CoordinatingBody.id).where(CoordinatingBody.code == params["body"])) is None:
        return [_("there is no coordinating body with code '%(code)s'", code=params["body"])]
    return []


def _representation(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    from grants.evidence.models import Consultation

    body_code, population, need = params["body"], params["population"], params["min_count"]
    who = representatives(population, need)
    meetings = list(
        ctx.session.scalars(
            select(Consultation)
            .join(CoordinatingBody, CoordinatingBody.id == Consultation.body_id)
            .where(
                Consultation.grant_id == ctx.grant.id,
                CoordinatingBody.code == body_code,
                Consultation.held_on.between(ctx.start, ctx.end),
            )
            .order_by(Consultation.held_on, Consultation.id)
        )
    )
    ids = tuple(m.id for m in meetings)
    minutes = ctx.visible_evidence_ids(
        ctx.session.scalars(
            select(EvidenceLink.evidence_id).where(
                EvidenceLink.target_kind == "consultation", EvidenceLink.target_id.in_(ids or (0,))
            )
        )
    )
    if not meetings:
        if ctx.window_over:
            text = _("No %(body)s meeting was recorded in %(window)s.", body=body_code, window=ctx.window)
            return RuleResult(Status.not_met, text)
        text = _("No %(body)s meeting recorded in %(window)s yet.", body=body_code, window=ctx.window)
        return RuleResult(Status.pending, text)
    short = [m for m in meetings if m.count(population) < need]
    if not short:
        text = _(
            "All %(count)s %(body)s meeting(s) in %(window)s had at least %(who)s.",
            count=len(meetings),
            body=body_code,
            window=ctx.window,
            who=who,
        )
        return RuleResult(Status.met, text, minutes, ids)
    listed = ", ".join(f"{fmt_day(m.held_on)}: {m.count(population)}" for m in short)
    text = _(
        "%(short)s of %(count)s %(body)s meeting(s) in %(window)s had fewer than %(who)s (%(dates)s).",
        short=len(short),
        count=len(meetings),
        body=body_code,
        window=ctx.window,
        who=who,
        dates=listed,
    )
    return RuleResult(Status(params["shortfall_status"]), text, minutes, ids)


RULES.add(
    "consultation_representation",
    RuleType(
        "consultation_representation",
        lazy_gettext("Key population represented at every meeting of a body"),
        RepresentationParams,
        _representation,
        _representation_check,
    ),
    order=50,
)


# ---------------------------------------------------------------- at least N meetings with at least M representatives


class MeetingCountParams(Schema):
    class Meta:
        unknown = RAISE

    body = fields.String(required=True)
    min_meetings = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100))
    population = fields.String(required=True, validate=validate.OneOf(list(KEY_POPULATIONS)))
    min_count = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1000))


def _meeting_count(ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    """Counts the meetings of the window that had enough representatives; short ones do not count."""
    from grants.evidence.models import Consultation

    body_code, population = params["body"], params["population"]
    need_meetings, need_people = params["min_meetings"], params["min_count"]
    who = representatives(population, need_people)
    meetings = list(
        ctx.session.scalars(
            select(Consultation)
            .join(CoordinatingBody, CoordinatingBody.id == Consultation.body_id)
            .where(
                Consultation.grant_id == ctx.grant.id,
                CoordinatingBody.code == body_code,
                # Only meetings that have taken place count (none dated ahead of today).
                Consultation.held_on.between(ctx.start, min(ctx.end, ctx.today)),
            )
            .order_by(Consultation.held_on, Consultation.id)
        )
    )
    ids = tuple(m.id for m in meetings)
    minutes = ctx.visible_evidence_ids(
        ctx.session.scalars(
            select(EvidenceLink.evidence_id).where(
                EvidenceLink.target_kind == "consultation", EvidenceLink.target_id.in_(ids or (0,))
            )
        )
    )
    counted = [m for m in meetings if m.count(population) >= need_people]
    sentence = ngettext(
        "%(counted)s of the %(num)d %(body)s meeting needed in %(window)s had at least %(who)s",
        "%(counted)s of the %(num)d %(body)s meetings needed in %(window)s had at least %(who)s",
        need_meetings,
        counted=len(counted),
        body=body_code,
        window=ctx.window,
        who=who,
    )
    if len(meetings) > len(counted):
        short = ", ".join(f"{fmt_day(m.held_on)}: {m.count(population)}" for m in meetings if m not in counted)
        sentence = _("%(sentence)s (too few at %(dates)s)", sentence=sentence, dates=short)
    if len(counted) >= need_meetings:
        return RuleResult(Status.met, sentence + ".", minutes, ids)
    if not ctx.window_over:
        status = Status.pending if not meetings else Status.at_risk
        text = _("%(sentence)s; the window ends on %(date)s.", sentence=sentence, date=fmt_day(ctx.end))
        return RuleResult(status, text, minutes, ids)
    return RuleResult(Status.not_met, sentence + ".", minutes, ids)


RULES.add(
    "meeting_count",
    RuleType(
        "meeting_count",
        lazy_gettext("At least N meetings of a body with at least M representatives of a constituency"),
        MeetingCountParams,
        _meeting_count,
        _representation_check,
    ),
    order=55,
)


# ---------------------------------------------------------------- checking a requirement's rules


def parse_rule(
    session: Session | None, grant_id: int | None, index: int, entry: Any
) -> tuple[RuleType, dict[str, Any]]:
    """Validate one rule entry; raises ValueError with a message naming the rule and parameter."""
    where = _("rule %(number)s", number=index + 1)
    if not isinstance(entry, dict):
        raise ValueError(_('%(where)s: write each rule as {"rule": "<name>", "params": {...}}', where=where))
    extra = set(entry) - {"rule", "params"}
    if extra:
        raise ValueError(
            _(
                "%(where)s: unknown key(s) %(keys)s; a rule has only 'rule' and 'params'",
                where=where,
                keys=", ".join(sorted(extra)),
            )
        )
    name = entry.get("rule")
    if name not in RULES:
        raise ValueError(
            _(
                "%(where)s: unknown rule '%(rule)s'; known rules: %(known)s",
                where=where,
                rule=name,
                known=", ".join(RULES),
            )
        )
    rule = RULES[str(name)]
    raw = entry.get("params") or {}
    if not isinstance(raw, dict):
        raise ValueError(_("%(where)s (%(rule)s): params must be an object", where=where, rule=name))
    try:
        params = rule.schema().load(raw)
    except ValidationError as exc:
        allowed = ", ".join(rule.schema().fields)
        parts = []
        # Schema.load always raises with a dict of field -> messages; marshmallow types it wider.
        for param, messages in sorted(cast(dict[str, Any], exc.messages).items()):
            text = "; ".join(str(m) for m in (messages if isinstance(messages, list) else [messages]))
            if "Unknown field" in text:
                parts.append(
                    _(
                        "unknown parameter '%(param)s' (parameters of %(rule)s: %(allowed)s)",
                        param=param,
                        rule=name,
                        allowed=allowed,
                    )
                )
            else:
                parts.append(_("parameter '%(param)s': %(problem)s", param=param, problem=text))
        raise ValueError(
            _("%(where)s (%(rule)s): %(problems)s", where=where, rule=name, problems="; ".join(parts))
        ) from None
    if session is not None and grant_id is not None:
        problems = rule.check(session, grant_id, params)
        if problems:
            raise ValueError(
                _("%(where)s (%(rule)s): %(problems)s", where=where, rule=name, problems="; ".join(problems))
            )
    return rule, params


def rule_errors(session: Session, grant_id: int, rules: Any) -> list[str]:
    """Every problem with a requirement's rules, in words (empty when all are valid)."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [_('must be a list of rules, e.g. [{"rule": "evidence_verified", "params": {"kind": "minutes"}}]')]
    problems = []
    with session.no_autoflush:
        for index, entry in enumerate(rules):
            try:
                parse_rule(session, grant_id, index, entry)
            except ValueError as exc:
                problems.append(str(exc))
    return problems


def rule_catalogue() -> list[dict[str, Any]]:
    """The rules and their parameters, for the requirement form's help text and the API."""
    return [
        {"rule": rule.name, "label": str(rule.label), "params": sorted(rule.schema().fields)} for rule in RULES.values()
    ]


__all__ = [
    "RULES",
    "RuleContext",
    "RuleResult",
    "RuleType",
    "Status",
    "STATUS_LABELS",
    "parse_rule",
    "rule_errors",
    "worst",
    "rule_catalogue",
    "target_kinds",
    "fmt_day",
    "fmt_percent",
]
