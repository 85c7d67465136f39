"""The indicators read model: achievement, on-track bands, ratings, progress rows and the IPTT built from them.

Reads figures, changes nothing. The public read surface for other packages is
``indicator_progress`` and ``indicator_achievement`` (also importable from
``indicators.services``); their signatures and the fields of ``ProgressRow``
are kept stable.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.formatting import in_reader_language, pct
from core.money import percent
from grants.models import Funder, Grant, ReportingPeriod
from indicators.models import (
    Category,
    CumulativeMode,
    Dimension,
    Direction,
    Indicator,
    IndicatorCode,
    Result,
    ResultStatus,
    ResultValue,
    Target,
    TargetValue,
    indicator_dimensions,
)

PCT = Decimal("0.01")
# Within ±15% of target counts as on track (direction-aware: beating the target is never "off").
ON_TRACK_FLOOR = Decimal(85)
ON_TRACK_CEILING = Decimal(115)
NOT_RATED = "not rated"  # the key of rating_summary for rows without a rating (shown with rating_word)


def find_category(session: Session, key: Any) -> Category:
    """A category from a Category, its id, or "dimension=code" (e.g. "country=LC")."""
    if isinstance(key, Category):
        return key
    category = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        category = session.get(Category, int(key))
    elif isinstance(key, str) and "=" in key:
        dimension_code, _sep, code = key.partition("=")
        category = session.scalar(
            select(Category)
            .join(Dimension, Category.dimension_id == Dimension.id)
            .where(Dimension.code == dimension_code.strip(), Category.code == code.strip())
        )
    if category is None:
        raise DomainValidationError(
            {
                "disaggregation": [
                    _("no category '%(key)s': write it as dimension=code, e.g. country=LC or gender=F", key=key)
                ]
            }
        )
    return category


def achievement(
    target: Decimal | None, actual: Decimal | None, direction: Direction | str = Direction.increase
) -> Decimal | None:
    """Actual as a percentage of target; for "decrease is good" the ratio is inverted (target / actual).

    None when there is nothing to compare or the ratio has no meaning (a zero divisor,
    except 0 against a target of 0, which is met in full).
    """
    if target is None or actual is None:
        return None
    if Direction(direction) == Direction.decrease:
        top, bottom = target, actual
    else:
        top, bottom = actual, target
    if bottom == 0:
        return Decimal(100).quantize(PCT) if top == 0 else None
    return percent(top, bottom, places=2)


@dataclass(frozen=True)
class RatingBand:
    """One step of the rating scale: achievement at or above ``floor`` (above it when not ``inclusive``)."""

    name: str
    floor: Decimal | None  # None: everything below the band above
    inclusive: bool = True


# The Global Fund scale, the one table behind ``rating`` and the legend people read.
RATING_SCALE: tuple[RatingBand, ...] = (
    RatingBand("A1", Decimal(100), inclusive=False),
    RatingBand("A2", Decimal(90)),
    RatingBand("B1", Decimal(60)),
    RatingBand("B2", Decimal(30)),
    RatingBand("C", None),
)


def rating(pct: Decimal | None) -> str | None:
    """The rating of an achievement % on ``RATING_SCALE``: A1 > 100%, A2 90–100%, B1 60–89%, B2 30–59%, C < 30%."""
    if pct is None:
        return None
    for band_ in RATING_SCALE:
        if band_.floor is None or pct > band_.floor or (band_.inclusive and pct == band_.floor):
            return band_.name
    return RATING_SCALE[-1].name


def rating_legend() -> str:
    """The scale in words, from ``RATING_SCALE``: "A1 above 100%, A2 90–100%, …, C below 30%"."""
    parts = []
    ceiling: Decimal | None = None
    for band_ in RATING_SCALE:
        floor = band_.floor
        if floor is None:
            parts.append(_("%(band)s below %(pct)s", band=band_.name, pct=pct(ceiling, 0)))
        elif ceiling is None:
            step = (
                _("%(band)s from %(pct)s", band=band_.name, pct=pct(floor, 0))
                if band_.inclusive
                else _("%(band)s above %(pct)s", band=band_.name, pct=pct(floor, 0))
            )
            parts.append(step)
        else:
            top = ceiling if not RATING_SCALE[RATING_SCALE.index(band_) - 1].inclusive else ceiling - 1
            parts.append(_("%(band)s %(floor)s–%(top)s", band=band_.name, floor=format(floor, "f"), top=pct(top, 0)))
        ceiling = floor
    return ", ".join(parts)


def rating_word(name: str) -> str:
    """A rating as the reader reads it: "A1" stays, "not rated" in their language."""
    return _("not rated") if name == NOT_RATED else name


def band(pct: Decimal | None) -> str | None:
    """ "ahead" above +15%, "on_track" within ±15% of target, "behind" below -15% (direction already applied)."""
    if pct is None:
        return None
    if pct < ON_TRACK_FLOOR:
        return "behind"
    if pct > ON_TRACK_CEILING:
        return "ahead"
    return "on_track"


@dataclass(frozen=True)
class ProgressRow:
    """One indicator in one period: the period's figures and the cumulative ones up to that period.

    Percentages (achievement_pct and the percentage indicators' values) are
    Decimal numbers from 0 to 100+, not fractions. ``on_track`` is True within
    ±15% of target or better (direction-aware); ``band`` says which side.
    ``disaggregation`` is "dimension=code" when the figures are one category's.
    """

    grant_reference: str
    indicator_id: int
    indicator_code: str
    indicator_name: str
    unit: str
    direction: str
    cumulative_mode: str
    funder_code: str  # what the grant's own funder calls the indicator (crosswalk, else the code)
    donor_codes: dict[str, str]  # funder code -> that funder's indicator code
    period_id: int
    period_label: str
    period_start: dt.date
    period_end: dt.date
    period_status: str
    disaggregation: str | None
    baseline_value: Decimal | None
    lop_target: Decimal | None
    target: Decimal | None
    actual: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    result_status: str | None
    achievement_pct: Decimal | None
    rating: str | None
    band: str | None
    on_track: bool | None
    cumulative_target: Decimal | None
    cumulative_actual: Decimal | None
    cumulative_achievement_pct: Decimal | None
    cumulative_rating: str | None
    cumulative_on_track: bool | None
    lop_achievement_pct: Decimal | None  # None when filtered by a category (the target is the total's)
    applicable: bool = True  # False when filtered by a dimension the indicator does not use

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Figure:
    value: Decimal | None
    numerator: Decimal | None = None
    denominator: Decimal | None = None
    status: str | None = None


@dataclass
class _Series:
    """Per indicator: period id -> target and actual figures."""

    targets: dict[int, _Figure] = field(default_factory=dict)
    actuals: dict[int, _Figure] = field(default_factory=dict)


def _cumulative(mode: CumulativeMode, is_percentage: bool, figures: list[_Figure], is_target: bool) -> Decimal | None:
    """Combine the figures of periods up to now according to the indicator's cumulative mode."""
    figures = [f for f in figures if f.value is not None]
    if not figures:
        return None
    if mode == CumulativeMode.latest:
        return figures[-1].value
    if mode == CumulativeMode.maximum:
        return max(f.value for f in figures if f.value is not None)
    if is_percentage:
        # A rate is not added up: the periods' numerators over their denominators.
        if all(f.numerator is not None and f.denominator for f in figures):
            num = sum((f.numerator for f in figures if f.numerator is not None), Decimal(0))
            den = sum((f.denominator for f in figures if f.denominator is not None), Decimal(0))
            return percent(num, den, places=4, rounding=ROUND_HALF_EVEN)
        return figures[-1].value if is_target else None
    return sum((f.value for f in figures if f.value is not None), Decimal(0))


def resolve_disaggregation(session: Session, disaggregation: Any) -> Category | None:
    if disaggregation in (None, ""):
        return None
    return find_category(session, disaggregation)


def indicator_progress(
    session: Session,
    grant_id: int,
    period_id: int | None = None,
    disaggregation: Any = None,
    *,
    include_drafts: bool = True,
    indicator_ids: Iterable[int] | None = None,
) -> list[ProgressRow]:
    """Progress of every indicator of a grant, one row per indicator and period (ordered so).

    - ``period_id``: only that period's rows (the cumulative figures still run from the first period).
    - ``disaggregation``: one category — a Category, its id, or "country=LC" — to report
      that category's figures instead of the totals; indicators not split by its
      dimension get rows with ``applicable=False`` and no figures.
    - ``include_drafts=False``: count only submitted and verified results (what a donor sees).

    Runs a fixed number of queries whatever the number of indicators and periods.
    Raises DomainValidationError for an unknown grant, period or category.
    """
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise DomainValidationError({"grant": [_("no grant with id %(id)s", id=grant_id)]})
    periods = list(
        session.scalars(
            select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id).order_by(ReportingPeriod.start_date)
        )
    )
    if period_id is not None and period_id not in {p.id for p in periods}:
        raise DomainValidationError(
            {"period": [_("period %(id)s is not a period of %(grant)s", id=period_id, grant=grant.reference)]}
        )
    category = resolve_disaggregation(session, disaggregation)
    indicator_query = (
        select(Indicator).where(Indicator.grant_id == grant_id).order_by(Indicator.sort_order, Indicator.code)
    )
    if indicator_ids is not None:
        indicator_query = indicator_query.where(Indicator.id.in_(list(indicator_ids)))
    indicators = list(session.scalars(indicator_query))
    if not indicators:
        return []

    series: dict[int, _Series] = defaultdict(_Series)
    applicable: set[int] = {i.id for i in indicators}
    result_statuses = [ResultStatus.draft, ResultStatus.submitted, ResultStatus.verified]
    if not include_drafts:
        result_statuses.remove(ResultStatus.draft)

    if category is None:
        # Plain columns, not ORM objects: progress reads figures, it changes nothing.
        for indicator_id, pid, value, num, den in session.execute(
            select(Target.indicator_id, Target.period_id, Target.value, Target.numerator, Target.denominator).where(
                Target.grant_id == grant_id
            )
        ):
            series[indicator_id].targets[pid] = _Figure(value, num, den)
        for indicator_id, pid, value, num, den, status in session.execute(
            select(
                Result.indicator_id, Result.period_id, Result.value, Result.numerator, Result.denominator, Result.status
            ).where(Result.grant_id == grant_id, Result.status.in_(result_statuses))
        ):
            series[indicator_id].actuals[pid] = _Figure(value, num, den, ResultStatus(status).value)
    else:
        applicable = set(
            session.scalars(
                select(indicator_dimensions.c.indicator_id)
                .join(Indicator, Indicator.id == indicator_dimensions.c.indicator_id)
                .where(Indicator.grant_id == grant_id, indicator_dimensions.c.dimension_id == category.dimension_id)
            )
        )
        target_rows = session.execute(
            select(
                Target.indicator_id, Target.period_id, TargetValue.value, TargetValue.numerator, TargetValue.denominator
            )
            .join(TargetValue, TargetValue.target_id == Target.id)
            .where(Target.grant_id == grant_id, TargetValue.category_id == category.id)
        )
        for indicator_id, pid, value, num, den in target_rows:
            series[indicator_id].targets[pid] = _Figure(value, num, den)
        result_rows = session.execute(
            select(
                Result.indicator_id,
                Result.period_id,
                ResultValue.value,
                ResultValue.numerator,
                ResultValue.denominator,
                Result.status,
            )
            .join(ResultValue, ResultValue.result_id == Result.id)
            .where(
                Result.grant_id == grant_id, ResultValue.category_id == category.id, Result.status.in_(result_statuses)
            )
        )
        for indicator_id, pid, value, num, den, status in result_rows:
            series[indicator_id].actuals[pid] = _Figure(value, num, den, ResultStatus(status).value)

    codes: dict[int, dict[str, str]] = defaultdict(dict)
    own_codes: dict[int, str] = {}
    for indicator_id, funder_id, funder_code, code in session.execute(
        select(IndicatorCode.indicator_id, IndicatorCode.funder_id, Funder.code, IndicatorCode.code)
        .join(Funder, Funder.id == IndicatorCode.funder_id)
        .where(IndicatorCode.grant_id == grant_id)
    ):
        codes[indicator_id][funder_code] = code
        if funder_id == grant.funder_id:
            own_codes[indicator_id] = code

    label = f"{category.dimension.code}={category.code}" if category is not None else None
    rows: list[ProgressRow] = []
    # Read each ORM attribute once, not once per indicator and period (the grant page reads this).
    reference = grant.reference
    period_facts = [(p.id, p.label, p.start_date, p.end_date, p.status.value) for p in periods]
    for indicator in indicators:
        indicator_id = indicator.id
        direction = indicator.direction
        mode = indicator.cumulative_mode
        is_percentage = indicator.is_percentage
        lop_target = indicator.lop_target
        fixed: dict[str, Any] = {
            "grant_reference": reference,
            "indicator_id": indicator_id,
            "indicator_code": indicator.code,
            "indicator_name": in_reader_language(indicator.name, indicator.titles),
            "unit": indicator.unit.value,
            "direction": direction.value,
            "cumulative_mode": mode.value,
            "funder_code": own_codes.get(indicator_id, indicator.code),
            "disaggregation": label,
            "baseline_value": indicator.baseline_value,
            "lop_target": lop_target,
            "applicable": indicator_id in applicable,
        }
        donor_codes = codes[indicator_id]
        data = series[indicator_id]
        seen_targets: list[_Figure] = []
        seen_actuals: list[_Figure] = []
        for pid, period_label, period_start, period_end, period_status in period_facts:
            target = data.targets.get(pid)
            actual = data.actuals.get(pid)
            if target is not None:
                seen_targets.append(target)
            if actual is not None:
                seen_actuals.append(actual)
            if period_id is not None and pid != period_id:
                continue
            pct = achievement(target.value if target else None, actual.value if actual else None, direction)
            cum_target = _cumulative(mode, is_percentage, seen_targets, is_target=True)
            cum_actual = _cumulative(mode, is_percentage, seen_actuals, is_target=False)
            cum_pct = achievement(cum_target, cum_actual, direction)
            # The life-of-grant target is for the total: one category's share is not compared with it.
            lop_pct = achievement(lop_target, cum_actual, direction) if seen_actuals and category is None else None
            rows.append(
                ProgressRow(
                    **fixed,
                    donor_codes=dict(donor_codes),
                    period_id=pid,
                    period_label=period_label,
                    period_start=period_start,
                    period_end=period_end,
                    period_status=period_status,
                    target=target.value if target else None,
                    actual=actual.value if actual else None,
                    numerator=actual.numerator if actual else None,
                    denominator=actual.denominator if actual else None,
                    result_status=actual.status if actual else None,
                    achievement_pct=pct,
                    rating=rating(pct),
                    band=band(pct),
                    on_track=None if pct is None else pct >= ON_TRACK_FLOOR,
                    cumulative_target=cum_target,
                    cumulative_actual=cum_actual,
                    cumulative_achievement_pct=cum_pct,
                    cumulative_rating=rating(cum_pct),
                    cumulative_on_track=None if cum_pct is None else cum_pct >= ON_TRACK_FLOOR,
                    lop_achievement_pct=lop_pct,
                )
            )
    return rows


def indicator_achievement(session: Session, indicator_id: int, period_id: int | None = None) -> Decimal | None:
    """Achievement % of one indicator.

    With ``period_id``: that period's actual against that period's target.
    Without: to date — the cumulative actual against the life-of-grant target
    if one is set, else against the cumulative target, as of the latest period
    with a result. None when there is nothing to compare.
    """
    grant_id = session.scalar(select(Indicator.grant_id).where(Indicator.id == indicator_id))
    if grant_id is None:
        raise DomainValidationError({"indicator": [_("no indicator with id %(id)s", id=indicator_id)]})
    rows = indicator_progress(session, grant_id, period_id, indicator_ids=[indicator_id])
    if period_id is not None:
        return rows[0].achievement_pct if rows else None
    reported = [row for row in rows if row.actual is not None]
    if not reported:
        return None
    latest = reported[-1]
    return latest.lop_achievement_pct if latest.lop_target is not None else latest.cumulative_achievement_pct


def latest_reported_period(rows: list[ProgressRow], today: dt.date | None = None) -> tuple[int, str] | None:
    """(period id, label) of the latest period that has started and has any actual, from ``indicator_progress`` rows.

    A result entered early for a period still to come does not make that period "latest".
    """
    today = today or clock.today()
    reported = sorted(
        {
            (r.period_start, r.period_id, r.period_label)
            for r in rows
            if r.actual is not None and r.period_start <= today
        }
    )
    return (reported[-1][1], reported[-1][2]) if reported else None


def latest_reported(
    session: Session, grant_id: int, *, include_drafts: bool = True, today: dt.date | None = None
) -> tuple[int, str] | None:
    """What ``latest_reported_period`` finds in a grant's progress rows, in one query (the grant page's panel)."""
    today = today or clock.today()
    statuses = [ResultStatus.submitted, ResultStatus.verified] + ([ResultStatus.draft] if include_drafts else [])
    row = session.execute(
        select(ReportingPeriod.id, ReportingPeriod.label)
        .join(Result, Result.period_id == ReportingPeriod.id)
        .where(
            Result.grant_id == grant_id,
            Result.status.in_(statuses),
            Result.value.is_not(None),
            ReportingPeriod.start_date <= today,
        )
        .order_by(ReportingPeriod.start_date.desc(), ReportingPeriod.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def rating_summary(rows: list[ProgressRow], today: dt.date | None = None) -> dict[str, int]:
    """How many indicators got each rating in the latest reported period (A1..C, and "not rated")."""
    latest = latest_reported_period(rows, today)
    counts = {name: 0 for name in (*(band_.name for band_ in RATING_SCALE), NOT_RATED)}
    if latest is None:
        return counts
    for row in rows:
        if row.period_id == latest[0]:
            counts[row.rating or NOT_RATED] += 1
    return counts


def iptt_periods(rows: list[ProgressRow], grant: Grant) -> list[tuple[int, str, str]]:
    """The IPTT's columns: (period id, label, status) in period order; the grant's periods when there are no rows."""
    seen: OrderedDict[int, tuple[int, str, str]] = OrderedDict()
    for row in rows:
        seen.setdefault(row.period_id, (row.period_id, row.period_label, row.period_status))
    if not seen:
        return [(p.id, p.label, p.status.value) for p in grant.periods]
    return list(seen.values())


def to_date_achievement(row: ProgressRow) -> Decimal | None:
    """Achievement "to date": against the life-of-grant target where there is one, else the cumulative target."""
    return row.lop_achievement_pct if row.lop_achievement_pct is not None else row.cumulative_achievement_pct


def iptt_table(rows: list[ProgressRow]) -> OrderedDict[int, dict[str, Any]]:
    """Group progress rows by indicator: {indicator_id: {"first": row, "rows": [...], "by_period": {...}}}.

    ``to_date`` is the row as of the latest period with a result; ``to_date_pct``
    and ``to_date_rating`` are the "to date" achievement and its rating, so the
    figure and the rating shown side by side always agree.
    """
    table: OrderedDict[int, dict[str, Any]] = OrderedDict()
    for row in rows:
        entry = table.setdefault(row.indicator_id, {"first": row, "rows": [], "by_period": {}})
        entry["rows"].append(row)
        entry["by_period"][row.period_id] = row
        # "To date" is as of the latest period with a result (else the first period).
        if row.actual is not None or "to_date" not in entry:
            entry["to_date"] = row
    for entry in table.values():
        entry["to_date_pct"] = to_date_achievement(entry["to_date"])
        entry["to_date_rating"] = rating(entry["to_date_pct"])
    return table
