"""Every state change of the grants domain, and who may see which grant.

Plain functions over a SQLAlchemy session; no Flask. Views, the API, the CLI
and the demo loader call these, so the rules live in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from config.roles import ALL_GRANTS_ROLES, READ_ONLY_ROLES
from core import clock
from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.formatting import ngettext
from core.money import to_decimal
from core.periods import PeriodLength, split_into_periods
from core.records import validate_record
from core.registry import Registry
from grants.models import (
    Funder,
    Grant,
    GrantMembership,
    GrantStatus,
    MemberRole,
    PeriodStatus,
    ReportingPeriod,
)

# Cost-category presets a funder can start from; budgets use the funder's list.
GLOBAL_FUND_COST_GROUPINGS = [
    {"code": "1", "name": "Human Resources (HR)"},
    {"code": "2", "name": "Travel related costs (TRC)"},
    {"code": "3", "name": "External Professional services (EPS)"},
    {"code": "4", "name": "Health Products - Pharmaceutical Products (HPPP)"},
    {"code": "5", "name": "Health Products - Non-Pharmaceuticals (HPNP)"},
    {"code": "6", "name": "Health Products - Equipment (HPE)"},
    {"code": "7", "name": "Procurement and Supply-Chain Management costs (PSM)"},
    {"code": "8", "name": "Infrastructure (INF)"},
    {"code": "9", "name": "Non-health equipment (NHP)"},
    {"code": "10", "name": "Communication Material and Publications (CMP)"},
    {"code": "11", "name": "Indirect and Overhead Costs"},
    {"code": "12", "name": "Living support to client/ target population (LSCTP)"},
    {"code": "13", "name": "Payment for Results"},
]
GENERIC_COST_CATEGORIES = [
    {"code": "STAFF", "name": "Staff and personnel"},
    {"code": "ACT", "name": "Activities"},
    {"code": "TRAVEL", "name": "Travel"},
    {"code": "EQUIP", "name": "Equipment and supplies"},
    {"code": "OVH", "name": "Overheads"},
]
COST_CATEGORY_PRESETS = {"global_fund": GLOBAL_FUND_COST_GROUPINGS, "generic": GENERIC_COST_CATEGORIES}


# ---------------------------------------------------------------- who sees what


def user_role_names(user: Any) -> set[str]:
    return {role.name for role in getattr(user, "roles", None) or []}


def sees_all_grants(user: Any) -> bool:
    return bool(user_role_names(user) & ALL_GRANTS_ROLES)


def is_read_only(user: Any) -> bool:
    """True when every role of the user is read-only (Donor, Auditor)."""
    names = user_role_names(user)
    return bool(names) and names <= READ_ONLY_ROLES


def visible_grant_ids_query(user: Any) -> Select[tuple[int]] | None:
    """A subquery of the grant ids ``user`` may see, or None when they see every grant.

    The single rule behind every row-level check: Admin and Finance see all
    grants; everybody else sees the grants they are members of.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return select(Grant.id).where(false())
    if sees_all_grants(user):
        return None
    return select(GrantMembership.grant_id).where(GrantMembership.user_id == user.id)


def can_see_grant(session: Session, user: Any, grant_id: int | None) -> bool:
    if grant_id is None:
        return False
    query = visible_grant_ids_query(user)
    # Asked while a record is being built: it must not be flushed half-made.
    with session.no_autoflush:
        if query is None:
            return session.get(Grant, grant_id) is not None
        return session.scalar(query.where(GrantMembership.grant_id == grant_id)) is not None


def visible_grants(session: Session, user: Any) -> list[Grant]:
    query = select(Grant).order_by(Grant.start_date.desc(), Grant.reference)
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(Grant.id.in_(visible))
    return list(session.scalars(query))


def get_grant_by_reference(session: Session, reference: str) -> Grant:
    grant = session.scalar(select(Grant).where(Grant.reference == reference))
    if grant is None:
        raise DomainValidationError({"grant": [_("no grant with reference '%(reference)s'", reference=reference)]})
    return grant


# ---------------------------------------------------------------- funders and grants


def create_funder(
    session: Session,
    *,
    name: str,
    code: str,
    default_currency: str = "USD",
    cost_categories: list[dict[str, str]] | str | None = None,
    notes: str | None = None,
    is_demo: bool = False,
) -> Funder:
    if isinstance(cost_categories, str):
        if cost_categories not in COST_CATEGORY_PRESETS:
            raise DomainValidationError(
                {
                    "cost_categories": [
                        _(
                            "unknown preset '%(preset)s'; known: %(known)s",
                            preset=cost_categories,
                            known=", ".join(COST_CATEGORY_PRESETS),
                        )
                    ]
                }
            )
        cost_categories = [dict(c) for c in COST_CATEGORY_PRESETS[cost_categories]]
    funder = Funder(
        name=name,
        code=code,
        default_currency=(default_currency or "").upper(),
        cost_categories=cost_categories or [],
        notes=notes,
        is_demo=is_demo,
    )
    return save_funder(session, funder)


def save_funder(session: Session, funder: Funder) -> Funder:
    """Save a new or changed funder (built here, by a form or by the API); the caller commits."""
    return _save(session, funder)


def set_cost_categories(
    session: Session, funder: Funder, rows: list[dict[str, Any]], *, preset: str | None = None
) -> Funder:
    """Replace a funder's cost categories by ``rows`` [{code, name, retired}], with a preset's added first.

    Categories are renamed or retired, never removed: budget lines keep their
    code. A code may change only for a category added in the same go. Raises
    DomainValidationError keyed ``row N`` (the row's place in ``rows``), nothing saved.
    """
    before = {str(c.get("code")): dict(c) for c in funder.cost_categories or []}
    if preset:
        if preset not in COST_CATEGORY_PRESETS:
            raise DomainValidationError(
                {
                    "preset": [
                        _(
                            "unknown preset '%(preset)s'; known: %(known)s",
                            preset=preset,
                            known=", ".join(COST_CATEGORY_PRESETS),
                        )
                    ]
                }
            )
        codes = {str(r.get("code") or "").strip() for r in rows}
        rows = list(rows) + [dict(c) for c in COST_CATEGORY_PRESETS[preset] if c["code"] not in codes]
    errors: dict[str, list[str]] = {}
    result: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        code = str(row.get("code") or "").strip()
        name = str(row.get("name") or "").strip()
        if not code and not name:
            continue
        if not code:
            errors.setdefault(f"row {number}", []).append(_("code: is required"))
        elif len(code) > 40:
            errors.setdefault(f"row {number}", []).append(_("code: is longer than 40 characters"))
        elif code in seen:
            errors.setdefault(f"row {number}", []).append(
                _("code: '%(code)s' is already used on row %(row)s", code=code, row=seen[code])
            )
        if not name:
            errors.setdefault(f"row {number}", []).append(_("name: is required"))
        seen.setdefault(code, number)
        category: dict[str, Any] = {"code": code, "name": name[:200]}
        if row.get("retired"):
            category["retired"] = True
        result.append(category)
    for code, category in before.items():
        if code not in seen:
            errors.setdefault("categories", []).append(
                _(
                    "%(code)s %(name)s is missing: a category is retired, not removed, because budget lines may use it",
                    code=code,
                    name=category.get("name"),
                )
            )
    if errors:
        raise DomainValidationError(errors)
    funder.cost_categories = result
    return save_funder(session, funder)


def active_cost_categories(funder: Funder | None) -> list[dict[str, Any]]:
    """The categories a new budget line may take: the funder's, less the retired ones."""
    return [dict(c) for c in (funder.cost_categories if funder else None) or [] if not c.get("retired")]


GRANT_FIELDS = {
    "reference",
    "title",
    "recipient",
    "currency",
    "amount",
    "start_date",
    "end_date",
    "status",
    "countries",
    "description",
    "funder",
    "is_demo",
    "verifying_roles",  # the member roles that may verify results (four eyes), e.g. ["lead", "program"]
}


def create_grant(session: Session, **values: Any) -> Grant:
    grant = Grant()
    _apply_grant_values(grant, values)
    return save_grant(session, grant)


def update_grant(session: Session, grant: Grant, **values: Any) -> Grant:
    _apply_grant_values(grant, values)
    return save_grant(session, grant)


def save_grant(session: Session, grant: Grant) -> Grant:
    """Save a new or changed grant (built here, by a form or by the API); the caller commits."""
    return _save(session, grant)


def _apply_grant_values(grant: Grant, values: dict[str, Any]) -> None:
    unknown = set(values) - GRANT_FIELDS
    if unknown:
        raise DomainValidationError({name: [_("is not a field of a grant")] for name in sorted(unknown)})
    if "amount" in values:
        try:
            values["amount"] = to_decimal(values["amount"])
        except ValueError as exc:
            raise DomainValidationError({"amount": [str(exc).split(": ", 1)[-1]]}) from None
    if "currency" in values and isinstance(values["currency"], str):
        values["currency"] = values["currency"].strip().upper()
    if "status" in values and isinstance(values["status"], str):
        try:
            values["status"] = GrantStatus(values["status"])
        except ValueError:
            known = ", ".join(s.value for s in GrantStatus)
            raise DomainValidationError(
                {"status": [_("'%(value)s' is not one of %(known)s", value=values["status"], known=known)]}
            ) from None
    if "countries" in values and isinstance(values["countries"], (list, tuple)):
        values["countries"] = ",".join(values["countries"])
    for key, value in values.items():
        setattr(grant, key, value)


# ---------------------------------------------------------------- periods

# What follows when a grant's reporting periods are generated: (session, grant, today) -> None.
# Filled by grants.contributions (period deadlines, requirement deadlines), which this module cannot import.
PeriodsChanged = Callable[[Session, Grant, date], None]
PERIODS_CHANGED: Registry[PeriodsChanged] = Registry("follow-up of generated periods")


def generate_periods(
    session: Session,
    grant: Grant,
    length: PeriodLength | str,
    due_days: int,
    *,
    replace_open: bool = False,
    today: date | None = None,
) -> list[ReportingPeriod]:
    """Create the grant's reporting periods from a rule ("semester, due 45 days after end").

    Refuses when the grant already has periods, unless ``replace_open`` and all
    of them are still open (a submitted report must never disappear). What
    follows from the periods (``PERIODS_CHANGED``: their deadlines) is done in
    the same transaction.
    """
    try:
        spans = split_into_periods(grant.start_date, grant.end_date, length, due_days)
    except ValueError as exc:
        field, _sep, message = str(exc).partition(": ")
        raise DomainValidationError({field: [message]}) from None
    if grant.periods:
        if not replace_open:
            raise DomainValidationError(
                {
                    "grant": [
                        ngettext(
                            "%(grant)s already has %(num)d reporting period",
                            "%(grant)s already has %(num)d reporting periods",
                            len(grant.periods),
                            grant=grant.reference,
                        )
                    ]
                }
            )
        locked = [p.label for p in grant.periods if p.status != PeriodStatus.open]
        if locked:
            raise DomainValidationError(
                {
                    "grant": [
                        _(
                            "periods %(periods)s are submitted or accepted and cannot be replaced",
                            periods=", ".join(locked),
                        )
                    ]
                }
            )
        for period in list(grant.periods):
            session.delete(period)
        session.flush()
        session.expire(grant, ["periods"])
    created = []
    for span in spans:
        period = ReportingPeriod(
            grant=grant,
            label=span.label,
            start_date=span.start,
            end_date=span.end,
            report_due=span.report_due,
            status=PeriodStatus.open,
        )
        session.add(period)
        created.append(period)
    session.flush()
    # Deadlines (reports due, requirements judged by period) exist from now on, not after the next sweep.
    for follow in PERIODS_CHANGED.values():
        follow(session, grant, today or clock.today())
    return created


def save_period(session: Session, period: ReportingPeriod) -> ReportingPeriod:
    """Save a new or changed reporting period (from a form or the API); the caller commits."""
    return _save(session, period)


def period_for_date(session: Session, grant_id: int, day: date) -> ReportingPeriod | None:
    return session.scalar(
        select(ReportingPeriod).where(
            ReportingPeriod.grant_id == grant_id,
            ReportingPeriod.start_date <= day,
            ReportingPeriod.end_date >= day,
        )
    )


def get_period(session: Session, grant: Grant, label: str) -> ReportingPeriod:
    period = session.scalar(
        select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id, ReportingPeriod.label == label)
    )
    if period is None:
        known = ", ".join(p.label for p in grant.periods) or _("none")
        raise DomainValidationError(
            {
                "period": [
                    _(
                        "%(grant)s has no period '%(label)s'; known: %(known)s",
                        grant=grant.reference,
                        label=label,
                        known=known,
                    )
                ]
            }
        )
    return period


# ---------------------------------------------------------------- members


def set_verifying_roles(session: Session, grant: Grant, roles: Iterable[MemberRole | str]) -> Grant:
    """Choose which member roles may verify the grant's results (never their own); the caller commits."""
    grant.verifying_roles = [getattr(role, "value", role) for role in roles]
    try:
        return save_grant(session, grant)
    except DomainValidationError:
        session.expire(grant, ["verifier_roles"])  # forget the refused choice
        raise


def add_member(
    session: Session, grant: Grant, user: Any, role: MemberRole | str = MemberRole.member
) -> GrantMembership:
    return save_membership(session, GrantMembership(grant=grant, user=user, role=MemberRole(role)))


def save_membership(session: Session, membership: GrantMembership) -> GrantMembership:
    """Save a new or changed membership (built here, by a form or by the API); the caller commits."""
    return _save(session, membership)


def members_with_roles(session: Session, grant_id: int, roles: Iterable[MemberRole]) -> list[GrantMembership]:
    return list(
        session.scalars(
            select(GrantMembership).where(GrantMembership.grant_id == grant_id, GrantMembership.role.in_(list(roles)))
        )
    )


def _save(session: Session, record: Any) -> Any:
    # Checked before it joins the session, so a refused record is never flushed half-made.
    validate_record(session, record)
    session.add(record)
    session.flush()
    return record


def total_amount(grants: Iterable[Grant]) -> dict[str, Decimal]:
    """Sum of grant amounts per currency (never adding different currencies together)."""
    totals: dict[str, Decimal] = {}
    for grant in grants:
        totals[grant.currency] = totals.get(grant.currency, Decimal("0")) + grant.amount
    return totals
