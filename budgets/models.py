"""Budget lines, allocations per period, versions, revisions, expenditures, exchange rates, rate policies, variance rules, imports, Odoo links."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core import clock
from core.errors import ErrorCollector
from core.formatting import N_, label
from core.formatting import gettext as _
from core.money import MONEY, RATE, is_currency_code, quantize_money
from core.records import Audited, enum_column
from grants.models import Funder, Grant, ReportingPeriod
from grants.services import period_for_date


def to_cents(amount: Decimal) -> int:
    """Whole cents of a 2-decimal amount. SQL sums integer cents: exact on SQLite
    (which would otherwise add NUMERIC values as floating point) and PostgreSQL alike."""
    return int(quantize_money(amount) * 100)


class RateMethod(str, enum.Enum):
    fixed = "fixed"
    transaction_date = "transaction_date"
    period_average = "period_average"


class ExpenditureSource(str, enum.Enum):
    manual = "manual"
    import_ = "import"
    odoo = "odoo"


class RevisionStatus(str, enum.Enum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"


class VarianceBasis(str, enum.Enum):
    category_budget = "category_budget"  # overspend above N% of the category's (or line's) own budget
    total_budget = "total_budget"  # overspend above N% of the grant's total budget


class VarianceDirection(str, enum.Enum):
    over = "over"  # overspending only (the rule's meaning before under-spending could be flagged)
    under = "under"
    both = "both"


class SplitMethod(str, enum.Enum):
    percent = "percent"
    amount = "amount"
    key = "key"


class ImportStatus(str, enum.Enum):
    previewed = "previewed"
    rejected = "rejected"
    imported = "imported"


def _funder_categories(session: Session, grant_id: int | None) -> list[dict[str, Any]] | None:
    if grant_id is None:
        return None
    return session.scalar(
        select(Funder.cost_categories).join(Grant, Grant.funder_id == Funder.id).where(Grant.id == grant_id)
    )


def retired_codes(categories: list[dict[str, Any]] | None) -> set[str]:
    """Codes of the categories a funder retired: kept by the lines that use them, offered to no new line."""
    return {str(c.get("code")) for c in categories or [] if c.get("retired")}


def category_name(categories: list[dict[str, Any]] | None, code: str | None) -> str:
    for category in categories or []:
        if str(category.get("code")) == str(code):
            return str(category.get("name"))
    return str(code or "")


class BudgetLine(Audited, Model):
    __tablename__ = "budget_lines"
    __table_args__ = (
        UniqueConstraint("grant_id", "code", name="uq_budget_lines_code"),
        Index("ix_budget_lines_grant_category", "grant_id", "cost_category"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(300))
    # A code from the funder's cost_categories list (e.g. Global Fund cost grouping "2").
    cost_category: Mapped[str] = mapped_column(String(40))
    module: Mapped[str | None] = mapped_column(String(120))
    intervention: Mapped[str | None] = mapped_column(String(120))
    notes: Mapped[str | None] = mapped_column(Text)
    # The line's agreed total in the grant's currency; empty for a line planned period by period only.
    total: Mapped[Decimal | None] = mapped_column(MONEY)

    grant: Mapped[Grant] = relationship()
    allocations: Mapped[list[BudgetAllocation]] = relationship(
        back_populates="line", cascade="all, delete-orphan", order_by="BudgetAllocation.period_id"
    )

    def __repr__(self) -> str:
        return f"{self.code} {self.description}" if self.description else (self.code or "")

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant_id = self.grant_id or (self.grant.id if self.grant else None)
        if grant_id is None:
            errors.add("grant", _("is required"))
        if not (self.code or "").strip():
            errors.add("code", _("is required"))
        if not (self.description or "").strip():
            errors.add("description", _("is required"))
        categories = _funder_categories(session, grant_id)
        codes = [str(c.get("code")) for c in categories or []]
        if not (self.cost_category or "").strip():
            errors.add("cost_category", _("is required"))
        elif codes and str(self.cost_category) not in codes:
            errors.add(
                "cost_category",
                _(
                    "'%(category)s' is not one of the funder's cost categories: %(codes)s",
                    category=self.cost_category,
                    codes=", ".join(codes),
                ),
            )
        elif str(self.cost_category) in retired_codes(categories) and self._category_changed():
            errors.add(
                "cost_category",
                _(
                    "%(category)s is retired; choose a category still in use",
                    category=category_name(categories, self.cost_category),
                ),
            )
        if self.total is not None and Decimal(self.total) < 0:
            errors.add("total", _("must not be negative"))
        if grant_id and self.code:
            clash = session.scalar(
                select(BudgetLine.id).where(
                    BudgetLine.grant_id == grant_id, BudgetLine.code == self.code, BudgetLine.id != (self.id or 0)
                )
            )
            if clash:
                errors.add("code", _("'%(code)s' is already a budget line of this grant", code=self.code))
        errors.raise_if_any()

    def _category_changed(self) -> bool:
        """A new line, or one moved to another category: only these may not take a retired category."""
        state: Any = inspect(self)
        return state.transient or state.pending or state.attrs.cost_category.history.has_changes()


class BudgetAllocation(Audited, Model):
    """The planned amount of one budget line in one reporting period, in the grant's currency."""

    __tablename__ = "budget_allocations"
    __table_args__ = (
        UniqueConstraint("line_id", "period_id", name="uq_budget_allocations_line_period"),
        CheckConstraint("amount >= 0", name="ck_budget_allocations_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: uq_budget_allocations_line_period starts with line_id (one index fewer to
    # fill for each of the million planned amounts of a large budget file; migration 0015).
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"))
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"), index=True)
    # Denormalised from the line: row-level filters and report sums need no join.
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)

    line: Mapped[BudgetLine] = relationship(back_populates="allocations")
    period: Mapped[ReportingPeriod] = relationship()
    grant: Mapped[Grant] = relationship()

    def __repr__(self) -> str:
        line = self.line.code if self.line else self.line_id
        period = self.period.label if self.period else self.period_id
        return f"{line} {period}: {self.amount}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        line = self.line or (session.get(BudgetLine, self.line_id) if self.line_id else None)
        period = self.period or (session.get(ReportingPeriod, self.period_id) if self.period_id else None)
        if line is None:
            errors.add("line", _("is required"))
        if period is None:
            errors.add("period", _("is required"))
        line_grant_id = (line.grant_id or (line.grant.id if line.grant else None)) if line is not None else None
        if line is not None and self.grant_id != line_grant_id:
            errors.add("line", _("line %(code)s belongs to another grant than this planned amount", code=line.code))
        if line is not None and period is not None and period.grant_id != line_grant_id:
            errors.add(
                "period",
                _(
                    "%(period)s is a period of another grant, not of line %(code)s's grant",
                    period=period.label,
                    code=line.code,
                ),
            )
        if self.amount is None:
            errors.add("amount", _("is required"))
        elif self.amount < 0:
            errors.add("amount", _("must not be negative"))
        elif self.amount_cents is None or int(self.amount_cents) != to_cents(Decimal(self.amount)):
            errors.add("amount", _("changed without its cents being redone; save it through budgets.services"))
        errors.raise_if_any()


class BudgetVersion(Model):
    """A frozen copy of a grant's whole budget, made when a budget is agreed or a revision approved."""

    __tablename__ = "budget_versions"
    __table_args__ = (UniqueConstraint("grant_id", "number", name="uq_budget_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(100))
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("budget_revisions.id", ondelete="SET NULL"))
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))

    grant: Mapped[Grant] = relationship()
    allocations: Mapped[list[BudgetVersionAllocation]] = relationship(
        back_populates="version", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"v{self.number}"


class BudgetVersionAllocation(Model):
    __tablename__ = "budget_version_allocations"
    __table_args__ = (UniqueConstraint("version_id", "line_id", "period_id", name="uq_budget_version_allocations"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("budget_versions.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    amount_cents: Mapped[int] = mapped_column(BigInteger)

    version: Mapped[BudgetVersion] = relationship(back_populates="allocations")
    line: Mapped[BudgetLine] = relationship()
    period: Mapped[ReportingPeriod] = relationship()


class BudgetRevision(Audited, Model):
    """A reallocation request: money moves between lines; approval changes the planned amounts."""

    __tablename__ = "budget_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[RevisionStatus] = mapped_column(
        enum_column(RevisionStatus), default=RevisionStatus.draft, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_note: Mapped[str | None] = mapped_column(Text)
    # Filled in when approved: the budget version the approval produced.
    version_number: Mapped[int | None] = mapped_column(Integer)

    grant: Mapped[Grant] = relationship()
    items: Mapped[list[BudgetRevisionItem]] = relationship(
        back_populates="revision", cascade="all, delete-orphan", order_by="BudgetRevisionItem.id"
    )

    def __repr__(self) -> str:
        return f"Revision {self.id}: {self.title}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if self.grant_id is None and self.grant is None:
            errors.add("grant", _("is required"))
        if not (self.title or "").strip():
            errors.add("title", _("is required"))
        if not (self.justification or "").strip():
            errors.add("justification", _("is required: say why the money moves"))
        errors.raise_if_any()


class BudgetRevisionItem(Audited, Model):
    """Move ``amount`` of planned money from one line and period to another line, another period, or both.

    ``to_period`` empty: the money stays in ``period`` (a move between lines).
    """

    __tablename__ = "budget_revision_items"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_budget_revision_items_amount"),
        CheckConstraint(
            "from_line_id <> to_line_id OR (to_period_id IS NOT NULL AND to_period_id <> period_id)",
            name="ck_budget_revision_items_lines",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("budget_revisions.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    from_line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), index=True)
    to_line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"))
    # The period the money moves to; empty: the same period (a move between lines only).
    to_period_id: Mapped[int | None] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)

    revision: Mapped[BudgetRevision] = relationship(back_populates="items")
    grant: Mapped[Grant] = relationship()
    from_line: Mapped[BudgetLine] = relationship(foreign_keys=[from_line_id])
    to_line: Mapped[BudgetLine] = relationship(foreign_keys=[to_line_id])
    period: Mapped[ReportingPeriod] = relationship(foreign_keys=[period_id])
    to_period: Mapped[ReportingPeriod | None] = relationship(foreign_keys=[to_period_id])

    def __repr__(self) -> str:
        source = f"{self.from_line.code if self.from_line else '?'} {self.period.label if self.period else ''}".strip()
        target = self.to_line.code if self.to_line else "?"
        if self.to_period is not None and self.to_period is not self.period:
            target = f"{target} {self.to_period.label}"
        return f"{self.amount} from {source} to {target}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        revision = self.revision or (session.get(BudgetRevision, self.revision_id) if self.revision_id else None)
        from_line = self.from_line or (session.get(BudgetLine, self.from_line_id) if self.from_line_id else None)
        to_line = self.to_line or (session.get(BudgetLine, self.to_line_id) if self.to_line_id else None)
        period = self.period or (session.get(ReportingPeriod, self.period_id) if self.period_id else None)
        if revision is None:
            errors.add("revision", _("is required"))
        else:
            if self.grant_id != (revision.grant_id or (revision.grant.id if revision.grant else None)):
                errors.add("revision", _("belongs to another grant than this move"))
            state = session.get(BudgetRevision, revision.id) if revision.id else None
            if state is not None and state.status in (RevisionStatus.approved, RevisionStatus.rejected):
                errors.add(
                    "revision", _("is %(status)s; a decided revision cannot change", status=label(state.status).lower())
                )
        for field, line in (("from_line", from_line), ("to_line", to_line)):
            if line is None:
                errors.add(field, _("is required"))
            elif self.grant_id is not None and line.grant_id != self.grant_id:
                errors.add(field, _("budget line %(code)s belongs to another grant", code=line.code))
        to_period = self.to_period or (session.get(ReportingPeriod, self.to_period_id) if self.to_period_id else None)
        if to_period is not None and to_period is period:
            to_period = self.to_period = None  # "to the same period" is simply a move between lines
        if from_line is not None and to_line is not None and from_line is to_line and to_period is None:
            errors.add(
                "to_line", _("must differ from the line the money comes from, unless it moves to another period")
            )
        if period is None:
            errors.add("period", _("is required"))
        elif self.grant_id is not None and period.grant_id != self.grant_id:
            errors.add("period", _("%(period)s is a period of another grant", period=period.label))
        if to_period is not None and self.grant_id is not None and to_period.grant_id != self.grant_id:
            errors.add("to_period", _("%(period)s is a period of another grant", period=to_period.label))
        if self.amount is None:
            errors.add("amount", _("is required"))
        elif self.amount <= 0:
            errors.add("amount", _("must be more than zero"))
        errors.raise_if_any()


class ExchangeRate(Audited, Model):
    """On ``rate_date``, 1 ``from_currency`` = ``rate`` ``to_currency``."""

    __tablename__ = "exchange_rates"
    __table_args__ = (
        UniqueConstraint("rate_date", "from_currency", "to_currency", name="uq_exchange_rates_day_pair"),
        CheckConstraint("rate > 0", name="ck_exchange_rates_rate"),
        Index("ix_exchange_rates_pair_date", "from_currency", "to_currency", "rate_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rate_date: Mapped[date] = mapped_column(Date)
    from_currency: Mapped[str] = mapped_column(String(3))
    to_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(RATE)
    source: Mapped[str | None] = mapped_column(String(120))

    def __repr__(self) -> str:
        return f"{self.rate_date}: 1 {self.from_currency} = {self.rate} {self.to_currency}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if self.rate_date is None:
            errors.add("rate_date", _("is required"))
        for field in ("from_currency", "to_currency"):
            value = getattr(self, field) or ""
            if not is_currency_code(value):
                errors.add(
                    field, _("'%(currency)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", currency=value)
                )
        if self.from_currency and self.from_currency == self.to_currency:
            errors.add("to_currency", _("must differ from the currency converted from"))
        if self.rate is None:
            errors.add("rate", _("is required"))
        elif Decimal(self.rate) <= 0:
            errors.add("rate", _("must be more than zero"))
        if self.rate_date and self.from_currency and self.to_currency:
            clash = session.scalar(
                select(ExchangeRate.id).where(
                    ExchangeRate.rate_date == self.rate_date,
                    ExchangeRate.from_currency == self.from_currency,
                    ExchangeRate.to_currency == self.to_currency,
                    ExchangeRate.id != (self.id or 0),
                )
            )
            if clash:
                errors.add(
                    "rate_date",
                    _(
                        "a %(from_currency)s→%(to_currency)s rate for %(date)s exists already",
                        from_currency=self.from_currency,
                        to_currency=self.to_currency,
                        date=str(self.rate_date),
                    ),
                )
        errors.raise_if_any()


class RatePolicy(Audited, Model):
    """How a grant converts foreign-currency spending into its own currency."""

    __tablename__ = "rate_policies"
    __table_args__ = (CheckConstraint("fixed_rate IS NULL OR fixed_rate > 0", name="ck_rate_policies_rate"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    method: Mapped[RateMethod] = mapped_column(enum_column(RateMethod), default=RateMethod.transaction_date)
    # Fixed method: 1 unit of the grant's currency = fixed_rate units of fixed_currency (USD→XCD 2.70).
    fixed_currency: Mapped[str | None] = mapped_column(String(3))
    fixed_rate: Mapped[Decimal | None] = mapped_column(RATE)
    notes: Mapped[str | None] = mapped_column(Text)

    grant: Mapped[Grant] = relationship()

    def __repr__(self) -> str:
        if self.method == RateMethod.fixed:
            return f"fixed: 1 {self.grant.currency if self.grant else ''} = {self.fixed_rate} {self.fixed_currency}"
        return self.method.value.replace("_", " ") if self.method else ""

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", _("is required"))
        if self.method == RateMethod.fixed:
            currency = self.fixed_currency or ""
            if not is_currency_code(currency):
                errors.add(
                    "fixed_currency", _("'%(currency)s' is not an ISO 4217 currency code (e.g. XCD)", currency=currency)
                )
            elif grant is not None and currency == grant.currency:
                errors.add(
                    "fixed_currency",
                    _("must differ from the grant's own currency %(currency)s", currency=grant.currency),
                )
            if self.fixed_rate is None or Decimal(self.fixed_rate) <= 0:
                errors.add("fixed_rate", _("a fixed rate above zero is required for the fixed method"))
        if grant is not None:
            clash = session.scalar(
                select(RatePolicy.id).where(RatePolicy.grant_id == grant.id, RatePolicy.id != (self.id or 0))
            )
            if clash:
                errors.add("grant", _("%(grant)s already has a rate policy; edit it instead", grant=grant.reference))
        errors.raise_if_any()


class BudgetImport(Audited, Model):
    """One uploaded file of actuals: its preview, the confirmed mapping, and the outcome."""

    __tablename__ = "budget_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Held only until the import succeeds, then cleared: spending files can name people.
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus), default=ImportStatus.previewed)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    imported_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 7, "column": "Amount", "problem": "'abc' is not a number"}, ...]
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(100))

    grant: Mapped[Grant] = relationship()

    def __repr__(self) -> str:
        return f"{self.filename} ({self.status.value if self.status else ''})"

    @property
    def error_count(self) -> int:
        return len(self.errors or [])


class BudgetPlanImport(Model):
    """One uploaded budget file: its rows parsed once, the confirmed mapping, and the outcome.

    Not audited itself (its parsed rows would flood the trail); the lines and planned
    amounts it writes are.
    """

    __tablename__ = "budget_plan_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(10))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus), default=ImportStatus.previewed)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Every data row as text, parsed once at upload; cleared once imported.
    rows: Mapped[list[list[str]] | None] = mapped_column(JSON, deferred=True)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    lines_added: Mapped[int] = mapped_column(Integer, default=0)
    lines_changed: Mapped[int] = mapped_column(Integer, default=0)
    lines_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 7, "column": "Total", "problem": "'abc' is not a number"}, ...]
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Set when the grant's budget was already approved: the file became this draft revision.
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("budget_revisions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(100))

    grant: Mapped[Grant] = relationship()
    revision: Mapped[BudgetRevision | None] = relationship()

    def __repr__(self) -> str:
        return f"{self.filename} ({self.status.value if self.status else ''})"

    @property
    def error_count(self) -> int:
        return len(self.errors or [])


class Expenditure(Audited, Model):
    """Money spent against a budget line, with its conversion into the grant's currency."""

    __tablename__ = "expenditures"
    __table_args__ = (
        UniqueConstraint("source", "external_ref", name="uq_expenditures_source_ref"),
        # Report sums read only this index (covering) on both engines.
        Index("ix_expenditures_report", "grant_id", "line_id", "period_id", "spent_on", "converted_cents"),
        Index("ix_expenditures_grant_date", "grant_id", "spent_on"),
        CheckConstraint("amount <> 0", name="ck_expenditures_amount"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="RESTRICT"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="RESTRICT"), index=True)
    spent_on: Mapped[date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500), default="")
    source: Mapped[ExpenditureSource] = mapped_column(
        enum_column(ExpenditureSource), default=ExpenditureSource.manual, index=True
    )
    external_ref: Mapped[str | None] = mapped_column(String(120))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("budget_imports.id", ondelete="SET NULL"), index=True)
    # The conversion into the grant's currency, fixed at entry and redone when the policy or a rate changes.
    converted_amount: Mapped[Decimal] = mapped_column(MONEY)
    converted_cents: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[Decimal] = mapped_column(RATE)  # grant-currency units per unit of ``currency``
    rate_source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    # A part of a shared cost (rent split over grants): changed only through its shared cost.
    shared_cost_id: Mapped[int | None] = mapped_column(ForeignKey("shared_costs.id", ondelete="CASCADE"), index=True)
    # The percentage, amount or key weight this part was split by (None: not shared).
    share: Mapped[Decimal | None] = mapped_column(Numeric(16, 4))

    # selectin: a list page loads its rows' grants and lines in one query each, not one per row.
    grant: Mapped[Grant] = relationship(lazy="selectin")
    line: Mapped[BudgetLine] = relationship(lazy="selectin")
    period: Mapped[ReportingPeriod] = relationship()
    shared_cost: Mapped[SharedCost | None] = relationship(back_populates="parts")

    def __repr__(self) -> str:
        return f"{self.spent_on} {self.amount} {self.currency} ({self.line.code if self.line else ''})"

    @property
    def is_shared(self) -> str:
        """What a reader of this grant may know of a shared cost: that this is the grant's part, nothing more."""
        return _("this grant's part of a shared cost") if self.shared_cost_id else ""

    def check_entry(self, session: Session) -> tuple[Grant, ReportingPeriod]:
        """The grant and reporting period of what a person entered; DomainValidationError naming each wrong field.

        The write operation calls it before converting (a conversion needs both),
        and ``validate`` at every flush.
        """
        errors = ErrorCollector()
        with session.no_autoflush:
            line = self.line or (session.get(BudgetLine, self.line_id) if self.line_id else None)
            if line is None:
                errors.add("line", _("is required: choose the budget line the money was spent on"))
                errors.raise_if_any()
            assert line is not None
            line_grant_id = line.grant_id or (line.grant.id if line.grant else None)
            grant_id = self.grant_id or (self.grant.id if self.grant else None)
            if grant_id is not None and grant_id != line_grant_id:
                errors.add("line", _("budget line %(code)s belongs to another grant", code=line.code))
                errors.raise_if_any()
            grant = line.grant or session.get(Grant, line_grant_id)
            period = spending_problems(
                errors,
                grant,
                self.currency,
                self.amount,
                self.spent_on,
                lambda day: period_for_date(session, grant.id, day) if grant is not None else None,
            )
            if self.external_ref is not None and self.source is not None:
                clash = session.scalar(
                    select(Expenditure.id).where(
                        Expenditure.source == self.source,
                        Expenditure.external_ref == self.external_ref,
                        Expenditure.id != (self.id or 0),
                    )
                )
                if clash:
                    errors.add("external_ref", ref_clash(self.external_ref, self.source))
        errors.raise_if_any()
        assert grant is not None and period is not None
        return grant, period

    def validate(self, session: Session) -> None:
        # Only checks: the period and the conversion are derived once, by budgets.services.
        _grant, period = self.check_entry(session)
        errors = ErrorCollector()
        if (self.period_id or (self.period.id if self.period else None)) != period.id:
            errors.add(
                "spent_on",
                _(
                    "%(date)s is in period %(period)s, not the period recorded; save it through budgets.services",
                    date=str(self.spent_on),
                    period=period.label,
                ),
            )
        if self.converted_amount is None or self.rate is None or not self.rate_source or self.converted_cents is None:
            errors.add(
                "currency", _("has no conversion into the grant's currency; record spending through budgets.services")
            )
        elif not _conversion_consistent(Decimal(self.amount), Decimal(self.rate), Decimal(self.converted_amount)) or (
            int(self.converted_cents) != to_cents(Decimal(self.converted_amount))
        ):
            errors.add("amount", _("changed without its conversion being redone; save it through budgets.services"))
        cost = self.shared_cost
        if cost is not None and cost.amount is not None and self in cost.parts:
            whole = sum((quantize_money(Decimal(p.amount)) for p in cost.parts), Decimal(0))
            if whole != quantize_money(Decimal(cost.amount)) or self.currency != cost.currency:
                errors.add(
                    "amount",
                    _("is part of a shared cost whose parts must add up to it; change the shared cost instead"),
                )
        errors.raise_if_any()


class Said(str):
    """A message in the reader's language that keeps its English message id and values.

    What a stored problem needs (an import's row errors keep the id and values, see
    ``budgets.imports._said`` and ``problem_text``) to be shown again in each reader's language.
    """

    message: str
    values: dict[str, Any]

    def __new__(cls, message: str, **values: Any) -> Said:
        said = super().__new__(cls, _(message, **values))
        said.message = message
        said.values = values
        return said


def spending_problems(
    errors: ErrorCollector,
    grant: Grant | None,
    currency: str | None,
    amount: Any,
    spent_on: date | None,
    period_of: Callable[[date], ReportingPeriod | None],
) -> ReportingPeriod | None:
    """The rules every expenditure keeps (currency, amount, date in the grant and in a period), by field.

    ``Expenditure.check_entry`` and the bulk writer (``budgets.bulk``) both apply them;
    returns the reporting period of ``spent_on`` when it has one.
    """
    if not is_currency_code(currency or ""):
        errors.add(
            "currency",
            Said(N_("'%(currency)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)"), currency=currency),
        )
    if amount is None:
        errors.add("amount", Said(N_("is required")))
    else:
        try:
            if quantize_money(Decimal(amount)) == 0:
                errors.add("amount", Said(N_("must not be zero (a negative amount records a refund)")))
        except Exception:
            errors.add("amount", Said(N_("'%(amount)s' is not a number"), amount=str(amount)))
    period = None
    if spent_on is None:
        errors.add("spent_on", Said(N_("is required")))
    elif grant is not None:
        if not grant.start_date <= spent_on <= grant.end_date:
            errors.add(
                "spent_on",
                Said(
                    N_("%(date)s is outside grant %(grant)s (%(start)s to %(end)s)"),
                    date=str(spent_on),
                    grant=grant.reference,
                    start=str(grant.start_date),
                    end=str(grant.end_date),
                ),
            )
        else:
            period = period_of(spent_on)
            if period is None:
                errors.add(
                    "spent_on",
                    Said(
                        N_("%(date)s falls in no reporting period of %(grant)s; create its periods first"),
                        date=str(spent_on),
                        grant=grant.reference,
                    ),
                )
    return period


def ref_clash(external_ref: str, source: ExpenditureSource) -> str:
    """What is said of an external reference recorded before from the same source."""
    return Said(
        N_("'%(reference)s' was already recorded from %(source)s"),
        reference=external_ref,
        source=label(source).lower(),
    )


def _conversion_consistent(amount: Decimal, rate: Decimal, converted: Decimal) -> bool:
    """converted = amount × rate, give or take rounding to the cent and the stored rate's 10 decimals."""
    with localcontext() as ctx:
        ctx.prec = 34
        return abs(converted - amount * rate) <= Decimal("0.005") + abs(amount) * Decimal("1E-10")


class AllocationKey(Audited, Model):
    """A saved way of sharing costs over grants' budget lines, e.g. rent 60/40 by floor space."""

    __tablename__ = "allocation_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # What the weights measure, in words: "floor space (m²)", "hours per week".
    basis: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)

    shares: Mapped[list[AllocationKeyShare]] = relationship(
        back_populates="key", cascade="all, delete-orphan", order_by="AllocationKeyShare.id"
    )

    def __repr__(self) -> str:
        return self.name or ""

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        self.name = (self.name or "").strip()
        if not self.name:
            errors.add("name", _("is required, e.g. Rent by floor space"))
        else:
            clash = session.scalar(
                select(AllocationKey.id).where(AllocationKey.name == self.name, AllocationKey.id != (self.id or 0))
            )
            if clash:
                errors.add("name", _("'%(name)s' is already an allocation key", name=self.name))
        errors.raise_if_any()


class AllocationKeyShare(Audited, Model):
    """One budget line's weight in an allocation key (60 of 100 m², 3 of 5 staff)."""

    __tablename__ = "allocation_key_shares"
    __table_args__ = (
        UniqueConstraint("key_id", "line_id", name="uq_allocation_key_shares_line"),
        CheckConstraint("weight > 0", name="ck_allocation_key_shares_weight"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("allocation_keys.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), index=True)
    # Denormalised from the line: who may see this share is decided by its grant.
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    weight: Mapped[Decimal] = mapped_column(Numeric(16, 4))

    key: Mapped[AllocationKey] = relationship(back_populates="shares")
    line: Mapped[BudgetLine] = relationship()
    grant: Mapped[Grant] = relationship()

    def __repr__(self) -> str:
        return f"{self.line.code if self.line else self.line_id}: {self.weight}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        line = self.line or (session.get(BudgetLine, self.line_id) if self.line_id else None)
        if line is None:
            errors.add("line", _("is required"))
        elif self.grant_id != (line.grant_id or (line.grant.id if line.grant else None)):
            errors.add("line", _("budget line %(code)s belongs to another grant than this share", code=line.code))
        if self.weight is None or Decimal(self.weight) <= 0:
            errors.add("weight", _("must be more than zero"))
        errors.raise_if_any()


class SharedCost(Audited, Model):
    """One expenditure shared over several grants' budget lines; its parts are ordinary expenditures.

    Each part is an ``Expenditure`` on its own grant's line, converted into that grant's
    currency under that grant's rate policy: budget vs actual, the ledger, exports and the
    grant rule see a part exactly like any other spending of its grant. The parts add up
    to ``amount`` to the cent (``budgets.sharing``).
    """

    __tablename__ = "shared_costs"
    __table_args__ = (CheckConstraint("amount <> 0", name="ck_shared_costs_amount"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spent_on: Mapped[date] = mapped_column(Date, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(500))
    method: Mapped[SplitMethod] = mapped_column(enum_column(SplitMethod), default=SplitMethod.percent)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("allocation_keys.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=clock.now)
    created_by: Mapped[str | None] = mapped_column(String(100))

    key: Mapped[AllocationKey | None] = relationship()
    parts: Mapped[list[Expenditure]] = relationship(
        back_populates="shared_cost", cascade="all, delete-orphan", order_by="Expenditure.id"
    )

    def __repr__(self) -> str:
        return f"{self.spent_on} {self.description}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        if not (self.description or "").strip():
            errors.add("description", _("is required: say what was paid for, e.g. Office rent July"))
        if self.spent_on is None:
            errors.add("spent_on", _("is required"))
        if not is_currency_code(self.currency or ""):
            errors.add(
                "currency",
                _("'%(currency)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", currency=self.currency),
            )
        if self.amount is None or quantize_money(Decimal(self.amount)) == 0:
            errors.add("amount", _("must not be zero (a negative amount records a refund)"))
        elif self.parts:
            whole = sum((quantize_money(Decimal(p.amount)) for p in self.parts), Decimal(0))
            if whole != quantize_money(Decimal(self.amount)):
                errors.add(
                    "amount",
                    _(
                        "the parts add up to %(parts)s, not %(amount)s",
                        parts=str(whole),
                        amount=str(quantize_money(Decimal(self.amount))),
                    ),
                )
        if self.method == SplitMethod.key and self.key_id is None and self.key is None:
            errors.add("key", _("choose the allocation key this cost follows"))
        errors.raise_if_any()


class VarianceRule(Audited, Model):
    """A funder's rule for spending that needs its approval: overspend above a threshold."""

    __tablename__ = "variance_rules"
    __table_args__ = (CheckConstraint("threshold_percent > 0", name="ck_variance_rules_threshold"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    funder_id: Mapped[int] = mapped_column(ForeignKey("funders.id", ondelete="CASCADE"), index=True)
    # A cost category code, or empty for every category.
    cost_category: Mapped[str | None] = mapped_column(String(40))
    basis: Mapped[VarianceBasis] = mapped_column(enum_column(VarianceBasis), default=VarianceBasis.category_budget)
    threshold_percent: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    description: Mapped[str | None] = mapped_column(String(300))
    # Which variances the rule flags: overspending, under-spending or both.
    direction: Mapped[VarianceDirection] = mapped_column(
        enum_column(VarianceDirection), default=VarianceDirection.over, server_default=VarianceDirection.over.value
    )

    funder: Mapped[Funder] = relationship()

    def __repr__(self) -> str:
        scope = f"category {self.cost_category}" if self.cost_category else "every category"
        basis = "of its budget" if self.basis == VarianceBasis.category_budget else "of the total budget"
        way = {
            VarianceDirection.under: "under-spending",
            VarianceDirection.both: "over- or under-spending",
        }.get(self.direction, "overspending")  # type: ignore[arg-type]
        return f"{scope}: {way} beyond {self.threshold_percent}% {basis}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        funder = self.funder or (session.get(Funder, self.funder_id) if self.funder_id else None)
        if funder is None:
            errors.add("funder", _("is required"))
        if self.threshold_percent is None:
            errors.add("threshold_percent", _("is required"))
        elif not (0 < Decimal(self.threshold_percent) <= 1000):
            errors.add("threshold_percent", _("must be more than 0 and at most 1000"))
        if self.cost_category == "":
            self.cost_category = None
        if funder is not None and self.cost_category:
            codes = [str(c.get("code")) for c in funder.cost_categories or []]
            if codes and self.cost_category not in codes:
                errors.add(
                    "cost_category",
                    _(
                        "'%(category)s' is not one of %(funder)s's categories: %(codes)s",
                        category=self.cost_category,
                        funder=funder.code,
                        codes=", ".join(codes),
                    ),
                )
        errors.raise_if_any()


class SyncStatus(str, enum.Enum):
    never = "never"
    ok = "ok"
    refused = "refused"
    failed = "failed"


class OdooAmountBasis(str, enum.Enum):
    """The amount of an Odoo line the grant's rate policy converts into the grant's currency."""

    company = "company"  # Odoo's analytic amount, in the company currency, at Odoo's own rate
    bill = "bill"  # the bill's own currency and amount (the journal item's amount_currency)


class OdooLink(Audited, Model):
    """Where a grant's actual spending lives in Odoo: one analytic account, and how far the sync got.

    The connection itself (host, database, login, API key) comes from the
    operator's settings only (``budgets.odoo_sync.settings_from_env``): nothing secret is
    stored here, so nothing secret can reach the audit trail or an export.
    """

    __tablename__ = "odoo_links"
    __table_args__ = (CheckConstraint("analytic_account_id > 0", name="ck_odoo_links_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    analytic_account_id: Mapped[int] = mapped_column(Integer)
    analytic_account_name: Mapped[str | None] = mapped_column(String(200))
    # None: the "project" plan, whose accounts Odoo 17+ keeps in ``account_id``;
    # any other plan has its own x_plan<id>_id column, found by this name (ODOO.md).
    analytic_plan: Mapped[str | None] = mapped_column(String(120))
    # Odoo's analytic amounts are in the company currency (e.g. XCD), whatever the invoice's.
    company_currency: Mapped[str] = mapped_column(String(3))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    # The newest Odoo write_date seen (UTC, as Odoo reports it): the next sync asks for lines changed since.
    last_write_date: Mapped[datetime | None] = mapped_column(DateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[SyncStatus] = mapped_column(enum_column(SyncStatus), default=SyncStatus.never)
    last_message: Mapped[str | None] = mapped_column(Text)
    # Accounts Odoo lines used that no mapping covers, from the last sync: [{account_id, label, lines, total}].
    last_unmapped: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # What the last successful sync read with (database, plan, account, mapping); a change forces a full sync.
    synced_with: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What Odoo said about the analytic account when last checked (on save and before each sync):
    # its plan's id and the analytic-line column holding that plan (x_plan<id>_id, or account_id).
    plan_id: Mapped[int | None] = mapped_column(Integer)
    plan_column: Mapped[str | None] = mapped_column(String(80))
    account_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which amount of a bill in another currency the grant's rate policy converts (ODOO.md).
    amount_basis: Mapped[OdooAmountBasis] = mapped_column(
        enum_column(OdooAmountBasis), default=OdooAmountBasis.company, server_default="company"
    )
    # A sync that would remove more than this share of the grant's imported Odoo spending asks first.
    removal_limit_percent: Mapped[int] = mapped_column(Integer, default=25, server_default="25")
    # General accounts whose unmapped spending the finance team chose to leave out: [account id, ...].
    dismissed_accounts: Mapped[list[int] | None] = mapped_column(JSON)

    grant: Mapped[Grant] = relationship()

    def __repr__(self) -> str:
        name = f" {self.analytic_account_name}" if self.analytic_account_name else ""
        return f"Odoo analytic account {self.analytic_account_id}{name}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if grant is None:
            errors.add("grant", _("is required"))
        if self.analytic_account_id is None:
            errors.add("analytic_account_id", _("is required: the id of the grant's analytic account in Odoo"))
        elif int(self.analytic_account_id) <= 0:
            errors.add("analytic_account_id", _("must be a positive Odoo record id"))
        self.analytic_plan = (self.analytic_plan or "").strip() or None
        currency = (self.company_currency or "").strip().upper()
        self.company_currency = currency
        if not is_currency_code(currency):
            errors.add(
                "company_currency", _("'%(currency)s' is not an ISO 4217 currency code (e.g. XCD)", currency=currency)
            )
        if self.enabled is None:
            self.enabled = True
        if self.amount_basis is None:
            self.amount_basis = OdooAmountBasis.company
        if self.removal_limit_percent is None:
            self.removal_limit_percent = 25
        elif not 0 <= int(self.removal_limit_percent) <= 100:
            errors.add("removal_limit_percent", _("must be a percentage between 0 and 100"))
        if grant is not None:
            clash = session.scalar(
                select(OdooLink.id).where(OdooLink.grant_id == grant.id, OdooLink.id != (self.id or 0))
            )
            if clash:
                errors.add(
                    "grant", _("%(grant)s is already linked to Odoo; edit that link instead", grant=grant.reference)
                )
        errors.raise_if_any()


class OdooAccountMap(Audited, Model):
    """Odoo general (expense) account → the grant's budget line its spending counts against."""

    __tablename__ = "odoo_account_maps"
    __table_args__ = (
        UniqueConstraint("grant_id", "odoo_account_id", name="uq_odoo_account_maps_account"),
        CheckConstraint("odoo_account_id > 0", name="ck_odoo_account_maps_account"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    odoo_account_id: Mapped[int] = mapped_column(Integer)
    odoo_account_label: Mapped[str | None] = mapped_column(String(200))
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), index=True)

    grant: Mapped[Grant] = relationship()
    line: Mapped[BudgetLine] = relationship()

    def __repr__(self) -> str:
        label = self.odoo_account_label or f"account {self.odoo_account_id}"
        return f"{label} → {self.line.code if self.line else self.line_id}"

    def validate(self, session: Session) -> None:
        errors = ErrorCollector()
        line = self.line or (session.get(BudgetLine, self.line_id) if self.line_id else None)
        grant = self.grant or (session.get(Grant, self.grant_id) if self.grant_id else None)
        if line is None:
            errors.add("line", _("is required: the budget line this account's spending counts against"))
        if grant is None:
            errors.add("grant", _("is required"))
        if line is not None and grant is not None and (line.grant_id or line.grant.id) != grant.id:
            other = line.grant or session.get(Grant, line.grant_id)
            errors.add(
                "line",
                _(
                    "budget line %(code)s belongs to grant %(other)s, not %(grant)s",
                    code=line.code,
                    other=other.reference if other else "?",
                    grant=grant.reference,
                ),
            )
        if self.odoo_account_id is None:
            errors.add("odoo_account_id", _("is required: the id of the general account in Odoo"))
        elif int(self.odoo_account_id) <= 0:
            errors.add("odoo_account_id", _("must be a positive Odoo record id"))
        self.odoo_account_label = (self.odoo_account_label or "").strip() or None
        if grant is not None and self.odoo_account_id:
            clash = session.scalar(
                select(OdooAccountMap.id).where(
                    OdooAccountMap.grant_id == grant.id,
                    OdooAccountMap.odoo_account_id == self.odoo_account_id,
                    OdooAccountMap.id != (self.id or 0),
                )
            )
            if clash:
                errors.add(
                    "odoo_account_id",
                    _(
                        "Odoo account %(account)s is already mapped for %(grant)s",
                        account=self.odoo_account_id,
                        grant=grant.reference,
                    ),
                )
        errors.raise_if_any()


class OdooUnmappedLine(Model):
    """An Odoo line of a linked grant under a general account no mapping covers: not imported, kept until mapped.

    The sync keeps these current (added when read, dropped when mapped, moved or
    deleted in Odoo), so the unmapped accounts' line counts and totals stay true
    even when a sync of changes no longer reads the old lines.
    """

    __tablename__ = "odoo_unmapped_lines"
    __table_args__ = (UniqueConstraint("link_id", "odoo_line_id", name="uq_odoo_unmapped_lines_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("odoo_links.id", ondelete="CASCADE"), index=True)
    odoo_line_id: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[int | None] = mapped_column(Integer)
    account_label: Mapped[str] = mapped_column(String(200), default="")
    spent: Mapped[Decimal] = mapped_column(MONEY)  # in Odoo's company currency, positive for costs


class OdooOwnAmount(Model):
    """A synced bill in another currency: its own amount and currency beside Odoo's company-currency amount."""

    __tablename__ = "odoo_own_amounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    expenditure_id: Mapped[int] = mapped_column(ForeignKey("expenditures.id", ondelete="CASCADE"), unique=True)
    company_amount: Mapped[Decimal] = mapped_column(MONEY)
    company_currency: Mapped[str] = mapped_column(String(3))
    own_amount: Mapped[Decimal] = mapped_column(MONEY)
    own_currency: Mapped[str] = mapped_column(String(3))


class BudgetLineTotal(Model):
    """Actual spending per (grant, line, period, day): what budget vs actual sums, kept by database triggers.

    Never written by the application: triggers on ``expenditures`` (migration 0015) add and
    subtract every insert, update and delete, whichever path wrote it (the ORM, the bulk
    writer's COPY or executemany, the Odoo sync, cascades), in the same transaction. A row
    disappears when its last expenditure goes. Summing ``spent_cents`` gives exactly
    ``SUM(expenditures.converted_cents)`` over the same keys (dates included, so "spent up to
    the end of a period" stays exact), from a few thousand rows instead of millions.
    """

    __tablename__ = "budget_line_totals"

    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("budget_lines.id", ondelete="CASCADE"), primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="CASCADE"), primary_key=True)
    spent_on: Mapped[date] = mapped_column(Date, primary_key=True)
    spent_cents: Mapped[int] = mapped_column(BigInteger)  # SUM(converted_cents) of these expenditures
    expenditures: Mapped[int] = mapped_column(Integer)  # how many: the row goes when this reaches 0
