"""Our own reports open in Excel looking like a finance officer made them, and user text never runs as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc
import zipfile
from collections.abc import Iterator
from decimal import Decimal

import openpyxl
import pytest

from exports.builtin import ReportColumn, ReportSheet, csv_cell, write_csv, write_report
from exports.errors import TemplateError

COLUMNS = [
    ReportColumn("Date", "date"),
    ReportColumn("Reference", "text", 14),
    ReportColumn("Description", "text", 40),
    ReportColumn("Amount", "money"),
    ReportColumn("Share of budget", "percent"),
    ReportColumn("Receipts", "int"),
    ReportColumn("Rate", "number"),
]
ROWS = [
    [dt.date(2024, 1, 5), "EXP-001", "Boreholes", Decimal("1250.50"), 0.125, 3, 0.85],
    [dt.date(2024, 1, 9), "EXP-002", '=HYPERLINK("http://evil.example","Invoice")', Decimal("99.99"), 0.01, 1, 1.1],
    [dt.date(2024, 2, 1), "EXP-003", "-5 adjustment", None, 0.0, 0, None],
    [dt.date(2024, 2, 2), "EXP-004", "+ tip", 12, 0.5, 2, 1],
    [dt.date(2024, 2, 3), "EXP-005", "@SUM(A1)", 7, 0.5, 2, 1],
]


def _report(
    rows: list[list] | None = None, title_rows: tuple[str, ...] = ("Expenditure ledger", "Grant GK-7")
) -> openpyxl.Workbook:
    buf = io.BytesIO()
    write_report(buf, [ReportSheet("Ledger", COLUMNS, iter(rows if rows is not None else ROWS), title_rows)])
    return openpyxl.load_workbook(io.BytesIO(buf.getvalue()))


def test_header_is_bold_filled_frozen_filtered_and_printed_on_each_page() -> None:
    ws = _report()["Ledger"]
    header = [c for c in ws[3]]
    assert [c.value for c in header] == [c.header for c in COLUMNS]
    assert all(c.font.b and c.fill.fgColor.rgb == "FFD9E1F2" for c in header)
    assert ws["A1"].value == "Expenditure ledger" and ws["A1"].font.sz == 14
    assert ws.freeze_panes == "A4"
    assert ws.auto_filter.ref == "A3:G8"
    assert ws.print_title_rows == "$3:$3"
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.column_dimensions["C"].width == 40


def test_number_formats_per_kind() -> None:
    ws = _report()["Ledger"]
    row = ws[4]
    assert row[0].value == dt.datetime(2024, 1, 5) and row[0].number_format == "yyyy-mm-dd"
    assert row[3].value == 1250.5 and row[3].number_format == "#,##0.00"
    assert row[4].value == 0.125 and row[4].number_format == "0.0%"
    assert row[5].value == 3 and row[5].number_format == "#,##0"
    assert ws["D6"].value is None


@pytest.mark.parametrize("cell", ["C5", "C6", "C7", "C8"])
def test_text_that_looks_like_a_formula_stays_text(cell: str) -> None:
    ws = _report()["Ledger"]
    assert ws[cell].data_type == "s"
    assert ws[cell].quotePrefix
    assert ws[cell].value[0] in "=-+@"


def test_no_formula_elements_in_the_sheet_xml() -> None:
    buf = io.BytesIO()
    write_report(buf, [ReportSheet("Ledger", COLUMNS, ROWS)])
    xml = zipfile.ZipFile(buf).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "HYPERLINK" in xml


def test_no_title_rows_puts_header_first() -> None:
    ws = _report(title_rows=())["Ledger"]
    assert ws["A1"].value == "Date" and ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:G6"


def test_empty_report_still_has_header_and_filter() -> None:
    ws = _report(rows=[], title_rows=())["Ledger"]
    assert ws.auto_filter.ref == "A1:G1" and ws.max_row == 1


def test_several_sheets_with_unsafe_titles() -> None:
    buf = io.BytesIO()
    cols = [ReportColumn("X", "int")]
    write_report(buf, [ReportSheet("Q1/2024: spend?", cols, [[1]]), ReportSheet("Q1/2024: spend?", cols, [[2]])])
    wb = openpyxl.load_workbook(buf)
    assert wb.sheetnames == ["Q1-2024- spend-", "Q1-2024- spend- (2)"]


def test_too_many_values_in_a_row_is_refused() -> None:
    with pytest.raises(TemplateError, match="row 1 has 3 values for 1 columns"):
        write_report(io.BytesIO(), [ReportSheet("S", [ReportColumn("X")], [[1, 2, 3]])])


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(TemplateError, match="unknown kind"):
        ReportColumn("X", "currency")  # type: ignore[arg-type]


def test_rows_are_streamed_with_flat_memory() -> None:
    def ledger(n: int) -> Iterator[list]:
        for i in range(n):
            yield [dt.date(2024, 1, 1), f"EXP-{i}", "Fuel for field visit", Decimal("12.34"), 0.1, i, 1.0]

    peaks = []
    for n in (1_000, 10_000):
        tracemalloc.start()
        write_report(io.BytesIO(), [ReportSheet("Ledger", COLUMNS, ledger(n))])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Ten times the rows must not mean ten times the memory (the output buffer aside).
    assert peaks[1] < peaks[0] * 3, peaks


def test_csv_guards_against_formula_injection() -> None:
    out = io.StringIO(newline="")
    write_csv(out, ReportSheet("Ledger", COLUMNS, ROWS))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == [c.header for c in COLUMNS]
    assert rows[1] == ["2024-01-05", "EXP-001", "Boreholes", "1250.50", "0.125", "3", "0.85"]
    assert rows[2][2] == '\'=HYPERLINK("http://evil.example","Invoice")'
    assert rows[3][2] == "'-5 adjustment" and rows[3][3] == ""
    assert rows[4][2] == "'+ tip" and rows[5][2] == "'@SUM(A1)"


@pytest.mark.parametrize(
    "value,expected",
    [("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"), (-5, "-5"), (Decimal("-1.50"), "-1.50"), (True, "TRUE"), ("a=b", "a=b")],
)
def test_csv_cell(value: object, expected: str) -> None:
    assert csv_cell(value) == expected


def test_report_cells_are_what_openpyxl_itself_would_write() -> None:
    from tests.exports.test_writer import openpyxl_reference_report

    rows = ROWS + [[dt.datetime(2024, 3, 1, 9, 30), "X", "tab\tinside", 1.5, 1, 10_000, True]]

    def cells(wb: openpyxl.Workbook) -> list[tuple]:
        ws = wb["Ledger"]
        return [
            (c.coordinate, c.value, c.data_type, c.number_format, c.quotePrefix) for row in ws.iter_rows() for c in row
        ]

    ours = cells(_report(rows))
    buf = io.BytesIO()
    openpyxl_reference_report(buf, "Ledger", COLUMNS, rows, ("Expenditure ledger", "Grant GK-7"))
    assert ours == cells(openpyxl.load_workbook(buf))
