"""Every state change of the budgets domain: lines, planned amounts, versions, revisions, expenditures, rules.

Plain functions over a SQLAlchemy session; no Flask. Views, the API, imports,
the demo and a future Odoo sync call these. Reading functions for other
packages: ``budget_vs_actual`` and ``variance_flags`` (from ``budgets.report``),
re-exported here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budgets.models import (
    BudgetAllocation,
    BudgetLine,
    BudgetRevision,
    BudgetRevisionItem,
    BudgetVersion,
    BudgetVersionAllocation,
    Expenditure,
    ExpenditureSource,
    OdooAccountMap,
    RevisionStatus,
    VarianceBasis,
    VarianceDirection,
    VarianceRule,
    to_cents,
)
from budgets.rates import convert, reconvert_grant, record_rate, set_rate_policy  # noqa: F401 (public surface)
from budgets.report import BudgetReport, BudgetRow, VarianceFlag, budget_vs_actual, variance_flags  # noqa: F401
from core import clock
from core.errors import DomainValidationError, ErrorCollector
from core.formatting import gettext as _
from core.formatting import label as worded
from core.money import quantize_money, to_decimal
from grants.models import Funder, Grant, ReportingPeriod


def derive_grant(record: Any) -> None:
    """The one place a child record takes its grant: planned amounts and spending from their budget line,
    moves of money from their revision, an Odoo account mapping from its line when no grant was chosen."""
    if isinstance(record, (Expenditure, BudgetAllocation)):
        parent = record.line
    elif isinstance(record, BudgetRevisionItem):
        parent = record.revision
    elif isinstance(record, OdooAccountMap):
        if record.grant is None and record.grant_id is None and record.line is not None:
            record.grant = record.line.grant
        return
    else:
        return
    if parent is not None:
        record.grant_id = (
            parent.grant_id if parent.grant_id is not None else (parent.grant.id if parent.grant else None)
        )


def _money(value: Any, field: str) -> Decimal:
    try:
        return quantize_money(to_decimal(value, field))
    except ValueError as exc:
        raise DomainValidationError({field: [str(exc).split(": ", 1)[-1]]}) from None


# ---------------------------------------------------------------- lines and planned amounts


def create_line(
    session: Session,
    grant: Grant,
    *,
    code: str,
    description: str,
    cost_category: str,
    module: str | None = None,
    intervention: str | None = None,
    planned: dict[str, Any] | None = None,
) -> BudgetLine:
    """A budget line with its planned amount per period label ({"S1": "9000.00", ...})."""
    line = BudgetLine(
        grant=grant,
        code=(code or "").strip(),
        description=(description or "").strip(),
        cost_category=str(cost_category or "").strip(),
        module=module,
        intervention=intervention,
    )
    session.add(line)
    session.flush()
    if planned:
        set_planned(session, line, planned)
    return line


def set_planned(session: Session, line: BudgetLine, planned: dict[str, Any]) -> list[BudgetAllocation]:
    """Set a line's planned amounts by period label; unknown labels and bad amounts refuse the lot."""
    periods = {
        p.label: p for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == line.grant_id))
    }
    errors = ErrorCollector()
    values: dict[str, Decimal] = {}
    for label, raw in planned.items():
        if label not in periods:
            errors.add(
                "period", f"{line.grant.reference} has no period '{label}'; known: {', '.join(periods) or 'none'}"
            )
            continue
        try:
            values[label] = _money(raw, f"planned {label}")
        except DomainValidationError as exc:
            for field, messages in exc.errors.items():
                for message in messages:
                    errors.add(field, message)
    errors.raise_if_any()
    existing = {a.period_id: a for a in line.allocations}
    result = []
    with session.no_autoflush:
        for label, amount in values.items():
            period = periods[label]
            allocation = existing.get(period.id)
            if allocation is None:
                allocation = BudgetAllocation(line=line, period=period, amount=amount)
            else:
                allocation.amount = amount
            _derive_allocation(allocation)
            session.add(allocation)
            result.append(allocation)
    session.flush()
    return result


def _derive_allocation(allocation: BudgetAllocation) -> None:
    derive_grant(allocation)
    if allocation.amount is not None and allocation.amount >= 0:
        allocation.amount = quantize_money(Decimal(allocation.amount))
        allocation.amount_cents = to_cents(allocation.amount)


def save_allocation(session: Session, allocation: BudgetAllocation) -> BudgetAllocation:
    """Add or change one planned amount (a form or the API): its grant and cents derived, checked at flush."""
    _derive_allocation(allocation)
    session.add(allocation)
    session.flush()
    return allocation


def planned_by_line(session: Session, grant_id: int) -> dict[int, dict[int, Decimal]]:
    """{line_id: {period_id: amount}} of the current budget."""
    result: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for line_id, period_id, cents in session.execute(
        select(BudgetAllocation.line_id, BudgetAllocation.period_id, BudgetAllocation.amount_cents).where(
            BudgetAllocation.grant_id == grant_id
        )
    ):
        result[line_id][period_id] = Decimal(cents) / 100
    return result


# ---------------------------------------------------------------- versions


def snapshot_budget(
    session: Session, grant: Grant, reason: str, *, revision: BudgetRevision | None = None, by: str | None = None
) -> BudgetVersion:
    """Freeze the grant's current planned amounts as the next budget version (1, 2, ...)."""
    number = (session.scalar(select(func.max(BudgetVersion.number)).where(BudgetVersion.grant_id == grant.id)) or 0) + 1
    version = BudgetVersion(
        grant_id=grant.id,
        number=number,
        reason=reason[:300],
        created_by=by,
        revision_id=revision.id if revision else None,
    )
    session.add(version)
    session.flush()
    rows = session.execute(
        select(
            BudgetAllocation.line_id, BudgetAllocation.period_id, BudgetAllocation.amount, BudgetAllocation.amount_cents
        ).where(BudgetAllocation.grant_id == grant.id)
    ).all()
    session.add_all(
        BudgetVersionAllocation(version_id=version.id, line_id=l, period_id=p, amount=a, amount_cents=c)
        for l, p, a, c in rows
    )
    version.total = quantize_money(Decimal(sum(int(r[3]) for r in rows)) / 100)
    session.flush()
    return version


def versions(session: Session, grant_id: int) -> list[BudgetVersion]:
    return list(
        session.scalars(select(BudgetVersion).where(BudgetVersion.grant_id == grant_id).order_by(BudgetVersion.number))
    )


# ---------------------------------------------------------------- revisions


def create_revision(
    session: Session,
    grant: Grant,
    *,
    title: str,
    justification: str,
    moves: list[dict[str, Any]] | None = None,
) -> BudgetRevision:
    """A draft reallocation. ``moves``: [{"from": "EPS-01", "to": "TRC-01", "period": "S2", "amount": "3000"}];
    a move may also name ``"to_period": "S3"`` (money moved to a later or earlier period, of the same line or another)."""
    revision = BudgetRevision(grant=grant, title=title, justification=justification, status=RevisionStatus.draft)
    session.add(revision)
    session.flush()
    for move in moves or []:
        add_revision_item(
            session,
            revision,
            from_code=move["from"],
            to_code=move["to"],
            period_label=move["period"],
            amount=move["amount"],
            to_period_label=move.get("to_period"),
        )
    return revision


def add_revision_item(
    session: Session,
    revision: BudgetRevision,
    *,
    from_code: str,
    to_code: str,
    period_label: str,
    amount: Any,
    to_period_label: str | None = None,
) -> BudgetRevisionItem:
    """One move of money: ``amount`` of ``from_code``'s plan in ``period_label`` goes to ``to_code`` in
    ``to_period_label`` (default: the same period)."""
    if revision.status not in (RevisionStatus.draft,):
        raise DomainValidationError({"revision": [f"is {revision.status.value}; only a draft can change"]})
    grant_id = revision.grant_id
    lines = {
        l.code: l
        for l in session.scalars(
            select(BudgetLine).where(BudgetLine.grant_id == grant_id, BudgetLine.code.in_([from_code, to_code]))
        )
    }
    errors = ErrorCollector()
    for field, code in (("from_line", from_code), ("to_line", to_code)):
        if code not in lines:
            errors.add(field, f"'{code}' is not a budget line of {revision.grant.reference}")
    period = session.scalar(
        select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id, ReportingPeriod.label == period_label)
    )
    if period is None:
        errors.add("period", f"{revision.grant.reference} has no period '{period_label}'")
    to_period = None
    if to_period_label:
        to_period = session.scalar(
            select(ReportingPeriod).where(
                ReportingPeriod.grant_id == grant_id, ReportingPeriod.label == to_period_label
            )
        )
        if to_period is None:
            errors.add("to_period", f"{revision.grant.reference} has no period '{to_period_label}'")
    try:
        value = _money(amount, "amount")
    except DomainValidationError as exc:
        errors.errors.update(exc.errors)
        value = None
    errors.raise_if_any()
    item = BudgetRevisionItem(
        revision=revision,
        from_line=lines[from_code],
        to_line=lines[to_code],
        period=period,
        to_period=to_period,
        amount=value,
    )
    return save_revision_item(session, item)


def save_revision_item(session: Session, item: BudgetRevisionItem) -> BudgetRevisionItem:
    """Add or change one move of money (a form, the API or ``add_revision_item``): it takes its revision's grant."""
    derive_grant(item)
    session.add(item)
    session.flush()
    return item


def check_revision_item_deletable(item: BudgetRevisionItem) -> None:
    """Only a draft revision loses a move of money; a submitted or decided one keeps its moves."""
    if item.revision.status != RevisionStatus.draft:
        raise DomainValidationError({"revision": [f"is {item.revision.status.value}; only a draft can change"]})


def update_revision(session: Session, revision: BudgetRevision) -> BudgetRevision:
    """Save a changed title or justification; only a draft can change."""
    if revision.status != RevisionStatus.draft:
        raise DomainValidationError(
            {"status": [_("is %(status)s; only a draft can change", status=worded(revision.status).lower())]}
        )
    session.flush()
    return revision


def check_revision_deletable(revision: BudgetRevision) -> None:
    """An approved revision is part of the budget's history and stays."""
    if revision.status == RevisionStatus.approved:
        raise DomainValidationError({"status": [_("an approved revision is part of the budget's history and stays")]})


def submit_revision(session: Session, revision: BudgetRevision) -> BudgetRevision:
    if revision.status != RevisionStatus.draft:
        raise DomainValidationError(
            {
                "status": [
                    _(
                        "only a draft can be submitted; this revision is %(status)s",
                        status=worded(revision.status).lower(),
                    )
                ]
            }
        )
    if not revision.items:
        raise DomainValidationError({"items": [_("add at least one move of money between lines before submitting")]})
    revision.status = RevisionStatus.submitted
    revision.submitted_at = clock.now()
    session.flush()
    return revision


def revision_effects(session: Session, revision: BudgetRevision) -> dict[tuple[int, int], tuple[Decimal, Decimal]]:
    """{(line_id, period_id): (planned now, planned after approval)} for every cell the revision touches."""
    delta: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for item in revision.items:
        delta[(item.from_line_id, item.period_id)] -= Decimal(item.amount)
        delta[(item.to_line_id, item.to_period_id or item.period_id)] += Decimal(item.amount)
    current = {
        (a.line_id, a.period_id): Decimal(a.amount)
        for a in session.scalars(select(BudgetAllocation).where(BudgetAllocation.grant_id == revision.grant_id))
    }
    return {
        key: (current.get(key, Decimal("0.00")), current.get(key, Decimal("0.00")) + change)
        for key, change in delta.items()
    }


def approve_revision(
    session: Session, revision: BudgetRevision, *, by: str | None = None, note: str | None = None
) -> BudgetVersion:
    """Apply a submitted revision to the planned amounts and record the new budget version, in one transaction.

    The first approval also freezes the budget as it stood before (version 1),
    so earlier versions always stay visible. Refused, changing nothing, when
    any line would end up with a negative planned amount in a period.
    """
    if revision.status != RevisionStatus.submitted:
        raise DomainValidationError(
            {
                "status": [
                    _(
                        "only a submitted revision can be approved; this one is %(status)s",
                        status=worded(revision.status).lower(),
                    )
                ]
            }
        )
    effects = revision_effects(session, revision)
    lines = {l.id: l for l in session.scalars(select(BudgetLine).where(BudgetLine.grant_id == revision.grant_id))}
    periods = {
        p.id: p for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == revision.grant_id))
    }
    errors = ErrorCollector()
    for (line_id, period_id), (before, after) in sorted(effects.items()):
        if after < 0:
            errors.add(
                "amount",
                _(
                    "line %(line)s would have %(after)s planned in %(period)s (it has %(before)s); "
                    "a budget line cannot go negative",
                    line=lines[line_id].code,
                    after=after,
                    period=periods[period_id].label,
                    before=before,
                ),
            )
    # Every move takes from one cell what it gives another: the grant's planned total is conserved.
    if sum(after - before for before, after in effects.values()) != 0:  # pragma: no cover - guards the rule above
        errors.add("amount", "the moves do not add up: the budget's total would change")
    errors.raise_if_any()
    grant = revision.grant
    if not session.scalar(select(BudgetVersion.id).where(BudgetVersion.grant_id == grant.id).limit(1)):
        snapshot_budget(session, grant, "Budget before the first approved revision", by=by)
    existing = {
        (a.line_id, a.period_id): a
        for a in session.scalars(select(BudgetAllocation).where(BudgetAllocation.grant_id == grant.id))
    }
    for (line_id, period_id), (_before, after) in effects.items():
        allocation = existing.get((line_id, period_id))
        if allocation is None:
            allocation = BudgetAllocation(line_id=line_id, period_id=period_id, grant_id=grant.id, amount=after)
            session.add(allocation)
        else:
            allocation.amount = after
        allocation.amount_cents = to_cents(after)
    for line_id, change in _net_change_by_line(effects).items():
        stated = lines[line_id].total
        if change and stated is not None:  # a line with a stated total keeps it true
            lines[line_id].total = quantize_money(Decimal(stated) + change)
    revision.status = RevisionStatus.approved
    revision.decided_at = clock.now()
    revision.decided_by = by
    revision.decision_note = note
    session.flush()
    version = snapshot_budget(
        session, grant, f"Revision {revision.id} approved: {revision.title}", revision=revision, by=by
    )
    revision.version_number = version.number
    session.flush()
    return version


def _net_change_by_line(effects: dict[tuple[int, int], tuple[Decimal, Decimal]]) -> dict[int, Decimal]:
    net: dict[int, Decimal] = defaultdict(Decimal)
    for (line_id, _period_id), (before, after) in effects.items():
        net[line_id] += after - before
    return net


def reject_revision(
    session: Session, revision: BudgetRevision, *, by: str | None = None, note: str | None = None
) -> BudgetRevision:
    if revision.status != RevisionStatus.submitted:
        raise DomainValidationError(
            {
                "status": [
                    _(
                        "only a submitted revision can be rejected; this one is %(status)s",
                        status=worded(revision.status).lower(),
                    )
                ]
            }
        )
    revision.status = RevisionStatus.rejected
    revision.decided_at = clock.now()
    revision.decided_by = by
    revision.decision_note = note
    session.flush()
    return revision


def revision_rule_notes(session: Session, revision: BudgetRevision) -> list[str]:
    """Why this revision may need the funder's approval: categories whose budget moves beyond a variance rule."""
    from budgets.report import _rules_for
    from budgets.report import budget_vs_actual as report

    rules = _rules_for(session, revision.grant_id)
    if not rules:
        return []
    lines = {l.id: l for l in session.scalars(select(BudgetLine).where(BudgetLine.grant_id == revision.grant_id))}
    moved: dict[str, Decimal] = defaultdict(Decimal)
    for item in revision.items:
        moved[lines[item.from_line_id].cost_category] -= Decimal(item.amount)
        moved[lines[item.to_line_id].cost_category] += Decimal(item.amount)
    summary = report(session, revision.grant_id, by="category")
    budgets = {row.key: row.budget for row in summary.rows}
    total = summary.total.budget if summary.total else Decimal(0)
    notes = []
    for category, change in sorted(moved.items()):
        if not change:
            continue
        rule = next((r for r in rules if r.cost_category == category), None) or next(
            (r for r in rules if r.cost_category is None), None
        )
        if rule is None:
            continue
        base = budgets.get(category, Decimal(0)) if rule.basis == VarianceBasis.category_budget else total
        limit = base * Decimal(rule.threshold_percent) / 100
        if abs(change) > limit:
            notes.append(
                f"cost category {category}: moves {change:+} {revision.grant.currency}, beyond "
                f"{Decimal(rule.threshold_percent).normalize():f}% ({quantize_money(limit)}); the funder must approve"
            )
    return notes


# ---------------------------------------------------------------- expenditures


def record_expenditure(
    session: Session,
    grant: Grant | None,
    *,
    line: BudgetLine | str,
    spent_on: date,
    amount: Any,
    currency: str,
    description: str = "",
    source: ExpenditureSource | str = ExpenditureSource.manual,
    external_ref: str | None = None,
    import_id: int | None = None,
) -> Expenditure:
    """Record money spent; the period, grant-currency amount and rate are derived and stored.

    ``line`` is a BudgetLine or its code within ``grant``. Raises
    DomainValidationError (nothing saved) for a non-numeric amount, an unknown
    currency, a missing rate, a date outside the grant or a line of another grant.
    """
    if isinstance(line, str):
        if grant is None:
            raise DomainValidationError({"line": ["give the grant to look a line code up in"]})
        found = session.scalar(select(BudgetLine).where(BudgetLine.grant_id == grant.id, BudgetLine.code == line))
        if found is None:
            raise DomainValidationError({"line": [f"'{line}' is not a budget line of {grant.reference}"]})
        line = found
    value = _money(amount, "amount")
    expenditure = Expenditure(
        grant_id=grant.id if grant is not None else None,
        line=line,
        spent_on=spent_on,
        amount=value,
        currency=currency,
        description=description,
        source=ExpenditureSource(source),
        external_ref=external_ref,
        import_id=import_id,
    )
    return create_expenditure(session, expenditure)


def prepare_expenditure(session: Session, expenditure: Expenditure) -> Expenditure:
    """Check an unsaved or changed expenditure and derive what is stored with it, without flushing.

    Derived here, once: the grant (the line's), the reporting period, the
    amount to the cent and the conversion into the grant's currency. Raises
    DomainValidationError naming each wrong field (MissingRateError, on
    "currency", when no rate applies). Imports and the Odoo sync call it to
    check many rows before adding any; everyone else calls ``create_expenditure``.
    """
    with session.no_autoflush:
        expenditure.currency = (expenditure.currency or "").strip().upper()
        if expenditure.external_ref is not None:
            expenditure.external_ref = expenditure.external_ref.strip() or None
        if expenditure.source is None:
            expenditure.source = ExpenditureSource.manual
        if expenditure.description is None:
            expenditure.description = ""
        grant, period = expenditure.check_entry(session)  # a claimed grant is checked before the line's is taken
        derive_grant(expenditure)
        expenditure.amount = quantize_money(Decimal(expenditure.amount))
        expenditure.period = period
        expenditure.period_id = period.id
        conversion = convert(session, grant, expenditure.amount, expenditure.currency, expenditure.spent_on, period)
        expenditure.converted_amount = conversion.converted
        expenditure.converted_cents = to_cents(conversion.converted)
        expenditure.rate = conversion.multiplier
        expenditure.rate_source = conversion.source[:200]
    return expenditure


def create_expenditure(session: Session, expenditure: Expenditure) -> Expenditure:
    """Save new spending (form, API, ``record_expenditure``): derived once, checked at the flush."""
    prepare_expenditure(session, expenditure)
    session.add(expenditure)
    session.flush()
    return expenditure


def update_expenditure(session: Session, expenditure: Expenditure, **changes: Any) -> Expenditure:
    """Save changed spending (``changes``: line, spent_on, amount, currency, description...): the
    grant, period and conversion follow the new values."""
    check_not_a_part(expenditure)
    for name, value in changes.items():
        setattr(expenditure, name, value)
    return create_expenditure(session, expenditure)


def check_not_a_part(expenditure: Expenditure) -> None:
    """A part of a shared cost changes only with its shared cost, so the parts keep adding up."""
    if expenditure.shared_cost_id is not None:
        raise DomainValidationError(
            {
                "amount": [
                    "is this grant's part of a shared cost: change or delete the shared cost "
                    "(Budgets → Shared costs), and every grant's part follows"
                ]
            }
        )


def delete_expenditure(session: Session, expenditure: Expenditure) -> None:
    """Remove spending (a correction); report sums read only what is stored, so nothing else changes."""
    check_not_a_part(expenditure)
    session.delete(expenditure)
    session.flush()


# ---------------------------------------------------------------- variance rules


def add_variance_rule(
    session: Session,
    funder: Funder,
    *,
    threshold_percent: Any,
    cost_category: str | None = None,
    basis: VarianceBasis | str = VarianceBasis.category_budget,
    description: str | None = None,
    direction: VarianceDirection | str = VarianceDirection.over,
) -> VarianceRule:
    """A funder's variance rule: flag overspending, under-spending or both beyond ``threshold_percent``."""
    try:
        direction = VarianceDirection(direction)
    except ValueError:
        raise DomainValidationError({"direction": ["choose overspending, under-spending or both"]}) from None
    rule = VarianceRule(
        funder=funder,
        direction=direction,
        cost_category=cost_category or None,
        basis=VarianceBasis(basis),
        threshold_percent=_money(threshold_percent, "threshold_percent"),
        description=description,
    )
    session.add(rule)
    session.flush()
    return rule


def budget_summary(session: Session, grant_id: int) -> dict[str, Any]:
    """Totals for the grant page panel: budget, spent, burn rate, remaining, flags."""
    report = budget_vs_actual(session, grant_id, by="category")
    return {
        "report": report,
        "flags": variance_flags(session, grant_id),
        "lines": session.scalar(select(func.count(BudgetLine.id)).where(BudgetLine.grant_id == grant_id)) or 0,
    }
