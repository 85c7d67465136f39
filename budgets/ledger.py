"""The expenditure ledger: every expenditure of a grant with its conversion, streamed in date order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from budgets.models import BudgetLine, Expenditure
from grants.models import ReportingPeriod


@dataclass(frozen=True)
class LedgerRow:
    spent_on: date
    period: str
    line_code: str
    line_description: str
    cost_category: str
    description: str
    amount: Decimal
    currency: str
    rate: Decimal
    rate_source: str
    converted_amount: Decimal
    source: str
    external_ref: str | None


def expenditure_ledger(
    session: Session, grant_id: int, period_id: int | None = None, *, batch: int = 2000
) -> Iterator[LedgerRow]:
    """Yield the grant's expenditures (of one period, or all) oldest first, a batch at a time.

    One query, streamed (``yield_per``): memory stays flat for ledgers of any length.
    """
    query = (
        select(
            Expenditure.spent_on,
            ReportingPeriod.label,
            BudgetLine.code,
            BudgetLine.description,
            BudgetLine.cost_category,
            Expenditure.description,
            Expenditure.amount,
            Expenditure.currency,
            Expenditure.rate,
            Expenditure.rate_source,
            Expenditure.converted_amount,
            Expenditure.source,
            Expenditure.external_ref,
        )
        .join(BudgetLine, BudgetLine.id == Expenditure.line_id)
        .join(ReportingPeriod, ReportingPeriod.id == Expenditure.period_id)
        .where(Expenditure.grant_id == grant_id)
        .order_by(Expenditure.spent_on, Expenditure.id)
        .execution_options(yield_per=batch)
    )
    if period_id is not None:
        query = query.where(Expenditure.period_id == period_id)
    for row in session.execute(query):
        yield LedgerRow(
            spent_on=row[0],
            period=row[1],
            line_code=row[2],
            line_description=row[3],
            cost_category=row[4],
            description=row[5] or "",
            amount=row[6],
            currency=row[7],
            rate=row[8],
            rate_source=row[9],
            converted_amount=row[10],
            source=row[11].value if hasattr(row[11], "value") else str(row[11]),
            external_ref=row[12],
        )
