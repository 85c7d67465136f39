"""A grants officer maps our fields onto a funder template once, and a typo is caught at upload, not at the deadline."""

from __future__ import annotations

import io
import json
import warnings
from decimal import Decimal

import openpyxl
import pytest

from exports.errors import TemplateError
from exports.mapping import (
    Catalogue,
    CellMapping,
    TableMapping,
    check_against_template,
    parse_mapping,
    render,
)
from exports.xlsx.inspector import inspect_template
from tests.exports.helpers import load

CATALOGUE = Catalogue(
    fields={"grant.reference", "grant.title", "grant.currency", "report.type", "grant.start"},
    datasets={"budget_lines": ["code", "description", "planned", "actual"]},
)

SPEC_YAML = """
template_version: "xlsxwriter-2024"
cells:
  - target: Cover!C4
    source: grant.title
  - target: "'Cover'!C5"
    source: grant.reference
  - {target: Cover!C8, source: grant.currency}
tables:
  - target: Budget!D4
    dataset: budget_lines
    columns: [actual]
    rows: 7
"""


def test_yaml_and_json_specs_parse_to_the_same_thing() -> None:
    from_yaml = parse_mapping(SPEC_YAML, catalogue=CATALOGUE)
    import yaml

    from_json = parse_mapping(json.dumps(yaml.safe_load(SPEC_YAML)), catalogue=CATALOGUE)
    assert from_yaml == from_json
    assert from_yaml.cells[1] == CellMapping(target="'Cover'!C5", source="grant.reference")
    assert from_yaml.tables[0] == TableMapping("Budget!D4", "budget_lines", ("actual",), 7, True)
    assert from_yaml.template_version == "xlsxwriter-2024"


def test_unknown_field_is_named_with_a_suggestion() -> None:
    with pytest.raises(TemplateError) as exc:
        parse_mapping('{"cells": [{"target": "Cover!C4", "source": "grant.titel"}]}', catalogue=CATALOGUE)
    assert "cells.0.source: unknown field 'grant.titel' (did you mean 'grant.title'?); known: " in str(exc.value)
    assert list(exc.value.details) == ["cells.0.source"]


def test_every_problem_is_reported_at_once() -> None:
    text = """
cells:
  - {target: "Cover!", source: grant.title}
  - {target: Cover!C5, sorce: grant.title}
  - {target: Cover!C6, source: grant.title, formula: "1+1"}
tables:
  - {target: Budget, dataset: budget_line, columns: [code], rows: 0}
  - {target: Budget!B10, dataset: budget_lines, columns: [code, descr], rows: 10}
colour: red
"""
    with pytest.raises(TemplateError) as exc:
        parse_mapping(text, catalogue=CATALOGUE)
    d = exc.value.details
    assert set(d) == {
        "cells.0.target",
        "cells.1.sorce",
        "cells.1.source",
        "cells.2.source",
        "tables.0.target",
        "tables.0.rows",
        "tables.0.dataset",
        "tables.1.columns.1",
        "colour",
    }
    assert "cells.1.sorce: unknown key; allowed: target, source, formula" in str(exc.value)
    assert d["colour"] == [
        "unknown key; allowed: template_version, title, description, allow_hidden_sheets, cells, tables"
    ]
    assert "unknown dataset 'budget_line' (did you mean 'budget_lines'?)" in str(exc.value)


def test_duplicate_targets_are_refused() -> None:
    with pytest.raises(TemplateError, match=r"cells.1.target: 'Cover!\$C\$4' is already mapped by cells.0"):
        parse_mapping("cells: [{target: Cover!C4, source: a}, {target: Cover!$C$4, source: b}]")


def test_yaml_aliases_and_non_mappings_are_refused() -> None:
    with pytest.raises(TemplateError, match="aliases"):
        parse_mapping("a: &x [1]\ncells: *x")
    with pytest.raises(TemplateError, match="must be a mapping"):
        parse_mapping("- 1\n- 2")
    with pytest.raises(TemplateError, match="not valid JSON"):
        parse_mapping('{"cells": [}')


def test_render_fills_cells_and_tables() -> None:
    spec = parse_mapping(SPEC_YAML, catalogue=CATALOGUE)
    lines = [{"code": f"B{i}", "description": "x", "planned": 1, "actual": Decimal(f"{i}.50")} for i in range(3)]
    out = render(
        spec,
        load("synthetic/tpl_xlsxwriter.xlsx"),
        {"grant.title": "=Not a formula", "grant.reference": "GK-7", "grant.currency": "EUR"},
        {"budget_lines": lines},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(io.BytesIO(out))
    cover, budget = wb["Cover"], wb["Budget"]
    assert (cover["C4"].value, cover["C4"].data_type) == ("=Not a formula", "s")
    assert cover["C5"].value == "GK-7" and cover["C8"].value == "EUR"
    assert [budget[f"D{r}"].value for r in (4, 5, 6)] == [0.5, 1.5, 2.5]
    # Rows 7-10 hold the template's own budget lines: "hide unused rows" leaves them visible (issue 12).
    assert not any(budget.row_dimensions[r].hidden for r in range(7, 11))


def test_render_refuses_a_dataset_larger_than_its_block() -> None:
    spec = parse_mapping(SPEC_YAML)
    lines = [{"actual": 1}] * 9
    with pytest.raises(TemplateError, match="^dataset budget_lines has 9 rows but the block at Budget!D4 holds 7$"):
        render(
            spec,
            load("synthetic/tpl_xlsxwriter.xlsx"),
            {"grant.title": "a", "grant.reference": "b", "grant.currency": "c"},
            {"budget_lines": lines},
        )


def test_render_names_missing_data() -> None:
    spec = parse_mapping(SPEC_YAML)
    with pytest.raises(TemplateError) as exc:
        render(spec, load("synthetic/tpl_xlsxwriter.xlsx"), {"grant.title": "a"}, {"budget_lines": [{"code": 1}]})
    message = str(exc.value)
    assert "field 'grant.reference' was not supplied" in message
    assert "row 1 of budget_lines lacks actual" in message


def test_formula_cells_in_spec() -> None:
    spec = parse_mapping('cells: [{target: Indicators!G2, formula: "=C2*2"}]')
    out = render(spec, load("synthetic/tpl_xlsxwriter.xlsx"), {}, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert openpyxl.load_workbook(io.BytesIO(out))["Indicators"]["G2"].value == "=C2*2"


def test_spec_checked_against_the_template() -> None:
    spec = parse_mapping(
        "cells: [{target: Cover!C4, source: a}, {target: Nope!A1, source: b}, {target: Budget!K4, source: c},"
        " {target: NoName, source: d}, {target: BudgetTotal, source: e}]"
    )
    problems = check_against_template(spec, inspect_template(load("synthetic/tpl_xlsxwriter.xlsx")))
    assert problems == [
        "Cell Nope!A1 (b): the template has no sheet 'Nope'; its sheets are 'Cover', 'Budget', 'Indicators',"
        " 'Lists', 'Calc'",
        "Cell Budget!K4 (c): Budget!K4 holds a formula the template owns",
        "Cell NoName (d): the template has no defined name 'NoName'",
        # A defined name is followed to its cell: BudgetTotal is the template's own total formula.
        "Cell BudgetTotal (e): Budget!K11 holds a formula the template owns",
    ]
