"""A funder's template comes back exactly as sent, with our figures in the cells they marked."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
import warnings
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from exports.errors import TemplateError
from exports.xlsx.fill import FillPlan, Formula, fill_workbook
from exports.xlsx.inspector import date_to_serial, inspect_template, read_cells
from exports.xlsx.safezip import open_workbook_zip
from tests.exports.helpers import (
    load,
    make_workbook,
    parts,
    replace_parts,
    sheet_xml,
    workbook_xml,
)

DATE = dt.date(2024, 3, 31)
MOMENT = dt.datetime(2024, 3, 31, 12, 30)


def _openpyxl(data: bytes, **kw: Any) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about extensions it drops on *its* load
        return openpyxl.load_workbook(io.BytesIO(data), **kw)


def _pick_cells(data: bytes, sheet: str, n: int) -> list[str]:
    """Empty cells a user could fill, found by the inspector (real templates name none)."""
    info = inspect_template(data).sheet(sheet)
    pool = info.input_cells if info.protected else info.blank_cells
    return [c for c in pool if c not in set(info.formula_cells)][:n]


# template -> (writes, parts expected to change, parts expected to disappear)
def _synthetic_cases() -> list[tuple[str, dict[tuple[str, str], Any], set[str], set[str]]]:
    xw_writes = {
        ("Cover", "C4"): '=HYPERLINK("http://evil.example","click")',
        ("Cover", "C5"): "Clean water for Kisumu",
        ("Cover", "C8"): "USD",
        ("Cover", "C9"): "Interim",
        **{("Budget", f"D{r}"): Decimal(f"{r}100.25") for r in range(4, 11)},
        ("Budget", "F4"): 17.5,
        ("Indicators", "D2"): 4200,
        ("Indicators", "D3"): 0.75,
        ("Indicators", "D4"): True,
        ("Indicators", "F2"): "On track",
    }
    # The "=HYPERLINK" text gets a quote-prefixed copy of its cell style: styles.xml gains one xf.
    xw_sheets = {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml", "xl/styles.xml"}
    bench = {("Data", f"{c}{r}"): r * 10 + i for r in range(4, 1004) for i, c in enumerate("CDEFGHIJKL")}
    return [
        # xlsxwriter templates already ask for fullCalcOnLoad, so workbook.xml stays identical.
        ("synthetic/tpl_xlsxwriter.xlsx", xw_writes, xw_sheets, set()),
        ("synthetic/tpl_xlsxwriter.xlsm", xw_writes, xw_sheets, set()),
        (
            "synthetic/tpl_libreoffice.xlsx",
            {
                ("Cover", "C4"): "Grant GK-2024-07",
                ("Cover", "C5"): MOMENT,
                ("Cover", "C6"): "EUR",
                ("Budget", "E2"): Decimal("950.10"),
                ("Budget", "E3"): 1750,
                ("Budget", "E4"): None,
            },
            # A date into a General cell: styles.xml gains a date-formatted copy of the cell's style.
            {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/workbook.xml", "xl/styles.xml"},
            set(),
        ),
        ("synthetic/tpl_bench.xlsx", bench, {"xl/worksheets/sheet2.xml"}, set()),
        ("synthetic/tpl_bench_big.xlsx", bench, {"xl/worksheets/sheet1.xml"}, set()),
    ]


SYNTHETIC = _synthetic_cases()


def _check_faithful(before: bytes, after: bytes, changed: set[str], dropped: set[str]) -> None:
    zb, za = open_workbook_zip(before), open_workbook_zip(after)
    with zipfile.ZipFile(io.BytesIO(after)) as zf:
        assert zf.testzip() is None
    assert za.names == [n for n in zb.names if n not in dropped], "part order must be kept"
    actually_changed = {n for n in za.names if za.read(n) != zb.read(n)}
    assert actually_changed == changed
    for name in za.names:
        if name not in changed:
            # Not just the same content: the very same compressed bytes and metadata.
            assert za.raw(name) == zb.raw(name), name
            ia, ib = za.info(name), zb.info(name)
            assert (ia.date_time, ia.compress_type, ia.CRC, ia.external_attr) == (
                ib.date_time,
                ib.compress_type,
                ib.CRC,
                ib.external_attr,
            ), name


def _expected(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


@pytest.mark.parametrize("template,writes,changed,dropped", SYNTHETIC, ids=[c[0] for c in SYNTHETIC])
def test_synthetic_template_filled_faithfully(template: str, writes: dict, changed: set, dropped: set) -> None:
    before = load(template)
    after = fill_workbook(before, writes)
    _check_faithful(before, after, changed, dropped)

    wb = _openpyxl(after)
    by_sheet: dict[str, list[str]] = {}
    for (sheet, cell), value in writes.items():
        by_sheet.setdefault(sheet, []).append(cell)
        got = wb[sheet][cell]
        if isinstance(value, str):
            assert got.data_type == "s" and got.value == value, f"{sheet}!{cell}"
        elif isinstance(value, dt.date):
            # A date goes in as a serial; it shows as a date only where the template's style says so.
            assert got.value == (_expected(value) if got.is_date else date_to_serial(value)), f"{sheet}!{cell}"
        else:
            assert got.value == _expected(value), f"{sheet}!{cell}"
    for sheet, cells in by_sheet.items():
        ours = read_cells(after, sheet, cells)
        for cell in cells:
            value = writes[(sheet, cell)]
            content = ours[cell]
            assert content.formula is None
            if value is None:
                assert content.kind == "blank"
            elif isinstance(value, bool):
                assert (content.kind, content.value) == ("bool", value)
            elif isinstance(value, str):
                assert (content.kind, content.value) == ("text", value)
            elif isinstance(value, dt.date):
                assert (content.kind, content.value) in (("date", _expected(value)), ("number", date_to_serial(value)))
            else:
                assert content.kind == "number" and content.value == _expected(value)


REAL = [
    ("real/DFID_Template.xlsx", "RESULTS FRAMEWORK", "xl/worksheets/sheet1.xml"),
    ("real/BulkIndicatorImportTemplate.xlsx", "Import indicators", "xl/worksheets/sheet1.xml"),
    # PSNUxIM holds 163 formulas: their caches go, the calculation chain stays.
    ("real/COP25_PSNUxIM_Template.xlsx", "PSNUxIM", "xl/worksheets/sheet2.xml"),
]
REAL_VALUES = ["=1+1 stays text", Decimal("1234.5"), DATE, True]


def _check_styles_only_grew(before: bytes, after: bytes) -> int:
    """styles.xml after == before with cellXfs count raised and xf elements appended; returns how many."""
    old, new = parts(before)["xl/styles.xml"], parts(after)["xl/styles.xml"]
    old_tag = re.search(rb"<cellXfs count=\"(\d+)\">", old)
    new_tag = re.search(rb"<cellXfs count=\"(\d+)\">", new)
    assert old_tag and new_tag
    added = int(new_tag.group(1)) - int(old_tag.group(1))
    end_old, end_new = old.index(b"</cellXfs>"), new.index(b"</cellXfs>")
    assert new[: new_tag.start()] == old[: old_tag.start()]
    assert new[new_tag.end() : new_tag.end() + end_old - old_tag.end()] == old[old_tag.end() : end_old]
    assert new[end_new:] == old[end_old:]
    inserted = new[new_tag.end() + end_old - old_tag.end() : end_new]
    assert len(re.findall(rb"<xf ", inserted)) == added and b"xmlns" not in inserted
    return added


@pytest.mark.parametrize("template,sheet,part", REAL, ids=[r[0] for r in REAL])
def test_real_templates_filled_faithfully(template: str, sheet: str, part: str) -> None:
    # Real templates name no input cells: take empty ones the inspector finds.
    before = load(template)
    cells = _pick_cells(before, sheet, 4)
    assert len(cells) == 4, template
    writes = {(sheet, c): v for c, v in zip(cells, REAL_VALUES)}
    after = fill_workbook(before, writes)
    # Only the filled sheet, the calculation flag and the two added cell styles (date, quote prefix).
    _check_faithful(before, after, {part, "xl/workbook.xml", "xl/styles.xml"}, set())
    assert 1 <= _check_styles_only_grew(before, after) <= 2
    p = parts(after)
    assert b'fullCalcOnLoad="1"' in p["xl/workbook.xml"]
    ws = _openpyxl(after)[sheet]
    text, number, date, flag = (ws[c] for c in cells)
    assert (text.value, text.data_type, text.quotePrefix) == ("=1+1 stays text", "s", True)
    assert (number.value, number.data_type) == (1234.5, "n")
    assert date.is_date and date.value == dt.datetime(2024, 3, 31)
    assert (flag.value, flag.data_type) == (True, "b")
    ours = read_cells(after, sheet, cells)
    assert (ours[cells[0]].kind, ours[cells[0]].value, ours[cells[0]].formula) == ("text", "=1+1 stays text", None)
    assert (ours[cells[2]].kind, ours[cells[2]].value) == ("date", dt.datetime(2024, 3, 31))


def test_filling_a_sheet_full_of_formulas_keeps_the_calculation_chain() -> None:
    data = load("real/COP25_PSNUxIM_Template.xlsx")
    cells = _pick_cells(data, "PSNUxIM", 2)
    out = fill_workbook(data, {("PSNUxIM", cells[0]): 5, ("PSNUxIM", cells[1]): Decimal("7.25")})
    p, before = parts(out), parts(data)
    assert p["xl/calcChain.xml"] == before["xl/calcChain.xml"]
    assert p["[Content_Types].xml"] == before["[Content_Types].xml"]
    assert p["xl/_rels/workbook.xml.rels"] == before["xl/_rels/workbook.xml.rels"]
    assert {n for n in p if p[n] != before.get(n)} == {"xl/worksheets/sheet2.xml", "xl/workbook.xml"}
    # The caches of the sheet's formulas went (recomputed on open); the formulas did not.
    assert read_cells(out, "PSNUxIM", ["CW14"])["CW14"].formula is not None


def test_date_in_a_general_cell_gets_one_date_style_and_nothing_else_in_styles_changes() -> None:
    data = load("real/DFID_Template.xlsx")
    sheet = "RESULTS FRAMEWORK"
    out = fill_workbook(
        data,
        {
            (sheet, "C19"): dt.date(2024, 3, 31),
            (sheet, "D19"): dt.date(2024, 6, 30),  # same template style: the same new style
            (sheet, "E19"): dt.date(2024, 9, 30),
        },
    )
    assert _check_styles_only_grew(data, out) == 1
    ws = _openpyxl(out)[sheet]
    assert [ws[c].value for c in ("C19", "D19", "E19")] == [
        dt.datetime(2024, 3, 31),
        dt.datetime(2024, 6, 30),
        dt.datetime(2024, 9, 30),
    ]
    assert ws["C19"].number_format == "mm-dd-yy"  # built-in 14: Excel shows the reader's short date
    # The copy keeps everything else of the cell's look: font, fill, border, alignment, protection.
    was, now = _openpyxl(data)[sheet]["C19"]._style, ws["C19"]._style
    for part in ("fontId", "fillId", "borderId", "protectionId", "alignmentId", "xfId"):
        assert getattr(now, part) == getattr(was, part), part


def test_date_and_time_gets_a_date_and_time_format() -> None:
    data = load("real/DFID_Template.xlsx")
    out = fill_workbook(data, {("RESULTS FRAMEWORK", "C19"): MOMENT})
    cell = _openpyxl(out)["RESULTS FRAMEWORK"]["C19"]
    assert cell.value == MOMENT and cell.number_format == "m/d/yy h:mm"


def test_a_date_style_already_in_the_template_is_reused() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {("Cover", "C6"): DATE})  # C6 already shows dates (dd-mmm-yyyy)
    assert parts(out)["xl/styles.xml"] == parts(data)["xl/styles.xml"]


@pytest.mark.parametrize("text", ["=SUM(A1:A3)", "+44 20 7946 0000", "-5", "@user", "=1+1"])
def test_text_excel_could_read_as_a_formula_gets_the_quote_prefix(text: str) -> None:
    data = load("real/DFID_Template.xlsx")
    out = fill_workbook(data, {("RESULTS FRAMEWORK", "C19"): text, ("RESULTS FRAMEWORK", "D19"): "=2+2"})
    assert _check_styles_only_grew(data, out) == 1  # C19 and D19 share a style: one quote-prefixed copy
    cell = _openpyxl(out)["RESULTS FRAMEWORK"]["C19"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == (text, "s", True)
    got = read_cells(out, "RESULTS FRAMEWORK", ["C19"])["C19"]
    assert got.formula is None and got.value == text


def test_plain_text_needs_no_new_style() -> None:
    data = load("real/DFID_Template.xlsx")
    out = fill_workbook(data, {("RESULTS FRAMEWORK", "C19"): "Clean water", ("RESULTS FRAMEWORK", "D19"): 12})
    assert parts(out)["xl/styles.xml"] == parts(data)["xl/styles.xml"]


def test_text_starting_with_equals_is_never_a_formula() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {"Cover!C4": '=HYPERLINK("http://evil.example")'})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    cell = re.search(r'<c r="C4"[^>]*>.*?</c>', xml).group(0)
    assert 't="inlineStr"' in cell and "<f>" not in cell
    assert _openpyxl(out)["Cover"]["C4"].data_type == "s"


def test_decimal_is_written_exactly() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {"Budget!D4": Decimal("12345678901234.56"), "Budget!D5": Decimal("0.1")})
    xml = parts(out)["xl/worksheets/sheet2.xml"].decode()
    assert re.search(r'<c r="D4" s="8"><v>12345678901234.56</v></c>', xml)
    assert re.search(r'<c r="D5" s="8"><v>0.1</v></c>', xml)


def test_dates_become_serials_and_keep_the_cell_style() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {("Cover", "C6"): DATE, ("Cover", "C7"): MOMENT})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert '<c r="C6" s="4"><v>45382</v></c>' in xml
    assert _openpyxl(out)["Cover"]["C7"].value == MOMENT
    assert read_cells(out, "Cover", ["C7"])["C7"].value == MOMENT


def test_dates_honour_the_1904_date_system() -> None:
    sheet = sheet_xml('<row r="1"><c r="A1" s="2"/></row>', before='<dimension ref="A1"/>')
    data = make_workbook(sheet, workbook_xml(extra_pr=' date1904="1"'))
    out = fill_workbook(data, {"Data!A1": DATE})
    assert '<c r="A1" s="2"><v>43920</v></c>' in parts(out)["xl/worksheets/sheet1.xml"].decode()  # 45382 - 1462
    assert read_cells(out, "Data", ["A1"])["A1"].value == dt.datetime(2024, 3, 31)
    assert _openpyxl(out)["Data"]["A1"].value == dt.datetime(2024, 3, 31)


def test_none_clears_the_value_but_keeps_the_style() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {"Budget!C4": None})
    assert '<c r="C4" s="8"/>' in parts(out)["xl/worksheets/sheet2.xml"].decode()


def test_formula_only_when_asked_for_and_calc_chain_dropped() -> None:
    data = load("real/COP25_PSNUxIM_Template.xlsx")
    # Home has no formulas; writing one there still invalidates the calc chain.
    out = fill_workbook(data, {("Home", "D4"): Formula("=SUM(1,2)")}, strip_formula_caches=False)
    p = parts(out)
    assert "xl/calcChain.xml" not in p
    assert '<c r="D4"><f>SUM(1,2)</f></c>' in p["xl/worksheets/sheet1.xml"].decode()
    assert p["xl/worksheets/sheet2.xml"] == parts(data)["xl/worksheets/sheet2.xml"]
    assert _openpyxl(out)["Home"]["D4"].value == "=SUM(1,2)"


def test_values_only_in_formula_free_sheet_keep_calc_chain() -> None:
    data = load("real/COP25_PSNUxIM_Template.xlsx")
    out = fill_workbook(data, {("Home", "D4"): 5})
    p = parts(out)
    assert "xl/calcChain.xml" in p
    assert {n for n in p if p[n] != parts(data).get(n)} == {"xl/worksheets/sheet1.xml", "xl/workbook.xml"}


def test_formula_caches_removed_from_written_sheet_only_by_default() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    out = fill_workbook(data, {"Budget!D4": 10})
    xml = parts(out)["xl/worksheets/sheet2.xml"].decode()
    assert re.search(r'<c r="K4" s="7"><f>[^<]+</f></c>', xml)
    assert "<v>" in parts(out)["xl/worksheets/sheet3.xml"].decode()  # Indicators untouched
    kept = fill_workbook(data, {"Budget!D4": 10}, strip_formula_caches=False)
    assert re.search(r'<c r="K4" s="7"><f>[^<]+</f><v>10000</v></c>', parts(kept)["xl/worksheets/sheet2.xml"].decode())


def test_external_link_formula_keeps_its_cached_value() -> None:
    data = load("synthetic/tpl_libreoffice.xlsx")
    out = fill_workbook(data, {"Cover!C4": "x"})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert re.search(r'<c r="C10"[^>]*><f aca="false">\[1\]Rates!A1</f><v>0.92</v></c>', xml)


def test_workbook_gets_full_calc_on_load_in_schema_order() -> None:
    data = make_workbook(
        sheet_xml('<row r="1"><c r="A1"><f>1+1</f><v>2</v></c></row>'),
        workbook_xml(
            names='<definedNames><definedName name="X">Data!$B$1</definedName></definedNames>', tail="<extLst/>"
        ),
    )
    out = fill_workbook(data, {"X": 3})
    wb = parts(out)["xl/workbook.xml"].decode()
    assert re.search(r'</definedNames><calcPr fullCalcOnLoad="1"/><extLst/>', wb)
    assert wb.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')


def test_macros_survive_in_xlsm() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsm")
    out = fill_workbook(data, {"Cover!C4": "Grant"})
    assert parts(out)["xl/vbaProject.bin"] == parts(data)["xl/vbaProject.bin"]
    assert inspect_template(out).has_macros
    wb = _openpyxl(out, keep_vba=True)
    assert wb.vba_archive is not None and "xl/vbaProject.bin" in wb.vba_archive.namelist()


def test_defined_name_resolving_to_one_cell_is_writable() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    wb = parts(data)["xl/workbook.xml"].replace(
        b"<definedNames>", b'<definedNames><definedName name="GrantTitle">Cover!$C$4</definedName>'
    )
    variant = replace_parts(data, {"xl/workbook.xml": wb})
    out = fill_workbook(variant, {"GrantTitle": "Via a name"})
    assert _openpyxl(out)["Cover"]["C4"].value == "Via a name"


@pytest.mark.parametrize(
    "target,why",
    [
        ("Cover!D4", r"Cover!D4: refused because it is inside the merged range C4:F4; write to C4"),
        ("Budget!K4", r"Budget!K4: refused because it holds a formula"),
        ("Cover!B4", r"Cover!B4: refused because it is locked on a protected sheet"),
        ("Cover!H30", r"Cover!H30: refused because it is locked on a protected sheet"),
        ("Nowhere!A1", r"unknown sheet 'Nowhere'"),
        ("NoSuchName", r"unknown defined name 'NoSuchName'"),
        ("ReportTypes", r"refers to 'Lists!\$A\$1:\$A\$3', not to a single cell"),
        ("LocalRate", r"refers to '0.85', not to a single cell"),
        ("BudgetTotal", r"BudgetTotal \(Budget!K11\)|Budget!K11: refused because it holds a formula"),
    ],
)
def test_refused_writes_name_the_cell_and_why(target: str, why: str) -> None:
    with pytest.raises(TemplateError, match=why):
        fill_workbook(load("synthetic/tpl_xlsxwriter.xlsx"), {target: 1})


def test_shared_and_array_formula_cells_are_refused() -> None:
    data = load("real/COP25_PSNUxIM_Template.xlsx")
    with pytest.raises(TemplateError, match="PSNUxIM!CW14: refused because it holds a shared formula"):
        fill_workbook(data, {("PSNUxIM", "CW14"): 1})  # master
    with pytest.raises(TemplateError, match="PSNUxIM!CX14: refused because it holds a shared formula"):
        fill_workbook(data, {("PSNUxIM", "CX14"): 1})  # child
    with pytest.raises(TemplateError, match="PSNUxIM!CL15: refused because it is part of an array formula"):
        fill_workbook(data, {("PSNUxIM", "CL15"): 1})


def test_array_formula_range_members_are_refused() -> None:
    sheet = sheet_xml('<row r="1"><c r="A1"><f t="array" ref="A1:A3">B1:B3*2</f><v>2</v></c></row>')
    with pytest.raises(TemplateError, match="Data!A2: refused because it is part of an array formula"):
        fill_workbook(make_workbook(sheet), {"Data!A2": 1})


def test_all_refusals_on_a_sheet_are_reported_together() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    with pytest.raises(TemplateError) as exc:
        fill_workbook(data, {"Cover!C4": "ok", "Cover!D4": "bad", "Cover!B5": "bad"})
    message = str(exc.value)
    assert "Cover!D4: refused" in message and "Cover!B5: refused" in message and "Cover!C4" not in message


def test_new_cells_and_rows_are_created_in_order_with_row_or_column_style() -> None:
    sheet = sheet_xml(
        '<row r="2" spans="2:2"><c r="B2" s="1"/></row><row r="5" s="1" customFormat="1"><c r="D5" s="1"/></row>',
        before='<dimension ref="B2:D5"/><cols><col min="6" max="6" width="9" style="3"/></cols>',
    )
    out = fill_workbook(
        make_workbook(sheet),
        {"Data!A2": "first", "Data!C2": 2, "Data!B5": 3, "Data!F7": 4, "Data!A1": 0, "Data!A9": 9},
    )
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    rows = re.findall(r'<row r="(\d+)"', xml)
    assert rows == ["1", "2", "5", "7", "9"]
    assert re.findall(r'<c r="([A-Z]+2)"', xml) == ["A2", "B2", "C2"]
    assert '<c r="B5" s="1"><v>3</v></c><c r="D5" s="1"/>' in xml  # row style wins
    assert '<c r="F7" s="3"><v>4</v></c>' in xml  # column style
    assert '<c r="A9"><v>9</v></c>' in xml  # nothing to inherit
    assert 'spans="1:3"' in xml
    assert '<dimension ref="A1:F9"/>' in xml
    assert _openpyxl(out)["Data"]["F7"].value == 4


def test_cell_children_keep_schema_order() -> None:
    sheet = sheet_xml('<row r="1"><c r="A1"><v>1</v><extLst><ext uri="x"/></extLst></c></row>')
    out = fill_workbook(make_workbook(sheet), {"Data!A1": "text"})
    assert (
        '<c r="A1" t="inlineStr"><is><t>text</t></is><extLst><ext uri="x"/></extLst></c>'
        in parts(out)["xl/worksheets/sheet1.xml"].decode()
    )


def test_cells_without_r_attribute_are_located() -> None:
    sheet = sheet_xml("<row><c><v>1</v></c><c><v>2</v></c></row><row><c><v>3</v></c></row>")
    out = fill_workbook(make_workbook(sheet), {"Data!B2": 5, "Data!B1": 7})
    got = read_cells(out, "Data")
    assert {k: v.value for k, v in got.items()} == {"A1": 1, "B1": 7, "A2": 3, "B2": 5}


def test_awkward_text_survives() -> None:
    text = "  café _x0041_ line1\nline2\x01 "
    sheet = sheet_xml('<row r="1"><c r="A1"/></row>')
    out = fill_workbook(make_workbook(sheet), {"Data!A1": text})
    # Excel decodes _xHHHH_; a literal one is escaped, and a control char becomes one.
    assert read_cells(out, "Data", ["A1"])["A1"].value == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), object(), "x" * 32_768])
def test_unwritable_values_are_refused(bad: Any) -> None:
    sheet = sheet_xml('<row r="1"><c r="A1"/></row>')
    with pytest.raises(TemplateError, match="Data!A1"):
        fill_workbook(make_workbook(sheet), {"Data!A1": bad})


def test_same_cell_twice_is_refused() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    plan = FillPlan().set("Cover!C4", "a").set(("Cover", "C4"), "b")
    with pytest.raises(TemplateError, match="written twice"):
        plan.apply(data)


def test_block_fill_hides_unused_rows_that_are_empty_in_the_template() -> None:
    sheet = sheet_xml(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Activity</t></is></c></row>'
        '<row r="3"><c r="B3" s="1"/><c r="D3"><f>B3*2</f></c></row>'
        '<row r="5"><c r="A5" t="inlineStr"><is><t>Funder note</t></is></c></row>'
        '<row r="7"><c r="B7" s="1"/></row><row r="8"><c r="B8" s="1"/></row>',
        before='<dimension ref="A1:D9"/>',
        after='<mergeCells count="1"><mergeCell ref="A8:A9"/></mergeCells>',
    )
    out = FillPlan().fill_block("Data", "B2", [[1]], capacity_rows=7).apply(make_workbook(sheet))
    ws = _openpyxl(out)["Data"]
    hidden = [r for r in range(1, 11) if ws.row_dimensions[r].hidden]
    # 3 has only a formula and blank styled cells (4 and 6 don't exist): hidden.  5 holds the
    # funder's note, and 8 is in a merge reaching row 9, below the block: both stay.  7 is empty.
    assert hidden == [3, 4, 6, 7]
    assert ws["B2"].value == 1


def test_an_unused_block_row_that_another_mapping_fills_stays_visible() -> None:
    sheet = sheet_xml('<row r="1"><c r="A1"/></row>', before='<dimension ref="A1"/>')
    plan = FillPlan().fill_block("Data", "A1", [[1]], capacity_rows=4).set("Data!C3", "note")
    ws = _openpyxl(plan.apply(make_workbook(sheet)))["Data"]
    assert [r for r in range(1, 6) if ws.row_dimensions[r].hidden] == [2, 4]
    assert ws["C3"].value == "note"


def test_block_rows_holding_the_funders_labels_stay_visible() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    rows = [[Decimal("10.5")], [Decimal("20")], [Decimal("30.25")]]
    out = FillPlan().fill_block("Budget", "D4", rows, capacity_rows=7, name="spent").apply(data)
    ws = _openpyxl(out)["Budget"]
    assert [ws[f"D{r}"].value for r in (4, 5, 6)] == [10.5, 20, 30.25]
    # Rows 7-10 hold the template's own budget lines: nothing is hidden.
    assert not any(ws.row_dimensions[r].hidden for r in range(3, 12))


def test_dfid_logframe_block_hides_nothing_the_funder_wrote() -> None:
    data = load("real/DFID_Template.xlsx")
    sheet = "RESULTS FRAMEWORK"
    out = FillPlan().fill_block(sheet, "C19", [["Output indicator 1.1"]], capacity_rows=5).apply(data)
    ws = _openpyxl(out)[sheet]
    # 20 and 22 hold the funder's labels; 23 opens the merged B23:B25 of the next section.
    assert [r for r in range(18, 26) if ws.row_dimensions[r].hidden] == [21]
    assert ws["C19"].value == "Output indicator 1.1" and ws["A22"].value == _openpyxl(data)[sheet]["A22"].value


def test_block_fill_refuses_too_many_rows() -> None:
    plan = FillPlan()
    with pytest.raises(
        TemplateError, match=r"^dataset budget_vs_actual has 120 rows but the block at Budget!B10 holds 100$"
    ):
        plan.fill_block("Budget", "B10", [[1]] * 120, capacity_rows=100, name="budget_vs_actual")


def test_block_into_a_formula_column_is_refused() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    with pytest.raises(TemplateError, match=r"Budget!K4: refused because it holds a formula"):
        FillPlan().fill_block("Budget", "J4", [[1, 2]], capacity_rows=7).apply(data)


def test_bench_fill_reads_back_and_keeps_other_sheets() -> None:
    data = load("synthetic/tpl_bench.xlsx")
    plan = FillPlan()
    for r in range(4, 1004):
        plan.fill_block("Data", f"C{r}", [[r + i / 100 for i in range(10)]], capacity_rows=1)
    out = plan.apply(data)
    got = read_cells(out, "Data", ["C4", "L1003"])
    assert got["C4"].value == 4 and got["L1003"].value == 1003.09


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_renders_filled_templates(tmp_path: Path) -> None:
    cases: list[tuple[str, dict[Any, Any]]] = [
        ("synthetic/tpl_xlsxwriter.xlsx", {"Cover!C4": "Grant title", "Budget!D4": Decimal("12.5")}),
        ("synthetic/tpl_libreoffice.xlsx", {"Cover!C4": "Grant title", "Budget!E2": 5, "Cover!C5": MOMENT}),
    ]
    for template, sheet, _ in REAL:
        cells = _pick_cells(load(template), sheet, 4)
        cases.append((template, {(sheet, c): v for c, v in zip(cells, REAL_VALUES)}))
    for template, writes in cases:
        src = tmp_path / Path(template).name
        src.write_bytes(fill_workbook(load(template), writes))
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{tmp_path}/lo",
                "--headless",
                "--convert-to",
                "pdf",
                "--outdir",
                str(tmp_path),
                str(src),
            ],
            check=True,
            timeout=180,
            capture_output=True,
        )
        pdf = src.with_suffix(".pdf")
        assert pdf.exists() and pdf.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF"), template
        pdf.unlink()


def _libreoffice_csv(tmp_path: Path, xlsx: Path, sheet_number: int) -> list[list[str]]:
    # Filter options: comma, quote, UTF-8, first line 1, ..., last field = which sheet to export.
    options = f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,{sheet_number}"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            options,
            "--outdir",
            str(tmp_path),
            str(xlsx),
        ],
        check=True,
        timeout=180,
        capture_output=True,
    )
    produced = sorted(tmp_path.glob(f"{xlsx.stem}*.csv"))
    assert len(produced) == 1, produced
    import csv

    with produced[0].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    produced[0].unlink()
    return rows


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_recalculates_and_keeps_text_literal(tmp_path: Path) -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    src = tmp_path / "filled.xlsx"
    src.write_bytes(fill_workbook(data, {"Budget!D4": Decimal("1000"), "Cover!C4": "=1+1"}))
    budget = _libreoffice_csv(tmp_path, src, 2)
    row4 = budget[3]
    # K4 = SUM(budgets) - SUM(actuals) = 10000 - 1000, recomputed on load since the cache was removed.
    assert row4[3] == "1000" and row4[10] == "9000" and row4[11] == "10%"
    cover = _libreoffice_csv(tmp_path, src, 1)
    assert cover[3][2] == "=1+1"
