"""Budget vs actual and variance flags: SQL sums in whole cents, a fixed number of queries per report.

This is the budgets domain's public reading surface: exports and compliance
call ``budget_vs_actual`` and ``variance_flags``; keep their signatures and the
row fields stable.

Sign convention: ``variance = planned − actual``: positive means money left,
negative means overspent. Percentages are of the planned amount and are None
when nothing was planned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnClause, Integer, case, cast, func, literal, literal_column, select
from sqlalchemy.orm import Session

from budgets.models import (
    BudgetAllocation,
    BudgetLine,
    BudgetLineTotal,
    BudgetVersion,
    BudgetVersionAllocation,
    VarianceBasis,
    VarianceRule,
)
from core import clock
from core.errors import DomainValidationError
from core.formatting import N_, amount, number
from core.formatting import day as _day
from core.formatting import gettext as _
from core.money import percent
from grants.models import INDIRECT_BASE_LABELS, Funder, Grant, IndirectBase, ReportingPeriod

Grouping = Literal["line", "category"]
# An inline 0, not a bound parameter: psycopg may type a bound 0 as numeric, turning the
# CASE and its SUM into slow numeric arithmetic instead of bigint.
_ZERO: ColumnClause[int] = literal_column("0")


def _money(cents: int | None) -> Decimal:
    # scaleb moves the decimal point exactly: 123456 -> 1234.56, 0 -> 0.00.
    return Decimal(int(cents or 0)).scaleb(-2)


@dataclass
class BudgetRow:
    """One line (or cost category) of a budget-vs-actual report; money in the grant's currency.

    ``planned``/``actual``/``variance``: within the chosen period (the whole grant when none).
    ``cumulative_*``: from the grant's start to the end of the chosen period.
    ``budget``: the whole life-of-grant budget; ``burn_rate`` = cumulative actual / budget (%);
    ``remaining`` = budget − cumulative actual.
    """

    key: str  # line code, or cost category code
    name: str  # line description, or cost category name
    cost_category: str
    cost_category_name: str
    planned: Decimal
    actual: Decimal
    variance: Decimal
    variance_pct: Decimal | None
    cumulative_planned: Decimal
    cumulative_actual: Decimal
    cumulative_variance: Decimal
    cumulative_variance_pct: Decimal | None
    budget: Decimal
    burn_rate: Decimal | None
    remaining: Decimal
    line_id: int | None = None
    module: str | None = None
    intervention: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON and spreadsheets: Decimals as strings."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


@dataclass
class BudgetReport:
    grant_id: int
    grant_reference: str
    currency: str
    by: Grouping
    period_id: int | None
    period_label: str | None
    period_start: date | None
    period_end: date | None
    version: int | None  # None: the current budget; N: budget version N
    rows: list[BudgetRow] = field(default_factory=list)
    total: BudgetRow | None = None  # the rows added up: every direct cost
    # Only for a grant with an indirect cost rate: the indirect costs on their base, and direct + indirect.
    indirect: BudgetRow | None = None
    grand_total: BudgetRow | None = None

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.indirect is not None and self.grand_total is not None:
            extra = {"indirect": self.indirect.as_dict(), "grand_total": self.grand_total.as_dict()}
        return {
            **extra,
            "grant_id": self.grant_id,
            "grant_reference": self.grant_reference,
            "currency": self.currency,
            "by": self.by,
            "period_id": self.period_id,
            "period_label": self.period_label,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "version": self.version,
            "rows": [row.as_dict() for row in self.rows],
            "total": self.total.as_dict() if self.total else None,
        }


def _bigint(*sums: Any) -> list[Any]:
    # PostgreSQL's SUM(bigint) is numeric, which the driver turns into Decimals; whole cents fit
    # a bigint (up to 92 million billion), and ints are cheaper to fetch and add up.
    return [cast(s, BigInteger) for s in sums]


def _cents(sums: Any) -> tuple[int, ...]:
    return tuple(int(s or 0) for s in sums)


def _row(key: str, name: str, category: str, category_label: str, sums: tuple[int, ...], **extra: Any) -> BudgetRow:
    # Arithmetic on whole cents (ints), then one exact conversion per figure.
    planned_p, planned_c, planned_t, actual_p, actual_c = sums
    return BudgetRow(
        key=key,
        name=name,
        cost_category=category,
        cost_category_name=category_label,
        planned=_money(planned_p),
        actual=_money(actual_p),
        variance=_money(planned_p - actual_p),
        variance_pct=percent(planned_p - actual_p, planned_p),
        cumulative_planned=_money(planned_c),
        cumulative_actual=_money(actual_c),
        cumulative_variance=_money(planned_c - actual_c),
        cumulative_variance_pct=percent(planned_c - actual_c, planned_c),
        budget=_money(planned_t),
        burn_rate=percent(actual_c, planned_t),
        remaining=_money(planned_t - actual_c),
        **extra,
    )


def budget_vs_actual(
    session: Session,
    grant_id: int,
    period_id: int | None = None,
    by: Grouping = "line",
    version: int | None = None,
) -> BudgetReport:
    """Planned vs actual for one grant, by budget line or by cost category, in the grant's currency.

    ``period_id`` limits planned/actual to that reporting period (cumulative
    figures run to its end); None reports the whole grant. ``version`` compares
    against an earlier budget version instead of the current budget. Runs three
    queries whatever the number of lines (grant, period, the report itself);
    money is summed as integer cents so SQLite and PostgreSQL agree to the cent.
    Raises DomainValidationError for an unknown grant, period or version.
    """
    if by not in ("line", "category"):
        raise DomainValidationError({"by": [f"'{by}' is not one of line, category"]})
    grant = session.execute(
        select(
            Grant.id,
            Grant.reference,
            Grant.currency,
            Funder.cost_categories,
            Grant.indirect_rate,
            Grant.indirect_base,
            Grant.indirect_excluded,
        )
        .join(Funder, Funder.id == Grant.funder_id)
        .where(Grant.id == grant_id)
    ).first()
    if grant is None:
        raise DomainValidationError({"grant": [f"no grant with id {grant_id}"]})
    period = None
    if period_id is not None:
        period = session.get(ReportingPeriod, period_id)
        if period is None or period.grant_id != grant_id:
            raise DomainValidationError({"period": [f"{grant.reference} has no reporting period with id {period_id}"]})

    planned = _planned_sums(session, grant_id, period, version, grant.reference)
    actual = _actual_sums(grant_id, period)
    zero = literal(0, Integer)
    # Without a period, "in the period" and "cumulative" are the whole grant: the same column.
    p_per, p_cum, p_tot = (
        func.coalesce(planned.c[n], zero) for n in (("per", "cum", "tot") if period else ("tot",) * 3)
    )
    a_per, a_cum = (func.coalesce(actual.c[n], zero) for n in (("per", "cum") if period else ("cum",) * 2))
    joined = (
        select(BudgetLine)
        .outerjoin(planned, planned.c.line_id == BudgetLine.id)
        .outerjoin(actual, actual.c.line_id == BudgetLine.id)
        .where(BudgetLine.grant_id == grant_id)
    )
    categories = grant.cost_categories or []
    names = {str(c.get("code")): str(c.get("name")) for c in categories}
    rows: list[BudgetRow] = []
    # Totals add the rows' integer cents: no Decimal round trip per figure.
    totals = [0, 0, 0, 0, 0]
    # The indirect cost base: every direct cost, or those outside the excluded categories.
    excluded = set(grant.indirect_excluded or []) if grant.indirect_base == IndirectBase.modified_direct else set()
    base = [0, 0, 0, 0, 0]
    if by == "line":
        query = joined.with_only_columns(
            BudgetLine.id,
            BudgetLine.code,
            BudgetLine.description,
            BudgetLine.cost_category,
            BudgetLine.module,
            BudgetLine.intervention,
            *_bigint(p_per, p_cum, p_tot, a_per, a_cum),
        ).order_by(BudgetLine.code)
        for line_id, code, description, category, module, intervention, *sums in session.execute(query):
            cents = _cents(sums)
            totals = [t + c for t, c in zip(totals, cents)]
            if category not in excluded:
                base = [t + c for t, c in zip(base, cents)]
            rows.append(
                _row(
                    code,
                    description,
                    category,
                    names.get(category, category),
                    cents,
                    line_id=line_id,
                    module=module,
                    intervention=intervention,
                )
            )
    else:
        query = joined.with_only_columns(
            BudgetLine.cost_category,
            *_bigint(*(func.sum(c) for c in (p_per, p_cum, p_tot, a_per, a_cum))),
        ).group_by(BudgetLine.cost_category)
        order = {str(c.get("code")): i for i, c in enumerate(categories)}
        for category, *sums in session.execute(query):
            label = names.get(category, category)
            cents = _cents(sums)
            totals = [t + c for t, c in zip(totals, cents)]
            if category not in excluded:
                base = [t + c for t, c in zip(base, cents)]
            rows.append(_row(category, label, category, label, cents))
        rows.sort(key=lambda r: (order.get(r.cost_category, len(order)), r.cost_category))
    indirect = grand_total = None
    if grant.indirect_rate is not None:
        rate = Decimal(grant.indirect_rate)
        indirect_cents = tuple(_share_of(c, rate) for c in base)
        what = INDIRECT_BASE_LABELS.get(grant.indirect_base, "total direct costs")
        if excluded:
            left_out = ", ".join(names.get(code, code) for code in sorted(excluded))
            what = f"direct costs less {left_out}"
        indirect = _row("INDIRECT", f"Indirect costs ({rate.normalize():f}% of {what})", "", "", indirect_cents)
        grand_total = _row("TOTAL", "Total", "", "", tuple(t + i for t, i in zip(totals, indirect_cents)))
    return BudgetReport(
        indirect=indirect,
        grand_total=grand_total,
        grant_id=grant_id,
        grant_reference=grant.reference,
        currency=grant.currency,
        by=by,
        period_id=period.id if period else None,
        period_label=period.label if period else None,
        period_start=period.start_date if period else None,
        period_end=period.end_date if period else None,
        version=version,
        rows=rows,
        total=_row("TOTAL", "Total", "", "", tuple(totals)),
    )


def _share_of(cents: int, rate: Decimal) -> int:
    """``rate`` percent of ``cents``, to the nearest cent (halves away from zero)."""
    return int((Decimal(cents) * rate / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _planned_sums(
    session: Session, grant_id: int, period: ReportingPeriod | None, version: int | None, reference: str
) -> Any:
    """Per line: planned cents in the period, up to its end, and for the whole grant."""
    if version is None:
        source, amount, line_col, period_col = (
            BudgetAllocation,
            BudgetAllocation.amount_cents,
            BudgetAllocation.line_id,
            BudgetAllocation.period_id,
        )
        where = [BudgetAllocation.grant_id == grant_id]
    else:
        version_id = session.scalar(
            select(BudgetVersion.id).where(BudgetVersion.grant_id == grant_id, BudgetVersion.number == version)
        )
        if version_id is None:
            raise DomainValidationError({"version": [f"{reference} has no budget version {version}"]})
        source, amount, line_col, period_col = (
            BudgetVersionAllocation,
            BudgetVersionAllocation.amount_cents,
            BudgetVersionAllocation.line_id,
            BudgetVersionAllocation.period_id,
        )
        where = [BudgetVersionAllocation.version_id == version_id]
    total = func.sum(amount)
    if period is None:
        # One sum only: SQLite evaluates every aggregate of a select separately, even identical ones.
        return (
            select(line_col.label("line_id"), total.label("tot")).where(*where).group_by(line_col).subquery("planned")
        )
    return (
        select(
            line_col.label("line_id"),
            func.sum(case((period_col == period.id, amount), else_=_ZERO)).label("per"),
            func.sum(case((ReportingPeriod.end_date <= period.end_date, amount), else_=_ZERO)).label("cum"),
            total.label("tot"),
        )
        .select_from(source)
        .join(ReportingPeriod, ReportingPeriod.id == period_col)
        .where(*where)
        .group_by(line_col)
        .subquery("planned")
    )


def _actual_sums(grant_id: int, period: ReportingPeriod | None) -> Any:
    """Per line: spent cents in the period and up to its end (everything when no period).

    Read from ``budget_line_totals`` (SUM(converted_cents) per grant, line, period and day, kept
    by triggers on expenditures): the same figures as summing the expenditures, from a few
    thousand rows whatever their number.
    """
    totals = BudgetLineTotal
    cents = totals.spent_cents
    if period is None:
        return (
            select(totals.line_id.label("line_id"), func.sum(cents).label("cum"))
            .where(totals.grant_id == grant_id)
            .group_by(totals.line_id)
            .subquery("actual")
        )
    # Sum per (line, period) first, in the primary key's order (grant, line, period, day) without a
    # sort; the CASE then runs over a few rows per line.
    per_period = (
        select(totals.line_id, totals.period_id, func.sum(cents).label("spent"))
        .where(totals.grant_id == grant_id, totals.spent_on <= period.end_date)
        .group_by(totals.line_id, totals.period_id)
        .subquery("per_period")
    )
    return (
        select(
            per_period.c.line_id.label("line_id"),
            func.sum(case((per_period.c.period_id == period.id, per_period.c.spent), else_=_ZERO)).label("per"),
            func.sum(per_period.c.spent).label("cum"),
        )
        .group_by(per_period.c.line_id)
        .subquery("actual")
    )


# ---------------------------------------------------------------- variance rules


Window = Literal["cumulative", "period", "whole"]


@dataclass
class VarianceFlag:
    """A line or cost category whose variance is beyond the funder's rule, in one window of time.

    ``overspend`` = actual − planned: negative for under-spending. ``direction`` says which
    way the rule was broken; ``window`` which figures were compared ("cumulative to 30 Jun
    2026", "in S1 2026", "whole grant").
    """

    level: Literal["line", "category"]
    key: str
    name: str
    cost_category: str
    planned: Decimal
    actual: Decimal
    overspend: Decimal
    overspend_pct: Decimal | None  # of the row's own planned amount
    threshold_percent: Decimal
    basis: str  # category_budget or total_budget
    limit: Decimal  # the variance allowed before the funder must hear of it
    message: str
    direction: Literal["over", "under"] = "over"
    window: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


def _rules_for(session: Session, grant_id: int) -> list[VarianceRule]:
    return list(
        session.scalars(
            select(VarianceRule)
            .join(Grant, Grant.funder_id == VarianceRule.funder_id)
            .where(Grant.id == grant_id)
            .order_by(VarianceRule.cost_category.is_(None), VarianceRule.id)
        )
    )


def day_label(day: date) -> str:
    """30 Jun 2026: the way people write a date in a sentence (in the reader's language)."""
    return _day(day)


def period_window(period: ReportingPeriod) -> str:
    """ "in S1 2026": the period's label, with its year when the label has none."""
    year = str(period.end_date.year)
    if year in period.label:
        return _("in %(period)s", period=period.label)
    return _("in %(period)s %(year)s", period=period.label, year=year)


def variance_flags(
    session: Session,
    grant_id: int,
    period_id: int | None = None,
    as_of: date | None = None,
    window: Window = "cumulative",
) -> list[VarianceFlag]:
    """Cost categories and lines whose variance is beyond the funder's rules, in one window.

    A rule names a cost category (or every category), a threshold and a direction
    (overspending, under-spending or both): a variance above N% of the row's own planned
    amount (``category_budget``) or above N% of the grant's total budget (``total_budget``).
    A category-specific rule wins over a rule for every category.

    ``window``: ``cumulative`` compares cumulative actual with cumulative planned to the end of
    ``period_id`` (without one, of the period holding ``as_of``, default today; nothing before
    the grant starts); ``period`` compares that period's own figures; ``whole`` compares all
    spending with the life-of-grant budget (under-spending only once the grant has ended).
    Every flag says its window.
    """
    rules = _rules_for(session, grant_id)
    if not rules:
        return []
    today = as_of or clock.today()
    if window != "whole" and period_id is None:
        period_id = _period_as_of(session, grant_id, today)
        if period_id is None:
            return []
    report_period = None if window == "whole" else period_id
    by_category = budget_vs_actual(session, grant_id, report_period, by="category")
    by_line = budget_vs_actual(session, grant_id, report_period, by="line")
    assert by_category.total is not None
    total_budget = by_category.total.budget
    if window == "whole":
        label = _("whole grant")
        grant_end = session.scalar(select(Grant.end_date).where(Grant.id == grant_id))
        ended = grant_end is not None and today > grant_end
    else:
        period = session.get(ReportingPeriod, period_id)
        assert period is not None
        if window == "period":
            label = period_window(period)
        else:
            label = _("cumulative to %(date)s", date=day_label(period.end_date))
        ended = True
    currency = by_category.currency
    flags: list[VarianceFlag] = []
    for level, report in (("category", by_category), ("line", by_line)):
        for row in report.rows:
            rule = next((r for r in rules if r.cost_category == row.cost_category), None) or next(
                (r for r in rules if r.cost_category is None), None
            )
            if rule is None:
                continue
            if window == "cumulative":
                planned, actual = row.cumulative_planned, row.cumulative_actual
            elif window == "period":
                planned, actual = row.planned, row.actual
            else:
                planned, actual = row.budget, row.cumulative_actual
            overspend = actual - planned
            threshold = Decimal(rule.threshold_percent)
            base = planned if rule.basis == VarianceBasis.category_budget else total_budget
            limit = (base * threshold / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            direction = rule.direction.value if rule.direction is not None else "over"
            if overspend > limit and direction in ("over", "both"):
                way: Literal["over", "under"] = "over"
            elif -overspend > limit and direction in ("under", "both") and ended and planned > 0:
                way = "under"
            else:
                continue
            if level == "category":
                what = _("cost category %(code)s %(name)s", code=row.key, name=row.name)
            else:
                what = _("line %(code)s %(name)s", code=row.key, name=row.name)
            # One whole sentence per direction and basis, so that translators see each one entire.
            sentence = _FLAG_SENTENCES[(way, rule.basis == VarianceBasis.category_budget)]
            flags.append(
                VarianceFlag(
                    level=level,  # type: ignore[arg-type]
                    key=row.key,
                    name=row.name,
                    cost_category=row.cost_category,
                    planned=planned,
                    actual=actual,
                    overspend=overspend,
                    overspend_pct=percent(overspend, planned),
                    threshold_percent=threshold,
                    basis=rule.basis.value,
                    limit=limit,
                    direction=way,
                    window=label,
                    message=_(
                        sentence,
                        what=what,
                        window=label,
                        amount=amount(abs(overspend)),
                        currency=currency,
                        threshold=number(threshold.normalize()),
                        limit=amount(limit),
                    ),
                )
            )
    return flags


# (direction, basis is the category's own budget) → the flag's sentence; translated when the flag is made.
_FLAG_SENTENCES = {
    ("over", True): N_(
        "%(what)s, %(window)s: overspent by %(amount)s %(currency)s, more than %(threshold)s%% of its planned "
        "amount (%(limit)s %(currency)s); needs the funder's approval"
    ),
    ("over", False): N_(
        "%(what)s, %(window)s: overspent by %(amount)s %(currency)s, more than %(threshold)s%% of the total "
        "budget (%(limit)s %(currency)s); needs the funder's approval"
    ),
    ("under", True): N_(
        "%(what)s, %(window)s: under-spent by %(amount)s %(currency)s, more than %(threshold)s%% of its planned "
        "amount (%(limit)s %(currency)s); the funder will ask why"
    ),
    ("under", False): N_(
        "%(what)s, %(window)s: under-spent by %(amount)s %(currency)s, more than %(threshold)s%% of the total "
        "budget (%(limit)s %(currency)s); the funder will ask why"
    ),
}


def period_as_of(session: Session, grant_id: int, day: date) -> int | None:
    """The id of the grant's period holding ``day`` (the last one once the grant ended; None before it starts)."""
    return _period_as_of(session, grant_id, day)


def _period_as_of(session: Session, grant_id: int, day: date) -> int | None:
    started = session.scalar(
        select(ReportingPeriod.id)
        .where(ReportingPeriod.grant_id == grant_id, ReportingPeriod.start_date <= day)
        .order_by(ReportingPeriod.start_date.desc())
        .limit(1)
    )
    return started


def burn_series(session: Session, grant_id: int) -> list[tuple[date, Decimal, Decimal]]:
    """(period end, cumulative planned, cumulative actual) per reporting period, for the burn chart. Two queries."""
    periods = session.execute(
        select(ReportingPeriod.id, ReportingPeriod.end_date)
        .where(ReportingPeriod.grant_id == grant_id)
        .order_by(ReportingPeriod.start_date)
    ).all()
    planned = dict(
        session.execute(
            select(BudgetAllocation.period_id, func.sum(BudgetAllocation.amount_cents))
            .where(BudgetAllocation.grant_id == grant_id)
            .group_by(BudgetAllocation.period_id)
        )
        .tuples()
        .all()
    )
    actual = dict(
        session.execute(
            select(BudgetLineTotal.period_id, func.sum(BudgetLineTotal.spent_cents))
            .where(BudgetLineTotal.grant_id == grant_id)
            .group_by(BudgetLineTotal.period_id)
        )
        .tuples()
        .all()
    )
    series = []
    cum_planned = cum_actual = 0
    for pid, end in periods:
        cum_planned += int(planned.get(pid) or 0)
        cum_actual += int(actual.get(pid) or 0)
        series.append((end, _money(cum_planned), _money(cum_actual)))
    return series


def monthly_actuals(session: Session, grant_id: int) -> list[tuple[str, Decimal]]:
    """Spending per calendar month ("2026-03", amount) for the burn line; one query, same on both engines."""
    # extract() compiles to strftime on SQLite and EXTRACT on PostgreSQL: same buckets on both.
    # From the per-day totals: the same sums as over the expenditures.
    year = func.extract("year", BudgetLineTotal.spent_on)
    month = func.extract("month", BudgetLineTotal.spent_on)
    result = session.execute(
        select(year, month, func.sum(BudgetLineTotal.spent_cents))
        .where(BudgetLineTotal.grant_id == grant_id)
        .group_by(year, month)
        .order_by(year, month)
    ).all()
    return [(f"{int(y):04d}-{int(m):02d}", _money(c)) for y, m, c in result]


def grant_totals(session: Session, grant_ids: list[int]) -> dict[int, tuple[Decimal, Decimal, Decimal | None]]:
    """{grant id: (budget, spent, burn %)} for many grants at once: two GROUP BYs in whole cents."""
    if not grant_ids:
        return {}
    planned = dict(
        session.execute(
            select(BudgetAllocation.grant_id, cast(func.sum(BudgetAllocation.amount_cents), BigInteger))
            .where(BudgetAllocation.grant_id.in_(grant_ids))
            .group_by(BudgetAllocation.grant_id)
        )
        .tuples()
        .all()
    )
    spent = dict(
        session.execute(
            select(BudgetLineTotal.grant_id, cast(func.sum(BudgetLineTotal.spent_cents), BigInteger))
            .where(BudgetLineTotal.grant_id.in_(grant_ids))
            .group_by(BudgetLineTotal.grant_id)
        )
        .tuples()
        .all()
    )
    result = {}
    for grant_id in grant_ids:
        budget, actual = int(planned.get(grant_id) or 0), int(spent.get(grant_id) or 0)
        result[grant_id] = (_money(budget), _money(actual), percent(actual, budget))
    return result


__all__ = [
    "grant_totals",
    "BudgetReport",
    "BudgetRow",
    "VarianceFlag",
    "budget_vs_actual",
    "variance_flags",
    "burn_series",
    "monthly_actuals",
]
