"""The mapping check learns, per cell, what the template keeps there, in the filler's own words."""

from __future__ import annotations

import pytest

from exports.errors import TemplateError
from exports.xlsx.fill import fill_workbook
from exports.xlsx.scan import cell_facts
from tests.exports.helpers import load


def test_facts_name_formulas_merges_locks_and_hidden_sheets() -> None:
    data = load("synthetic/tpl_xlsxwriter.xlsx")
    asked = [("Cover", "C4"), ("Cover", "D4"), ("Cover", "B4"), ("Budget", "K4"), ("Lists", "A1"), ("Calc", "B2")]
    facts = cell_facts(data, asked)
    assert set(facts) == set(asked)

    free = facts[("Cover", "C4")]
    assert (free.formula, free.merged_range, free.locked, free.on_hidden_sheet, free.refusal) == (
        None,
        None,
        False,
        False,
        None,
    )
    follower = facts[("Cover", "D4")]
    assert follower.merged_range == "C4:F4"
    assert follower.refusal == "it is inside the merged range C4:F4; write to C4"
    assert facts[("Cover", "B4")].locked and facts[("Cover", "B4")].refusal == "it is locked on a protected sheet"
    assert facts[("Budget", "K4")].formula == "a formula"
    assert facts[("Lists", "A1")].sheet_state == "hidden" and facts[("Lists", "A1")].on_hidden_sheet
    assert facts[("Lists", "A1")].has_value  # the template's own list entry
    assert facts[("Calc", "B2")].sheet_state == "veryHidden"


def test_facts_agree_with_what_the_filler_refuses() -> None:
    data = load("real/COP25_PSNUxIM_Template.xlsx")
    asked = [("PSNUxIM", "CW14"), ("PSNUxIM", "CX14"), ("PSNUxIM", "CL15"), ("Home", "D4")]
    facts = cell_facts(data, asked)
    assert facts[("PSNUxIM", "CW14")].formula == "a shared formula"
    assert facts[("PSNUxIM", "CL15")].formula == "part of an array formula"
    assert facts[("Home", "D4")].refusal is None
    for (sheet, ref), fact in facts.items():
        if fact.refusal is None:
            fill_workbook(data, {(sheet, ref): 1})
        else:
            with pytest.raises(TemplateError, match=f"{sheet}!{ref}: refused because {fact.refusal}"):
                fill_workbook(data, {(sheet, ref): 1})


def test_facts_see_the_funders_labels() -> None:
    data = load("real/DFID_Template.xlsx")
    facts = cell_facts(data, [("RESULTS FRAMEWORK", "A22"), ("RESULTS FRAMEWORK", "B20"), ("results framework", "C19")])
    assert facts[("RESULTS FRAMEWORK", "A22")].has_value
    assert facts[("RESULTS FRAMEWORK", "B20")].merged_range == "B19:B21"
    assert facts[("results framework", "C19")].sheet == "RESULTS FRAMEWORK"  # matched as the filler matches


def test_facts_for_an_unknown_sheet_are_refused_in_words() -> None:
    with pytest.raises(TemplateError, match=r"unknown sheet 'Nope'; the template has 'RESULTS FRAMEWORK'"):
        cell_facts(load("real/DFID_Template.xlsx"), [("Nope", "A1")])
