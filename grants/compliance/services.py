"""Every state change of requirements and waivers, and the status of each requirement per period.

Plain functions over a SQLAlchemy session (no Flask). ``requirement_status`` is
the named dataset exports use; ``compliance_matrix`` feeds the matrix page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.errors import DomainValidationError
from core.records import validate_record
from grants.compliance.models import Frequency, Requirement, RequirementCategory, RequirementWaiver
from grants.compliance.presets import PRESETS
from grants.compliance.rules import (
    STATUS_LABELS,
    RuleContext,
    RuleResult,
    Status,
    parse_rule,
    worst,
)
from grants.deadlines.services import remove_source_deadline, upsert_deadline
from grants.models import Grant, ReportingPeriod
from grants.services import can_see_grant

REQUIREMENT_FIELDS = {
    "code",
    "title",
    "category",
    "clause",
    "frequency",
    "owner",
    "owner_id",
    "due_days",
    "due_date",
    "expected_evidence",
    "linked_indicators",
    "linked_budget_lines",
    "rules",
    "preset",
    "notes",
    "is_demo",
}


# ---------------------------------------------------------------- requirements


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - REQUIREMENT_FIELDS
    if unknown:
        raise DomainValidationError({name: ["is not a field of a requirement"] for name in sorted(unknown)})
    for name, cls in (("category", RequirementCategory), ("frequency", Frequency)):
        if isinstance(values.get(name), str):
            try:
                values[name] = cls(values[name])
            except ValueError:
                known = ", ".join(m.value for m in cls)
                raise DomainValidationError({name: [f"'{values[name]}' is not one of {known}"]}) from None
    for name in ("expected_evidence", "linked_indicators", "linked_budget_lines"):
        if isinstance(values.get(name), (list, tuple)):
            values[name] = ",".join(str(v) for v in values[name])
    return values


def create_requirement(session: Session, grant: Grant | int, *, user: Any = None, **values: Any) -> Requirement:
    """Add a requirement to a grant; rules and links are checked, nothing is saved if any is wrong."""
    grant_id = grant.id if isinstance(grant, Grant) else grant
    if user is not None and not can_see_grant(session, user, grant_id):
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})
    requirement = Requirement(
        grant_id=grant_id, rules=[], expected_evidence="", linked_indicators="", linked_budget_lines=""
    )
    for key, value in _coerce(values).items():
        setattr(requirement, key, value)
    return save_requirement(session, requirement)


def update_requirement(session: Session, requirement: Requirement, **values: Any) -> Requirement:
    for key, value in _coerce(values).items():
        setattr(requirement, key, value)
    try:
        return save_requirement(session, requirement)
    except DomainValidationError:
        session.expire(requirement)  # forget the refused values
        raise


def save_requirement(session: Session, requirement: Requirement) -> Requirement:
    """Save a new or changed requirement (built here, by a form or by the API) and keep its
    deadline in step, in the caller's transaction: the caller commits once."""
    validate_record(session, requirement)
    session.add(requirement)
    session.flush()
    register_deadlines(session, requirement)
    return requirement


def delete_requirement(session: Session, requirement: Requirement) -> None:
    """Delete a requirement (its waivers go with it) and its deadline; the caller commits."""
    forget_deadlines(session, requirement.id)
    session.delete(requirement)


def apply_preset(
    session: Session, grant: Grant, preset: str, *, owner: Any = None, user: Any = None
) -> list[Requirement]:
    """Create the preset's requirements on ``grant`` as ordinary, editable requirements.

    Refuses (creating none) when a code of the preset is already used on the grant.
    """
    if preset not in PRESETS:
        raise DomainValidationError({"preset": [f"unknown preset '{preset}'; known: {', '.join(PRESETS)}"]})
    if user is not None and not can_see_grant(session, user, grant.id):
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})
    entries = PRESETS[preset]["requirements"]
    taken = set(session.scalars(select(Requirement.code).where(Requirement.grant_id == grant.id)))
    clash = [entry["code"] for entry in entries if entry["code"] in taken]
    if clash:
        raise DomainValidationError(
            {"preset": [f"{grant.reference} already has requirement(s) {', '.join(clash)}; nothing was added"]}
        )
    created = []
    for entry in entries:
        values = {k: v for k, v in entry.items()}
        values["rules"] = [dict(rule, params=dict(rule.get("params", {}))) for rule in entry.get("rules", [])]
        created.append(create_requirement(session, grant, owner_id=getattr(owner, "id", None), preset=preset, **values))
    return created


def waive(
    session: Session,
    requirement: Requirement,
    period: ReportingPeriod,
    justification: str | None,
    *,
    user: Any = None,
    approved_by: str | None = None,
    now: datetime | None = None,
) -> RequirementWaiver:
    """Waive a requirement for one period. A justification is required; the waiver is audited."""
    # Ids, not relationships: a refused waiver must not ride into the session on a backref.
    waiver = RequirementWaiver(
        requirement_id=requirement.id,
        period_id=period.id,
        justification=(justification or "").strip(),
        approved_by=(approved_by or "").strip() or None,
    )
    return grant_waiver(session, waiver, granted_by=user, now=now)


def grant_waiver(
    session: Session,
    waiver: RequirementWaiver,
    *,
    granted_by: Any = None,
    user: Any = None,
    now: datetime | None = None,
) -> RequirementWaiver:
    """Save a new waiver (built by ``waive``, a form or the API): it takes its requirement's
    grant, who granted it and when. With ``user``, refused unless they may see that grant."""
    requirement = waiver.requirement or (
        session.get(Requirement, waiver.requirement_id) if waiver.requirement_id else None
    )
    if requirement is not None:
        waiver.grant_id = requirement.grant_id
    if user is not None and not can_see_grant(session, user, waiver.grant_id):
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})
    waiver.granted_by_id = getattr(granted_by, "id", None)
    waiver.granted_at = now or clock.now()
    validate_record(session, waiver)
    session.add(waiver)
    session.flush()
    if requirement is not None:
        session.expire(requirement, ["waivers"])
    return waiver


def revoke_waiver(session: Session, waiver: RequirementWaiver) -> None:
    """Withdraw a waiver: the period is judged by the requirement's rules again; the caller commits."""
    session.delete(waiver)


def register_deadlines(session: Session, requirement: Requirement, today: date | None = None) -> None:
    """Tell the deadlines package (when installed) the requirement's next due date, for reminders.

    The deadlines package keeps one deadline per requirement: the first due date
    from ``today`` on. When every due date has passed the deadline is removed: the
    compliance matrix, which knows whether the requirement was met, is the
    authority on past periods (a met requirement must not show as an overdue deadline).
    """
    today = today or clock.today()
    grant = requirement.grant or session.get(Grant, requirement.grant_id)
    assert grant is not None  # grant_id is a non-null foreign key
    dues = sorted(
        (due_for(requirement, period, end), period.start_date, period)
        for period, _, end in evaluation_windows(grant, requirement, list(grant.periods))
    )
    upcoming = [(d, p) for d, _, p in dues if d >= today]
    if not upcoming:
        remove_source_deadline(session, source_kind="requirement", source_id=requirement.id)
        return
    due, period = upcoming[0]
    upsert_deadline(
        session,
        grant_id=grant.id,
        source_kind="requirement",
        source_id=requirement.id,
        title=f"{requirement.code} {requirement.title} ({period.label})",
        due_date=due,
        owner_id=requirement.owner_id,
    )


def forget_deadlines(session: Session, requirement_id: int) -> None:
    """Remove a deleted requirement's deadline (when the deadlines package is installed)."""
    remove_source_deadline(session, source_kind="requirement", source_id=requirement_id)


# ---------------------------------------------------------------- status per period


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    label: str
    status: str
    explanation: str


@dataclass(frozen=True)
class StatusRow:
    """One requirement in one period. Stable shape for exports (dataset ``requirement_status``).

    ``status`` is one of met, at_risk, not_met, overdue, waived, pending (not yet
    due) or not_evaluable; ``explanation`` is one or more sentences saying why.
    ``evidence_ids`` may include confidential items: callers showing them to a
    person filter them through ``grants.evidence.services.visible_evidence``.
    """

    grant_id: int
    requirement_id: int
    requirement_code: str
    requirement_title: str
    category: str
    frequency: str
    owner: str | None
    period_id: int
    period_label: str
    window_start: date
    window_end: date
    due_date: date
    status: str
    status_label: str
    explanation: str
    rules: tuple[RuleOutcome, ...] = ()
    evidence_ids: tuple[int, ...] = ()
    consultation_ids: tuple[int, ...] = ()
    waiver_justification: str | None = None


def _grant_year(grant: Grant, day: date) -> int:
    delta = relativedelta(day, grant.start_date)
    return delta.years


def evaluation_windows(
    grant: Grant, requirement: Requirement, periods: list[ReportingPeriod]
) -> list[tuple[ReportingPeriod, date, date]]:
    """(column period, window start, window end) for each period in which the requirement is judged.

    per period: every period. annual: the last period of each grant year, judging
    that year. once: one column (the period holding ``due_date``, else the first),
    judging from the grant start to that period's end.
    """
    periods = sorted(periods, key=lambda p: p.start_date)
    if not periods:
        return []
    if requirement.frequency == Frequency.annual:
        years: dict[int, list[ReportingPeriod]] = defaultdict(list)
        for period in periods:
            years[_grant_year(grant, period.start_date)].append(period)
        return [(group[-1], group[0].start_date, group[-1].end_date) for _, group in sorted(years.items())]
    if requirement.frequency == Frequency.once:
        column = periods[0]
        if requirement.due_date:
            column = next((p for p in periods if p.start_date <= requirement.due_date <= p.end_date), periods[-1])
            if requirement.due_date < periods[0].start_date:
                column = periods[0]
        return [(column, grant.start_date, column.end_date)]
    return [(period, period.start_date, period.end_date) for period in periods]


def due_for(requirement: Requirement, period: ReportingPeriod, window_end: date) -> date:
    if requirement.frequency == Frequency.once and requirement.due_date:
        return requirement.due_date
    if requirement.due_days is not None:
        return window_end + timedelta(days=requirement.due_days)
    if period.report_due and period.end_date == window_end:
        return period.report_due
    return window_end


def requirement_rules(requirement: Requirement) -> list[dict[str, Any]]:
    """The requirement's rules; without any, one evidence rule per expected evidence kind."""
    if requirement.rules:
        return list(requirement.rules)
    return [{"rule": "evidence_verified", "params": {"kind": kind}} for kind in requirement.expected_kinds]


def evaluate(
    session: Session,
    requirement: Requirement,
    period: ReportingPeriod,
    start: date,
    end: date,
    today: date,
    waiver: RequirementWaiver | None = None,
) -> StatusRow:
    """The status of one requirement for one window: waived, or the worst of its rules."""
    grant = requirement.grant
    due = due_for(requirement, period, end)
    ctx = RuleContext(session, grant, requirement, period, start, end, due, today)
    if waiver is None and today < start:
        # Nothing to judge before the window opens; rules would only guess.
        return StatusRow(
            grant_id=grant.id,
            requirement_id=requirement.id,
            requirement_code=requirement.code,
            requirement_title=requirement.title,
            category=requirement.category.value,
            frequency=requirement.frequency.value,
            owner=requirement.owner.username if requirement.owner else None,
            period_id=period.id,
            period_label=period.label,
            window_start=start,
            window_end=end,
            due_date=due,
            status=Status.pending.value,
            status_label=STATUS_LABELS[Status.pending],
            explanation=f"{period.label} starts on {start.day} {start:%b %Y}; nothing to judge yet.",
        )
    outcomes: list[tuple[Any, RuleResult]] = []
    for index, entry in enumerate(requirement_rules(requirement)):
        try:
            rule, params = parse_rule(None, None, index, entry)
            result = rule.evaluate(ctx, params)
        except ValueError as exc:  # stored before a rule changed: report it, don't crash the matrix
            rule, result = None, RuleResult(Status.not_evaluable, f"Cannot evaluate: {exc}.")
        outcomes.append((rule, result))
    rule_rows = tuple(
        RuleOutcome(
            rule.name if rule else "invalid",
            rule.label if rule else "Invalid rule",
            result.status.value,
            result.explanation,
        )
        for rule, result in outcomes
    )
    evidence_ids = tuple(dict.fromkeys(i for _, r in outcomes for i in r.evidence_ids))
    consultation_ids = tuple(dict.fromkeys(i for _, r in outcomes for i in r.consultation_ids))
    if waiver is not None:
        status = Status.waived
        explanation = f"Waived for {period.label}: {waiver.justification}"
    elif not outcomes:
        status = Status.not_evaluable
        explanation = "No rule is set: add a rule or the evidence kinds this requirement expects."
    else:
        status = worst(r.status for _, r in outcomes)
        # Lead with the sentences that decided the status.
        deciding = [r.explanation for _, r in outcomes if r.status == status]
        others = [r.explanation for _, r in outcomes if r.status != status]
        explanation = " ".join(deciding + others)
    return StatusRow(
        grant_id=grant.id,
        requirement_id=requirement.id,
        requirement_code=requirement.code,
        requirement_title=requirement.title,
        category=requirement.category.value,
        frequency=requirement.frequency.value,
        owner=requirement.owner.username if requirement.owner else None,
        period_id=period.id,
        period_label=period.label,
        window_start=start,
        window_end=end,
        due_date=due,
        status=status.value,
        status_label=STATUS_LABELS[status],
        explanation=explanation,
        rules=rule_rows,
        evidence_ids=evidence_ids,
        consultation_ids=consultation_ids,
        waiver_justification=waiver.justification if waiver else None,
    )


def requirement_status(
    session: Session, grant_id: int, period_id: int | None = None, today: date | None = None
) -> list[StatusRow]:
    """Status of every requirement of a grant in every period it is judged (named dataset).

    With ``period_id`` only the rows of that period. Ordered by requirement code,
    then period start. ``today`` defaults to the current date (inject it in tests).
    """
    today = today or clock.today()
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise DomainValidationError({"grant": [f"no grant with id {grant_id}"]})
    periods = list(
        session.scalars(
            select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id).order_by(ReportingPeriod.start_date)
        )
    )
    requirements = list(
        session.scalars(
            select(Requirement).where(Requirement.grant_id == grant_id).order_by(Requirement.code, Requirement.id)
        )
    )
    waivers = {
        (w.requirement_id, w.period_id): w
        for w in session.scalars(select(RequirementWaiver).where(RequirementWaiver.grant_id == grant_id))
    }
    rows = []
    for requirement in requirements:
        for period, start, end in evaluation_windows(grant, requirement, periods):
            if period_id is not None and period.id != period_id:
                continue
            rows.append(
                evaluate(session, requirement, period, start, end, today, waivers.get((requirement.id, period.id)))
            )
    return rows


@dataclass
class Matrix:
    grant: Grant
    periods: list[ReportingPeriod]
    requirements: list[Requirement]
    cells: dict[tuple[int, int], StatusRow] = field(default_factory=dict)  # (requirement id, period id)

    def cell(self, requirement_id: int, period_id: int) -> StatusRow | None:
        return self.cells.get((requirement_id, period_id))

    def counts(self, period_id: int | None = None) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for (_, pid), row in self.cells.items():
            if period_id is None or pid == period_id:
                totals[row.status] += 1
        return dict(totals)


def compliance_matrix(session: Session, grant: Grant, today: date | None = None) -> Matrix:
    rows = requirement_status(session, grant.id, today=today)
    requirements = list(
        session.scalars(
            select(Requirement).where(Requirement.grant_id == grant.id).order_by(Requirement.code, Requirement.id)
        )
    )
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    matrix = Matrix(grant, periods, requirements)
    for row in rows:
        matrix.cells[(row.requirement_id, row.period_id)] = row
    return matrix


def current_period(periods: list[ReportingPeriod], today: date) -> ReportingPeriod | None:
    """The period whose report is next: the latest one that has started, else the first."""
    started = [p for p in sorted(periods, key=lambda p: p.start_date) if p.start_date <= today]
    return started[-1] if started else (periods[0] if periods else None)
