"""Indicators, their donor codes, disaggregation dimensions, targets and results: typed SQLAlchemy 2 models.

Disaggregation is one dimension at a time: a target or a result has a total
and, optionally, one value per category ("LC 20, GD 12" and "female 25,
male 5, trans 2"). Where a dimension is exhaustive, its parts must add up to
the total. Cross-tabulations (LC x female) are not modelled.

Targets, results and donor codes also store ``grant_id`` (copied from the
indicator and checked) so that the row-level filter is one indexed column.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from flask_appbuilder import Model
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import ErrorCollector
from core.money import is_country_code, percent
from core.records import Audited, check_unique, enum_column
from grants.models import Funder, Grant, PeriodStatus, ReportingPeriod

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy.orm import InstanceState

# Indicator values: counts, percentages (0-100, 4 decimals), amounts. Decimal, never float.
VALUE = Numeric(18, 4)


class IndicatorUnit(str, enum.Enum):
    number = "number"
    percentage = "percentage"  # entered as numerator / denominator
    currency = "currency"
    yes_no = "yes_no"  # 1 = yes, 0 = no


class Direction(str, enum.Enum):
    increase = "increase"  # more is better
    decrease = "decrease"  # less is better (e.g. incidents of violence)


class CumulativeMode(str, enum.Enum):
    sum = "sum"  # people trained: add the periods up
    latest = "latest"  # coverage, policy in place: the most recent period counts
    maximum = "maximum"  # groups formed so far: the highest level reached


class ResultStatus(str, enum.Enum):
    draft = "draft"
    submitted = "submitted"
    verified = "verified"


CLOSED_PERIOD_STATUSES = frozenset({PeriodStatus.submitted, PeriodStatus.accepted})


def fmt(value: Decimal | None, places: int | None = None) -> str:
    """A figure as a person writes it: 12, 12.5, 63.64 — no trailing zeros, no exponent.

    ``places`` rounds first (half up), e.g. 1 for percentages on screen.
    """
    if value is None:
        return "—"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


indicator_dimensions = Table(
    "indicator_dimensions",
    Model.metadata,
    Column("indicator_id", ForeignKey("indicators.id", ondelete="CASCADE"), primary_key=True),
    Column("dimension_id", ForeignKey("dimensions.id", ondelete="RESTRICT"), primary_key=True, index=True),
)


class Dimension(Audited, Model):
    """A reusable way of splitting a figure: country, sex/gender, age band, key population."""

    __tablename__ = "dimensions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # Exhaustive: every person/unit falls in exactly one category, so the parts add up to the total.
    exhaustive: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)

    categories: Mapped[list[Category]] = relationship(
        back_populates="dimension", order_by="Category.sort_order, Category.code", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return self.name or self.code or ""

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.code or "").strip():
            errors.add("code", "is required")
        if not (self.name or "").strip():
            errors.add("name", "is required")
        check_unique(session, self, errors, "code")
        errors.raise_if_any()


class Category(Audited, Model):
    __tablename__ = "dimension_categories"
    __table_args__ = (UniqueConstraint("dimension_id", "code", name="uq_dimension_categories_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dimension_id: Mapped[int] = mapped_column(ForeignKey("dimensions.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    dimension: Mapped[Dimension] = relationship(back_populates="categories")

    def __repr__(self) -> str:
        dimension = self.dimension.code if self.dimension else "?"
        return f"{dimension}={self.code}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        dimension = self.dimension or (session.get(Dimension, self.dimension_id) if self.dimension_id else None)
        if dimension is None:
            errors.add("dimension", "is required")
        if not (self.code or "").strip():
            errors.add("code", "is required")
        if not (self.name or "").strip():
            errors.add("name", "is required")
        if dimension is not None and dimension.code == "country" and self.code and not is_country_code(self.code):
            errors.add("code", f"'{self.code}' is not an ISO 3166 country code (e.g. LC, GD)")
        if dimension is not None and self.code:
            clash = session.scalar(
                select(Category.id).where(
                    Category.dimension_id == dimension.id, Category.code == self.code, Category.id != (self.id or 0)
                )
            )
            if clash:
                errors.add("code", f"'{self.code}' is already a category of {dimension.name}")
        errors.raise_if_any()


class Indicator(Audited, Model):
    __tablename__ = "indicators"
    __table_args__ = (
        UniqueConstraint("grant_id", "code", name="uq_indicators_code"),
        CheckConstraint("baseline_value IS NULL OR baseline_value >= 0", name="ck_indicators_baseline"),
        CheckConstraint("lop_target IS NULL OR lop_target >= 0", name="ck_indicators_lop_target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    definition: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[IndicatorUnit] = mapped_column(enum_column(IndicatorUnit), default=IndicatorUnit.number)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction), default=Direction.increase)
    cumulative_mode: Mapped[CumulativeMode] = mapped_column(enum_column(CumulativeMode), default=CumulativeMode.sum)
    baseline_value: Mapped[Decimal | None] = mapped_column(VALUE)
    baseline_date: Mapped[dt.date | None] = mapped_column(Date)
    lop_target: Mapped[Decimal | None] = mapped_column(VALUE)  # life-of-grant target
    means_of_verification: Mapped[str | None] = mapped_column(Text)
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)

    grant: Mapped[Grant] = relationship()
    responsible: Mapped[User | None] = relationship("User", foreign_keys=[responsible_id])
    dimensions: Mapped[list[Dimension]] = relationship(secondary=indicator_dimensions, order_by="Dimension.code")
    codes: Mapped[list[IndicatorCode]] = relationship(back_populates="indicator", cascade="all, delete-orphan")
    targets: Mapped[list[Target]] = relationship(back_populates="indicator", cascade="all, delete-orphan")
    results: Mapped[list[Result]] = relationship(back_populates="indicator", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"{self.code} {self.name}" if self.code else (self.name or "")

    @property
    def is_percentage(self) -> bool:
        return self.unit == IndicatorUnit.percentage

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", "is required")
        if not (self.code or "").strip():
            errors.add("code", "is required")
        if not (self.name or "").strip():
            errors.add("name", "is required")
        for field in ("baseline_value", "lop_target"):
            value = getattr(self, field)
            if value is not None and value < 0:
                errors.add(field, "must not be negative")
        if self.unit == IndicatorUnit.yes_no:
            for field in ("baseline_value", "lop_target"):
                value = getattr(self, field)
                if value is not None and value not in (0, 1):
                    errors.add(field, "a yes/no indicator takes 1 (yes) or 0 (no)")
        if grant is not None and self.baseline_date and self.baseline_date > grant.end_date:
            errors.add("baseline_date", f"is after the end of the grant ({grant.end_date})")
        if grant is not None and self.code:
            clash = session.scalar(
                select(Indicator.id).where(
                    Indicator.grant_id == grant.id, Indicator.code == self.code, Indicator.id != (self.id or 0)
                )
            )
            if clash:
                errors.add("code", f"'{self.code}' is already an indicator of {grant.reference}")
        if self.id is not None and inspect(self).attrs.unit.history.has_changes():
            has_figures = session.scalar(
                select(Result.id).where(Result.indicator_id == self.id).limit(1)
            ) or session.scalar(select(Target.id).where(Target.indicator_id == self.id).limit(1))
            if has_figures:
                errors.add("unit", f"{self.code} already has targets or results; the unit can no longer change")
        if self.id is not None and inspect(self).attrs.grant_id.history.has_changes():
            errors.add("grant", "an indicator cannot move to another grant")
        errors.raise_if_any()


class IndicatorCode(Audited, Model):
    """The donor crosswalk: the same indicator under another funder's code (KP-1c = PEPFAR KP_PREV)."""

    __tablename__ = "indicator_codes"
    __table_args__ = (UniqueConstraint("indicator_id", "funder_id", name="uq_indicator_codes_funder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funders.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    name: Mapped[str | None] = mapped_column(String(300))

    indicator: Mapped[Indicator] = relationship(back_populates="codes")
    funder: Mapped[Funder] = relationship()
    grant: Mapped[Grant] = relationship(viewonly=True)

    def __repr__(self) -> str:
        return f"{self.funder.code if self.funder else '?'}: {self.code}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        indicator = _indicator_of(session, self, errors)
        funder = self.funder or (session.get(Funder, self.funder_id) if self.funder_id else None)
        if funder is None:
            errors.add("funder", "is required")
        if not (self.code or "").strip():
            errors.add("code", "is required")
        if indicator is not None and funder is not None:
            clash = session.scalar(
                select(IndicatorCode.id).where(
                    IndicatorCode.indicator_id == indicator.id,
                    IndicatorCode.funder_id == funder.id,
                    IndicatorCode.id != (self.id or 0),
                )
            )
            if clash:
                errors.add("funder", f"{indicator.code} already has a code for {funder.name}")
        errors.raise_if_any()


def fill_grant_id(record: Any) -> None:
    """Copy the grant from the record's indicator, so row-level checks can run before validation."""
    if getattr(record, "grant_id", None) is None:
        indicator = getattr(record, "indicator", None)
        if indicator is not None:
            record.grant_id = indicator.grant_id or (indicator.grant.id if indicator.grant else None)


def _indicator_of(session: Session, record: Any, errors: ErrorCollector) -> Indicator | None:
    """The record's indicator, with ``grant_id`` kept equal to the indicator's grant."""
    indicator = record.indicator or (session.get(Indicator, record.indicator_id) if record.indicator_id else None)
    if indicator is None:
        errors.add("indicator", "is required")
        return None
    grant_id = indicator.grant_id or (indicator.grant.id if indicator.grant else None)
    if record.grant_id is None:
        record.grant_id = grant_id
    elif record.grant_id != grant_id:
        errors.add("indicator", f"{indicator.code} belongs to another grant than this record")
    return indicator


def _period_of(
    session: Session, record: Any, indicator: Indicator | None, errors: ErrorCollector
) -> ReportingPeriod | None:
    period = record.period or (session.get(ReportingPeriod, record.period_id) if record.period_id else None)
    if period is None:
        errors.add("period", "is required")
        return None
    if indicator is not None:
        grant = indicator.grant or session.get(Grant, indicator.grant_id)
        assert grant is not None  # grant_id is a non-null foreign key
        if period.grant_id != grant.id:
            other = period.grant.reference if period.grant else "another grant"
            errors.add(
                "period",
                f"'{period.label}' is a period of {other}, not of {grant.reference}: "
                f"choose one of {grant.reference}'s periods",
            )
    return period


def _changed(record: Any, fields: Iterable[str]) -> bool:
    state = inspect(record)
    if state.transient or state.pending:
        return True
    return any(state.attrs[name].history.has_changes() for name in fields)


FIGURE_FIELDS = ("value", "numerator", "denominator", "period_id", "indicator_id", "period", "indicator")


class _FigureRules:
    """What a target and a result share: a total (value or numerator/denominator) and its parts."""

    value: Any
    numerator: Any
    denominator: Any
    values: Any
    kind: str  # "target" or "result"

    def _check_total(self, indicator: Indicator, errors: ErrorCollector) -> None:
        check_figure(indicator, self, errors, label="", require_ratio=self.kind == "result")

    def _check_parts(self, session: Session, indicator: Indicator, errors: ErrorCollector) -> None:
        check_parts(session, indicator, self, list(self.values), errors, require_ratio=self.kind == "result")


def check_figure(indicator: Indicator, figure: Any, errors: ErrorCollector, *, label: str, require_ratio: bool) -> None:
    """Refuse negative counts, a zero denominator, a non-0/1 yes/no; compute a percentage from N/D.

    ``label`` prefixes the field names for a part ("LC: numerator ...").
    """
    prefix = f"{label} " if label else ""
    field = (lambda name: f"{prefix}{name}".strip()) if label else (lambda name: name)
    for name in ("value", "numerator", "denominator"):
        amount = getattr(figure, name)
        if amount is not None and amount < 0:
            errors.add(field(name), f"must not be negative (got {fmt(amount)})")
    if indicator.is_percentage:
        num, den = figure.numerator, figure.denominator
        if den is not None and den == 0:
            errors.add(field("denominator"), "must be greater than 0 for a percentage")
        if (num is None) != (den is None):
            errors.add(field("numerator" if num is None else "denominator"), "give both numerator and denominator")
        elif num is None and (require_ratio or figure.value is None):
            errors.add(field("numerator"), f"{indicator.code} is a percentage: give numerator and denominator")
        if num is not None and den is not None and den > 0 and num >= 0:
            figure.value = percent(num, den, places=4, rounding=ROUND_HALF_EVEN)
    else:
        if figure.numerator is not None or figure.denominator is not None:
            errors.add(
                field("numerator"), f"{indicator.code} is not a percentage: give a value, not a numerator/denominator"
            )
        if figure.value is None:
            errors.add(field("value"), "is required")
        elif indicator.unit == IndicatorUnit.yes_no and figure.value not in (0, 1):
            errors.add(field("value"), "a yes/no indicator takes 1 (yes) or 0 (no)")


def check_parts(
    session: Session, indicator: Indicator, total: Any, parts: list[Any], errors: ErrorCollector, *, require_ratio: bool
) -> None:
    """Each part names a category of a dimension the indicator uses, once; exhaustive ones add up."""
    if not parts:
        return
    if indicator.unit == IndicatorUnit.yes_no:
        errors.add("disaggregation", f"{indicator.code} is a yes/no indicator and cannot be disaggregated")
        return
    allowed = {d.id for d in indicator.dimensions}
    by_dimension: dict[int, list[tuple[Category, Any]]] = defaultdict(list)
    seen: set[int] = set()
    for part in parts:
        category = part.category or (session.get(Category, part.category_id) if part.category_id else None)
        if category is None:
            errors.add("disaggregation", "every disaggregated value needs a category")
            continue
        dimension = category.dimension or session.get(Dimension, category.dimension_id)
        assert dimension is not None  # dimension_id is a non-null foreign key
        if dimension.id not in allowed:
            used = ", ".join(d.name for d in indicator.dimensions) or "none"
            errors.add(
                "disaggregation",
                f"{indicator.code} is not disaggregated by {dimension.name} ({category.code}); its dimensions: {used}",
            )
            continue
        if category.id in seen:
            errors.add("disaggregation", f"{dimension.name} {category.code} is given twice")
            continue
        seen.add(category.id)
        check_figure(indicator, part, errors, label=f"{dimension.name} {category.code}:", require_ratio=require_ratio)
        by_dimension[dimension.id].append((category, part))
    if errors.errors:
        return
    for dimension_id, entries in by_dimension.items():
        dimension = entries[0][0].dimension or session.get(Dimension, dimension_id)
        assert dimension is not None  # dimension_id is a non-null foreign key
        if not dimension.exhaustive:
            continue
        fields = ("numerator", "denominator") if indicator.is_percentage else ("value",)
        for name in fields:
            whole = getattr(total, name)
            if whole is None:
                continue
            amounts = [(c.code, getattr(p, name) or Decimal(0)) for c, p in entries]
            added = sum((a for _, a in amounts), Decimal(0))
            if added != whole:
                what = "" if name == "value" else f" {name}s"
                listing = " + ".join(f"{code} {fmt(a)}" for code, a in amounts)
                errors.add(
                    "disaggregation",
                    f"{dimension.name}: the parts' {what.strip() or 'values'} add up to {fmt(added)} "
                    f"({listing}) but the total is {fmt(whole)}; {dimension.name} is exhaustive, so they must be equal",
                )


class Target(_FigureRules, Audited, Model):
    kind = "target"
    __tablename__ = "indicator_targets"
    __table_args__ = (
        UniqueConstraint("indicator_id", "period_id", name="uq_indicator_targets_period"),
        CheckConstraint("value IS NULL OR value >= 0", name="ck_indicator_targets_value"),
        CheckConstraint("denominator IS NULL OR denominator > 0", name="ck_indicator_targets_denominator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"), index=True)
    value: Mapped[Decimal | None] = mapped_column(VALUE)
    numerator: Mapped[Decimal | None] = mapped_column(VALUE)
    denominator: Mapped[Decimal | None] = mapped_column(VALUE)
    comment: Mapped[str | None] = mapped_column(Text)

    indicator: Mapped[Indicator] = relationship(back_populates="targets")
    period: Mapped[ReportingPeriod] = relationship()
    grant: Mapped[Grant] = relationship(viewonly=True)
    values: Mapped[list[TargetValue]] = relationship(back_populates="target", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        code = self.indicator.code if self.indicator else "?"
        label = self.period.label if self.period else "?"
        return f"target {code} {label}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        indicator = _indicator_of(session, self, errors)
        period = _period_of(session, self, indicator, errors)
        if period is not None and period.status in CLOSED_PERIOD_STATUSES and _changed(self, FIGURE_FIELDS):
            errors.add(
                "period",
                f"{period.label} is {period.status.value}: its targets are closed and can no longer be set or changed",
            )
        if indicator is not None:
            self._check_total(indicator, errors)
            if period is not None:
                _check_one_per_period(session, Target, self, indicator, period, errors, "a target")
            self._check_parts(session, indicator, errors)
        errors.raise_if_any()


class Result(_FigureRules, Audited, Model):
    kind = "result"
    __tablename__ = "indicator_results"
    __table_args__ = (
        UniqueConstraint("indicator_id", "period_id", name="uq_indicator_results_period"),
        CheckConstraint("value IS NULL OR value >= 0", name="ck_indicator_results_value"),
        CheckConstraint("denominator IS NULL OR denominator > 0", name="ck_indicator_results_denominator"),
        CheckConstraint(
            "verified_by_id IS NULL OR entered_by_id IS NULL OR verified_by_id <> entered_by_id",
            name="ck_indicator_results_verifier",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"), index=True)
    value: Mapped[Decimal | None] = mapped_column(VALUE)
    numerator: Mapped[Decimal | None] = mapped_column(VALUE)
    denominator: Mapped[Decimal | None] = mapped_column(VALUE)
    comment: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ResultStatus] = mapped_column(enum_column(ResultStatus), default=ResultStatus.draft, index=True)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), index=True)
    entered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    indicator: Mapped[Indicator] = relationship(back_populates="results")
    period: Mapped[ReportingPeriod] = relationship()
    grant: Mapped[Grant] = relationship(viewonly=True)
    entered_by: Mapped[User | None] = relationship("User", foreign_keys=[entered_by_id])
    verified_by: Mapped[User | None] = relationship("User", foreign_keys=[verified_by_id])
    values: Mapped[list[ResultValue]] = relationship(back_populates="result", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        code = self.indicator.code if self.indicator else "?"
        label = self.period.label if self.period else "?"
        return f"result {code} {label}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        indicator = _indicator_of(session, self, errors)
        period = _period_of(session, self, indicator, errors)
        figures_changed = _changed(self, FIGURE_FIELDS)
        if period is not None and period.status in CLOSED_PERIOD_STATUSES and figures_changed:
            errors.add(
                "period",
                f"{period.label} is {period.status.value}: its results can no longer be entered or changed",
            )
        state: InstanceState[Result] = inspect(self, raiseerr=True)
        was_verified = not (state.transient or state.pending) and (
            state.attrs.status.history.deleted == [ResultStatus.verified]
            or (self.status == ResultStatus.verified and not state.attrs.status.history.has_changes())
        )
        if was_verified and figures_changed:
            errors.add("status", "this result is verified: return it to submitted before changing its figures")
        if self.entered_by_id is None and self.entered_by is None:
            errors.add("entered_by", "is required: who entered this result")
        if self.status == ResultStatus.verified:
            verifier = self.verified_by_id or (self.verified_by.id if self.verified_by else None)
            enterer = self.entered_by_id or (self.entered_by.id if self.entered_by else None)
            if verifier is None or self.verified_at is None:
                errors.add("status", "use the Verify action: a result is verified by a named person, with the date")
            elif verifier == enterer:
                errors.add("verified_by", "the person who entered a result cannot verify it; ask a colleague")
        elif self.verified_by_id is not None or self.verified_by is not None or self.verified_at is not None:
            # Returned to draft or submitted: it is no longer verified by anyone.
            self.verified_by = None
            self.verified_by_id = None
            self.verified_at = None
        if indicator is not None:
            self._check_total(indicator, errors)
            if period is not None:
                _check_one_per_period(session, Result, self, indicator, period, errors, "a result")
            self._check_parts(session, indicator, errors)
        errors.raise_if_any()


def _check_one_per_period(
    session: Session,
    model: type[Target] | type[Result],
    record: Any,
    indicator: Indicator,
    period: ReportingPeriod,
    errors: ErrorCollector,
    what: str,
) -> None:
    if indicator.id is None or period.id is None:
        return
    clash = session.scalar(
        select(model.id).where(
            model.indicator_id == indicator.id, model.period_id == period.id, model.id != (record.id or 0)
        )
    )
    if clash:
        errors.add("period", f"{indicator.code} already has {what} for {period.label}; change that one instead")


def check_deletable(record: Target | Result) -> None:
    """A target or result of a submitted/accepted period, or a verified result, is not deleted."""
    errors = ErrorCollector()
    period = record.period
    if period is not None and period.status in CLOSED_PERIOD_STATUSES:
        errors.add("period", f"{period.label} is {period.status.value}: its figures can no longer be deleted")
    if getattr(record, "status", None) == ResultStatus.verified:
        errors.add("status", "this result is verified: return it to submitted before deleting it")
    errors.raise_if_any()


class _Part:
    """One category's share of a target or a result; changing it re-checks the whole figure."""

    def validate(self, session: Session) -> None:
        owner = self.owner  # type: ignore[attr-defined]
        if owner is None:
            if inspect(self, raiseerr=True).persistent:
                return  # removed from its owner: deleted as an orphan in this flush
            raise_owner_missing()
        owner.validate(session)
        # The owner may be unchanged itself; a new or changed part still may not touch a closed period.
        period = owner.period or session.get(ReportingPeriod, owner.period_id)
        if (
            period is not None
            and period.status in CLOSED_PERIOD_STATUSES
            and _changed(self, ("value", "numerator", "denominator", "category_id"))
        ):
            errors = ErrorCollector()
            errors.add("period", f"{period.label} is {period.status.value}: its figures can no longer be changed")
            errors.raise_if_any()
        if getattr(owner, "status", None) == ResultStatus.verified and _changed(
            self, ("value", "numerator", "denominator", "category_id")
        ):
            errors = ErrorCollector()
            errors.add("status", "this result is verified: return it to submitted before changing its figures")
            errors.raise_if_any()


def raise_owner_missing() -> None:
    errors = ErrorCollector()
    errors.add("_", "a disaggregated value must belong to a target or a result")
    errors.raise_if_any()


class TargetValue(_Part, Audited, Model):
    __tablename__ = "indicator_target_values"
    __table_args__ = (
        UniqueConstraint("target_id", "category_id", name="uq_indicator_target_values_category"),
        CheckConstraint("value IS NULL OR value >= 0", name="ck_indicator_target_values_value"),
        CheckConstraint("denominator IS NULL OR denominator > 0", name="ck_indicator_target_values_denominator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("indicator_targets.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("dimension_categories.id", ondelete="RESTRICT"), index=True)
    value: Mapped[Decimal | None] = mapped_column(VALUE)
    numerator: Mapped[Decimal | None] = mapped_column(VALUE)
    denominator: Mapped[Decimal | None] = mapped_column(VALUE)

    target: Mapped[Target] = relationship(back_populates="values")
    category: Mapped[Category] = relationship()

    @property
    def owner(self) -> Target | None:
        return self.target

    def __repr__(self) -> str:
        return f"{self.category}: {fmt(self.value)}"


class ResultValue(_Part, Audited, Model):
    __tablename__ = "indicator_result_values"
    __table_args__ = (
        UniqueConstraint("result_id", "category_id", name="uq_indicator_result_values_category"),
        CheckConstraint("value IS NULL OR value >= 0", name="ck_indicator_result_values_value"),
        CheckConstraint("denominator IS NULL OR denominator > 0", name="ck_indicator_result_values_denominator"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    result_id: Mapped[int] = mapped_column(ForeignKey("indicator_results.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("dimension_categories.id", ondelete="RESTRICT"), index=True)
    value: Mapped[Decimal | None] = mapped_column(VALUE)
    numerator: Mapped[Decimal | None] = mapped_column(VALUE)
    denominator: Mapped[Decimal | None] = mapped_column(VALUE)

    result: Mapped[Result] = relationship(back_populates="values")
    category: Mapped[Category] = relationship()

    @property
    def owner(self) -> Result | None:
        return self.result

    def __repr__(self) -> str:
        return f"{self.category}: {fmt(self.value)}"
