"""Our own Excel/CSV reports (no funder template): streamed by our own sheet writer, formatted for finance staff."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from core.datasets import ColumnKind
from core.formatting import current_language
from exports.errors import TemplateError
from exports.xlsx.writer import CellFormats, Style, WorkbookWriter, column_letter

__all__ = [
    "ColumnKind",
    "DATE_FORMATS",
    "ReportColumn",
    "ReportSheet",
    "date_format",
    "write_report",
    "write_csv",
    "csv_cell",
]


NUMBER_FORMATS: dict[str, str] = {
    "text": "General",
    "money": "#,##0.00",
    "number": "General",
    "percent": "0.0%",
    "date": "yyyy-mm-dd",
    "int": "#,##0",
}
# Dates stay real dates (numbers with a date format), written the way readers of the
# workbook's language write them: all digits, so no month names depend on the reader's
# spreadsheet program knowing the language, and day first where that is the custom
# (es, fr: 31/12/2026; nl: 31-12-2026).  English stays ISO (2026-12-31): an English
# workbook goes to American and British readers alike, and ISO is unambiguous to both.
DATE_FORMATS: dict[str, str] = {"en": "yyyy-mm-dd", "es": "dd/mm/yyyy", "fr": "dd/mm/yyyy", "nl": "dd-mm-yyyy"}
_DEFAULT_WIDTHS: dict[str, float] = {"text": 28, "money": 15, "number": 12, "percent": 10, "date": 12, "int": 10}
# Text a spreadsheet would read as a formula, or as a command for DDE.
_CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_BAD_TITLE = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class ReportColumn:
    """A report column: header text, how to format it, width in characters (None: by kind)."""

    header: str
    kind: ColumnKind = "text"
    width: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in NUMBER_FORMATS:
            raise TemplateError(
                f"column {self.header!r}: unknown kind {self.kind!r}; use one of {', '.join(NUMBER_FORMATS)}"
            )


@dataclass
class ReportSheet:
    """One sheet: ``rows`` is any iterable of sequences in column order and is consumed once, streamed."""

    title: str
    columns: Sequence[ReportColumn]
    rows: Iterable[Sequence[Any]]
    title_rows: Sequence[str] = field(default_factory=tuple)


def date_format(language: str | None = None) -> str:
    """The date number format of a workbook in ``language`` (default: the language being written in)."""
    return DATE_FORMATS.get(language or current_language(), DATE_FORMATS["en"])


def _sheet_title(title: str, used: set[str]) -> str:
    # Excel forbids []:*?/\ in sheet names and caps them at 31 characters.
    base = _BAD_TITLE.sub("-", str(title)).strip("'") or "Sheet"
    base = base[:31]
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name = base[: 31 - len(suffix)] + suffix
        n += 1
    used.add(name.lower())
    return name


def write_report(out: str | os.PathLike[str] | IO[bytes], sheets: Sequence[ReportSheet]) -> None:
    """Write sheets to ``out`` (path or binary file) as an .xlsx, streaming rows.

    Headers and titles may be lazy texts: they are written in the language in force
    (``core.formatting.in_locale``), and dates take that language's date format.
    Amounts, numbers and percentages stay numbers with a number format (``#,##0.00``,
    ``0.0%``) that the spreadsheet shows with its reader's own separators.

    Each sheet gets optional title rows, a bold filled header row that is frozen,
    repeated on every printed page and carries an autofilter over the data,
    per-kind number formats and widths, and landscape fit-to-width printing.
    Text that starts with = + - @ is written as literal text (quotePrefix), never
    as a formula.  Memory does not grow with the number of rows: the package is
    written by our own streaming writer (exports/xlsx/writer.py).
    """
    if not sheets:
        raise TemplateError("a report needs at least one sheet")
    for spec in sheets:
        if not spec.columns:
            raise TemplateError(f"sheet {spec.title!r} has no columns")
    used: set[str] = set()
    with WorkbookWriter(out) as book:
        for spec in sheets:
            _write_sheet(book, spec, _sheet_title(spec.title, used))


_HEADER = Style(bold=True, fill_rgb="FFD9E1F2", bottom_border_rgb="FF808080", centered_wrapped=True)
_TITLE = Style(bold=True, size=14)
_SUBTITLE = Style(bold=True, size=11)


def _formats(kind: ColumnKind, date: str) -> CellFormats:
    fmt = date if kind == "date" else NUMBER_FORMATS[kind]
    # Numbers (and booleans) take the column's format only in money, percent and int
    # columns; a date column shows date-times as dates.
    return CellFormats(
        number=fmt if kind in ("money", "percent", "int") else "General",
        date=date,
        datetime=date if kind == "date" else f"{date} h:mm:ss",
        guarded_text=fmt,
    )


def _write_sheet(book: WorkbookWriter, spec: ReportSheet, title: str) -> None:
    ncols = len(spec.columns)
    headers = [str(col.header) for col in spec.columns]
    date = date_format()
    widths = [
        col.width or max(_DEFAULT_WIDTHS[col.kind], min(len(header) + 2, 40))
        for col, header in zip(spec.columns, headers, strict=True)
    ]
    header_row = len(spec.title_rows) + 1
    with book.sheet(
        title, widths, freeze_row=header_row + 1, print_title_row=header_row, landscape_fit_width=True
    ) as sheet:
        for i, line in enumerate(spec.title_rows):
            sheet.write_row([str(line)], _TITLE if i == 0 else _SUBTITLE)
        sheet.write_row(headers, _HEADER)
        written = sheet.write_rows(spec.rows, [_formats(col.kind, date) for col in spec.columns], label=str(spec.title))
        sheet.set_filter(f"A{header_row}:{column_letter(ncols)}{header_row + written}")


def csv_cell(value: Any) -> str:
    """One CSV field: dates as ISO, Decimals exact, dangerous text prefixed with ' (CSV injection guard)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if text.startswith(_CSV_DANGEROUS):
        return "'" + text
    return text


def write_csv(out: IO[str], sheet: ReportSheet) -> None:
    """Write one ReportSheet as CSV (header row, then rows), guarded against formula injection.

    ``out`` should be opened with ``newline=""``.  Title rows are not written:
    CSV consumers expect the header on the first line.  Headers are in the language
    in force; values stay machine-readable whatever the language (ISO dates, ``.`` as
    the decimal mark, no thousands separators).
    """
    writer = csv.writer(out)
    writer.writerow([csv_cell(str(c.header)) for c in sheet.columns])
    for values in sheet.rows:
        writer.writerow([csv_cell(v) for v in values])
