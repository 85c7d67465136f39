"""Exchange rates from a file (date, from, to, rate[, source]): every row checked, all imported or none."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from budgets.bulk import BATCH, PROGRESS_EVERY, Progress, collector_paused
from budgets.imports import (
    DATE_ORDERS,
    _cell_text,
    _header,
    _parse_amount,
    _parse_date,
    _said,
    problem_text,
    read_rows,
    sniff,
)
from budgets.models import ExchangeRate
from budgets.rates import _refresh_after_rate_change
from core.audit import record_inserts
from core.errors import DomainValidationError
from core.formatting import day as shown_day
from core.formatting import gettext as _
from core.money import DECIMAL_MARKS, is_currency_code

_COLUMNS = {
    "date": ("date", "rate date", "day", "as of", "fecha"),
    "from": ("from", "from currency", "base", "currency from", "ccy from"),
    "to": ("to", "to currency", "quote", "currency to", "ccy to"),
    "rate": ("rate", "exchange rate", "value", "tasa"),
    "source": ("source", "where from", "origin"),
}


@dataclass
class RateImportResult:
    added: int
    corrected: int
    unchanged: int
    conversions_redone: int
    errors: list[dict[str, Any]]


def _find_columns(columns: list[str]) -> tuple[dict[str, int], list[str]]:
    normalised = [c.strip().lower().replace("_", " ") for c in columns]
    found: dict[str, int] = {}
    for field, names in _COLUMNS.items():
        for i, name in enumerate(normalised):
            if name in names and i not in found.values():
                found[field] = i
                break
    missing = [f for f in ("date", "from", "to", "rate") if f not in found]
    return found, missing


def _insert_rates(session: Session, rows: list[dict[str, Any]], progress: Progress | None) -> None:
    """New rates by bulk insert, audited a batch at a time like rates saved one by one."""
    session.flush()
    table = ExchangeRate.__table__
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        session.connection().execute(insert(table), batch)
        days = [row["rate_date"] for row in batch]
        ids = {
            (day, a, b): record_id
            for record_id, day, a, b in session.execute(
                select(
                    ExchangeRate.id, ExchangeRate.rate_date, ExchangeRate.from_currency, ExchangeRate.to_currency
                ).where(ExchangeRate.rate_date >= min(days), ExchangeRate.rate_date <= max(days))
            )
        }
        record_inserts(
            session,
            ExchangeRate.__tablename__,
            [
                (
                    record_id,
                    None,
                    f"{row['rate_date']}: 1 {row['from_currency']} = {row['rate']} {row['to_currency']}",
                    row,
                )
                for row in batch
                for record_id in [ids[(row["rate_date"], row["from_currency"], row["to_currency"])]]
            ],
        )
        if progress is not None:
            progress("saving", start + len(batch), len(rows))


@collector_paused()
def import_rates(
    session: Session,
    content: bytes,
    *,
    date_order: str = "iso",
    decimal_mark: str = ".",
    progress: Progress | None = None,
) -> RateImportResult:
    """Read a file of rates and record every one of them, or none when any row is wrong. The caller commits.

    A row for a day and pair already known corrects that rate (conversions that used it
    are redone once, at the end); the same rate again changes nothing.
    """
    if date_order not in DATE_ORDERS:
        orders = ", ".join(_(order) for order in DATE_ORDERS.values())
        raise DomainValidationError({"date_order": [_("choose one of: %(orders)s", orders=orders)]})
    if decimal_mark not in DECIMAL_MARKS:
        raise DomainValidationError({"decimal_mark": [_("choose a point or a comma as the decimal mark")]})
    rows = read_rows(content, sniff(content))
    if len(rows) < 2:
        raise DomainValidationError({"file": [_("the file has no data rows under a header row")]})
    columns = _header(rows)
    index, missing = _find_columns(columns)
    if missing:
        raise DomainValidationError(
            {
                "file": [
                    _(
                        "the header row needs the columns date, from, to and rate; missing: %(missing)s "
                        "(found: %(found)s)",
                        missing=", ".join(missing),
                        found=", ".join(columns),
                    )
                ]
            }
        )
    errors: list[dict[str, Any]] = []
    parsed: dict[tuple[Any, str, str], tuple[Decimal, str | None, int]] = {}
    for number, row in enumerate(rows[1:], start=2):

        def value(field: str, row: list[Any] = row) -> Any:
            position = index.get(field)
            return row[position] if position is not None and position < len(row) else None

        def problem(field: str, message: str, number: int = number) -> None:
            errors.append({"row": number, "column": columns[index[field]], "problem": message})

        before = len(errors)
        try:
            day = _parse_date(value("date"), date_order)
        except ValueError as exc:
            problem("date", _in_words(exc))
            day = None
        currencies = []
        for field in ("from", "to"):
            code = _cell_text(value(field)).upper()
            if not is_currency_code(code):
                problem(
                    field,
                    _("'%(currency)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)", currency=code)
                    if code
                    else _("is empty"),
                )
            currencies.append(code)
        if currencies[0] and currencies[0] == currencies[1]:
            problem("to", _("is the same currency as 'from'"))
        try:
            rate = _parse_amount(value("rate"), decimal_mark, integer_digits=10)
            if not rate.is_finite() or rate <= 0:
                problem("rate", _("'%(value)s' must be a number above zero", value=_cell_text(value("rate"))))
        except ValueError as exc:
            problem("rate", _in_words(exc))
            rate = None
        if len(errors) > before:
            continue
        key = (day, currencies[0], currencies[1])
        if key in parsed:
            problem(
                "date",
                _(
                    "repeats the %(pair)s rate of %(date)s given on row %(row)s",
                    pair="→".join(key[1:]),
                    date=shown_day(day),
                    row=parsed[key][2],
                ),
            )
            continue
        source = _cell_text(value("source"))[:120] or None if "source" in index else None
        parsed[key] = (rate, source, number)  # type: ignore[assignment]
    if errors:
        return RateImportResult(0, 0, 0, 0, errors)
    # The rates already known for these days and pairs: one query over the file's dates and currencies.
    days = [key[0] for key in parsed]
    codes = sorted({code for key in parsed for code in key[1:]})
    existing = {
        (r.rate_date, r.from_currency, r.to_currency): r
        for r in session.scalars(
            select(ExchangeRate).where(
                ExchangeRate.rate_date >= min(days),
                ExchangeRate.rate_date <= max(days),
                ExchangeRate.from_currency.in_(codes),
                ExchangeRate.to_currency.in_(codes),
            )
        )
        if (r.rate_date, r.from_currency, r.to_currency) in parsed
    }
    added = corrected = unchanged = 0
    currencies_touched: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    for count, ((day, from_ccy, to_ccy), (rate, source, _number)) in enumerate(parsed.items(), start=1):
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress("checking", count, len(parsed))
        known = existing.get((day, from_ccy, to_ccy))
        if known is not None and Decimal(known.rate) == rate:
            unchanged += 1
            continue
        if known is None:
            # Every rule of ExchangeRate.validate was checked above, row by row (a clash: ``existing``).
            new_rows.append(
                {"rate_date": day, "from_currency": from_ccy, "to_currency": to_ccy, "rate": rate, "source": source}
            )
            added += 1
        else:
            known.rate = rate
            known.source = source or known.source
            corrected += 1
        currencies_touched.update((from_ccy, to_ccy))
    _insert_rates(session, new_rows, progress)
    session.flush()
    redone = _refresh_after_rate_change(session, sorted(currencies_touched)) if currencies_touched else 0
    return RateImportResult(added, corrected, unchanged, redone, [])


def _in_words(exc: ValueError) -> str:
    """A cell's refusal in the reader's language (the rows are checked and shown in one request)."""
    message, values = _said(exc)
    return problem_text({"message": message, "values": values or {}})
