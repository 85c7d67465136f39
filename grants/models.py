"""Funder, Grant, GrantMembership and ReportingPeriod: typed SQLAlchemy 2 models."""

from __future__ import annotations

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
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.errors import ErrorCollector
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

    grants: Mapped[list[Grant]] = relationship(back_populates="funder")

    def __repr__(self) -> str:
        return self.name

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.name or "").strip():
            errors.add("name", "is required")
        if not (self.code or "").strip():
            errors.add("code", "is required")
        if not is_currency_code(self.default_currency):
            errors.add(
                "default_currency",
                f"'{self.default_currency}' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)",
            )
        for index, category in enumerate(self.cost_categories or []):
            if not isinstance(category, dict) or not category.get("code") or not category.get("name"):
                errors.add("cost_categories", f"item {index + 1} needs a code and a name")
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

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        for field in ("reference", "title", "recipient"):
            if not (getattr(self, field) or "").strip():
                errors.add(field, "is required")
        if self.funder_id is None and self.funder is None:
            errors.add("funder", "is required")
        if not is_currency_code(self.currency):
            errors.add(
                "currency",
                f"'{self.currency}' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)",
            )
        if self.amount is None:
            errors.add("amount", "is required")
        elif self.amount < 0:
            errors.add("amount", "must not be negative")
        if self.start_date is None:
            errors.add("start_date", "is required")
        if self.end_date is None:
            errors.add("end_date", "is required")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors.add("end_date", "is before the start date")
        bad = [c for c in self.country_codes if not is_country_code(c)]
        if bad:
            errors.add("countries", f"not ISO 3166 country codes: {', '.join(bad)} (e.g. LC, GD)")
        check_unique(session, self, errors, "reference")
        errors.raise_if_any()


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
            errors.add("grant", "is required")
        if self.user_id is None and self.user is None:
            errors.add("user", "is required")
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
                errors.add("user", "is already a member of this grant")
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

    grant: Mapped[Grant] = relationship(back_populates="periods")

    def __repr__(self) -> str:
        return f"{self.grant.reference} {self.label}" if self.grant else self.label

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.label or "").strip():
            errors.add("label", "is required")
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", "is required")
        if self.start_date is None:
            errors.add("start_date", "is required")
        if self.end_date is None:
            errors.add("end_date", "is required")
        if self.start_date and self.end_date:
            if self.end_date < self.start_date:
                errors.add("end_date", "is before the start date")
            if grant and (self.start_date < grant.start_date or self.end_date > grant.end_date):
                errors.add(
                    "start_date",
                    f"the period must lie within the grant ({grant.start_date} to {grant.end_date})",
                )
        if self.report_due and self.end_date and self.report_due < self.end_date:
            errors.add("report_due", "is before the end of the period")
        if grant is not None and self.label:
            clash = session.scalar(
                select(ReportingPeriod.id).where(
                    ReportingPeriod.grant_id == grant.id,
                    ReportingPeriod.label == self.label,
                    ReportingPeriod.id != (self.id or 0),
                )
            )
            if clash:
                errors.add("label", f"'{self.label}' is already a period of {grant.reference}")
        errors.raise_if_any()
