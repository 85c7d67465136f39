"""One check, at upload, in the mapper and at export: every problem of a mapping, in words, before anything is saved."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from exports.errors import TemplateError
from exports.mapping import Catalogue, FigureCatalogue, TableMapping, check_mapping, parse_mapping, select_rows
from exports.ready import READY
from exports.xlsx.inspector import inspect_template

GF = READY["gf_progress_update"]

# Every kind of problem at once, on the Global Fund-style template: a protected cover whose labels are
# locked and whose answers are merged over B:D, funder formulas in Programmatic!J4:J7, a hidden Lists sheet.
EVERYTHING_WRONG = """
cells:
  - {target: "Programmatic!J4", source: grant.title}
  - {target: "Cover!C3", source: grant.reference}
  - {target: "Cover!A3", source: grant.reference}
  - {target: "Lists!B1", source: grant.reference}
  - {target: "Nowhere!A1", source: grant.reference}
  - {target: NoSuchName, source: grant.reference}
  - {target: "Programmatic!I5", source: grant.title}
tables:
  - {target: "Programmatic!H4", dataset: indicator_progress, columns: [target, actual, achievement], rows: 3}
"""


def test_every_kind_of_problem_is_reported_together_in_words():
    spec = parse_mapping(EVERYTHING_WRONG)
    problems = check_mapping(spec, inspect_template(GF.template_bytes()))
    text = "\n".join(problems)
    assert "Cell Programmatic!J4 (grant.title): Programmatic!J4 holds a formula the template owns" in text
    assert "Cover!C3 is inside the merged cells B3:D3; only their top-left cell B3 can hold a value" in text
    assert "Cover!A3 is locked on a protected sheet" in text
    assert "the sheet 'Lists' is hidden, so the funder may never see this value" in text
    assert "the template has no sheet 'Nowhere'; its sheets are 'Cover', 'Programmatic'" in text
    assert "the template has no defined name 'NoSuchName'" in text
    # The block H4:J6 runs into the funder's formulas in column J and into the cell mapped above.
    assert (
        "Table 1 (indicator_progress in Programmatic!H4:J6) overlaps J4, J5, J6: each holds a formula the template"
        " owns" in text
    )
    assert "overlaps J4: it is already filled by cell mapping 1 (Programmatic!J4)" in text
    assert "overlaps I5: it is already filled by cell mapping 7 (Programmatic!I5)" in text
    assert len(problems) == 9


def test_a_hidden_sheet_named_on_purpose_is_allowed():
    spec = parse_mapping('allow_hidden_sheets: [Lists]\ncells: [{target: "Lists!B1", source: grant.reference}]')
    assert check_mapping(spec, inspect_template(GF.template_bytes())) == []
    unknown = parse_mapping("allow_hidden_sheets: [Listz]")
    assert check_mapping(unknown, inspect_template(GF.template_bytes())) == [
        "allow_hidden_sheets: the template has no sheet 'Listz'; its sheets are 'Cover', 'Programmatic', "
        "'Disaggregation', 'Financial', 'Compliance', 'Lists'"
    ]


def test_upload_with_a_bad_mapping_is_refused_with_every_problem_and_keeps_nothing(app, world, db_session, store):
    from core.errors import DomainValidationError
    from exports import services
    from exports.models import FunderTemplate
    from grants.models import Funder

    with pytest.raises(DomainValidationError) as refused:
        services.upload_template(
            db_session,
            store,
            funder=db_session.get(Funder, world.funder_id),
            name="Progress update",
            filename="pu.xlsx",
            data=GF.template_bytes(),
            user="program",
            mapping_text=EVERYTHING_WRONG,
        )
    db_session.rollback()
    assert len(refused.value.errors["mapping"]) == 9
    assert db_session.scalar(select(FunderTemplate)) is None


def test_an_old_mapping_that_no_longer_passes_is_refused_at_export_and_nothing_is_recorded(
    app, world, db_session, store
):
    from core.errors import DomainValidationError
    from exports import services
    from exports.models import ExportRecord
    from grants.models import Funder, Grant

    version = services.upload_template(
        db_session,
        store,
        funder=db_session.get(Funder, world.funder_id),
        name="Progress update",
        filename="pu.xlsx",
        data=GF.template_bytes(),
        user="finance",
    )
    # Saved before the check knew about hidden sheets and merges.
    version.mapping_text = (
        'cells: [{target: "Lists!B1", source: grant.reference}, {target: "Cover!C3", source: grant.title}]'
    )
    db_session.commit()
    with pytest.raises(DomainValidationError) as refused:
        services.run_export(
            db_session,
            store,
            grant=db_session.get(Grant, world.grant_a),
            period=None,
            user="finance",
            template=version.template,
        )
    db_session.rollback()
    messages = refused.value.errors["template"]
    assert any("'Lists' is hidden" in m for m in messages) and any("merged cells B3:D3" in m for m in messages)
    assert db_session.scalar(select(ExportRecord)) is None


# ---------------------------------------------------------------- single figures and filters in the spec

CATALOGUE = Catalogue(
    fields={"grant.title"},
    datasets={"indicator_progress": ["code", "target", "actual"]},
    figures={
        "indicator": FigureCatalogue(measures=["target", "result"], categories=True),
        "budget_line": FigureCatalogue(measures=["planned", "actual"], scopes=["period", "cumulative", "grant"]),
    },
)


def test_a_figure_names_its_item_and_measure_and_typos_are_caught_with_a_suggestion():
    spec = parse_mapping(
        'cells: [{target: "S!D19", figure: indicator, item: FCDO-1, measure: target, period: 1, category: country=LC}]',
        CATALOGUE,
    )
    cell = spec.cells[0]
    assert (cell.figure, cell.item, cell.measure, cell.period, cell.category) == (
        "indicator",
        "FCDO-1",
        "target",
        1,
        "country=LC",
    )
    with pytest.raises(TemplateError) as bad:
        parse_mapping(
            """
cells:
  - {target: "S!A1", figure: indicatr, item: X, measure: target}
  - {target: "S!A2", figure: indicator, item: X, measure: targte}
  - {target: "S!A3", figure: budget_line, item: "1.1", measure: actual, scope: lifetime}
  - {target: "S!A4", figure: budget_line, item: "1.1", measure: actual, category: country=LC}
  - {target: "S!A5", figure: indicator, measure: target}
  - {target: "S!A6", source: grant.title, measure: target}
  - {target: "S!A7", figure: indicator, item: X, measure: result, period: 0}
""",
            CATALOGUE,
        )
    details = bad.value.details
    assert "did you mean 'indicator'" in details["cells.0.figure"][0]
    assert "did you mean 'target'" in details["cells.1.measure"][0]
    assert details["cells.2.scope"] == ["unknown scope 'lifetime'; known: period, cumulative, grant"]
    assert details["cells.3.category"] == ["budget_line figures are not disaggregated"]
    assert details["cells.4.item"] == ["a figure needs its 'item'"]
    assert "belongs to a figure" in details["cells.5.measure"][0]
    assert "period numbers start at 1" in details["cells.6.period"][0]


def test_a_table_keeps_the_filtered_rows_in_its_order():
    spec = parse_mapping(
        """
tables:
  - target: "S!A1"
    dataset: indicator_progress
    columns: [code, actual]
    rows: 5
    filter: {code: [KP-1c, HR-1, CSS-1]}
    order: [-actual, code]
""",
        CATALOGUE,
    )
    table: TableMapping = spec.tables[0]
    rows = [
        {"code": "KP-1c", "actual": Decimal("40")},
        {"code": "GOV-1", "actual": Decimal("99")},
        {"code": "HR-1", "actual": None},
        {"code": "CSS-1", "actual": Decimal("40")},
    ]
    assert [r["code"] for r in select_rows(table, rows)] == ["CSS-1", "KP-1c", "HR-1"]
    with pytest.raises(TemplateError) as bad:
        parse_mapping(
            'tables: [{target: "S!A1", dataset: indicator_progress, columns: [code], rows: 2,'
            " filter: {cod: [x]}, order: [-actul]}]",
            CATALOGUE,
        )
    assert "did you mean 'code'" in bad.value.details["tables.0.filter"][0]
    assert "did you mean 'actual'" in bad.value.details["tables.0.order.0"][0]


def test_the_file_format_round_trips_through_yaml_and_json():
    from exports.mapping import dump_mapping

    text = (
        "allow_hidden_sheets: [Lists]\n"
        "cells:\n"
        '  - {target: "S!D19", figure: indicator, item: FCDO-1, measure: target, period: 1, optional: true}\n'
        "tables:\n"
        '  - {target: "S!A1", dataset: indicator_progress, columns: [code], rows: 3, hide_unused: false,'
        " filter: {code: [KP-1c]}, order: [code]}\n"
    )
    spec = parse_mapping(text, CATALOGUE)
    assert parse_mapping(dump_mapping(spec, "yaml"), CATALOGUE) == spec
    assert parse_mapping(dump_mapping(spec, "json"), CATALOGUE) == spec
