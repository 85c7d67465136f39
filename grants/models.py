"""Funder, Grant, GrantMembership and ReportingPeriod: typed SQLAlchemy 2 models."""

from __future__ import annotations

import datetime as dt
import enum
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import ErrorCollector
from core.formatting import day
from core.formatting import gettext as _
from core.money import MONEY, is_country_code, is_currency_code
from core.records import Audited, check_unique, enum_column

if TYPE_CHECKING:
    from flask_appbuilder.security.sqla.models import User


class GrantStatus(str, enum.Enum):
    pipeline = "pipeline"
    active = "active"
    closing = "closing"
    closed = "closed"


class PeriodStatus(str, enum.Enum):
    open = "open"
    submitted = "submitted"
    accepted = "accepted"


class MemberRole(str, enum.Enum):
    lead = "lead"
    finance = "finance"
    program = "program"
    member = "member"
    donor = "donor"
    auditor = "auditor"


# Member roles a grant may choose as verifiers of results (four eyes); read-only roles never verify.
VERIFYING_ROLE_CHOICES = (MemberRole.lead, MemberRole.program, MemberRole.finance, MemberRole.member)
DEFAULT_VERIFIER_ROLES = "lead,program,finance"
ROLE_LABELS = {
    MemberRole.lead: "grant lead",
    MemberRole.finance: "finance",
    MemberRole.program: "program",
    MemberRole.member: "member",
    MemberRole.donor: "donor",
    MemberRole.auditor: "auditor",
}


class IndirectBase(str, enum.Enum):
    total_direct = "total_direct"  # every direct cost
    modified_direct = "modified_direct"  # direct costs less the categories the grant excludes


INDIRECT_BASE_LABELS = {
    IndirectBase.total_direct: "total direct costs",
    IndirectBase.modified_direct: "modified direct costs",
}


class Funder(Audited, Model):
    __tablename__ = "funders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    # [{"code": "1", "name": "Human Resources"}, ...]; budgets use it for cost categories.
    cost_categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The highest indirect cost rate (%) the funder accepts on its grants; empty: no cap.
    indirect_cap_percent: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))

    grants: Mapped[list[Grant]] = relationship(back_populates="funder")

    def __repr__(self) -> str:
        return self.name

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.name or "").strip():
            errors.add("name", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required"))
        if not is_currency_code(self.default_currency):
            errors.add(
                "default_currency",
                _("'%(code)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", code=self.default_currency),
            )
        for index, category in enumerate(self.cost_categories or []):
            if not isinstance(category, dict) or not category.get("code") or not category.get("name"):
                errors.add("cost_categories", _("item %(number)s needs a code and a name", number=index + 1))
        _check_indirect_cap(session, self, errors)
        check_unique(session, self, errors, "name", "code")
        errors.raise_if_any()


class Grant(Audited, Model):
    __tablename__ = "grants"  # "grant" is a reserved SQL word (FAB.md trap 12)
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="ck_grants_dates"),
        CheckConstraint("amount >= 0", name="ck_grants_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funders.id"), index=True)
    reference: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    recipient: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    status: Mapped[GrantStatus] = mapped_column(enum_column(GrantStatus), default=GrantStatus.active, index=True)
    # ISO 3166 alpha-2 codes, comma separated ("LC,GD"): small, readable, and filterable.
    countries: Mapped[str | None] = mapped_column(String(200), default="")
    description: Mapped[str | None] = mapped_column(Text)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # Indirect costs charged on top of direct spending: a rate (%) on a base, within the funder's cap.
    indirect_rate: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    indirect_base: Mapped[IndirectBase] = mapped_column(
        enum_column(IndirectBase),
        default=IndirectBase.total_direct,
        server_default=IndirectBase.total_direct.value,
    )
    # Cost category codes a modified direct cost base leaves out (equipment, sub-grants...).
    indirect_excluded: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    # Four eyes: the member roles whose holders may verify a result they did not enter ("lead,program").
    verifier_roles: Mapped[str] = mapped_column(
        String(100), default=DEFAULT_VERIFIER_ROLES, server_default=DEFAULT_VERIFIER_ROLES
    )
    # What the grant is for, as OECD DAC 5-digit sector codes (["13040", "15160"]), chosen from IATI's
    # Sector codelist on the grant's IATI page (exports.iati); the budget is split equally between them.
    iati_sectors: Mapped[list[str] | None] = mapped_column(JSON, default=list)

    funder: Mapped[Funder] = relationship(back_populates="grants")
    periods: Mapped[list[ReportingPeriod]] = relationship(
        back_populates="grant", order_by="ReportingPeriod.start_date", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[GrantMembership]] = relationship(back_populates="grant", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return self.reference

    @property
    def country_codes(self) -> list[str]:
        return [c.strip().upper() for c in (self.countries or "").split(",") if c.strip()]

    @property
    def verifying_roles(self) -> list[str]:
        """The member roles (values) that may verify results on this grant."""
        text = self.verifier_roles if self.verifier_roles is not None else DEFAULT_VERIFIER_ROLES
        return [part.strip() for part in text.split(",") if part.strip()]

    @verifying_roles.setter
    def verifying_roles(self, roles: list[str] | tuple[str, ...] | None) -> None:
        chosen = [getattr(role, "value", role) for role in roles or []]
        # Kept in the order people read them, whatever order they were ticked in.
        order = [role.value for role in MemberRole]
        self.verifier_roles = ",".join(
            sorted(dict.fromkeys(chosen), key=lambda r: order.index(r) if r in order else 99)
        )

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        for field in ("reference", "title", "recipient"):
            if not (getattr(self, field) or "").strip():
                errors.add(field, _("is required"))
        if self.funder_id is None and self.funder is None:
            errors.add("funder", _("is required"))
        if not is_currency_code(self.currency):
            errors.add(
                "currency",
                _("'%(code)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", code=self.currency),
            )
        if self.amount is None:
            errors.add("amount", _("is required"))
        elif self.amount < 0:
            errors.add("amount", _("must not be negative"))
        if self.start_date is None:
            errors.add("start_date", _("is required"))
        if self.end_date is None:
            errors.add("end_date", _("is required"))
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors.add("end_date", _("is before the start date"))
        bad = [c for c in self.country_codes if not is_country_code(c)]
        if bad:
            errors.add("countries", _("not ISO 3166 country codes: %(codes)s (e.g. LC, GD)", codes=", ".join(bad)))
        allowed = {role.value for role in VERIFYING_ROLE_CHOICES}
        roles = self.verifying_roles
        wrong = [role for role in roles if role not in allowed]
        if wrong:
            errors.add(
                "verifier_roles",
                _(
                    "%(roles)s cannot verify results; choose among: %(choices)s",
                    roles=", ".join(wrong),
                    choices=", ".join(role.value for role in VERIFYING_ROLE_CHOICES),
                ),
            )
        elif not roles:
            errors.add("verifier_roles", _("choose at least one member role that may verify results"))
        _check_indirect_rate(session, self, errors)
        sectors = self.iati_sectors or []
        odd = [str(code) for code in sectors if not (isinstance(code, str) and code.isdigit() and len(code) == 5)]
        if odd or len({str(code) for code in sectors}) != len(sectors):
            errors.add("iati_sectors", _("choose each sector once from the list of 5-digit DAC sector codes"))
        check_unique(session, self, errors, "reference")
        errors.raise_if_any()


def _plain_percent(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}%"


def _check_indirect_rate(session: Session, grant: Grant, errors: ErrorCollector) -> None:
    """A grant's indirect cost rate: 0–100%, within its funder's cap, on categories the funder has."""
    if grant.indirect_base is None:
        grant.indirect_base = IndirectBase.total_direct
    excluded = [str(c).strip() for c in grant.indirect_excluded or [] if str(c).strip()]
    grant.indirect_excluded = excluded
    funder = grant.funder or (session.get(Funder, grant.funder_id) if grant.funder_id else None)
    if grant.indirect_rate is not None:
        rate = Decimal(grant.indirect_rate)
        cap = funder.indirect_cap_percent if funder is not None else None
        if not 0 <= rate <= 100:
            errors.add("indirect_rate", _("must be a percentage between 0 and 100"))
        elif cap is not None and rate > Decimal(cap):
            errors.add(
                "indirect_rate",
                _(
                    "%(rate)s is above %(funder)s's cap of %(cap)s for indirect costs",
                    rate=_plain_percent(rate),
                    funder=funder.name,
                    cap=_plain_percent(cap),
                )
                if funder is not None
                else _("is above the funder's cap"),
            )
    if excluded and funder is not None:
        codes = {str(c.get("code")) for c in funder.cost_categories or [] if isinstance(c, dict)}
        unknown = [c for c in excluded if codes and c not in codes]
        if unknown:
            errors.add(
                "indirect_excluded",
                _("not %(funder)s's cost categories: %(codes)s", funder=funder.name, codes=", ".join(unknown)),
            )
    if grant.indirect_base == IndirectBase.modified_direct and grant.indirect_rate is not None and not excluded:
        errors.add(
            "indirect_excluded",
            _("a modified direct cost base leaves some cost categories out: choose them, or use total direct costs"),
        )


def _check_indirect_cap(session: Session, funder: Funder, errors: ErrorCollector) -> None:
    """A funder's cap on indirect costs: 0–100%, and not below a rate one of its grants already charges."""
    cap = funder.indirect_cap_percent
    if cap is None:
        return
    if not 0 <= Decimal(cap) <= 100:
        errors.add("indirect_cap_percent", _("must be a percentage between 0 and 100"))
        return
    if funder.id is None:
        return
    above = session.execute(
        select(Grant.reference, Grant.indirect_rate).where(
            Grant.funder_id == funder.id, Grant.indirect_rate > Decimal(cap)
        )
    ).all()
    if above:
        listed = ", ".join(_("%(grant)s charges %(rate)s", grant=ref, rate=_plain_percent(rate)) for ref, rate in above)
        errors.add(
            "indirect_cap_percent",
            _(
                "%(cap)s is below what grants already charge (%(grants)s); lower their rates first",
                cap=_plain_percent(cap),
                grants=listed,
            ),
        )


class GrantMembership(Audited, Model):
    __tablename__ = "grant_memberships"
    __table_args__ = (UniqueConstraint("grant_id", "user_id", name="uq_grant_memberships_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(enum_column(MemberRole), default=MemberRole.member)

    grant: Mapped[Grant] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship("User")

    def __repr__(self) -> str:
        return f"{self.user} on {self.grant}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if self.grant_id is None and self.grant is None:
            errors.add("grant", _("is required"))
        if self.user_id is None and self.user is None:
            errors.add("user", _("is required"))
        grant_id = self.grant_id or (self.grant.id if self.grant else None)
        user_id = self.user_id or (self.user.id if self.user else None)
        if grant_id and user_id:
            clash = session.scalar(
                select(GrantMembership.id).where(
                    GrantMembership.grant_id == grant_id,
                    GrantMembership.user_id == user_id,
                    GrantMembership.id != (self.id or 0),
                )
            )
            if clash:
                errors.add("user", _("is already a member of this grant"))
        errors.raise_if_any()


class ReportingPeriod(Audited, Model):
    __tablename__ = "reporting_periods"
    __table_args__ = (
        UniqueConstraint("grant_id", "label", name="uq_reporting_periods_label"),
        CheckConstraint("end_date >= start_date", name="ck_reporting_periods_dates"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(40))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    report_due: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[PeriodStatus] = mapped_column(enum_column(PeriodStatus), default=PeriodStatus.open)
    # Set when the period's report is published to the donor (grants.closing), cleared when reopened.
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str | None] = mapped_column(String(100))

    grant: Mapped[Grant] = relationship(back_populates="periods")

    def __repr__(self) -> str:
        return f"{self.grant.reference} {self.label}" if self.grant else self.label

    @property
    def closing(self) -> int:
        """The period id, for list pages that render it as a link to the period page (grants.closing)."""
        return self.id

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.label or "").strip():
            errors.add("label", _("is required"))
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", _("is required"))
        if self.start_date is None:
            errors.add("start_date", _("is required"))
        if self.end_date is None:
            errors.add("end_date", _("is required"))
        if self.start_date and self.end_date:
            if self.end_date < self.start_date:
                errors.add("end_date", _("is before the start date"))
            if grant and (self.start_date < grant.start_date or self.end_date > grant.end_date):
                errors.add(
                    "start_date",
                    _(
                        "the period must lie within the grant (%(start)s to %(end)s)",
                        start=day(grant.start_date),
                        end=day(grant.end_date),
                    ),
                )
        if self.report_due and self.end_date and self.report_due < self.end_date:
            errors.add("report_due", _("is before the end of the period"))
        if grant is not None and self.label:
            clash = session.scalar(
                select(ReportingPeriod.id).where(
                    ReportingPeriod.grant_id == grant.id,
                    ReportingPeriod.label == self.label,
                    ReportingPeriod.id != (self.id or 0),
                )
            )
            if clash:
                errors.add(
                    "label", _("'%(label)s' is already a period of %(grant)s", label=self.label, grant=grant.reference)
                )
        errors.raise_if_any()
