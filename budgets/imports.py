"""Importing actuals from CSV and XLSX: sniff, preview, confirm a column mapping, validate every row, all or nothing.

A file goes through three steps: ``stage_import`` (store it, detect its columns,
guess a mapping), ``run_import`` with the mapping the user confirmed (every row
checked; any problem rejects the whole file and keeps a row-by-row error list),
and ``error_report_csv`` for a rejected file. Each row's external reference is
the file's reference column when mapped, else a hash of the row's content (and
its occurrence count, so two identical taxi fares stay two), so re-importing
the same file adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
import zipfile
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import filetype
from dateutil import parser as date_parser
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from budgets.bulk import PROGRESS_EVERY, Checked, Progress, SpendingWriter, collector_paused
from budgets.models import BudgetImport, BudgetLine, Expenditure, ExpenditureSource, ImportStatus
from core.errors import DomainValidationError
from core.formatting import N_
from core.formatting import gettext as _
from core.money import (
    DECIMAL_MARKS,
    ambiguous_separator,
    guess_decimal_mark,
    is_currency_code,
    parse_amount,
    quantize_money,
)
from core.workbooks import UnsafeWorkbook, open_workbook
from grants.models import Grant

MAX_ROWS = 200_000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Target fields a column can feed; the first four are needed (currency may be a default instead).
# Labels are marked (N_) and translated where they are shown.
FIELDS = {
    "date": N_("Date spent"),
    "amount": N_("Amount"),
    "line": N_("Budget line code"),
    "currency": N_("Currency"),
    "description": N_("Description"),
    "reference": N_("Reference (voucher / transaction no.)"),
}
REQUIRED = ("date", "amount", "line")
_GUESSES = {
    "date": ("date", "spent on", "transaction date", "posting date", "fecha"),
    "amount": ("amount", "value", "total", "debit", "monto", "cost"),
    "line": ("budget line", "line", "line code", "budget code", "code", "account"),
    "currency": ("currency", "ccy", "cur", "moneda"),
    "description": ("description", "details", "narration", "memo", "label", "particulars"),
    "reference": ("reference", "ref", "voucher", "voucher no", "transaction id", "receipt", "id"),
}
DATE_ORDERS = {
    "dayfirst": N_("day first (31/01/2026)"),
    "monthfirst": N_("month first (01/31/2026)"),
    "iso": N_("ISO (2026-01-31)"),
}


class RowProblem(ValueError):
    """A cell's problem kept as its message id and values, so that it is shown in the reader's language."""

    def __init__(self, message: str, **values: Any) -> None:
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


def _said(exc: Any) -> tuple[str, dict[str, Any] | None]:
    """(message id, values) of a refusal that carries them; else its text as it is."""
    message = getattr(exc, "message", None)
    values = getattr(exc, "values", None)
    if isinstance(message, str) and (values is None or isinstance(values, dict)):
        return message, values
    return str(exc), None


def problem_text(error: dict[str, Any]) -> str:
    """A stored row problem in the reader's language (kept as message id and values since issue 17)."""
    message = error.get("message")
    if not message:
        return _(str(error.get("problem") or ""))
    values = {
        key: _(value) if key == "order" and isinstance(value, str) else value
        for key, value in (error.get("values") or {}).items()
    }
    return _(message, **values)


@dataclass
class Preview:
    columns: list[str]
    sample: list[list[str]]
    guessed: dict[str, str]
    row_count: int
    # How the amount column's first values will be read with ``decimal_mark``: (as written, as read or the problem).
    decimal_mark: str = "."
    amounts: list[tuple[str, str]] | None = None


@dataclass
class ImportResult:
    status: ImportStatus
    imported: int
    unchanged: int
    errors: list[dict[str, Any]]


def _fail(message: str) -> DomainValidationError:
    return DomainValidationError({"file": [message]})


def sniff(content: bytes) -> str:
    """'xlsx' or 'csv', decided by the bytes, not the file name."""
    if not content:
        raise _fail(_("the file is empty"))
    if content.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: .xls and other old Office files
        raise _fail(_("this is an old binary Excel file (.xls); save it as .xlsx or CSV and upload again"))
    kind = filetype.guess(content)
    if kind is not None:
        if kind.mime == XLSX_MIME:
            return "xlsx"
        if kind.extension == "zip":
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as archive:
                    if "xl/workbook.xml" in archive.namelist():
                        return "xlsx"
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                raise _fail(_("this zip archive is damaged; it is not a CSV or XLSX spreadsheet")) from None
        if kind.extension in ("xls", "doc", "ppt", "msi"):
            raise _fail(_("this is an old binary Excel file (.xls); save it as .xlsx or CSV and upload again"))
        raise _fail(_("this is a %(kind)s file, not a CSV or XLSX spreadsheet", kind=kind.extension))
    if b"\x00" in content[:4096]:
        raise _fail(_("this is not a CSV or XLSX spreadsheet (binary content)"))
    return "csv"


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# Files parsed lately, by content hash: the preview and the confirm read what the upload parsed.
_PARSED: OrderedDict[tuple[str, str], list[list[Any]]] = OrderedDict()
PARSED_KEPT = 4
_parsed_lock = threading.Lock()


def read_rows(content: bytes, file_type: str, *, sha256: str | None = None) -> list[list[Any]]:
    """Every non-empty row, header first; xlsx cells keep their types (dates, numbers).

    A file is parsed once: the last few parsed files are kept by their SHA-256, so the
    preview, each change of mapping and the confirm reuse the rows the upload parsed.
    Callers treat the rows as read-only.
    """
    key = (sha256 or hashlib.sha256(content).hexdigest(), file_type)
    with _parsed_lock:
        cached = _PARSED.get(key)
        if cached is not None:
            _PARSED.move_to_end(key)
            return cached
    rows = _parse_rows(content, file_type)
    with _parsed_lock:
        _PARSED[key] = rows
        while len(_PARSED) > PARSED_KEPT:
            _PARSED.popitem(last=False)
    return rows


def staged_rows(staged: BudgetImport) -> list[list[Any]]:
    """The staged file's rows: from the parse kept since upload, else read (and kept) once more."""
    with _parsed_lock:
        cached = _PARSED.get((staged.sha256, staged.file_type))
    if cached is not None:
        return cached
    return read_rows(staged.content or b"", staged.file_type, sha256=staged.sha256)


def _content_held(session: Session, staged: BudgetImport) -> bool:
    """Whether the upload's bytes are still kept, asked without loading them (its rows are parsed already)."""
    state: Any = sa_inspect(staged)
    if "content" in state.dict or staged.id is None:
        return staged.content is not None
    held = session.scalar(
        select(BudgetImport.id).where(BudgetImport.id == staged.id, BudgetImport.content.is_not(None))
    )
    return held is not None


def forget_parsed(sha256: str) -> None:
    """Drop a file's parsed rows (once imported: spending files can name people)."""
    with _parsed_lock:
        for key in [k for k in _PARSED if k[0] == sha256]:
            del _PARSED[key]


@collector_paused()
def _parse_rows(content: bytes, file_type: str) -> list[list[Any]]:
    if file_type == "xlsx":
        return _read_xlsx(content)
    text = _decode(content)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    if len(rows) > MAX_ROWS + 1:
        raise _fail(_("the file has more than %(count)s rows; split it", count=MAX_ROWS))
    return rows


def _read_xlsx(content: bytes) -> list[list[Any]]:
    try:
        workbook = open_workbook(content)  # size, zip-bomb and entity guards first
    except UnsafeWorkbook as exc:
        raise _fail(str(exc)) from None
    try:
        for sheet in workbook.worksheets:
            rows = []
            for row in sheet.iter_rows(values_only=True):
                if any(cell not in (None, "") for cell in row):
                    rows.append(list(row))
                    if len(rows) > MAX_ROWS + 1:
                        raise _fail(_("the sheet has more than %(count)s rows; split it", count=MAX_ROWS))
            if rows:
                return rows
        return []
    except DomainValidationError:
        raise
    except Exception:  # a part that lies about its size or checksum fails while read
        raise _fail(_("the workbook is damaged; open it in Excel and save it again as .xlsx")) from None
    finally:
        workbook.close()


def _header(rows: list[list[Any]]) -> list[str]:
    names: list[str] = []
    seen: Counter[str] = Counter()
    for index, cell in enumerate(rows[0]):
        name = _cell_text(cell) or f"Column {index + 1}"
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return names


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """Target field → column, by the usual header names; the user confirms or corrects it."""
    mapping: dict[str, str] = {}
    normalised = {c: c.strip().lower().replace("_", " ") for c in columns}
    for field, names in _GUESSES.items():
        for name in names:
            match = next((c for c, n in normalised.items() if n == name and c not in mapping.values()), None)
            if match:
                mapping[field] = match
                break
    return mapping


def stage_import(
    session: Session, grant: Grant, filename: str, content: bytes, *, by: str | None = None
) -> BudgetImport:
    """Store an uploaded file and detect its columns; nothing is imported yet."""
    file_type = sniff(content)
    digest = hashlib.sha256(content).hexdigest()
    rows = read_rows(content, file_type, sha256=digest)
    if len(rows) < 2:
        raise _fail(_("the file has no data rows under a header row"))
    columns = _header(rows)
    staged = BudgetImport(
        grant_id=grant.id,
        filename=(filename or "upload")[:255],
        file_type=file_type,
        sha256=digest,
        content=content,
        status=ImportStatus.previewed,
        columns=columns,
        mapping=guess_mapping(columns),
        row_count=len(rows) - 1,
        errors=[],
        created_by=by,
    )
    session.add(staged)
    session.flush()
    return staged


def preview(staged: BudgetImport, limit: int = 10, decimal_mark: str | None = None) -> Preview:
    """The first rows, and how the amount column will be read with the chosen (or the file's evident) decimal mark."""
    rows = staged_rows(staged)
    mapping = dict(staged.mapping or {})
    column = mapping.get("amount")
    position = list(staged.columns).index(column) if column in staged.columns else None
    values = [row[position] for row in rows[1:] if position is not None and position < len(row)]
    mark = decimal_mark if decimal_mark in DECIMAL_MARKS else mapping.get("_decimal_mark") or guess_decimal_mark(values)
    amounts = None
    if position is not None:
        amounts = []
        for value in values[:limit]:
            try:
                amounts.append((_cell_text(value), f"{_parse_amount(value, mark):f}"))
            except ValueError as exc:
                message, said = _said(exc)
                amounts.append((_cell_text(value), _(message, **(said or {}))))
    return Preview(
        columns=list(staged.columns),
        sample=[[_cell_text(c) for c in row] for row in rows[1 : limit + 1]],
        guessed=mapping,
        row_count=len(rows) - 1,
        decimal_mark=mark,
        amounts=amounts,
    )


_NUMERIC_DATE = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")


def _parse_date(value: Any, order: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _cell_text(value)
    if not text:
        raise RowProblem(N_("is empty; a date is required"))
    numeric = _NUMERIC_DATE.fullmatch(text) if order != "iso" else None
    if numeric is not None:  # 31/01/2026, 1.2.2026: read directly (dateutil takes ~50 µs a cell)
        first, second, year = (int(part) for part in numeric.groups())
        day, month = (first, second) if order == "dayfirst" else (second, first)
        try:
            return date(year, month, day)
        except ValueError:
            pass  # 01/31/2026 read day first: dateutil swaps what cannot be a month, as before
    try:
        if order == "iso":
            return date.fromisoformat(text[:10])
        return date_parser.parse(text, dayfirst=(order == "dayfirst")).date()
    except (ValueError, OverflowError):
        raise RowProblem(
            N_("'%(text)s' is not a date (%(order)s)"), text=text, order=DATE_ORDERS.get(order, order)
        ) from None


def _parse_amount(value: Any, decimal_mark: str = ".", integer_digits: int | None = 16) -> Decimal:
    """An amount cell read with the file's decimal mark (core.money.parse_amount); ValueError in words."""
    return parse_amount(value, decimal_mark, integer_digits=integer_digits)


def _row_ref(grant_id: int, values: tuple[str, ...], seen: Counter) -> str:
    seen[values] += 1
    digest = hashlib.sha256("\x1f".join((str(grant_id), *values, str(seen[values]))).encode()).hexdigest()
    return f"row:{digest[:40]}"


@collector_paused()
def run_import(
    session: Session,
    staged: BudgetImport,
    mapping: dict[str, str],
    *,
    default_currency: str | None = None,
    date_order: str = "dayfirst",
    decimal_mark: str = ".",
    progress: Progress | None = None,
) -> ImportResult:
    """Validate every row with the confirmed mapping; import all of them or none.

    Problems are kept on the import record as [{row, column, problem}] (row = the
    spreadsheet row number, header = 1). Rows already imported (same external
    reference) are counted as unchanged. Returns the outcome; the caller commits.
    Rows are checked with the expenditure's own rules and written in batches
    (``budgets.bulk``); ``progress(stage, done, total)`` hears every few thousand rows.
    """
    if staged.status == ImportStatus.imported:
        raise DomainValidationError({"import": [_("this file was imported already")]})
    if not _content_held(session, staged):
        raise DomainValidationError({"import": [_("the uploaded file is no longer held; upload it again")]})
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    problems: dict[str, list[str]] = {}
    for field in REQUIRED:
        if field not in mapping:
            problems.setdefault(field, []).append(
                _("choose the column holding the %(field)s", field=_(FIELDS[field]).lower())
            )
    unknown = [f for f in mapping if f not in FIELDS]
    for field in unknown:
        problems.setdefault(field, []).append(_("is not a field an import can fill"))
    for field, column in mapping.items():
        if field in FIELDS and column not in staged.columns:
            problems.setdefault(field, []).append(_("'%(column)s' is not a column of the file", column=column))
    default_currency = (default_currency or "").strip().upper() or None
    if "currency" not in mapping and not default_currency:
        problems.setdefault("currency", []).append(_("map a currency column or choose the currency of every row"))
    elif default_currency and not is_currency_code(default_currency):
        problems.setdefault("currency", []).append(
            _("'%(currency)s' is not an ISO 4217 currency code", currency=default_currency)
        )
    if date_order not in DATE_ORDERS:
        problems.setdefault("date_order", []).append(
            _("'%(order)s' is not one of %(orders)s", order=date_order, orders=", ".join(DATE_ORDERS))
        )
    if decimal_mark not in DECIMAL_MARKS:
        problems.setdefault("decimal_mark", []).append(_("choose a point or a comma as the decimal mark"))
    if problems:
        raise DomainValidationError(problems)

    grant = session.get(Grant, staged.grant_id)
    assert grant is not None
    rows = staged_rows(staged)
    index = {name: i for i, name in enumerate(_header(rows))}
    lines = {l.code: l for l in session.scalars(select(BudgetLine).where(BudgetLine.grant_id == grant.id))}
    existing = {
        ref: (amount, spent_on, line_id)
        for ref, amount, spent_on, line_id in session.execute(
            select(Expenditure.external_ref, Expenditure.amount, Expenditure.spent_on, Expenditure.line_id).where(
                Expenditure.source == ExpenditureSource.import_, Expenditure.grant_id == grant.id
            )
        )
    }
    writer = SpendingWriter(session, grant, progress=progress)
    errors: list[dict[str, Any]] = []
    ready: list[tuple[int, Checked]] = []
    unchanged = 0
    seen: Counter = Counter()
    refs_in_file: dict[str, int] = {}
    total = len(rows) - 1

    def cell(row: list[Any], field: str) -> Any:
        position = index[mapping[field]]
        return row[position] if position < len(row) else None

    # "1.000" and "1,000" in one file: one of them is a thousand and the other one, whatever the mark.
    separators = {ambiguous_separator(cell(row, "amount")) for row in rows[1:]}
    mixed = {".", ","} <= separators

    def problem_at(number: int, field: str, message: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        # "problem" keeps the English sentence; "message" and "values" let a page say it in the reader's language.
        found = {
            "row": number,
            "column": mapping.get(field, FIELDS.get(field, field)),
            "problem": message % values if values else message,
        }
        if values is not None:
            found["message"], found["values"] = message, values
        return found

    for number, row in enumerate(rows[1:], start=2):
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress("checking", number - 1, total)
        row_errors: list[dict[str, Any]] = []

        def problem(
            field: str,
            message: str,
            values: dict[str, Any] | None = None,
            row_errors: list[dict[str, Any]] = row_errors,
            number: int = number,
        ) -> None:
            row_errors.append(problem_at(number, field, message, values))

        spent_on = amount = line = None
        currency = default_currency
        try:
            spent_on = _parse_date(cell(row, "date"), date_order)
        except ValueError as exc:
            problem("date", *_said(exc))
        try:
            if mixed and ambiguous_separator(cell(row, "amount")):
                raise RowProblem(
                    N_(
                        "'%(text)s' could be read as a thousand or as one: this file writes amounts both as 1.000 "
                        "and as 1,000; write every amount the same way and upload it again"
                    ),
                    text=_cell_text(cell(row, "amount")),
                )
            amount = quantize_money(_parse_amount(cell(row, "amount"), decimal_mark))
            if amount == 0:
                problem("amount", N_("is zero"))
        except ValueError as exc:
            problem("amount", *_said(exc))
        code = _cell_text(cell(row, "line"))
        line = lines.get(code)
        if line is None:
            if code:
                problem(
                    "line", N_("'%(code)s' is not a budget line of %(grant)s"), {"code": code, "grant": grant.reference}
                )
            else:
                problem("line", N_("is empty; a budget line code is required"))
        if "currency" in mapping:
            currency = _cell_text(cell(row, "currency")).upper() or default_currency
            if not currency:
                problem("currency", N_("is empty and no default currency was chosen"))
            elif not is_currency_code(currency):
                problem(
                    "currency",
                    N_("'%(currency)s' is not an ISO 4217 currency code (e.g. USD, EUR, XCD)"),
                    {"currency": currency},
                )
                currency = None
        description = _cell_text(cell(row, "description"))[:500] if "description" in mapping else ""
        if "reference" in mapping:
            ref = _cell_text(cell(row, "reference"))
            if not ref:
                problem("reference", N_("is empty; every row needs its reference when a reference column is mapped"))
            ref = f"ref:{grant.id}:{ref}"[:120]
        else:
            ref = _row_ref(grant.id, (str(spent_on), str(amount), currency or "", code, description), seen)
        if ref in refs_in_file and "reference" in mapping:
            problem("reference", N_("repeats the reference of row %(row)s"), {"row": refs_in_file[ref]})
        refs_in_file.setdefault(ref, number)
        if row_errors:
            errors.extend(row_errors)
            continue
        assert line is not None and spent_on is not None and amount is not None and currency
        if ref in existing:
            if existing[ref] != (amount, spent_on, line.id):
                problem(
                    "reference",
                    N_("was imported before with a different date, amount or line; correct that expenditure by hand"),
                )
                errors.extend(row_errors)
            else:
                unchanged += 1
            continue
        # The rules the expenditure's flush check applies, with rates read once per currency and day.
        checked = writer.check(
            line=line,
            spent_on=spent_on,
            amount=amount,
            currency=currency,
            description=description,
            source=ExpenditureSource.import_,
            external_ref=ref,
            import_id=staged.id,
        )
        if isinstance(checked, Checked):
            ready.append((number, checked))
            continue
        for field, messages in checked.items():
            for message in messages:
                problem(_TARGETS.get(field, field), *_said(message))
        errors.extend(row_errors)
    # A reference another grant's import recorded (the model's uniqueness rule), asked in a few queries.
    clashes = writer.recorded_before(ExpenditureSource.import_, (c.values["external_ref"] for _n, c in ready))
    for number, checked in ready:
        clash = clashes.get(checked.values["external_ref"])
        if clash:
            errors.append(problem_at(number, "reference", clash))
    errors.sort(key=lambda error: error["row"])
    staged.mapping = {
        **mapping,
        "_currency": default_currency,
        "_date_order": date_order,
        "_decimal_mark": decimal_mark,
    }
    if errors:
        staged.status = ImportStatus.rejected
        staged.errors = errors
        staged.imported_count = 0
        staged.unchanged_count = 0
        session.flush()
        return ImportResult(ImportStatus.rejected, 0, 0, errors)
    # Each row was checked and converted once, above; inserted and audited a batch at a time.
    writer.write([checked for _n, checked in ready])
    staged.status = ImportStatus.imported
    staged.errors = []
    staged.imported_count = len(ready)
    staged.unchanged_count = unchanged
    staged.content = None  # spending files can name people; keep only the hash once imported
    session.flush()
    forget_parsed(staged.sha256)
    return ImportResult(ImportStatus.imported, len(ready), unchanged, [])


# A model field's problem shown against the import's own field.
_TARGETS = {"spent_on": "date", "line": "line", "amount": "amount", "currency": "currency", "external_ref": "reference"}


def error_report_csv(staged: BudgetImport) -> str:
    """The rejected file's problems, one per line: row, column, problem (in the reader's language)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_("row"), _("column"), _("problem")])
    for error in staged.errors or []:
        writer.writerow([error.get("row"), _inert(error.get("column")), _inert(problem_text(error))])
    return out.getvalue()


def _inert(value: Any) -> str:
    """A cell starting with = + - @ would run as a formula when the report is opened in Excel."""
    text = str(value or "")
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
