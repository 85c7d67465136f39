"""Every state change of the indicators domain: dimensions, indicators, donor codes, targets, results.

Plain functions over a SQLAlchemy session; no Flask. The form views, the REST
API, the demo and the CLI call these, so each derivation happens here once;
validation runs at flush and the caller commits once. Progress (achievement,
bands, ratings, the IPTT rows) is the read model in ``indicators.progress``;
``indicator_progress`` and ``indicator_achievement`` are re-exported here
because other packages import them from this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from core import clock
from core.errors import DomainValidationError
from core.formatting import N_, day
from core.formatting import gettext as _
from core.money import to_decimal
from core.records import parse_enum, validate_record
from grants.models import ROLE_LABELS, Funder, Grant, GrantMembership, MemberRole, ReportingPeriod
from grants.services import is_read_only, user_role_names
from indicators.models import (
    CLOSED_PERIOD_STATUSES,
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
    check_deletable,
    clean_titles,
    fill_grant_id,
    period_status_word,
    wording,
)
from indicators.progress import (  # indicator_progress and indicator_achievement: re-exported for other packages
    find_category,
    indicator_achievement,  # noqa: F401
    indicator_progress,  # noqa: F401
)

# The standard dimensions every installation starts with. Key population is not
# exhaustive: people belong to several or to none, so its parts need not add up.
STANDARD_DIMENSIONS: list[dict[str, Any]] = [
    {
        "code": "country",
        "name": "Country",
        "exhaustive": True,
        "categories": [("LC", "Saint Lucia"), ("GD", "Grenada")],
    },
    {
        "code": "gender",
        "name": "Sex/gender",
        "exhaustive": True,
        "categories": [("F", "Female"), ("M", "Male"), ("TG", "Transgender"), ("X", "Other or not stated")],
    },
    {
        "code": "age",
        "name": "Age band",
        "exhaustive": True,
        "categories": [
            ("<15", "Under 15"),
            ("15-19", "15-19"),
            ("20-24", "20-24"),
            ("25-49", "25-49"),
            ("50+", "50 and over"),
        ],
    },
    {
        "code": "keypop",
        "name": "Key population",
        "exhaustive": False,
        "categories": [
            ("SW", "Sex workers"),
            ("MSM", "Men who have sex with men"),
            ("TG", "Transgender people"),
            ("PWUD", "People who use drugs"),
            ("PRIS", "People in prisons"),
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


def _parse_parts(
    session: Session, disaggregation: Mapping[Any, Any] | None
) -> dict[int, tuple[Category, dict[str, Decimal | None]]]:
    """{category key: value | (numerator, denominator) | {"value"|"numerator"|"denominator": ...}}."""
    parsed: dict[int, tuple[Category, dict[str, Decimal | None]]] = {}
    for key, raw in (disaggregation or {}).items():
        category = find_category(session, key)
        label = f"disaggregation {category.dimension.code}={category.code}"
        if isinstance(raw, Mapping):
            figures = {name: _number(raw.get(name), label) for name in ("value", "numerator", "denominator")}
        elif isinstance(raw, (tuple, list)):
            if len(raw) != 2:
                raise DomainValidationError({label: [_("give (numerator, denominator)")]})
            figures = {"value": None, "numerator": _number(raw[0], label), "denominator": _number(raw[1], label)}
        else:
            figures = {"value": _number(raw, label), "numerator": None, "denominator": None}
        if all(v is None for v in figures.values()):
            continue  # an empty box in a form: no figure for that category
        if category.id in parsed:
            raise DomainValidationError({"disaggregation": [_("%(category)s is given twice", category=category)]})
        parsed[category.id] = (category, figures)
    return parsed


def _apply_parts(
    owner: Target | Result, part_cls: type, wanted: dict[int, tuple[Category, dict[str, Decimal | None]]]
) -> None:
    """Make the owner's parts equal to ``wanted``: update in place, add new, remove the rest.

    In place rather than delete-and-insert: the unit of work inserts before it
    deletes, which would collide on the (owner, category) unique key.
    """
    existing = {part.category_id: part for part in owner.values}
    for category_id, stale in existing.items():
        if category_id not in wanted:
            owner.values.remove(stale)
    for category_id, (category, figures) in wanted.items():
        part = existing.get(category_id)
        if part is None:
            part = part_cls(category=category, category_id=category.id)
            owner.values.append(part)
        for name, amount in figures.items():
            setattr(part, name, amount)


_Figure = TypeVar("_Figure", Target, Result)


def _save_figure(
    session: Session,
    model: type[_Figure],
    part_cls: type,
    indicator: Indicator,
    period: ReportingPeriod,
    figures: dict[str, Any],
    disaggregation: Mapping[Any, Any] | None,
    extra: dict[str, Any],
) -> Any:
    """Create or replace a target/result with its parts, all or nothing.

    The new figures are first checked on a detached copy: when they are refused
    the session is untouched, so the caller's other work is not lost.
    """
    numbers = {name: _number(figures.get(name), name) for name in ("value", "numerator", "denominator")}
    wanted = _parse_parts(session, disaggregation)
    existing = session.scalar(select(model).where(model.indicator_id == indicator.id, model.period_id == period.id))
    shadow = model(
        id=existing.id if existing else None,
        indicator_id=indicator.id,
        period_id=period.id,
        grant_id=indicator.grant_id,
        **numbers,
        **extra,
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
    """``what``: "results" or "targets"."""
    if period.status in CLOSED_PERIOD_STATUSES:
        message = (
            N_("%(period)s is %(status)s: its results can no longer be set or changed")
            if what == "results"
            else N_("%(period)s is %(status)s: its targets can no longer be set or changed")
        )
        raise DomainValidationError(
            {"period": [_(message, period=period.label, status=period_status_word(period.status))]}
        )


def refuse_unstarted(period: ReportingPeriod | None, today: dt.date | None = None) -> None:
    """Results belong to periods that have started: nothing is reported for the future."""
    if period is None or period.start_date is None:
        return
    today = today or clock.today()
    if period.start_date > today:
        raise DomainValidationError(
            {
                "period": [
                    _(
                        "%(period)s starts on %(date)s: results can be entered once it has started",
                        period=period.label,
                        date=day(period.start_date),
                    )
                ]
            }
        )


def _refuse_foreign_period(indicator: Indicator, period: ReportingPeriod) -> None:
    if period.grant_id != indicator.grant_id:
        grant = indicator.grant
        other = period.grant.reference if period.grant else _("another grant")
        raise DomainValidationError(
            {
                "period": [
                    _(
                        "'%(period)s' is a period of %(other)s, not of %(grant)s: choose one of %(grant)s's periods",
                        period=period.label,
                        other=other,
                        grant=grant.reference,
                    )
                ]
            }
        )


# ---------------------------------------------------------------- dimensions


def create_dimension(
    session: Session,
    *,
    code: str,
    name: str,
    exhaustive: bool = True,
    description: str | None = None,
    categories: Iterable[tuple[str, str]] = (),
) -> Dimension:
    dimension = Dimension(code=code.strip(), name=name.strip(), exhaustive=exhaustive, description=description)
    validate_record(session, dimension)
    session.add(dimension)
    session.flush()
    for order, (category_code, category_name) in enumerate(categories):
        add_category(session, dimension, category_code, category_name, sort_order=order)
    return dimension


def add_category(
    session: Session, dimension: Dimension, code: str, name: str, sort_order: int | None = None
) -> Category:
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
                session,
                code=spec["code"],
                name=spec["name"],
                exhaustive=spec["exhaustive"],
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
            session.get(Dimension, item)
            if isinstance(item, int)
            else session.scalar(select(Dimension).where(Dimension.code == item))
        )
        if dimension is None:
            known = ", ".join(session.scalars(select(Dimension.code).order_by(Dimension.code))) or _("none yet")
            raise DomainValidationError(
                {"dimensions": [_("no dimension '%(item)s'; known: %(known)s", item=item, known=known)]}
            )
        chosen.append(dimension)
    return chosen


# ---------------------------------------------------------------- indicators and the crosswalk

INDICATOR_FIELDS = {
    "code",
    "name",
    "titles",
    "definition",
    "unit",
    "direction",
    "cumulative_mode",
    "baseline_value",
    "baseline_date",
    "lop_target",
    "means_of_verification",
    "responsible",
    "sort_order",
    "dimensions",
}


def create_indicator(session: Session, grant: Grant, **values: Any) -> Indicator:
    """Define an indicator of ``grant``; ``dimensions`` may be Dimension objects or codes ("country")."""
    indicator = Indicator(grant=grant, grant_id=grant.id)
    values.setdefault(
        "sort_order", len(session.scalars(select(Indicator.id).where(Indicator.grant_id == grant.id)).all())
    )
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
        raise DomainValidationError({name: [_("is not a field of an indicator")] for name in sorted(unknown)})
    for name in ("baseline_value", "lop_target"):
        if name in values:
            values[name] = _number(values[name], name)
    for name, enum_cls in (("unit", IndicatorUnit), ("direction", Direction), ("cumulative_mode", CumulativeMode)):
        if name in values:
            values[name] = parse_enum(enum_cls, values[name], name, allow_none=True)
    if "dimensions" in values:
        values["dimensions"] = _dimensions(session, values["dimensions"])
    if "titles" in values and (values["titles"] is None or isinstance(values["titles"], Mapping)):
        values["titles"] = clean_titles(values["titles"])  # anything else is refused at validation, naming it
    for key, value in values.items():
        setattr(indicator, key, value)


def set_indicator_code(
    session: Session, indicator: Indicator, funder: Funder, code: str, name: str | None = None
) -> IndicatorCode:
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
        select(IndicatorCode.code).where(
            IndicatorCode.indicator_id == indicator_id, IndicatorCode.funder_id == funder_id
        )
    )
    if code is not None:
        return code
    own = session.scalar(select(Indicator.code).where(Indicator.id == indicator_id))
    if own is None:
        raise DomainValidationError({"indicator": [_("no indicator with id %(id)s", id=indicator_id)]})
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
    session: Session,
    indicator: Indicator,
    period: ReportingPeriod,
    *,
    value: Any = None,
    numerator: Any = None,
    denominator: Any = None,
    disaggregation: Mapping[Any, Any] | None = None,
    comment: str | None = None,
) -> Target:
    """Set the indicator's target for an open period (creating or replacing it), with its parts."""
    _refuse_foreign_period(indicator, period)
    _refuse_closed(period, "targets")
    figures = {"value": value, "numerator": numerator, "denominator": denominator}
    return _save_figure(session, Target, TargetValue, indicator, period, figures, disaggregation, {"comment": comment})


def record_result(
    session: Session,
    indicator: Indicator,
    period: ReportingPeriod,
    *,
    user: Any,
    value: Any = None,
    numerator: Any = None,
    denominator: Any = None,
    disaggregation: Mapping[Any, Any] | None = None,
    comment: str | None = None,
    status: ResultStatus | str = ResultStatus.draft,
    entered_at: dt.datetime | None = None,
) -> Result:
    """Enter (or correct) the indicator's result for a period, as draft or submitted, with its parts.

    Verification is not done here: see ``verify_result``. A verified result must
    be returned to submitted (``reopen_result``) before its figures change.
    """
    status = parse_enum(ResultStatus, status, "status")
    if status == ResultStatus.verified:
        raise DomainValidationError({"status": [_("enter the result first; a colleague then verifies it")]})
    _refuse_foreign_period(indicator, period)
    _refuse_closed(period, "results")
    refuse_unstarted(period)
    current = session.scalar(
        select(Result.status).where(Result.indicator_id == indicator.id, Result.period_id == period.id)
    )
    if current == ResultStatus.verified:
        raise DomainValidationError(
            {
                "status": [
                    _(
                        "the %(period)s result of %(code)s is verified: return it to submitted first",
                        period=period.label,
                        code=indicator.code,
                    )
                ]
            }
        )
    figures = {"value": value, "numerator": numerator, "denominator": denominator}
    extra = {
        "comment": comment,
        "status": status,
        "entered_by_id": user.id,
        "entered_at": entered_at or clock.now(),
    }
    return _save_figure(session, Result, ResultValue, indicator, period, figures, disaggregation, extra)


def submit_result(session: Session, result: Result) -> Result:
    if result.status != ResultStatus.draft:
        raise DomainValidationError(
            {"status": [_("the result is already %(status)s", status=wording(ResultStatus, result.status).lower())]}
        )
    result.status = ResultStatus.submitted
    session.flush()
    return result


def verification_refusal(session: Session, result: Result, user: Any) -> str | None:
    """Why ``user`` may not verify ``result``, as a sentence; None when they may.

    The grant's four-eyes policy: any member whose role on the grant is one of
    the grant's verifying roles (``Grant.verifying_roles``), never the person
    who entered the result. An administrator may stand in; donors and auditors
    only read.
    """
    if user is None or getattr(user, "id", None) is None:
        return _("Sign in to verify results.")
    if user.id == result.entered_by_id:
        return _("You entered this result, so a colleague on the grant must verify it (four eyes).")
    grant = result.grant or session.get(Grant, result.grant_id)
    assert grant is not None  # grant_id is a non-null foreign key
    allowed = grant.verifying_roles
    names = [str(ROLE_LABELS.get(MemberRole(r), r)) for r in allowed if r in MemberRole.__members__]
    roles = (
        _("%(roles)s or %(last)s", roles=", ".join(names[:-1]), last=names[-1]) if len(names) > 1 else "".join(names)
    )
    if is_read_only(user):
        return _("Donors and auditors read results; they do not verify them.")
    role = session.scalar(
        select(GrantMembership.role).where(GrantMembership.grant_id == grant.id, GrantMembership.user_id == user.id)
    )
    if role is not None and role.value in allowed:
        return None
    if "Admin" in user_role_names(user):
        return None  # an administrator may stand in when the team is too small
    if role is None:
        return _(
            "Only members of %(grant)s whose role is %(roles)s may verify its results, "
            "and you are not a member of this grant.",
            grant=grant.reference,
            roles=roles,
        )
    return _(
        "On %(grant)s, results are verified by members whose role is %(roles)s; your role on this grant is %(role)s.",
        grant=grant.reference,
        roles=roles,
        role=ROLE_LABELS.get(role, role.value),
    )


def verify_result(session: Session, result: Result, user: Any, at: dt.datetime | None = None) -> Result:
    """A colleague confirms a submitted result against its means of verification.

    Refused for the person who entered it (four eyes), for anyone the grant's
    policy does not name (``verification_refusal``), and for drafts.
    """
    if result.status == ResultStatus.verified:
        raise DomainValidationError({"status": [_("the result is already verified")]})
    if result.status != ResultStatus.submitted:
        raise DomainValidationError({"status": [_("only a submitted result can be verified; submit the draft first")]})
    if user is None or user.id == result.entered_by_id:
        raise DomainValidationError(
            {"verified_by": [_("the person who entered a result cannot verify it; ask a colleague")]}
        )
    refusal = verification_refusal(session, result, user)
    if refusal:
        raise DomainValidationError({"verified_by": [refusal]})
    result.status = ResultStatus.verified
    result.verified_by_id = user.id
    result.verified_at = at or clock.now()
    session.flush()
    return result


def reopen_result(session: Session, result: Result) -> Result:
    """Return a verified result to submitted so it can be corrected (it then needs verifying again)."""
    period = result.period
    if period.status in CLOSED_PERIOD_STATUSES:
        raise DomainValidationError(
            {
                "period": [
                    _(
                        "%(period)s is %(status)s: its results are closed",
                        period=period.label,
                        status=period_status_word(period.status),
                    )
                ]
            }
        )
    result.status = ResultStatus.submitted
    session.flush()
    return result


# ---------------------------------------------------------------- records built field by field (generic forms, REST API)


def prepare_save(record: Target | Result | IndicatorCode, *, user: Any = None, now: dt.datetime | None = None) -> None:
    """Derive what a target, result or donor code built by a generic add/edit form or the REST API takes from elsewhere.

    Its grant is its indicator's (copied before the row-level check can run); a
    new result records who entered it and when. The caller adds the record and
    commits once; validation runs at flush.
    """
    fill_grant_id(record)
    if isinstance(record, Result):
        period = record.period or (session_period(record) if record.period_id else None)
        refuse_unstarted(period)
    if isinstance(record, Result) and record.id is None and user is not None:
        record.entered_by_id = user.id
        record.entered_at = now or clock.now()


def session_period(record: Result) -> ReportingPeriod | None:
    """The record's period looked up through the session it belongs to (a form may set only the id)."""
    session = object_session(record)
    return session.get(ReportingPeriod, record.period_id) if session is not None else None


def prepare_delete(record: Target | Result) -> None:
    """Refuse to delete a figure of a submitted/accepted period, or a verified result (DomainValidationError)."""
    check_deletable(record)
