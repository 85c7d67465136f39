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
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
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

from config.settings import BaseConfig
from core.errors import ErrorCollector
from core.formatting import N_, day, in_reader_language, label, lazy_gettext, number
from core.formatting import gettext as _
from core.money import is_country_code, percent
from core.records import Audited, check_unique, enum_column
from grants.models import Funder, Grant, PeriodStatus, ReportingPeriod

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy.orm import InstanceState

# Indicator values: counts, percentages (0-100, 4 decimals), amounts. Decimal, never float.
VALUE = Numeric(18, 4)


class _Worded(str, enum.Enum):
    """An enum people read: ``label`` is its wording in the reader's language (core.formatting.label)."""

    @property
    def label(self) -> str:
        return str(_WORDING[(type(self), self.value)])


class IndicatorUnit(_Worded):
    number = "number"
    percentage = "percentage"  # entered as numerator / denominator
    currency = "currency"
    yes_no = "yes_no"  # 1 = yes, 0 = no


class Direction(_Worded):
    increase = "increase"  # more is better
    decrease = "decrease"  # less is better (e.g. incidents of violence)


class CumulativeMode(_Worded):
    sum = "sum"  # people trained: add the periods up
    latest = "latest"  # coverage, policy in place: the most recent period counts
    maximum = "maximum"  # groups formed so far: the highest level reached


class ResultStatus(_Worded):
    draft = "draft"
    submitted = "submitted"
    verified = "verified"


# Keyed by (enum, value): members of str enums with the same value (ResultStatus.submitted,
# PeriodStatus.submitted) are equal as dict keys and would overwrite each other.
_WORDING: dict[tuple[type[enum.Enum], str], Any] = {
    (IndicatorUnit, IndicatorUnit.number.value): lazy_gettext("Number"),
    (IndicatorUnit, IndicatorUnit.percentage.value): lazy_gettext("Percentage"),
    (IndicatorUnit, IndicatorUnit.currency.value): lazy_gettext("Amount of money"),
    (IndicatorUnit, IndicatorUnit.yes_no.value): lazy_gettext("Yes or no"),
    (Direction, Direction.increase.value): lazy_gettext("Increase is good"),
    (Direction, Direction.decrease.value): lazy_gettext("Decrease is good"),
    (CumulativeMode, CumulativeMode.sum.value): lazy_gettext("Sum of the periods"),
    (CumulativeMode, CumulativeMode.latest.value): lazy_gettext("Latest period"),
    (CumulativeMode, CumulativeMode.maximum.value): lazy_gettext("Highest reached"),
    (ResultStatus, ResultStatus.draft.value): lazy_gettext("Draft"),
    (ResultStatus, ResultStatus.submitted.value): lazy_gettext("Awaiting verification"),
    (ResultStatus, ResultStatus.verified.value): lazy_gettext("Verified"),
    (PeriodStatus, PeriodStatus.open.value): lazy_gettext("open"),
    (PeriodStatus, PeriodStatus.submitted.value): lazy_gettext("submitted"),
    (PeriodStatus, PeriodStatus.accepted.value): lazy_gettext("accepted"),
}


def wording(enum_cls: type[enum.Enum], value: Any) -> str:
    """A stored enum value ("yes_no", "submitted") in the reader's words; "—" for nothing."""
    if value is None or value == "":
        return "—"
    member = value if isinstance(value, enum.Enum) else enum_cls(value)
    return str(_WORDING.get((type(member), member.value), label(member)))


def period_status_word(status: Any) -> str:
    """A period's status in the reader's words, lower case for the middle of a sentence: "submitted"."""
    return wording(PeriodStatus, status)


# ---------------------------------------------------------------- indicator names per language

TITLE_MAX_LENGTH = 300
_NAME_LABELS = {
    "es": lazy_gettext("Name in Spanish"),
    "fr": lazy_gettext("Name in French"),
    "nl": lazy_gettext("Name in Dutch"),
}


def title_languages() -> list[str]:
    """The languages an indicator's name may be given in besides the one entered first: all but English."""
    return [code for code in BaseConfig.LANGUAGES if code != "en"]


def title_label_lazy(language: str) -> Any:
    """ "Name in French", the label of the field that holds the name in ``language``, translated when shown."""
    found = _NAME_LABELS.get(language)
    if found is not None:
        return found
    name = BaseConfig.LANGUAGES.get(language, {}).get("name", language)
    return lazy_gettext("Name in %(language)s", language=name)


def title_label(language: str) -> str:
    """ "Name in French" in the reader's language."""
    return str(title_label_lazy(language))


def clean_titles(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The names per language as given, trimmed, blank ones dropped (the rules are checked at flush)."""
    cleaned: dict[str, Any] = {}
    for language, text in (raw or {}).items():
        if isinstance(text, str):
            text = text.strip()
            if not text:
                continue
        elif text is None:
            continue
        cleaned[str(language)] = text
    return cleaned


def check_titles(titles: Any, errors: ErrorCollector, *, per_language: bool = True) -> None:
    """Each name per language: a known language other than English, text, at most 300 characters.

    A problem with one language's name is put on its form field ``title_<language>``, or on
    ``titles`` when not ``per_language`` (the API's field).
    """
    if titles is None:
        return
    if not isinstance(titles, Mapping):
        errors.add("titles", _("give the names per language as language code and text, e.g. fr: Nom"))
        return
    known = title_languages()
    for language, text in titles.items():
        if language not in known:
            errors.add(
                "titles",
                _(
                    "'%(language)s' is not a language of Grantkeeper; use one of %(known)s",
                    language=language,
                    known=", ".join(known),
                ),
            )
        elif not isinstance(text, str):
            errors.add(
                f"title_{language}" if per_language else "titles",
                _("%(field)s must be text", field=title_label(language)),
            )
        elif len(text) > TITLE_MAX_LENGTH:
            errors.add(
                f"title_{language}" if per_language else "titles",
                _(
                    "%(field)s has %(count)s characters; at most %(max)s are allowed",
                    field=title_label(language),
                    count=len(text),
                    max=TITLE_MAX_LENGTH,
                ),
            )


CLOSED_PERIOD_STATUSES = frozenset({PeriodStatus.submitted, PeriodStatus.accepted})


def shown(value: Decimal | None, places: int | None = None) -> str:
    """A figure for a reader, in their locale: "1,234.5" / "1.234,5" / "1 234,5"; rounded like ``fmt``."""
    if value is None:
        return "—"
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return number(value.normalize())


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
            errors.add("code", _("is required"))
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
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
            errors.add("dimension", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required"))
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
        if dimension is not None and dimension.code == "country" and self.code and not is_country_code(self.code):
            errors.add("code", _("'%(code)s' is not an ISO 3166 country code (e.g. LC, GD)", code=self.code))
        if dimension is not None and self.code:
            clash = session.scalar(
                select(Category.id).where(
                    Category.dimension_id == dimension.id, Category.code == self.code, Category.id != (self.id or 0)
                )
            )
            if clash:
                errors.add(
                    "code",
                    _("'%(code)s' is already a category of %(dimension)s", code=self.code, dimension=dimension.name),
                )
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
    # The name in other languages, {"es": "...", "fr": "..."}; the name above is the one entered
    # first and is shown where no translation is given (core.formatting.in_reader_language).
    titles: Mapped[dict[str, str] | None] = mapped_column(JSON, default=dict)
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

    @property
    def shown_name(self) -> str:
        """The name in the reader's language where one was given, else the name entered first."""
        return in_reader_language(self.name, self.titles)

    @property
    def names(self) -> str:
        """The names given in other languages, for the indicator's page: "Name in French: …; …"."""
        given = [(language, (self.titles or {}).get(language)) for language in title_languages()]
        return "; ".join(f"{title_label(language)}: {text}" for language, text in given if text) or "—"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required"))
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
        check_titles(self.titles, errors)
        for field in ("baseline_value", "lop_target"):
            value = getattr(self, field)
            if value is not None and value < 0:
                errors.add(field, _("must not be negative"))
        if self.unit == IndicatorUnit.yes_no:
            for field in ("baseline_value", "lop_target"):
                value = getattr(self, field)
                if value is not None and value not in (0, 1):
                    errors.add(field, _("a yes/no indicator takes 1 (yes) or 0 (no)"))
        if grant is not None and self.baseline_date and self.baseline_date > grant.end_date:
            errors.add("baseline_date", _("is after the end of the grant (%(date)s)", date=day(grant.end_date)))
        if grant is not None and self.code:
            clash = session.scalar(
                select(Indicator.id).where(
                    Indicator.grant_id == grant.id, Indicator.code == self.code, Indicator.id != (self.id or 0)
                )
            )
            if clash:
                errors.add(
                    "code", _("'%(code)s' is already an indicator of %(grant)s", code=self.code, grant=grant.reference)
                )
        if self.id is not None and inspect(self).attrs.unit.history.has_changes():
            has_figures = session.scalar(
                select(Result.id).where(Result.indicator_id == self.id).limit(1)
            ) or session.scalar(select(Target.id).where(Target.indicator_id == self.id).limit(1))
            if has_figures:
                errors.add(
                    "unit", _("%(code)s already has targets or results; the unit can no longer change", code=self.code)
                )
        if self.id is not None and inspect(self).attrs.grant_id.history.has_changes():
            errors.add("grant", _("an indicator cannot move to another grant"))
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
            errors.add("funder", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required"))
        if indicator is not None and funder is not None:
            clash = session.scalar(
                select(IndicatorCode.id).where(
                    IndicatorCode.indicator_id == indicator.id,
                    IndicatorCode.funder_id == funder.id,
                    IndicatorCode.id != (self.id or 0),
                )
            )
            if clash:
                errors.add(
                    "funder",
                    _("%(code)s already has a code for %(funder)s", code=indicator.code, funder=funder.name),
                )
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
        errors.add("indicator", _("is required"))
        return None
    grant_id = indicator.grant_id or (indicator.grant.id if indicator.grant else None)
    if record.grant_id is None:
        record.grant_id = grant_id
    elif record.grant_id != grant_id:
        errors.add("indicator", _("%(code)s belongs to another grant than this record", code=indicator.code))
    return indicator


def _period_of(
    session: Session, record: Any, indicator: Indicator | None, errors: ErrorCollector
) -> ReportingPeriod | None:
    period = record.period or (session.get(ReportingPeriod, record.period_id) if record.period_id else None)
    if period is None:
        errors.add("period", _("is required"))
        return None
    if indicator is not None:
        grant = indicator.grant or session.get(Grant, indicator.grant_id)
        assert grant is not None  # grant_id is a non-null foreign key
        if period.grant_id != grant.id:
            other = period.grant.reference if period.grant else _("another grant")
            errors.add(
                "period",
                _(
                    "'%(period)s' is a period of %(other)s, not of %(grant)s: choose one of %(grant)s's periods",
                    period=period.label,
                    other=other,
                    grant=grant.reference,
                ),
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
            errors.add(field(name), _("must not be negative (got %(value)s)", value=shown(amount)))
    if indicator.is_percentage:
        num, den = figure.numerator, figure.denominator
        if den is not None and den == 0:
            errors.add(field("denominator"), _("must be greater than 0 for a percentage"))
        if (num is None) != (den is None):
            errors.add(field("numerator" if num is None else "denominator"), _("give both numerator and denominator"))
        elif num is None and (require_ratio or figure.value is None):
            errors.add(
                field("numerator"), _("%(code)s is a percentage: give numerator and denominator", code=indicator.code)
            )
        if num is not None and den is not None and den > 0 and num >= 0:
            figure.value = percent(num, den, places=4, rounding=ROUND_HALF_EVEN)
    else:
        if figure.numerator is not None or figure.denominator is not None:
            errors.add(
                field("numerator"),
                _("%(code)s is not a percentage: give a value, not a numerator/denominator", code=indicator.code),
            )
        if figure.value is None:
            errors.add(field("value"), _("is required"))
        elif indicator.unit == IndicatorUnit.yes_no and figure.value not in (0, 1):
            errors.add(field("value"), _("a yes/no indicator takes 1 (yes) or 0 (no)"))


def check_parts(
    session: Session, indicator: Indicator, total: Any, parts: list[Any], errors: ErrorCollector, *, require_ratio: bool
) -> None:
    """Each part names a category of a dimension the indicator uses, once; exhaustive ones add up."""
    if not parts:
        return
    if indicator.unit == IndicatorUnit.yes_no:
        errors.add(
            "disaggregation", _("%(code)s is a yes/no indicator and cannot be disaggregated", code=indicator.code)
        )
        return
    allowed = {d.id for d in indicator.dimensions}
    by_dimension: dict[int, list[tuple[Category, Any]]] = defaultdict(list)
    seen: set[int] = set()
    for part in parts:
        category = part.category or (session.get(Category, part.category_id) if part.category_id else None)
        if category is None:
            errors.add("disaggregation", _("every disaggregated value needs a category"))
            continue
        dimension = category.dimension or session.get(Dimension, category.dimension_id)
        assert dimension is not None  # dimension_id is a non-null foreign key
        if dimension.id not in allowed:
            used = ", ".join(d.name for d in indicator.dimensions) or _("none")
            errors.add(
                "disaggregation",
                _(
                    "%(code)s is not disaggregated by %(dimension)s (%(category)s); its dimensions: %(used)s",
                    code=indicator.code,
                    dimension=dimension.name,
                    category=category.code,
                    used=used,
                ),
            )
            continue
        if category.id in seen:
            errors.add(
                "disaggregation",
                _("%(dimension)s %(category)s is given twice", dimension=dimension.name, category=category.code),
            )
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
            added = sum((a for _code, a in amounts), Decimal(0))
            if added != whole:
                listing = " + ".join(f"{code} {shown(a)}" for code, a in amounts)
                sentence = {
                    "value": N_(
                        "%(dimension)s: the parts' values add up to %(added)s (%(listing)s) but the total is "
                        "%(total)s; %(dimension)s is exhaustive, so they must be equal"
                    ),
                    "numerator": N_(
                        "%(dimension)s: the parts' numerators add up to %(added)s (%(listing)s) but the total is "
                        "%(total)s; %(dimension)s is exhaustive, so they must be equal"
                    ),
                    "denominator": N_(
                        "%(dimension)s: the parts' denominators add up to %(added)s (%(listing)s) but the total is "
                        "%(total)s; %(dimension)s is exhaustive, so they must be equal"
                    ),
                }[name]
                errors.add(
                    "disaggregation",
                    _(sentence, dimension=dimension.name, added=shown(added), listing=listing, total=shown(whole)),
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
                _(
                    "%(period)s is %(status)s: its targets are closed and can no longer be set or changed",
                    period=period.label,
                    status=period_status_word(period.status),
                ),
            )
        if indicator is not None:
            self._check_total(indicator, errors)
            if period is not None:
                _check_one_per_period(session, Target, self, indicator, period, errors)
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
                _(
                    "%(period)s is %(status)s: its results can no longer be entered or changed",
                    period=period.label,
                    status=period_status_word(period.status),
                ),
            )
        state: InstanceState[Result] = inspect(self, raiseerr=True)
        was_verified = not (state.transient or state.pending) and (
            state.attrs.status.history.deleted == [ResultStatus.verified]
            or (self.status == ResultStatus.verified and not state.attrs.status.history.has_changes())
        )
        if was_verified and figures_changed:
            errors.add("status", _("this result is verified: return it to submitted before changing its figures"))
        if self.entered_by_id is None and self.entered_by is None:
            errors.add("entered_by", _("is required: who entered this result"))
        if self.status == ResultStatus.verified:
            verifier = self.verified_by_id or (self.verified_by.id if self.verified_by else None)
            enterer = self.entered_by_id or (self.entered_by.id if self.entered_by else None)
            if verifier is None or self.verified_at is None:
                errors.add("status", _("use the Verify action: a result is verified by a named person, with the date"))
            elif verifier == enterer:
                errors.add("verified_by", _("the person who entered a result cannot verify it; ask a colleague"))
        elif self.verified_by_id is not None or self.verified_by is not None or self.verified_at is not None:
            # Returned to draft or submitted: it is no longer verified by anyone.
            self.verified_by = None
            self.verified_by_id = None
            self.verified_at = None
        if indicator is not None:
            self._check_total(indicator, errors)
            if period is not None:
                _check_one_per_period(session, Result, self, indicator, period, errors)
            self._check_parts(session, indicator, errors)
        errors.raise_if_any()


def _check_one_per_period(
    session: Session,
    model: type[Target] | type[Result],
    record: Any,
    indicator: Indicator,
    period: ReportingPeriod,
    errors: ErrorCollector,
) -> None:
    if indicator.id is None or period.id is None:
        return
    clash = session.scalar(
        select(model.id).where(
            model.indicator_id == indicator.id, model.period_id == period.id, model.id != (record.id or 0)
        )
    )
    if clash:
        message = (
            N_("%(code)s already has a target for %(period)s; change that one instead")
            if model is Target
            else N_("%(code)s already has a result for %(period)s; change that one instead")
        )
        errors.add("period", _(message, code=indicator.code, period=period.label))


def check_deletable(record: Target | Result) -> None:
    """A target or result of a submitted/accepted period, or a verified result, is not deleted."""
    errors = ErrorCollector()
    period = record.period
    if period is not None and period.status in CLOSED_PERIOD_STATUSES:
        errors.add(
            "period",
            _(
                "%(period)s is %(status)s: its figures can no longer be deleted",
                period=period.label,
                status=period_status_word(period.status),
            ),
        )
    if getattr(record, "status", None) == ResultStatus.verified:
        errors.add("status", _("this result is verified: return it to submitted before deleting it"))
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
            errors.add(
                "period",
                _(
                    "%(period)s is %(status)s: its figures can no longer be changed",
                    period=period.label,
                    status=period_status_word(period.status),
                ),
            )
            errors.raise_if_any()
        if getattr(owner, "status", None) == ResultStatus.verified and _changed(
            self, ("value", "numerator", "denominator", "category_id")
        ):
            errors = ErrorCollector()
            errors.add("status", _("this result is verified: return it to submitted before changing its figures"))
            errors.raise_if_any()


def raise_owner_missing() -> None:
    errors = ErrorCollector()
    errors.add("_", _("a disaggregated value must belong to a target or a result"))
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
