"""A big sheet is filled in one streamed pass: untouched rows keep their bytes, odd but valid XML is followed."""

from __future__ import annotations

import io
import re
import tracemalloc
import warnings
import zipfile

import openpyxl
import pytest

from exports.errors import TemplateError
from exports.xlsx.fill import FillPlan, fill_workbook
from exports.xlsx.inspector import read_cells
from tests.exports.helpers import load, make_workbook, parts, sheet_xml

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _openpyxl(data: bytes) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(io.BytesIO(data))


def _values(data: bytes) -> dict[str, object]:
    return {k: v.value for k, v in read_cells(data, "Data").items() if v.kind != "blank"}


def test_rows_not_written_keep_their_exact_bytes() -> None:
    data = load("real/DFID_Template.xlsx")
    out = fill_workbook(data, {"RESULTS FRAMEWORK!C19": "Clean water", "RESULTS FRAMEWORK!C23": 12})
    before = parts(data)["xl/worksheets/sheet1.xml"]
    after = parts(out)["xl/worksheets/sheet1.xml"]
    rows = re.findall(rb'<row r="(\d+)".*?</row>', before, re.S)
    assert len(rows) > 900
    for match in re.finditer(rb'<row r="(\d+)".*?</row>', before, re.S):
        if match.group(1) in (b"19", b"23"):
            assert match.group(0) not in after
        else:
            assert match.group(0) in after, match.group(1)
    # Everything before the first row and after the last is the template's own, byte for byte.
    assert after[: before.index(b"<row ")] == before[: before.index(b"<row ")]
    assert after[after.rindex(b"</row>") :] == before[before.rindex(b"</row>") :]


def test_a_sheet_written_with_a_namespace_prefix_is_filled() -> None:
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<x:worksheet xmlns:x="{MAIN}">'
        '<x:dimension ref="A1"/><x:sheetData><x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>'
        '<x:row r="3"><x:c r="A3"><x:f>A1*2</x:f><x:v>2</x:v></x:c></x:row></x:sheetData></x:worksheet>'
    )
    out = fill_workbook(make_workbook(sheet), {"Data!B1": "text", "Data!C2": 5})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert '<x:row r="2"><x:c r="C2"><x:v>5</x:v></x:c></x:row>' in xml
    assert "xmlns:x" not in xml.split("<x:sheetData>", 1)[1]  # no namespace declared again per row
    assert "<x:f>A1*2</x:f></x:c>" in xml  # the formula's cached 2 went
    assert _values(out) == {"A1": 1, "B1": "text", "C2": 5}
    assert '<x:dimension ref="A1:C2"/>' in xml  # grown from A1 to take the written cells


def test_comments_processing_instructions_and_cdata_are_followed() -> None:
    sheet = sheet_xml(
        '<!-- rows follow --><row r="1"><c r="A1"><v>1</v></c><!-- </row> in a comment --></row>'
        '<?app keep?><row r="2"><c r="A2" t="inlineStr"><is><t><![CDATA[<row r="9"> & </row>]]></t></is></c></row>'
        '<row r="4"><c r="A4"><v>4</v></c></row>',
        before='<dimension ref="A1:A4"/>',
    )
    out = fill_workbook(make_workbook(sheet), {"Data!B1": 10, "Data!B3": 30, "Data!B4": 40})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert "<!-- rows follow -->" in xml and "<?app keep?>" in xml and "<![CDATA[" in xml  # row 2 untouched
    assert _values(out) == {"A1": 1, "B1": 10, "A2": '<row r="9"> & </row>', "B3": 30, "A4": 4, "B4": 40}


def test_pretty_printed_sheet_keeps_its_layout_between_untouched_rows() -> None:
    rows = "\n".join(f'  <row r="{r}">\n    <c r="A{r}"><v>{r}</v></c>\n  </row>' for r in range(1, 7))
    sheet = sheet_xml(f"\n{rows}\n", before='<dimension ref="A1:A6"/>')
    out = fill_workbook(make_workbook(sheet), {"Data!B2": "two", "Data!B3": "three", "Data!B6": "six"})
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert '  <row r="4">\n    <c r="A4"><v>4</v></c>\n  </row>\n  <row r="5">' in xml
    assert _values(out) == {**{f"A{r}": r for r in range(1, 7)}, "B2": "two", "B3": "three", "B6": "six"}


def test_an_empty_sheet_gets_its_first_rows() -> None:
    out = fill_workbook(
        make_workbook(sheet_xml("", before='<dimension ref="A1"/>').replace("<sheetData></sheetData>", "<sheetData/>")),
        {"Data!C3": 3, "Data!A1": "a"},
    )
    xml = parts(out)["xl/worksheets/sheet1.xml"].decode()
    assert re.search(r'<sheetData><row r="1">.*</row><row r="3">.*</row></sheetData>', xml)
    assert '<dimension ref="A1:C3"/>' in xml
    assert _openpyxl(out)["Data"]["C3"].value == 3


def test_rows_and_cells_without_positions_keep_their_place_when_rows_are_inserted() -> None:
    # Rows 1, 2 and 5 (r given), then an implicit 6 and 7; cells without r follow one another.
    sheet = sheet_xml(
        '<row r="1"><c><v>1</v></c></row><row><c><v>2</v></c></row><row r="5"><c><v>5</v></c></row>'
        "<row><c><v>6</v></c><c><v>66</v></c></row><row><c><v>7</v></c></row>",
        before='<dimension ref="A1:B7"/>',
    )
    out = fill_workbook(make_workbook(sheet), {"Data!B3": 3, "Data!C6": 666})
    assert _values(out) == {"A1": 1, "A2": 2, "B3": 3, "A5": 5, "A6": 6, "B6": 66, "C6": 666, "A7": 7}
    ws = _openpyxl(out)["Data"]
    assert [ws[f"A{r}"].value for r in (1, 2, 5, 6, 7)] == [1, 2, 5, 6, 7]


def test_a_sheet_not_stored_as_utf8_is_refused_in_words() -> None:
    sheet = sheet_xml('<row r="1"><c r="A1"/></row>').replace('encoding="UTF-8"', 'encoding="UTF-16"')
    data = make_workbook(sheet.encode("utf-16"))
    with pytest.raises(TemplateError, match=r"sheet 'Data' is stored as UTF-16 text; open the template in Excel"):
        fill_workbook(data, {"Data!A1": 1})


def test_rows_out_of_order_are_refused_and_nothing_is_written() -> None:
    sheet = sheet_xml('<row r="5"><c r="A5"/></row><row r="2"><c r="A2"/></row>')
    with pytest.raises(TemplateError, match=r"sheet 'Data' lists row 2 after row 5; the file is damaged"):
        fill_workbook(make_workbook(sheet), {"Data!A1": 1})


def _big_template(rows: int) -> bytes:
    body = "".join(
        f'<row r="{r}" spans="1:4"><c r="A{r}" t="inlineStr"><is><t>Budget line {r}</t></is></c>'
        f'<c r="B{r}"><v>{r}.5</v></c><c r="C{r}"/><c r="D{r}"><f>B{r}+C{r}</f><v>{r}.5</v></c></row>'
        for r in range(1, rows + 1)
    )
    return make_workbook(sheet_xml(body, before=f'<dimension ref="A1:D{rows}"/>'))


def test_filling_a_big_sheet_never_holds_the_whole_sheet_in_memory() -> None:
    data = _big_template(60_000)
    size = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml").file_size
    assert size > 8_000_000
    plan = FillPlan()
    for r in range(1, 60_001, 600):
        plan.set(("Data", f"C{r}"), r)
    tracemalloc.start()
    try:
        out = plan.apply(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Reading the sheet whole would take its size at least once, and writing it again once more.
    assert peak < size * 0.5, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB sheet"
    got = read_cells(out, "Data", ["C601", "D601", "B59401", "C59401"])
    assert got["C601"].value == 601 and got["B59401"].value == 59401.5
    assert got["D601"].formula == "B601+C601" and got["D601"].kind == "blank"  # cache dropped
