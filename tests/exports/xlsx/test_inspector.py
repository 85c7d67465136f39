"""Someone mapping a template sees its sheets, names, merges, formulas and input cells."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from exports.xlsx.inspector import date_to_serial, inspect_template, serial_to_datetime
from tests.exports.helpers import load, make_workbook, sheet_xml


def test_sheets_in_order_with_state_and_protection() -> None:
    info = inspect_template(load("synthetic/tpl_xlsxwriter.xlsx"))
    assert [(s.name, s.state) for s in info.sheets] == [
        ("Cover", "visible"),
        ("Budget", "visible"),
        ("Indicators", "visible"),
        ("Lists", "hidden"),
        ("Calc", "veryHidden"),
    ]
    assert [s.protected for s in info.sheets] == [True, True, False, False, False]
    assert "password" not in info.sheet("Cover").protection
    assert info.sheet("Cover").protection["formatColumns"] == "0"
    assert not info.has_macros and not info.date1904


def test_defined_names_with_scope_and_refs() -> None:
    info = inspect_template(load("synthetic/tpl_xlsxwriter.xlsx"))
    names = {(n.name, n.scope): n.ref for n in info.defined_names}
    assert names[("BudgetTotal", None)] == "Budget!$K$11"
    assert names[("LocalRate", "Budget")] == "0.85"
    assert names[("_xlnm.Print_Titles", "Budget")] == "Budget!$3:$3"
    assert names[("ReportTypes", None)] == "Lists!$A$1:$A$3"


def test_merges_formulas_and_input_cells() -> None:
    info = inspect_template(load("synthetic/tpl_xlsxwriter.xlsx"))
    cover, budget = info.sheet("Cover"), info.sheet("Budget")
    assert "C4:F4" in cover.merged_ranges and "B18:F22" in cover.merged_ranges
    assert cover.dimension == "A1:F24"
    # The README's fillable cells are input cells; labels and merge followers are not.
    assert {"C4", "C5", "C8", "C9"} <= set(cover.input_cells)
    assert "B4" not in cover.input_cells and "D4" not in cover.input_cells
    assert {f"D{r}" for r in range(4, 11)} | {"F4"} <= set(budget.input_cells)
    assert {"K4", "L4", "C11", "K11"} <= set(budget.formula_cells)
    assert not set(budget.formula_cells) & set(budget.input_cells)


def test_macros_are_detected() -> None:
    assert inspect_template(load("synthetic/tpl_xlsxwriter.xlsm")).has_macros


def test_real_templates() -> None:
    cop = inspect_template(load("real/COP25_PSNUxIM_Template.xlsx"))
    ps = cop.sheet("PSNUxIM")
    assert len(ps.formula_cells) == 163
    assert {"CW14", "CX14"} <= set(ps.formula_cells)  # shared master and child
    assert ps.array_formula_ranges == ["CL15", "CR15"]
    bulk = inspect_template(load("real/BulkIndicatorImportTemplate.xlsx"))
    hidden = bulk.sheet("Hidden")
    assert hidden.state == "hidden" and hidden.protected
    dfid = inspect_template(load("real/DFID_Template.xlsx"))
    assert [s.name for s in dfid.sheets] == ["RESULTS FRAMEWORK", "RECORD OF CHANGES"]
    assert len(dfid.sheet("RESULTS FRAMEWORK").merged_ranges) == 23


def test_libreoffice_template_details() -> None:
    info = inspect_template(load("synthetic/tpl_libreoffice.xlsx"))
    cover = info.sheet("Cover")
    assert cover.protected and cover.input_cells == ["C4", "C5", "C6", "C7"]
    assert cover.formula_cells == ["C10"]
    assert info.sheet("Lists").state == "hidden"


def test_input_cells_only_count_on_protected_sheets() -> None:
    unprotected = sheet_xml('<row r="1"><c r="A1" s="1"/></row>')
    assert inspect_template(make_workbook(unprotected)).sheets[0].input_cells == []
    protected = sheet_xml('<row r="1"><c r="A1" s="1"/><c r="B1"/></row>', after='<sheetProtection sheet="1"/>')
    sheet = inspect_template(make_workbook(protected)).sheets[0]
    assert sheet.input_cells == ["A1"] and sheet.blank_cells == ["A1", "B1"]


def test_date_serials_round_trip() -> None:
    import datetime as dt

    for d in (dt.date(1900, 1, 1), dt.date(1900, 2, 28), dt.date(1900, 3, 1), dt.date(2024, 2, 29)):
        assert serial_to_datetime(date_to_serial(d)) == dt.datetime(d.year, d.month, d.day)
    assert date_to_serial(dt.date(1900, 3, 1)) == 61  # Excel's phantom 29 Feb 1900
    assert date_to_serial(dt.date(2024, 3, 31), date1904=True) == 45382 - 1462


def test_large_sheet_is_streamed_with_flat_memory(tmp_path: Path) -> None:
    # Peak RSS of the inspector on 50k vs 200k rows, each in a fresh interpreter.
    script = textwrap.dedent(
        """
        import io, resource, sys, zipfile
        sys.path.insert(0, sys.argv[2])
        from tests.exports.helpers import make_workbook, sheet_xml
        from exports.xlsx.inspector import inspect_template
        rows = int(sys.argv[1])
        body = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>line {r}</t></is></c></row>' for r in range(1, rows + 1))
        data = make_workbook(sheet_xml(body, before=f'<dimension ref="A1:B{rows}"/>'))
        del body
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        info = inspect_template(data)
        assert info.sheets[0].cell_count == 2 * rows
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
        """
    )
    repo = str(Path(__file__).resolve().parents[3])
    growth = []
    for rows in (50_000, 200_000):
        out = subprocess.run(
            [sys.executable, "-c", script, str(rows), repo], capture_output=True, text=True, check=True
        )
        growth.append(float(out.stdout.strip()))
    # 200k rows is ~12 MB of XML; parsing it whole would need well over 50 MB more.
    assert growth[1] < 30, growth


@pytest.mark.parametrize("template", ["synthetic/tpl_bench_big.xlsx"])
def test_big_template_inspects(template: str) -> None:
    info = inspect_template(load(template))
    data = info.sheet("Data")
    assert len(data.blank_cells) == 10_000 and len(info.sheets) == 11
