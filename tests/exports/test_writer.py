"""Our own sheet writer: whatever a report holds reads back as written, in openpyxl and through LibreOffice."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

from exports.builtin import NUMBER_FORMATS, ReportColumn, ReportSheet, write_report
from exports.errors import TemplateError
from exports.xlsx.writer import CellFormats, WorkbookWriter, clean_text

KINDS = list(NUMBER_FORMATS)


def openpyxl_reference_report(
    out: IO[bytes],
    title: str,
    columns: Sequence[ReportColumn],
    rows: Sequence[Sequence[Any]],
    title_rows: Sequence[str],
) -> None:
    """The built-in report as openpyxl's public write-only API wrote it before our writer replaced it."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title)
    header_row = len(title_rows) + 1
    for idx, col in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(idx)].width = col.width or 10
    ws.freeze_panes = f"A{header_row + 1}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    for i, line in enumerate(title_rows):
        cell = WriteOnlyCell(ws, value=clean_text(line))
        cell.data_type = "s"
        cell.font = Font(bold=True, size=14 if i == 0 else 11)
        ws.append([cell])
    header = []
    for col in columns:
        cell = WriteOnlyCell(ws, value=col.header)
        cell.data_type = "s"
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="FFD9E1F2")
        cell.border = Border(bottom=Side(style="thin", color="FF808080"))
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        header.append(cell)
    ws.append(header)
    for values in rows:
        out_row: list[Any] = []
        for col, value in zip(columns, values, strict=False):
            fmt = NUMBER_FORMATS[col.kind]
            styled = col.kind in ("money", "percent", "int")
            if value is None:
                out_row.append(None)
            elif isinstance(value, str):
                cell = WriteOnlyCell(ws, value=clean_text(value))
                cell.data_type = "s"
                if value.startswith(("=", "+", "-", "@")):
                    cell.number_format, cell.quotePrefix = fmt, True
                out_row.append(cell)
            elif isinstance(value, dt.datetime):
                cell = WriteOnlyCell(ws, value=value.replace(tzinfo=None))
                if col.kind == "date":
                    cell.number_format = fmt
                out_row.append(cell)
            elif styled:
                cell = WriteOnlyCell(ws)
                cell.number_format = fmt  # before the value: a date keeps a date format
                cell.value = value
                out_row.append(cell)
            else:
                out_row.append(value)
        ws.append(out_row)
    wb.save(out)


def _cells(data: bytes) -> list[tuple[Any, ...]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [
        (ws.title, c.coordinate, c.value, c.data_type, c.number_format, c.quotePrefix)
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.value is not None
    ]


def _expected(value: Any) -> Any:
    """What openpyxl reads back for a value we wrote."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return float(value) if "." in str(value) or "E" in str(value) else int(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return value


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
formula_like = st.builds(lambda a, b: a + b, st.sampled_from(["=", "+", "-", "@"]), texts)
values = st.one_of(
    st.none(),
    texts,
    formula_like,
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**12), max_value=10**12),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
    rows=st.lists(st.lists(values, min_size=4, max_size=4), max_size=6),
)
def test_any_text_number_date_or_decimal_reads_back_as_written(kinds: list[str], rows: list[list[Any]]) -> None:
    columns = [ReportColumn(f"Column {i}", kind) for i, kind in enumerate(kinds)]  # type: ignore[arg-type]
    rows = [row[: len(columns)] for row in rows]
    buf = io.BytesIO()
    write_report(buf, [ReportSheet("Data", columns, iter(rows))])
    ws = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))["Data"]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(r, c)
            expected = _expected(value)
            if isinstance(value, str):
                assert cell.data_type == "s" and cell.value == expected, (value, cell.value)
                assert bool(cell.quotePrefix) == (value[:1] in ("=", "+", "-", "@"))
            elif isinstance(value, float):
                assert cell.value == expected
            else:
                assert cell.value == expected, (value, cell.value)


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.lists(values, min_size=4, max_size=4), max_size=5), titles=st.lists(texts, max_size=2))
def test_every_cell_matches_what_openpyxl_write_only_produced(rows: list[list[Any]], titles: list[str]) -> None:
    columns = [
        ReportColumn("Text"),
        ReportColumn("Money", "money"),
        ReportColumn("Day", "date"),
        ReportColumn("%", "percent"),
    ]
    ours, theirs = io.BytesIO(), io.BytesIO()
    write_report(ours, [ReportSheet("Data", columns, iter(rows), titles)])
    openpyxl_reference_report(theirs, "Data", columns, rows, titles)

    def normal(cells: list[tuple[Any, ...]], near: bool = False) -> list[tuple[Any, ...]]:
        # openpyxl writes Decimals as their exact text and empty strings as empty cells; so do we.
        # openpyxl writes floats to 16 significant digits (a whole float as an int), we write Python's exact
        # repr: numbers are rounded to 15 digits (the largest float's 16-digit text reads back as infinity)
        # and compared within a unit of the 15th digit (2.037729137745195e-221 and its 16-digit text
        # round to neighbouring 15-digit numbers).
        def number(v: Any) -> Any:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return v
            rounded = float(f"{v:.15g}")
            return pytest.approx(rounded, rel=2e-14) if near else rounded

        return [(t, ref, number(v), d, f, q) for t, ref, v, d, f, q in cells if v != ""]

    assert normal(_cells(ours.getvalue())) == normal(_cells(theirs.getvalue()), near=True)


def test_the_package_has_the_parts_excel_expects_and_no_shared_state_between_rows() -> None:
    buf = io.BytesIO()
    write_report(
        buf,
        [
            ReportSheet("A", [ReportColumn("X", "money")], [[Decimal("1.5")]]),
            ReportSheet("B", [ReportColumn("Y")], [["y"]]),
        ],
    )
    names = set(zipfile.ZipFile(buf).namelist())
    assert {
        "[Content_Types].xml",
        "_rels/.rels",
        "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels",
        "xl/styles.xml",
        "xl/worksheets/sheet1.xml",
        "xl/worksheets/sheet2.xml",
    } <= names


def test_a_value_no_cell_can_hold_is_refused_naming_the_sheet_and_row(tmp_path: Path) -> None:
    target = tmp_path / "report.xlsx"
    with pytest.raises(TemplateError, match="sheet 'Ledger' row 2: cannot put a dict value in a cell"):
        write_report(target, [ReportSheet("Ledger", [ReportColumn("X")], iter([["fine"], [{"a": 1}]]))])
    assert not target.exists()  # nothing half-written is left behind


def test_non_finite_numbers_and_dates_excel_cannot_show_become_text() -> None:
    buf = io.BytesIO()
    write_report(
        buf,
        [
            ReportSheet(
                "S", [ReportColumn("X", "money")], [[float("nan")], [Decimal("Infinity")], [dt.date(1899, 1, 2)]]
            )
        ],
    )
    ws = openpyxl.load_workbook(buf)["S"]
    assert [ws.cell(r, 1).value for r in (2, 3, 4)] == ["nan", "Infinity", "1899-01-02"]


def test_a_sheet_must_be_finished_before_the_next_starts() -> None:
    with pytest.raises(TemplateError, match="finish the previous sheet"), WorkbookWriter(io.BytesIO()) as book:
        book.sheet("One")
        book.sheet("Two")


needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")


@needs_soffice
def test_libreoffice_converts_a_report_and_keeps_its_values() -> None:
    columns = [
        ReportColumn("Date", "date"),
        ReportColumn("Description"),
        ReportColumn("Amount", "money"),
        ReportColumn("Share", "percent"),
        ReportColumn("Receipts", "int"),
    ]
    rows = [
        [dt.date(2024, 1, 5), "Boreholes & pumps <north>", Decimal("1250.50"), 0.125, 3],
        [dt.date(2024, 2, 1), '=HYPERLINK("http://evil.example")', Decimal("-99.99"), 1, 0],
        [dt.datetime(2024, 3, 1, 9, 30), "tab\there\nnewline", None, 0.5, True],
    ]
    with tempfile.TemporaryDirectory(prefix="gk-writer-") as tmp:
        root = Path(tmp)
        src, out_dir = root / "report.xlsx", root / "out"
        out_dir.mkdir()
        write_report(src, [ReportSheet("Ledger", columns, rows, ("Expenditure ledger",))])
        proc = subprocess.run(
            [
                shutil.which("soffice") or "soffice",
                "--headless",
                "--norestore",
                f"-env:UserInstallation={(root / 'lo').as_uri()}",
                "--convert-to",
                "xlsx",
                "--outdir",
                str(out_dir),
                str(src),
            ],
            capture_output=True,
            env={**os.environ, "HOME": str(root)},
            timeout=180,
            check=False,
        )
        converted = out_dir / "report.xlsx"
        assert proc.returncode == 0 and converted.is_file(), proc.stderr
        ours = openpyxl.load_workbook(src)["Ledger"]
        theirs = openpyxl.load_workbook(converted)["Ledger"]
    read = [[c.value for c in row] for row in ours.iter_rows()]
    # LibreOffice stores a boolean as the formula TRUE() / FALSE() with its cached value.
    booleans = {"=TRUE()": True, "=FALSE()": False}
    assert read == [[booleans.get(c.value, c.value) for c in row] for row in theirs.iter_rows()]
    assert theirs["B4"].value == '=HYPERLINK("http://evil.example")' and theirs["B4"].data_type == "s"
    assert theirs["C3"].number_format == "#,##0.00" and theirs["A3"].number_format.replace("\\", "") == "yyyy-mm-dd"


def test_cell_formats_default_to_general_numbers_and_iso_dates() -> None:
    assert CellFormats() == CellFormats("General", "yyyy-mm-dd", "yyyy-mm-dd h:mm:ss", "h:mm:ss", "General")
