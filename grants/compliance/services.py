"""Every state change of requirements and waivers, and the status of each requirement per period.

Plain functions over a SQLAlchemy session (no Flask). ``requirement_status`` is
the named dataset exports use; ``compliance_matrix`` feeds the matrix page.

Explanations are computed over what the viewer may see: pass ``levels`` (the
evidence sensitivities the viewer may see, e.g. ``SHARED_WITH_DONORS`` for a
donor or an export; None for staff). A rule that counts evidence then counts
only those; where items the viewer cannot see change its status, the status
stays what the organisation's records say and the sentence is the neutral
``HELD_BY_THE_ORGANISATION``, which tells nothing of their number or kind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.errors import DomainValidationError
from core.formatting import N_, in_locale, in_reader_language
from core.formatting import gettext as _
from core.periods import PeriodLength, split_into_periods
from core.records import validate_record
from grants.compliance.models import Frequency, Requirement, RequirementCategory, RequirementWaiver, clean_titles
from grants.compliance.presets import PRESETS
from grants.compliance.rules import (
    SEVERITY,
    STATUS_LABELS,
    RuleContext,
    RuleResult,
    RuleType,
    Status,
    fmt_day,
    neutral_explanation,
    parse_rule,
    worst,
)
from grants.deadlines.services import remove_source_deadline, upsert_deadline
from grants.evidence.models import Sensitivity
from grants.models import Grant, ReportingPeriod
from grants.services import can_see_grant

REQUIREMENT_FIELDS = {
    "code",
    "title",
    "titles",
    "category",
    "clause",
    "frequency",
    "owner",
    "owner_id",
    "due_days",
    "due_date",
    "window_start",
    "window_end",
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
        raise DomainValidationError({name: [_("is not a field of a requirement")] for name in sorted(unknown)})
    for name, cls in (("category", RequirementCategory), ("frequency", Frequency)):
        if isinstance(values.get(name), str):
            try:
                values[name] = cls(values[name])
            except ValueError:
                known = ", ".join(m.value for m in cls)
                message = _("'%(value)s' is not one of %(known)s", value=values[name], known=known)
                raise DomainValidationError({name: [message]}) from None
    for name in ("expected_evidence", "linked_indicators", "linked_budget_lines"):
        if isinstance(values.get(name), (list, tuple)):
            values[name] = ",".join(str(v) for v in values[name])
    return values


def parse_form_values(values: dict[str, Any]) -> dict[str, Any]:
    """Text from a form as a requirement's values: whole days and ISO dates, refused by field in words."""
    errors: dict[str, list[str]] = {}
    days = values.get("due_days")
    if isinstance(days, str):
        if days.strip().isdigit():
            values["due_days"] = int(days.strip())
        else:
            errors["due_days"] = [_("'%(value)s' is not a whole number of days", value=days)]
    for name in ("due_date", "window_start", "window_end"):
        raw = values.get(name)
        if isinstance(raw, str):
            try:
                values[name] = date.fromisoformat(raw.strip())
            except ValueError:
                errors[name] = [_("'%(value)s' is not a date (use the date picker, or YYYY-MM-DD)", value=raw)]
    if errors:
        raise DomainValidationError(errors)
    return values


def create_requirement(session: Session, grant: Grant | int, *, user: Any = None, **values: Any) -> Requirement:
    """Add a requirement to a grant; rules and links are checked, nothing is saved if any is wrong."""
    grant_id = grant.id if isinstance(grant, Grant) else grant
    if user is not None and not can_see_grant(session, user, grant_id):
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
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
    if isinstance(requirement.titles, dict):
        requirement.titles = clean_titles(requirement.titles) or None
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
        message = _("unknown preset '%(preset)s'; known: %(known)s", preset=preset, known=", ".join(PRESETS))
        raise DomainValidationError({"preset": [message]})
    if user is not None and not can_see_grant(session, user, grant.id):
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
    entries = PRESETS[preset]["requirements"]
    taken = set(session.scalars(select(Requirement.code).where(Requirement.grant_id == grant.id)))
    clash = [entry["code"] for entry in entries if entry["code"] in taken]
    if clash:
        message = _(
            "%(grant)s already has requirement(s) %(codes)s; nothing was added",
            grant=grant.reference,
            codes=", ".join(clash),
        )
        raise DomainValidationError({"preset": [message]})
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
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
    waiver.granted_by_id = getattr(granted_by, "id", None)
    waiver.granted_at = now or clock.now()
    validate_record(session, waiver)
    session.add(waiver)
    session.flush()
    if requirement is not None:
        session.expire(requirement, ["waivers"])
        register_deadlines(session, requirement)  # a waived window owes nothing any more
    return waiver


def revoke_waiver(session: Session, waiver: RequirementWaiver) -> None:
    """Withdraw a waiver: the period is judged by the requirement's rules again; the caller commits."""
    requirement = waiver.requirement
    session.delete(waiver)
    session.flush()
    if requirement is not None:
        session.expire(requirement, ["waivers"])
        register_deadlines(session, requirement)


def register_deadlines(session: Session, requirement: Requirement, today: date | None = None) -> None:
    """Keep the requirement's one deadline on what the compliance matrix says is still owed.

    The deadline is the earliest window the matrix does not count as met or
    waived: past its due date it is overdue on the grant page exactly when the
    matrix shows it overdue or not met; when every window is met or waived the
    deadline goes. One judgement (``judge_requirement``) feeds both.
    """
    today = today or clock.today()
    with in_locale(None):  # the deadline's title is stored: written in the default language, whoever saves
        owed = [row for row in judge_requirement(session, requirement, today) if row.status not in SETTLED]
    if not owed:
        remove_source_deadline(session, source_kind="requirement", source_id=requirement.id)
        return
    row = min(owed, key=lambda r: (r.due_date, r.window_start))
    upsert_deadline(
        session,
        grant_id=requirement.grant_id,
        source_kind="requirement",
        source_id=requirement.id,
        title=f"{requirement.code} {requirement.title} ({row.window_label})",
        due_date=row.due_date,
        owner_id=requirement.owner_id,
    )


def refresh_requirement_deadlines(session: Session, grant: Grant, today: date | None = None) -> None:
    """Judge every requirement of a grant again and move its deadline (after its periods changed)."""
    session.expire(grant, ["periods"])
    for requirement in session.scalars(select(Requirement).where(Requirement.grant_id == grant.id)):
        register_deadlines(session, requirement, today)


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
    Computed with ``levels``, the counts, sentences and ``evidence_ids`` cover only
    those levels; without, ``evidence_ids`` may include staff-only and restricted
    items: callers showing them to a person filter them through
    ``grants.evidence.services.visible_evidence``.

    ``status_label``, ``explanation`` and ``window_label`` are written in the reader's language
    when the row is computed (``core.formatting.in_locale`` chooses one, e.g. for a workbook);
    rows are never stored. ``requirement_title`` is the stored default title and
    ``requirement_titles`` the titles per language: show ``shown_title`` to a reader.
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
    window_label: str = ""  # "S1", or "Semester 1 (1 Jan 2026 to 30 Jun 2026)" for a window of its own
    requirement_titles: tuple[tuple[str, str], ...] = ()  # (language, title) pairs: Requirement.titles

    @property
    def shown_title(self) -> str:
        """The requirement's title in the reader's language when one was given, else the default."""
        return in_reader_language(self.requirement_title, dict(self.requirement_titles))


# A window in one of these states owes nothing: no deadline, nothing to chase.
SETTLED = frozenset({Status.met.value, Status.waived.value})


WINDOW_LENGTHS = {
    Frequency.month: PeriodLength.MONTH,
    Frequency.quarter: PeriodLength.QUARTER,
    Frequency.semester: PeriodLength.SEMESTER,
    Frequency.annual: PeriodLength.YEAR,
}
WINDOW_NAMES = {  # translated where the label is written (N_ only marks them for the catalogues)
    Frequency.month: N_("Month"),
    Frequency.quarter: N_("Quarter"),
    Frequency.semester: N_("Semester"),
    Frequency.annual: N_("Year"),
}


@dataclass(frozen=True)
class Window:
    """A span a requirement is judged over, and the reporting period whose column shows it."""

    period: ReportingPeriod
    start: date
    end: date
    label: str


def _column(periods: list[ReportingPeriod], day: date) -> ReportingPeriod:
    """The period holding ``day`` (the end of a window); before the first or after the last, the nearest."""
    for period in periods:
        if period.start_date <= day <= period.end_date:
            return period
    started = [p for p in periods if p.start_date <= day]
    return started[-1] if started else periods[0]


def _span_label(start: date, end: date) -> str:
    return _("%(start)s to %(end)s", start=fmt_day(start), end=fmt_day(end))


def requirement_windows(grant: Grant, requirement: Requirement, periods: list[ReportingPeriod]) -> list[Window]:
    """Every window in which the requirement is judged, in date order.

    per period: each reporting period. month, quarter, semester, annual: windows
    counted from the grant start, whatever the reporting periods are (a semester
    window on a quarterly grant spans two quarters and shows in the second).
    whole grant and custom: one window. once: from the grant start to the end
    of the period holding ``due_date``.
    """
    periods = sorted(periods, key=lambda p: p.start_date)
    if not periods:
        return []
    frequency = requirement.frequency
    if frequency in WINDOW_LENGTHS:
        spans = split_into_periods(grant.start_date, grant.end_date, WINDOW_LENGTHS[frequency], 0)
        name = WINDOW_NAMES[frequency]
        windows = []
        for number, span in enumerate(spans, start=1):
            column = _column(periods, span.end)
            label = column.label
            if (span.start, span.end) != (column.start_date, column.end_date):
                label = _(
                    "%(name)s %(number)s (%(span)s)",
                    name=_(name),
                    number=number,
                    span=_span_label(span.start, span.end),
                )
            windows.append(Window(column, span.start, span.end, label))
        return windows
    if frequency == Frequency.grant:
        return [Window(periods[-1], grant.start_date, grant.end_date, _("the whole grant"))]
    if frequency == Frequency.custom:
        if requirement.window_start is None or requirement.window_end is None:
            return []
        start, end = requirement.window_start, requirement.window_end
        return [Window(_column(periods, end), start, end, _span_label(start, end))]
    if frequency == Frequency.once:
        column = periods[0]
        if requirement.due_date:
            column = next((p for p in periods if p.start_date <= requirement.due_date <= p.end_date), periods[-1])
            if requirement.due_date < periods[0].start_date:
                column = periods[0]
        return [Window(column, grant.start_date, column.end_date, _span_label(grant.start_date, column.end_date))]
    return [Window(period, period.start_date, period.end_date, period.label) for period in periods]


def evaluation_windows(
    grant: Grant, requirement: Requirement, periods: list[ReportingPeriod]
) -> list[tuple[ReportingPeriod, date, date]]:
    """(column period, window start, window end) of each window (see ``requirement_windows``)."""
    return [(w.period, w.start, w.end) for w in requirement_windows(grant, requirement, periods)]


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
    label: str | None = None,
    levels: frozenset[Sensitivity] | None = None,
) -> StatusRow:
    """The status of one requirement for one window: waived, or the worst of its rules.

    With ``levels``, sentences count only evidence of those levels (see the module's note).
    """
    grant = requirement.grant
    due = due_for(requirement, period, end)
    label = label or (period.label if (start, end) == (period.start_date, period.end_date) else None)
    label = label or _span_label(start, end)
    ctx = RuleContext(session, grant, requirement, period, start, end, due, today, label, levels)
    if waiver is None and today < start:
        # Nothing to judge before the window opens; rules would only guess.
        return StatusRow(
            grant_id=grant.id,
            requirement_id=requirement.id,
            requirement_code=requirement.code,
            requirement_title=requirement.title,
            requirement_titles=tuple(sorted((requirement.titles or {}).items())),
            category=requirement.category.value,
            frequency=requirement.frequency.value,
            owner=requirement.owner.username if requirement.owner else None,
            period_id=period.id,
            period_label=period.label,
            window_start=start,
            window_end=end,
            due_date=due,
            status=Status.pending.value,
            status_label=str(STATUS_LABELS[Status.pending]),
            explanation=_("%(window)s starts on %(date)s; nothing to judge yet.", window=label, date=fmt_day(start)),
            window_label=label,
        )
    outcomes: list[tuple[Any, RuleResult]] = []
    for index, entry in enumerate(requirement_rules(requirement)):
        try:
            rule, params = parse_rule(None, None, index, entry)
            result = _judged_for_viewer(rule, ctx, params)
        except ValueError as exc:  # stored before a rule changed: report it, don't crash the matrix
            rule, result = None, RuleResult(Status.not_evaluable, _("Cannot evaluate: %(problem)s.", problem=exc))
        outcomes.append((rule, result))
    rule_rows = tuple(
        RuleOutcome(
            rule.name if rule else "invalid",
            str(rule.label) if rule else _("Invalid rule"),
            result.status.value,
            result.explanation,
        )
        for rule, result in outcomes
    )
    evidence_ids = tuple(dict.fromkeys(i for _, r in outcomes for i in r.evidence_ids))
    consultation_ids = tuple(dict.fromkeys(i for _, r in outcomes for i in r.consultation_ids))
    if waiver is not None:
        status = Status.waived
        explanation = _("Waived for %(period)s: %(why)s", period=period.label, why=waiver.justification)
    elif not outcomes:
        status = Status.not_evaluable
        explanation = _("No rule is set: add a rule or the evidence kinds this requirement expects.")
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
        requirement_titles=tuple(sorted((requirement.titles or {}).items())),
        category=requirement.category.value,
        frequency=requirement.frequency.value,
        owner=requirement.owner.username if requirement.owner else None,
        period_id=period.id,
        period_label=period.label,
        window_start=start,
        window_end=end,
        due_date=due,
        status=status.value,
        status_label=str(STATUS_LABELS[status]),
        explanation=explanation,
        rules=rule_rows,
        evidence_ids=evidence_ids,
        consultation_ids=consultation_ids,
        waiver_justification=waiver.justification if waiver else None,
        window_label=label,
    )


def _judged_for_viewer(rule: RuleType, ctx: RuleContext, params: dict[str, Any]) -> RuleResult:
    """The rule's result as the viewer may read it (see the module's note)."""
    seen = rule.evaluate(ctx, params)
    if ctx.levels is None or not rule.sees_evidence:
        return seen
    full = rule.evaluate(replace(ctx, levels=None), params)
    if full.status == seen.status:
        return seen
    return RuleResult(full.status, neutral_explanation(full.status), seen.evidence_ids, full.consultation_ids)


def requirement_status(
    session: Session,
    grant_id: int,
    period_id: int | None = None,
    today: date | None = None,
    levels: frozenset[Sensitivity] | None = None,
) -> list[StatusRow]:
    """Status of every requirement of a grant in every period it is judged (named dataset).

    With ``period_id`` only the rows of that period. Ordered by requirement code,
    then period start. ``today`` defaults to the current date (inject it in tests).
    ``levels``: the evidence a viewer may see (None: all; see the module's note).
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
        for window in requirement_windows(grant, requirement, periods):
            if period_id is not None and window.period.id != period_id:
                continue
            waiver = waivers.get((requirement.id, window.period.id))
            rows.append(
                evaluate(
                    session,
                    requirement,
                    window.period,
                    window.start,
                    window.end,
                    today,
                    waiver,
                    window.label,
                    levels,
                )
            )
    return rows


def judge_requirement(
    session: Session,
    requirement: Requirement,
    today: date | None = None,
    levels: frozenset[Sensitivity] | None = None,
) -> list[StatusRow]:
    """Every window of one requirement, judged as the compliance matrix judges it."""
    today = today or clock.today()
    grant = requirement.grant or session.get(Grant, requirement.grant_id)
    assert grant is not None  # grant_id is a non-null foreign key
    periods = list(
        session.scalars(
            select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
        )
    )
    waivers = {
        w.period_id: w
        for w in session.scalars(select(RequirementWaiver).where(RequirementWaiver.requirement_id == requirement.id))
    }
    return [
        evaluate(session, requirement, w.period, w.start, w.end, today, waivers.get(w.period.id), w.label, levels)
        for w in requirement_windows(grant, requirement, periods)
    ]


@dataclass
class Matrix:
    grant: Grant
    periods: list[ReportingPeriod]
    requirements: list[Requirement]
    # (requirement id, period id) -> the windows shown in that column (several when windows are shorter).
    windows: dict[tuple[int, int], list[StatusRow]] = field(default_factory=dict)

    def rows(self, requirement_id: int, period_id: int) -> list[StatusRow]:
        return self.windows.get((requirement_id, period_id), [])

    def cell(self, requirement_id: int, period_id: int) -> StatusRow | None:
        """The row a cell shows: its only window, or the one in the worst state."""
        rows = self.rows(requirement_id, period_id)
        if not rows:
            return None
        return max(rows, key=lambda r: (CELL_SEVERITY[r.status], r.window_start))

    @property
    def cells(self) -> dict[tuple[int, int], StatusRow]:
        return {key: row for key in self.windows if (row := self.cell(*key)) is not None}

    def counts(self, period_id: int | None = None) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for (_requirement, pid), rows in self.windows.items():
            if period_id is None or pid == period_id:
                for row in rows:
                    totals[row.status] += 1
        return dict(totals)


CELL_SEVERITY = {Status.waived.value: -1, **{status.value: rank for status, rank in SEVERITY.items()}}


def compliance_matrix(
    session: Session, grant: Grant, today: date | None = None, levels: frozenset[Sensitivity] | None = None
) -> Matrix:
    rows = requirement_status(session, grant.id, today=today, levels=levels)
    requirements = list(
        session.scalars(
            select(Requirement).where(Requirement.grant_id == grant.id).order_by(Requirement.code, Requirement.id)
        )
    )
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    matrix = Matrix(grant, periods, requirements)
    for row in rows:
        matrix.windows.setdefault((row.requirement_id, row.period_id), []).append(row)
    return matrix


def current_period(periods: list[ReportingPeriod], today: date) -> ReportingPeriod | None:
    """The period whose report is next: the latest one that has started, else the first."""
    started = [p for p in sorted(periods, key=lambda p: p.start_date) if p.start_date <= today]
    return started[-1] if started else (periods[0] if periods else None)
