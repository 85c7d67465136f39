"""Funder templates, mappings, generated files and their history, through the services."""

import hashlib
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from exports import services
from exports.models import FunderTemplate, TemplateVersion
from exports.xlsx.inspector import read_cells
from grants.models import Funder, Grant, ReportingPeriod


def test_uploading_again_makes_a_new_version(db_session, world, store, template_file, uploaded):
    funder = db_session.get(Funder, world.funder_id)
    again = services.upload_template(
        db_session,
        store,
        funder=funder,
        name="Annual report",
        filename="tpl_xlsxwriter.xlsx",
        data=template_file,
        user="finance",
    )
    assert again.version == 2 and again.template_id == uploaded
    assert again.sha256 == hashlib.sha256(template_file).hexdigest()
    assert store.read(again.sha256) == template_file  # stored once, verified on read


@pytest.mark.parametrize(
    ("filename", "data", "words"),
    [
        ("report.xlsx", b"this is not a workbook", "file"),
        ("report.pdf", b"%PDF-1.4", "not an .xlsx or .xlsm"),
    ],
)
def test_a_bad_upload_is_refused_and_nothing_is_kept(db_session, world, store, filename, data, words):
    funder = db_session.get(Funder, world.funder_id)
    with pytest.raises(DomainValidationError) as caught:
        services.upload_template(db_session, store, funder=funder, name="Bad", filename=filename, data=data, user="x")
    assert words in str(caught.value)
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(FunderTemplate)) == 0
    assert not store.exists(hashlib.sha256(data).hexdigest())


def test_mapping_errors_name_the_key_and_nothing_is_saved(db_session, world, store, uploaded):
    version = db_session.get(FunderTemplate, uploaded).latest
    before = version.mapping_text
    with pytest.raises(DomainValidationError) as caught:
        services.set_mapping(db_session, store, version, "cells:\n  - {target: 'Cover!C4', source: grant.titel}\n")
    assert "mapping.cells.0.source" in caught.value.errors
    assert "grant.title" in " ".join(caught.value.errors["mapping.cells.0.source"])  # suggests the right name
    with pytest.raises(DomainValidationError, match="no sheet 'Nowhere'"):
        services.set_mapping(db_session, store, version, "cells:\n  - {target: 'Nowhere!A1', source: grant.title}\n")
    db_session.rollback()
    assert db_session.get(TemplateVersion, version.id).mapping_text == before


def test_filling_the_template_writes_our_values_and_keeps_the_rest(db_session, world, store, uploaded, template_file):
    grant = db_session.get(Grant, world.grant_a)
    period = db_session.get(ReportingPeriod, world.period_a1)
    template = db_session.get(FunderTemplate, uploaded)
    record = services.run_export(db_session, store, grant=grant, period=period, user="finance", template=template)
    db_session.commit()
    data = services.export_bytes(store, record)
    assert record.sha256 == hashlib.sha256(data).hexdigest() and record.size == len(data)
    cells = read_cells(data, "Cover", ["C4", "C5", "C8", "C9"])
    assert cells["C4"].value == "GA-1" and cells["C5"].value == "Grant A" and cells["C8"].value == "S1"
    assert cells["C9"].kind == "number" and Decimal(str(cells["C9"].value)) == Decimal("1000")
    assert record.template_version_id == template.latest.id and record.filename == "GA-1_S1_Annual_report.xlsx"
    import io
    import zipfile

    before, after = zipfile.ZipFile(io.BytesIO(template_file)), zipfile.ZipFile(io.BytesIO(data))
    changed = (
        {n for n in before.namelist() if before.read(n) != after.read(n)}
        if set(before.namelist()) == set(after.namelist())
        else None
    )
    assert changed is not None and changed <= {"xl/worksheets/sheet1.xml", "xl/workbook.xml"}


def test_export_refuses_a_template_without_mapping_or_of_another_funder(db_session, world, store, template_file):
    other = Funder(name="Other Fund", code="OF", default_currency="EUR")
    db_session.add(other)
    db_session.flush()
    version = services.upload_template(
        db_session, store, funder=other, name="Plain", filename="t.xlsx", data=template_file, user="finance"
    )
    grant = db_session.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError, match="another funder"):
        services.run_export(db_session, store, grant=grant, period=None, user="x", template=version.template)
    grant.funder_id = other.id
    db_session.flush()
    with pytest.raises(DomainValidationError, match="no mapping yet"):
        services.run_export(db_session, store, grant=grant, period=None, user="x", template=version.template)


def test_builtin_report_is_a_formatted_workbook(db_session, world, store):
    import io

    from openpyxl import load_workbook

    grant = db_session.get(Grant, world.grant_a)
    record = services.run_export(
        db_session, store, grant=grant, period=None, user="finance", builtin="reporting_periods"
    )
    sheet = load_workbook(io.BytesIO(services.export_bytes(store, record))).worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header_row = next(i for i, row in enumerate(values) if row[0] == "Period")
    assert [r[0] for r in values[header_row + 1 :]] == ["S1", "S2"]
    assert sheet.freeze_panes is not None and sheet.auto_filter.ref


def test_unknown_builtin_report_names_the_known_ones(db_session, world, store):
    grant = db_session.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError, match="known: budget_vs_actual"):
        services.run_export(db_session, store, grant=grant, period=None, user="x", builtin="everything")


def test_history_answers_what_was_sent_and_when(db_session, world, store, uploaded):
    grant = db_session.get(Grant, world.grant_a)
    first = services.run_export(
        db_session, store, grant=grant, period=None, user="finance", builtin="reporting_periods"
    )
    second = services.run_export(
        db_session, store, grant=grant, period=None, user="finance", template=db_session.get(FunderTemplate, uploaded)
    )
    services.publish(db_session, second, user="finance")
    db_session.commit()
    assert [r.id for r in services.history(db_session, grant.id)] == [second.id, first.id]
    assert [r.id for r in services.history(db_session, grant.id, published_only=True)] == [second.id]
    with pytest.raises(DomainValidationError, match="already published"):
        services.publish(db_session, second, user="finance")
