"""Every state change of the indicators domain, and progress: achievement, on-track band, rating.

Plain functions over a SQLAlchemy session; no Flask. Views, the API, the demo
and other domains (exports, compliance) call these. The public read surface
for other packages is ``indicator_progress`` and ``indicator_achievement``;
their signatures and the fields of ``ProgressRow`` are kept stable.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grants.errors import DomainValidationError
from grants.models import Funder, Grant, ReportingPeriod
from grants.money import to_decimal
from grants.records import validate_record
from indicators.models import (
    CLOSED_PERIOD_STATUSES,
    HUNDRED,
    Category,
    CumulativeMode,
    Dimension,
    Direction,
    Indicator,
    IndicatorCode,
    IndicatorUnit,
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

# The standard dimensions every installation starts with. Key population is not
# exhaustive: people belong to several or to none, so its parts need not add up.
STANDARD_DIMENSIONS: list[dict[str, Any]] = [
    {"code": "country", "name": "Country", "exhaustive": True, "categories": [("LC", "Saint Lucia"), ("GD", "Grenada")]},
    {
        "code": "gender", "name": "Sex/gender", "exhaustive": True,
        "categories": [("F", "Female"), ("M", "Male"), ("TG", "Transgender"), ("X", "Other or not stated")],
    },
    {
        "code": "age", "name": "Age band", "exhaustive": True,
        "categories": [("<15", "Under 15"), ("15-19", "15-19"), ("20-24", "20-24"), ("25-49", "25-49"), ("50+", "50 and over")],
    },
    {
        "code": "keypop", "name": "Key population", "exhaustive": False,
        "categories": [
            ("SW", "Sex workers"), ("MSM", "Men who have sex with men"), ("TG", "Transgender people"),
            ("PWUD", "People who use drugs"), ("PRIS", "People in prisons"),
        ],
    },
]


# ---------------------------------------------------------------- parsing


def _number(value: Any, field: str) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return to_decimal(value, field)
    except ValueError as exc:
        raise DomainValidationError({field: [str(exc).split(": ", 1)[-1]]}) from None


def _enum(enum_cls: Any, value: Any, field: str) -> Any:
    if value is None or isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        known = ", ".join(m.value for m in enum_cls)
        raise DomainValidationError({field: [f"'{value}' is not one of {known}"]}) from None


def find_category(session: Session, key: Any) -> Category:
    """A category from a Category, its id, or "dimension=code" (e.g. "country=LC")."""
    if isinstance(key, Category):
        return key
    category = None
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        category = session.get(Category, int(key))
    elif isinstance(key, str) and "=" in key:
        dimension_code, _, code = key.partition("=")
        category = session.scalar(
            select(Category)
            .join(Dimension, Category.dimension_id == Dimension.id)
            .where(Dimension.code == dimension_code.strip(), Category.code == code.strip())
        )
    if category is None:
        raise DomainValidationError(
            {"disaggregation": [f"no category '{key}': write it as dimension=code, e.g. country=LC or gender=F"]}
        )
    return category


def _parse_parts(session: Session, disaggregation: Mapping[Any, Any] | None) -> dict[int, tuple[Category, dict[str, Decimal | None]]]:
    """{category key: value | (numerator, denominator) | {"value"|"numerator"|"denominator": ...}}."""
    parsed: dict[int, tuple[Category, dict[str, Decimal | None]]] = {}
    for key, raw in (disaggregation or {}).items():
        category = find_category(session, key)
        label = f"disaggregation {category.dimension.code}={category.code}"
        if isinstance(raw, Mapping):
            figures = {name: _number(raw.get(name), label) for name in ("value", "numerator", "denominator")}
        elif isinstance(raw, (tuple, list)):
            if len(raw) != 2:
                raise DomainValidationError({label: ["give (numerator, denominator)"]})
            figures = {"value": None, "numerator": _number(raw[0], label), "denominator": _number(raw[1], label)}
        else:
            figures = {"value": _number(raw, label), "numerator": None, "denominator": None}
        if all(v is None for v in figures.values()):
            continue  # an empty box in a form: no figure for that category
        if category.id in parsed:
            raise DomainValidationError({"disaggregation": [f"{category} is given twice"]})
        parsed[category.id] = (category, figures)
    return parsed


def _apply_parts(owner: Target | Result, part_cls: type, wanted: dict[int, tuple[Category, dict[str, Decimal | None]]]) -> None:
    """Make the owner's parts equal to ``wanted``: update in place, add new, remove the rest.

    In place rather than delete-and-insert: the unit of work inserts before it
    deletes, which would collide on the (owner, category) unique key.
    """
    existing = {part.category_id: part for part in owner.values}
    for category_id, part in existing.items():
        if category_id not in wanted:
            owner.values.remove(part)
    for category_id, (category, figures) in wanted.items():
        part = existing.get(category_id)
        if part is None:
            part = part_cls(category=category, category_id=category.id)
            owner.values.append(part)
        for name, amount in figures.items():
            setattr(part, name, amount)


def _save_figure(
    session: Session, model: type, part_cls: type, indicator: Indicator, period: ReportingPeriod,
    figures: dict[str, Any], disaggregation: Mapping[Any, Any] | None, extra: dict[str, Any],
) -> Any:
    """Create or replace a target/result with its parts, all or nothing.

    The new figures are first checked on a detached copy: when they are refused
    the session is untouched, so the caller's other work is not lost.
    """
    numbers = {name: _number(figures.get(name), name) for name in ("value", "numerator", "denominator")}
    wanted = _parse_parts(session, disaggregation)
    existing = session.scalar(select(model).where(model.indicator_id == indicator.id, model.period_id == period.id))
    shadow = model(
        id=existing.id if existing else None, indicator_id=indicator.id, period_id=period.id,
        grant_id=indicator.grant_id, **numbers, **extra,
    )
    # Parts point at their category without a backref, so the shadow never enters the session.
    shadow.values = [part_cls(category_id=c.id, category=c, **f) for c, f in wanted.values()]
    with session.no_autoflush:
        validate_record(session, shadow)
        record = existing or model(indicator=indicator, period=period, grant_id=indicator.grant_id)
        for name in ("value", "numerator", "denominator"):
            setattr(record, name, getattr(shadow, name))  # the shadow holds the computed percentage
        for name, value in extra.items():
            setattr(record, name, value)
        _apply_parts(record, part_cls, wanted)
    session.add(record)
    session.flush()
    return record


def _refuse_closed(period: ReportingPeriod, what: str) -> None:
    if period.status in CLOSED_PERIOD_STATUSES:
        raise DomainValidationError(
            {"period": [f"{period.label} is {period.status.value}: its {what} can no longer be set or changed"]}
        )


def _refuse_foreign_period(indicator: Indicator, period: ReportingPeriod) -> None:
    if period.grant_id != indicator.grant_id:
        grant = indicator.grant
        other = period.grant.reference if period.grant else "another grant"
        raise DomainValidationError(
            {"period": [f"'{period.label}' is a period of {other}, not of {grant.reference}: choose one of {grant.reference}'s periods"]}
        )


# ---------------------------------------------------------------- dimensions


def create_dimension(
    session: Session, *, code: str, name: str, exhaustive: bool = True, description: str | None = None,
    categories: Iterable[tuple[str, str]] = (),
) -> Dimension:
    dimension = Dimension(code=code.strip(), name=name.strip(), exhaustive=exhaustive, description=description)
    validate_record(session, dimension)
    session.add(dimension)
    session.flush()
    for order, (category_code, category_name) in enumerate(categories):
        add_category(session, dimension, category_code, category_name, sort_order=order)
    return dimension


def add_category(session: Session, dimension: Dimension, code: str, name: str, sort_order: int | None = None) -> Category:
    if sort_order is None:
        sort_order = len(dimension.categories)
    category = Category(dimension=dimension, code=code.strip(), name=name.strip(), sort_order=sort_order)
    validate_record(session, category)
    session.add(category)
    session.flush()
    return category


def ensure_standard_dimensions(session: Session) -> dict[str, Dimension]:
    """Create country, sex/gender, age band and key population where missing; return all by code."""
    found = {d.code: d for d in session.scalars(select(Dimension))}
    for spec in STANDARD_DIMENSIONS:
        if spec["code"] not in found:
            found[spec["code"]] = create_dimension(
                session, code=spec["code"], name=spec["name"], exhaustive=spec["exhaustive"],
                categories=spec["categories"],
            )
    return found


def _dimensions(session: Session, dimensions: Iterable[Dimension | str | int]) -> list[Dimension]:
    chosen = []
    for item in dimensions:
        if isinstance(item, Dimension):
            chosen.append(item)
            continue
        dimension = (
            session.get(Dimension, item) if isinstance(item, int)
            else session.scalar(select(Dimension).where(Dimension.code == item))
        )
        if dimension is None:
            known = ", ".join(session.scalars(select(Dimension.code).order_by(Dimension.code))) or "none yet"
            raise DomainValidationError({"dimensions": [f"no dimension '{item}'; known: {known}"]})
        chosen.append(dimension)
    return chosen


# ---------------------------------------------------------------- indicators and the crosswalk

INDICATOR_FIELDS = {
    "code", "name", "definition", "unit", "direction", "cumulative_mode", "baseline_value", "baseline_date",
    "lop_target", "means_of_verification", "responsible", "sort_order", "dimensions",
}


def create_indicator(session: Session, grant: Grant, **values: Any) -> Indicator:
    """Define an indicator of ``grant``; ``dimensions`` may be Dimension objects or codes ("country")."""
    indicator = Indicator(grant=grant, grant_id=grant.id)
    values.setdefault("sort_order", len(session.scalars(select(Indicator.id).where(Indicator.grant_id == grant.id)).all()))
    _apply_indicator_values(session, indicator, values)
    validate_record(session, indicator)
    session.add(indicator)
    session.flush()
    return indicator


def update_indicator(session: Session, indicator: Indicator, **values: Any) -> Indicator:
    _apply_indicator_values(session, indicator, values)
    validate_record(session, indicator)
    session.flush()
    return indicator


def _apply_indicator_values(session: Session, indicator: Indicator, values: dict[str, Any]) -> None:
    unknown = set(values) - INDICATOR_FIELDS
    if unknown:
        raise DomainValidationError({name: ["is not a field of an indicator"] for name in sorted(unknown)})
    for name in ("baseline_value", "lop_target"):
        if name in values:
            values[name] = _number(values[name], name)
    for name, enum_cls in (("unit", IndicatorUnit), ("direction", Direction), ("cumulative_mode", CumulativeMode)):
        if name in values:
            values[name] = _enum(enum_cls, values[name], name)
    if "dimensions" in values:
        values["dimensions"] = _dimensions(session, values["dimensions"])
    for key, value in values.items():
        setattr(indicator, key, value)


def set_indicator_code(session: Session, indicator: Indicator, funder: Funder, code: str, name: str | None = None) -> IndicatorCode:
    """Record (or change) what ``funder`` calls this indicator in its own reports."""
    entry = session.scalar(
        select(IndicatorCode).where(IndicatorCode.indicator_id == indicator.id, IndicatorCode.funder_id == funder.id)
    )
    if entry is None:
        entry = IndicatorCode(indicator=indicator, funder=funder, grant_id=indicator.grant_id)
        session.add(entry)
    entry.code = (code or "").strip()
    entry.name = name
    validate_record(session, entry)
    session.flush()
    return entry


def indicator_code_for(session: Session, indicator_id: int, funder_id: int) -> str:
    """The code ``funder`` uses for the indicator (the crosswalk), else the indicator's own code."""
    code = session.scalar(
        select(IndicatorCode.code).where(IndicatorCode.indicator_id == indicator_id, IndicatorCode.funder_id == funder_id)
    )
    if code is not None:
        return code
    own = session.scalar(select(Indicator.code).where(Indicator.id == indicator_id))
    if own is None:
        raise DomainValidationError({"indicator": [f"no indicator with id {indicator_id}"]})
    return own


def indicator_by_funder_code(session: Session, grant_id: int, funder_id: int, code: str) -> Indicator | None:
    """The reverse look-up, for imports: which of the grant's indicators does the funder call ``code``."""
    found = session.scalar(
        select(Indicator)
        .join(IndicatorCode, IndicatorCode.indicator_id == Indicator.id)
        .where(Indicator.grant_id == grant_id, IndicatorCode.funder_id == funder_id, IndicatorCode.code == code)
    )
    return found or session.scalar(select(Indicator).where(Indicator.grant_id == grant_id, Indicator.code == code))


# ---------------------------------------------------------------- targets and results


def set_target(
    session: Session, indicator: Indicator, period: ReportingPeriod, *, value: Any = None, numerator: Any = None,
    denominator: Any = None, disaggregation: Mapping[Any, Any] | None = None, comment: str | None = None,
) -> Target:
    """Set the indicator's target for an open period (creating or replacing it), with its parts."""
    _refuse_foreign_period(indicator, period)
    _refuse_closed(period, "targets")
    figures = {"value": value, "numerator": numerator, "denominator": denominator}
    return _save_figure(session, Target, TargetValue, indicator, period, figures, disaggregation, {"comment": comment})


def record_result(
    session: Session, indicator: Indicator, period: ReportingPeriod, *, user: Any, value: Any = None,
    numerator: Any = None, denominator: Any = None, disaggregation: Mapping[Any, Any] | None = None,
    comment: str | None = None, status: ResultStatus | str = ResultStatus.draft,
    entered_at: dt.datetime | None = None,
) -> Result:
    """Enter (or correct) the indicator's result for a period, as draft or submitted, with its parts.

    Verification is not done here: see ``verify_result``. A verified result must
    be returned to submitted (``reopen_result``) before its figures change.
    """
    status = _enum(ResultStatus, status, "status")
    if status == ResultStatus.verified:
        raise DomainValidationError({"status": ["enter the result first; a colleague then verifies it"]})
    _refuse_foreign_period(indicator, period)
    _refuse_closed(period, "results")
    current = session.scalar(select(Result.status).where(Result.indicator_id == indicator.id, Result.period_id == period.id))
    if current == ResultStatus.verified:
        raise DomainValidationError(
            {"status": [f"the {period.label} result of {indicator.code} is verified: return it to submitted first"]}
        )
    figures = {"value": value, "numerator": numerator, "denominator": denominator}
    extra = {
        "comment": comment, "status": status, "entered_by_id": user.id,
        "entered_at": entered_at or dt.datetime.now(dt.timezone.utc),
    }
    return _save_figure(session, Result, ResultValue, indicator, period, figures, disaggregation, extra)


def submit_result(session: Session, result: Result) -> Result:
    if result.status != ResultStatus.draft:
        raise DomainValidationError({"status": [f"the result is already {result.status.value}"]})
    result.status = ResultStatus.submitted
    session.flush()
    return result


def verify_result(session: Session, result: Result, user: Any, at: dt.datetime | None = None) -> Result:
    """A colleague confirms a submitted result against its means of verification.

    Refused for the person who entered it (four eyes), and for drafts.
    """
    if result.status == ResultStatus.verified:
        raise DomainValidationError({"status": ["the result is already verified"]})
    if result.status != ResultStatus.submitted:
        raise DomainValidationError({"status": ["only a submitted result can be verified; submit the draft first"]})
    if user is None or user.id == result.entered_by_id:
        raise DomainValidationError(
            {"verified_by": ["the person who entered a result cannot verify it; ask a colleague"]}
        )
    result.status = ResultStatus.verified
    result.verified_by_id = user.id
    result.verified_at = at or dt.datetime.now(dt.timezone.utc)
    session.flush()
    return result


def reopen_result(session: Session, result: Result) -> Result:
    """Return a verified result to submitted so it can be corrected (it then needs verifying again)."""
    period = result.period
    if period.status in CLOSED_PERIOD_STATUSES:
        raise DomainValidationError({"period": [f"{period.label} is {period.status.value}: its results are closed"]})
    result.status = ResultStatus.submitted
    session.flush()
    return result


# ---------------------------------------------------------------- progress


def achievement(target: Decimal | None, actual: Decimal | None, direction: Direction | str = Direction.increase) -> Decimal | None:
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
    return (Decimal(top) * HUNDRED / Decimal(bottom)).quantize(PCT, rounding=ROUND_HALF_UP)


def rating(pct: Decimal | None) -> str | None:
    """The Global Fund scale: A1 > 100%, A2 90–100%, B1 60–89%, B2 30–59%, C < 30%."""
    if pct is None:
        return None
    if pct > 100:
        return "A1"
    if pct >= 90:
        return "A2"
    if pct >= 60:
        return "B1"
    if pct >= 30:
        return "B2"
    return "C"


def band(pct: Decimal | None) -> str | None:
    """"ahead" above +15%, "on_track" within ±15% of target, "behind" below -15% (direction already applied)."""
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


def _cumulative(indicator: Indicator, figures: list[_Figure], is_target: bool) -> Decimal | None:
    """Combine the figures of periods up to now according to the indicator's cumulative mode."""
    figures = [f for f in figures if f.value is not None]
    if not figures:
        return None
    mode = indicator.cumulative_mode
    if mode == CumulativeMode.latest:
        return figures[-1].value
    if mode == CumulativeMode.maximum:
        return max(f.value for f in figures)  # type: ignore[type-var]
    if indicator.is_percentage:
        # A rate is not added up: the periods' numerators over their denominators.
        if all(f.numerator is not None and f.denominator for f in figures):
            num = sum((f.numerator for f in figures), Decimal(0))  # type: ignore[misc]
            den = sum((f.denominator for f in figures), Decimal(0))  # type: ignore[misc]
            return (num * HUNDRED / den).quantize(Decimal("0.0001"))
        return figures[-1].value if is_target else None
    return sum((f.value for f in figures), Decimal(0))  # type: ignore[misc]


def resolve_disaggregation(session: Session, disaggregation: Any) -> Category | None:
    if disaggregation in (None, ""):
        return None
    return find_category(session, disaggregation)


def indicator_progress(
    session: Session, grant_id: int, period_id: int | None = None, disaggregation: Any = None, *,
    include_drafts: bool = True, indicator_ids: Iterable[int] | None = None,
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
        raise DomainValidationError({"grant": [f"no grant with id {grant_id}"]})
    periods = list(
        session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id).order_by(ReportingPeriod.start_date))
    )
    if period_id is not None and period_id not in {p.id for p in periods}:
        raise DomainValidationError({"period": [f"period {period_id} is not a period of {grant.reference}"]})
    category = resolve_disaggregation(session, disaggregation)
    indicator_query = select(Indicator).where(Indicator.grant_id == grant_id).order_by(Indicator.sort_order, Indicator.code)
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
            select(Target.indicator_id, Target.period_id, Target.value, Target.numerator, Target.denominator)
            .where(Target.grant_id == grant_id)
        ):
            series[indicator_id].targets[pid] = _Figure(value, num, den)
        for indicator_id, pid, value, num, den, status in session.execute(
            select(Result.indicator_id, Result.period_id, Result.value, Result.numerator, Result.denominator, Result.status)
            .where(Result.grant_id == grant_id, Result.status.in_(result_statuses))
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
            select(Target.indicator_id, Target.period_id, TargetValue.value, TargetValue.numerator, TargetValue.denominator)
            .join(TargetValue, TargetValue.target_id == Target.id)
            .where(Target.grant_id == grant_id, TargetValue.category_id == category.id)
        )
        for indicator_id, pid, value, num, den in target_rows:
            series[indicator_id].targets[pid] = _Figure(value, num, den)
        result_rows = session.execute(
            select(Result.indicator_id, Result.period_id, ResultValue.value, ResultValue.numerator,
                   ResultValue.denominator, Result.status)
            .join(ResultValue, ResultValue.result_id == Result.id)
            .where(Result.grant_id == grant_id, ResultValue.category_id == category.id, Result.status.in_(result_statuses))
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
    for indicator in indicators:
        data = series[indicator.id]
        is_applicable = indicator.id in applicable
        seen_targets: list[_Figure] = []
        seen_actuals: list[_Figure] = []
        for period in periods:
            target = data.targets.get(period.id)
            actual = data.actuals.get(period.id)
            if target is not None:
                seen_targets.append(target)
            if actual is not None:
                seen_actuals.append(actual)
            if period_id is not None and period.id != period_id:
                continue
            pct = achievement(target.value if target else None, actual.value if actual else None, indicator.direction)
            cum_target = _cumulative(indicator, seen_targets, is_target=True)
            cum_actual = _cumulative(indicator, seen_actuals, is_target=False)
            cum_pct = achievement(cum_target, cum_actual, indicator.direction)
            # The life-of-grant target is for the total: one category's share is not compared with it.
            lop_pct = (
                achievement(indicator.lop_target, cum_actual, indicator.direction)
                if seen_actuals and category is None else None
            )
            rows.append(
                ProgressRow(
                    grant_reference=grant.reference,
                    indicator_id=indicator.id,
                    indicator_code=indicator.code,
                    indicator_name=indicator.name,
                    unit=indicator.unit.value,
                    direction=indicator.direction.value,
                    cumulative_mode=indicator.cumulative_mode.value,
                    funder_code=own_codes.get(indicator.id, indicator.code),
                    donor_codes=dict(codes[indicator.id]),
                    period_id=period.id,
                    period_label=period.label,
                    period_start=period.start_date,
                    period_end=period.end_date,
                    period_status=period.status.value,
                    disaggregation=label,
                    baseline_value=indicator.baseline_value,
                    lop_target=indicator.lop_target,
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
                    applicable=is_applicable,
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
        raise DomainValidationError({"indicator": [f"no indicator with id {indicator_id}"]})
    rows = indicator_progress(session, grant_id, period_id, indicator_ids=[indicator_id])
    if period_id is not None:
        return rows[0].achievement_pct if rows else None
    reported = [row for row in rows if row.actual is not None]
    if not reported:
        return None
    latest = reported[-1]
    return latest.lop_achievement_pct if latest.lop_target is not None else latest.cumulative_achievement_pct


def latest_reported_period(rows: list[ProgressRow]) -> tuple[int, str] | None:
    """(period id, label) of the latest period with any actual, from ``indicator_progress`` rows."""
    reported = sorted({(r.period_start, r.period_id, r.period_label) for r in rows if r.actual is not None})
    return (reported[-1][1], reported[-1][2]) if reported else None


def rating_summary(rows: list[ProgressRow]) -> dict[str, int]:
    """How many indicators got each rating in the latest reported period (A1..C, and "not rated")."""
    latest = latest_reported_period(rows)
    counts = {name: 0 for name in ("A1", "A2", "B1", "B2", "C", "not rated")}
    if latest is None:
        return counts
    for row in rows:
        if row.period_id == latest[0]:
            counts[row.rating or "not rated"] += 1
    return counts
