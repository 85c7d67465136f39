"""The one bulk write path for new expenditures: imports and the Odoo sync write through it.

``SpendingWriter`` holds what thousands of rows of one grant share, read once: the
grant's reporting periods, its rate policy and one conversion rule per currency and day
(``budgets.rates.conversion_rule``, the same rule ``convert`` applies), with the quotes of
each currency pair over the grant read once (``budgets.rates.pair_quotes``). Each row is
checked in Python with the rules the model's flush check applies
(``budgets.models.spending_problems``, ``numbers_out_of_range``, a reference recorded
before), then rows are inserted a batch at a time with their audit entries (one
statement for each batch's audit entries, ``core.audit.record_inserts``).

All or nothing stays the caller's: it checks every row first (``check``), and writes
(``write``) only when no row had a problem, inside its one transaction.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from budgets.models import (
    BudgetLine,
    Expenditure,
    ExpenditureSource,
    RateMethod,
    RatePolicy,
    ref_clash,
    spending_problems,
    to_cents,
)
from budgets.rates import ConversionRule, MissingRateError, QuotedRow, conversion_rule, pair_quotes
from core import clock
from core.audit import record_inserts
from core.errors import DomainValidationError, ErrorCollector
from core.money import MONEY_INTEGER_DIGITS, numbers_out_of_range, quantize_money
from grants.models import Grant, ReportingPeriod

# Rows inserted (and audited) per executemany; PostgreSQL's driver sends them a thousand per statement.
BATCH = 5000
# References looked up per query when checking none was recorded before.
REF_CHUNK = 5000
# ``progress(stage, done, total)`` is called about this often.
PROGRESS_EVERY = 2000

# Well inside MONEY (16 digits before the mark) and RATE (10): such numbers need no column-by-column check.
_SAFE_DIGITS = MONEY_INTEGER_DIGITS - 2
_SAFE_RATE_DIGITS = 8

Progress = Callable[[str, int, int], None]

_pause_lock = threading.Lock()
_pauses = 0
_collector_was_on = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while thousands of rows are checked and written.

    An import allocates a few containers per row (parsed cells, values, audit entries) that all
    stay alive until it ends; each time enough pile up the collector walks every live object of
    the process again, which took a third to a half of an actuals import's time. Reference
    counting still frees everything as usual; the collector runs again when the last of the
    imports running in this process ends (a counter, so concurrent imports nest). Also usable
    as a decorator.
    """
    global _pauses, _collector_was_on
    with _pause_lock:
        if _pauses == 0:
            _collector_was_on = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _collector_was_on:
                gc.enable()


# Values PostgreSQL's COPY takes as they are; rows with anything else (enums, JSON) go through SQLAlchemy.
_COPY_TYPES = (int, str, Decimal, type(None))


def insert_plain(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of plain values (numbers, text), every row with the same columns.

    PostgreSQL: one COPY (a tenth of the client's work of an executemany, and under half the
    server's, for the 120,000 planned amounts of a 10,000-line budget file). Other databases:
    one executemany of the INSERT compiled once, each column's value converted by its own
    type's bind processor (what SQLAlchemy would do, without its per-row bookkeeping). Rows
    that leave out a column with a Python-side default, or hold other values, take SQLAlchemy's
    own executemany, which applies defaults and converts every type.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    plain = all(column.name in names for column in table.columns if column.default is not None) and all(
        type(value) in _COPY_TYPES for row in rows for value in row.values()
    )
    if not plain:
        connection.execute(insert(table), rows)
        return
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        preparer = dialect.identifier_preparer
        statement = f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(n) for n in names)}) FROM STDIN"
        driver_connection: Any = connection.connection.driver_connection
        try:
            with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
        except dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy says it: IntegrityError and the like
            raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from exc
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=names)
    order = list(compiled.positiontup or ())
    if not compiled.positional or sorted(order) != sorted(names):
        connection.execute(insert(table), rows)
        return
    converters = [
        (index, processor)
        for index, name in enumerate(order)
        if (processor := table.c[name].type.bind_processor(dialect)) is not None
    ]
    params = []
    for row in rows:
        values = [row[name] for name in order]
        for index, processor in converters:
            values[index] = processor(values[index])
        params.append(tuple(values))
    connection.exec_driver_sql(str(compiled), params)


@dataclass
class Checked:
    """One row ready to insert: every column's value, derived once."""

    values: dict[str, Any]
    line: BudgetLine


class SpendingWriter:
    """Checks, converts and inserts many new expenditures of one grant."""

    def __init__(self, session: Session, grant: Grant, *, progress: Progress | None = None) -> None:
        self.session = session
        self.grant = grant
        self.progress = progress
        self.periods = list(
            session.scalars(
                select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
            )
        )
        self._starts = [p.start_date for p in self.periods]
        self._policy: RatePolicy | None = None
        self._policy_read = False
        self._rules: dict[tuple[str, date | int], ConversionRule | DomainValidationError] = {}
        self._quotes: dict[str, list[QuotedRow]] = {}
        self.now = clock.now()

    def period_of(self, day: date) -> ReportingPeriod | None:
        index = bisect.bisect_right(self._starts, day) - 1
        if index >= 0 and self.periods[index].start_date <= day <= self.periods[index].end_date:
            return self.periods[index]
        return next((p for p in self.periods if p.start_date <= day <= p.end_date), None)

    def _rule(self, currency: str, day: date, period: ReportingPeriod) -> ConversionRule:
        per_period = False
        if currency == self.grant.currency:
            key: tuple[str, date | int] = (currency, 0)
        else:
            if not self._policy_read:
                self._policy = self.session.scalar(select(RatePolicy).where(RatePolicy.grant_id == self.grant.id))
                self._policy_read = True
            per_period = self._policy is not None and self._policy.method != RateMethod.transaction_date
            key = (currency, period.id) if per_period else (currency, day)
        found = self._rules.get(key)
        if found is None:
            quotes = None
            if not per_period:  # the pair's quotes over the grant, read once per currency
                quotes = self._quotes.get(currency)
                if quotes is None:
                    quotes = self._quotes[currency] = pair_quotes(
                        self.session, currency, self.grant.currency, self.grant.start_date, self.grant.end_date
                    )
            try:
                found = conversion_rule(
                    self.session, self.grant, currency, day, period, policy=self._policy, quotes=quotes
                )
            except DomainValidationError as exc:
                found = exc
            self._rules[key] = found
        if isinstance(found, DomainValidationError):
            raise found
        return found

    def check(
        self,
        *,
        line: BudgetLine,
        spent_on: date | None,
        amount: Any,
        currency: str | None,
        description: str | None = "",
        source: ExpenditureSource,
        external_ref: str | None = None,
        import_id: int | None = None,
        note: str | None = None,
    ) -> Checked | dict[str, list[str]]:
        """The row's values, derived and converted; or its problems by field (the model's messages).

        ``note``: said before the rate sentence (the Odoo sync names the bill's amount there).
        """
        errors = ErrorCollector()
        currency = (currency or "").strip().upper()
        if external_ref is not None:
            external_ref = external_ref.strip() or None
        if line.grant_id != self.grant.id:
            errors.add("line", f"budget line {line.code} belongs to another grant")
            return errors.errors
        period = spending_problems(errors, self.grant, currency, amount, spent_on, self.period_of)
        if errors.errors:
            return errors.errors
        assert period is not None and spent_on is not None
        amount = quantize_money(Decimal(amount))
        try:
            conversion = self._rule(currency, spent_on, period).apply(amount)
        except MissingRateError as exc:  # said against the currency, whichever field the rate lookup named
            return {"currency": [message for messages in exc.errors.values() for message in messages]}
        except DomainValidationError as exc:
            return exc.errors
        source_text = conversion.source if note is None else f"{note}; {conversion.source}"
        values: dict[str, Any] = {
            "grant_id": self.grant.id,
            "line_id": line.id,
            "period_id": period.id,
            "spent_on": spent_on,
            "amount": amount,
            "currency": currency,
            "description": description or "",
            "source": source,
            "external_ref": external_ref,
            "import_id": import_id,
            "converted_amount": conversion.converted,
            "converted_cents": to_cents(conversion.converted),
            "rate": conversion.multiplier,
            "rate_source": source_text[:200],
            "created_at": self.now,
        }
        # Every column's number must fit; the full check runs only for numbers near a column's limits.
        if not (
            amount.adjusted() < _SAFE_DIGITS
            and conversion.converted.adjusted() < _SAFE_DIGITS
            and conversion.multiplier.adjusted() < _SAFE_RATE_DIGITS
        ):
            out_of_range = numbers_out_of_range(SimpleNamespace(**values), Expenditure)
            if out_of_range:
                return out_of_range
        return Checked(values, line)

    def recorded_before(self, source: ExpenditureSource, refs: Iterable[str]) -> dict[str, str]:
        """Of ``refs``, those already recorded from ``source`` (any grant): ref → the model's message."""
        wanted = sorted({r for r in refs if r})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), REF_CHUNK):
            chunk = wanted[start : start + REF_CHUNK]
            for ref in self.session.scalars(
                select(Expenditure.external_ref).where(
                    Expenditure.source == source, Expenditure.external_ref.in_(chunk)
                )
            ):
                if ref is not None:
                    found[ref] = ref_clash(ref, source)
        return found

    def write(self, rows: list[Checked]) -> list[int]:
        """Insert checked rows and their audit entries, a batch at a time; their ids, in order.

        The caller has checked every row (``check``, ``recorded_before``); nothing is flushed
        through the ORM, so the session's pending changes are flushed first.
        """
        self.session.flush()
        connection = self.session.connection()
        table = Expenditure.__table__
        statement = insert(table)
        ids: list[int] = []
        total = len(rows)
        chunk = min(BATCH, REF_CHUNK)
        for start in range(0, total, chunk):
            batch = rows[start : start + chunk]
            # One executemany per batch (RETURNING would go row by row on SQLite to keep the order);
            # the new ids are read back by reference, which every bulk-written row has.
            connection.execute(statement, [row.values for row in batch])
            by_ref = self._ids_of(batch)
            batch_ids = [by_ref[row.values["external_ref"]] for row in batch]
            record_inserts(
                self.session,
                Expenditure.__tablename__,
                [
                    (record_id, self.grant.id, _label(row), row.values)
                    for record_id, row in zip(batch_ids, batch, strict=True)
                ],
            )
            ids.extend(batch_ids)
            if self.progress is not None:
                self.progress("saving", start + len(batch), total)
        return ids

    def _ids_of(self, batch: list[Checked]) -> dict[str, int]:
        source = batch[0].values["source"]
        refs = [row.values["external_ref"] for row in batch]
        assert all(refs) and all(row.values["source"] == source for row in batch), "bulk rows need a reference"
        return {
            ref: record_id
            for record_id, ref in self.session.execute(
                select(Expenditure.id, Expenditure.external_ref).where(
                    Expenditure.source == source, Expenditure.external_ref.in_(refs)
                )
            )
        }


def _label(row: Checked) -> str:
    """What the audit trail calls the expenditure: its own ``repr``, as for a record saved one by one."""
    values = row.values
    return Expenditure.__repr__(
        SimpleNamespace(  # type: ignore[arg-type]
            spent_on=values["spent_on"], amount=values["amount"], currency=values["currency"], line=row.line
        )
    )
