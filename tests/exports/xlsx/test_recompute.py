"""A funder's ingestion script that never recalculates still reads our totals, after an opt-in LibreOffice recompute."""

from __future__ import annotations

import io
import shutil
import stat
import warnings
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from exports.errors import TemplateError
from exports.xlsx.fill import fill_workbook
from exports.xlsx.inspector import read_cells
from exports.xlsx.recompute import recompute_caches
from tests.exports.helpers import load, make_workbook, parts, sheet_xml

needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")


def _values(data: bytes, sheet: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about extensions it drops on *its* load
        return openpyxl.load_workbook(io.BytesIO(data), data_only=True)[sheet]


def _bench_filled() -> tuple[bytes, dict[int, list[int]]]:
    """tpl_bench: Data!C4:L1003 inputs, M = SUM(C:L) per row, row 1004 = SUM per column."""
    rows = {r: [(r - 3) * 10 + c for c in range(1, 11)] for r in range(4, 14)}
    writes = {("Data", f"{col}{r}"): v for r, vals in rows.items() for col, v in zip("CDEFGHIJKL", vals)}
    return fill_workbook(load("synthetic/tpl_bench.xlsx"), writes), rows


@needs_soffice
def test_ingestion_script_reads_row_and_column_totals_after_recompute() -> None:
    filled, rows = _bench_filled()
    # The problem being solved: without recalculation the SUM cells read as empty.
    assert _values(filled, "Data")["M4"].value is None

    out = recompute_caches(filled)

    ws = _values(out, "Data")
    for r, vals in rows.items():
        assert ws[f"M{r}"].value == sum(vals), f"row total M{r}"
    for i, col in enumerate("CDEFGHIJKL"):
        assert ws[f"{col}1004"].value == sum(vals[i] for vals in rows.values()), f"column total {col}1004"
    assert ws["M1004"].value == sum(sum(vals) for vals in rows.values())
    assert ws["M500"].value == 0  # an empty budget line totals zero, not blank


@needs_soffice
def test_only_the_sheet_with_changed_caches_is_rewritten() -> None:
    filled, _ = _bench_filled()
    out = recompute_caches(filled)
    before, after = parts(filled), parts(out)
    assert list(before) == list(after)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"xl/worksheets/sheet2.xml"}  # Data; Cover, styles, drawing, picture untouched
    assert b'fullCalcOnLoad="1"' in after["xl/workbook.xml"]  # Excel still recalculates on open


@needs_soffice
def test_input_cells_and_formula_text_are_unchanged() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    filled = fill_workbook(data, {("Budget", f"D{r}"): r * 10 for r in range(4, 11)})
    out = recompute_caches(filled)

    for sheet in ("Cover", "Budget", "Indicators", "Lists", "Calc"):
        old, new = read_cells(filled, sheet), read_cells(out, sheet)
        assert set(old) == set(new), sheet
        for ref, cell in old.items():
            assert new[ref].formula == cell.formula and new[ref].style == cell.style, f"{sheet}!{ref}"
            if cell.formula is None:
                assert new[ref] == cell, f"{sheet}!{ref} is not a formula and must not change"
    budget = _values(out, "Budget")
    assert budget["K4"].value == 10_000 - 40
    assert budget["L4"].value == pytest.approx(40 / 10_000)
    assert budget["D11"].value == sum(r * 10 for r in range(4, 11))
    assert budget["K11"].value == 280_000 - sum(r * 10 for r in range(4, 11))
    # LibreOffice cannot parse the Indicators table's [[#This Row],...] references and
    # answers #N/A; the template's own cache (0) is kept instead of LibreOffice's error.
    assert read_cells(out, "Indicators", ["E2"])["E2"].value == 0
    changed = {n for n, b in parts(filled).items() if parts(out)[n] != b}
    assert changed == {"xl/worksheets/sheet2.xml"}


SHEET = (
    '<row r="1"><c r="A1"><v>1</v></c>'
    '<c r="B1"><f t="shared" ref="B1:B3" si="0">A1*2</f></c>'
    '<c r="C1"><f>"n"&amp;A1</f></c>'
    '<c r="D1"><f>A1&gt;1</f></c>'
    '<c r="E1"><f>1/0</f></c>'
    '<c r="F1"><f>[1]Sheet1!A1</f><v>42</v></c>'
    '<c r="G1"><f t="array" ref="G1:G2">A1:A2*10</f></c></row>'
    '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f t="shared" si="0"/></c><c r="G2"><v>7</v></c></row>'
    '<row r="3"><c r="A3"><v>3.5</v></c><c r="B3"><f t="shared" si="0"/></c>'
    '<c r="C3" t="inlineStr"><is><t>note</t></is></c></row>'
)


@needs_soffice
def test_shared_text_boolean_error_array_and_external_formulas_get_the_right_cache() -> None:
    data = make_workbook(sheet_xml(SHEET, before='<dimension ref="A1:G3"/>'))
    out = recompute_caches(data)

    cells = read_cells(out, "Data")
    assert [cells[r].value for r in ("B1", "B2", "B3")] == [2, 4, 7]  # shared children too
    assert (cells["C1"].kind, cells["C1"].value) == ("text", "n1")
    assert (cells["D1"].kind, cells["D1"].value) == ("bool", False)
    assert (cells["E1"].kind, cells["E1"].value) == ("error", "#DIV/0!")
    assert cells["F1"].value == 42  # reads another workbook: the template's cache stays
    assert cells["G1"].value == 10  # array formula: the master gets its value
    assert cells["G2"].value == 7  # ...the rest of the range is not a formula cell and is left alone
    assert cells["C3"] == read_cells(data, "Data")["C3"]
    after = parts(out)
    assert b'<c r="C1" t="str"><f>"n"&amp;A1</f><v>n1</v></c>' in after["xl/worksheets/sheet1.xml"]
    assert b'fullCalcOnLoad="1"' in after["xl/workbook.xml"]
    assert {n for n, b in parts(data).items() if after[n] != b} == {"xl/worksheets/sheet1.xml", "xl/workbook.xml"}


def test_missing_libreoffice_is_a_clear_error() -> None:
    filled, _ = _bench_filled()
    with pytest.raises(TemplateError, match="LibreOffice .* not found"):
        recompute_caches(filled, soffice="/nonexistent/soffice")


def test_failing_libreoffice_is_refused_not_half_done(tmp_path: Path) -> None:
    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\necho 'crashed' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    filled, _ = _bench_filled()
    with pytest.raises(TemplateError, match="could not recompute"):
        recompute_caches(filled, soffice=str(fake))


def test_libreoffice_hanging_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\nsleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    filled, _ = _bench_filled()
    with pytest.raises(TemplateError, match="within 1 seconds"):
        recompute_caches(filled, soffice=str(fake), timeout=1)


def test_workbook_without_formulas_is_returned_as_is(tmp_path: Path) -> None:
    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\nexit 3\n")  # would fail if it were called
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    data = make_workbook(sheet_xml('<row r="1"><c r="A1"><v>1</v></c></row>'))
    assert recompute_caches(data, soffice=str(fake)) == data
