"""What changed since the last submission: two generated workbooks compared cell by cell, in words.

The files are read back as they were sent (the stored bytes), so the answer
covers funder templates and built-in reports alike: "Indicator progress, KP-1c,
Actual: 12 → 15". A changed cell is named by its sheet, the label of its row
(the first text in that row) and of its column (the header row above it).
Plain functions, no Flask.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from core import formatting
from core.formatting import gettext as _
from core.formatting import ngettext

MAX_CHANGES = 200  # listed on the page; the rest are counted
HEADER_SCAN_ROWS = 15


@dataclass(frozen=True)
class CellChange:
    sheet: str
    ref: str
    row_label: str | None
    column_label: str | None
    before: Any
    after: Any

    @property
    def where(self) -> str:
        parts = [self.sheet]
        if self.row_label:
            parts.append(self.row_label)
        if self.column_label:
            parts.append(self.column_label)
        return ", ".join(parts) + f" ({self.ref})"

    @property
    def sentence(self) -> str:
        return f"{self.where}: {show(self.before)} → {show(self.after)}"


@dataclass
class Comparison:
    changes: list[CellChange] = field(default_factory=list)
    more: int = 0  # changes beyond MAX_CHANGES, counted only
    sheets_added: list[str] = field(default_factory=list)
    sheets_removed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.changes) + self.more

    @property
    def unchanged(self) -> bool:
        return not self.total and not self.sheets_added and not self.sheets_removed

    @property
    def summary(self) -> str:
        # In the reader's language; each clause is a whole translated phrase, listed with "; ".
        if self.unchanged:
            return _("Nothing changed: every figure is the same as in the last submission.")
        parts = []
        if self.total:
            parts.append(ngettext("%(num)d figure changed", "%(num)d figures changed", self.total))
        if self.sheets_added:
            parts.append(
                ngettext(
                    "new sheet: %(sheets)s",
                    "new sheets: %(sheets)s",
                    len(self.sheets_added),
                    sheets=", ".join(self.sheets_added),
                )
            )
        if self.sheets_removed:
            parts.append(
                ngettext(
                    "sheet gone: %(sheets)s",
                    "sheets gone: %(sheets)s",
                    len(self.sheets_removed),
                    sheets=", ".join(self.sheets_removed),
                )
            )
        text = _("%(changes)s since the last submission.", changes="; ".join(parts))
        return text[:1].upper() + text[1:]


def show(value: Any) -> str:
    if value is None or value == "":
        return _("empty")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        return formatting.day(value.date()) if value.time() == dt.time(0) else formatting.moment(value)
    if isinstance(value, dt.date):
        return formatting.day(value)
    if isinstance(value, (int, float, Decimal)):
        return formatting.number(value)
    return f"“{value}”"


def _grid(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    try:
        return {sheet.title: [tuple(row) for row in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets}
    finally:
        workbook.close()


def _header_row(rows: list[tuple[Any, ...]]) -> int | None:
    """The first row (0-based) of at least two text cells: a table's header."""
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        if sum(1 for value in row if isinstance(value, str) and value.strip()) >= 2:
            return index
    return None


def _row_label(row: tuple[Any, ...], column: int) -> str | None:
    for index, value in enumerate(row):
        if index != column and isinstance(value, str) and value.strip():
            return value.strip()[:60]
    return None


def _cell(rows: list[tuple[Any, ...]], r: int, c: int) -> Any:
    if r < len(rows) and c < len(rows[r]):
        value = rows[r][c]
        return None if value == "" else value
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)) and not isinstance(a, bool):
        return Decimal(str(a)) == Decimal(str(b))
    return a == b


def compare_workbooks(before: bytes, after: bytes, *, limit: int = MAX_CHANGES) -> Comparison:
    """Every cell whose value differs between ``before`` (the last submission) and ``after``, in words."""
    old, new = _grid(before), _grid(after)
    result = Comparison(
        sheets_added=[name for name in new if name not in old],
        sheets_removed=[name for name in old if name not in new],
    )
    for name, rows in new.items():
        if name not in old:
            continue
        previous = old[name]
        header = _header_row(rows)
        height = max(len(rows), len(previous))
        for r in range(height):
            width = max(len(rows[r]) if r < len(rows) else 0, len(previous[r]) if r < len(previous) else 0)
            for c in range(width):
                was, now = _cell(previous, r, c), _cell(rows, r, c)
                if _same(was, now):
                    continue
                if len(result.changes) >= limit:
                    result.more += 1
                    continue
                row = rows[r] if r < len(rows) else previous[r]
                column_label = None
                if header is not None and header < r:
                    label = _cell(rows, header, c)
                    column_label = str(label).strip() if label is not None else None
                result.changes.append(
                    CellChange(
                        sheet=name,
                        ref=f"{get_column_letter(c + 1)}{r + 1}",
                        row_label=_row_label(row, c) if header is None or r > header else None,
                        column_label=column_label,
                        before=was,
                        after=now,
                    )
                )
    return result
