"""Built-in reports on the demo organisation: the figures in the workbook are the services' figures."""

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import _empty_database


@pytest.fixture(scope="module")
def demo_app(app):
    from app.demo import load_demo
    from core.audit import Actor, acting_as

    _empty_database(app)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        load_demo(app)
    yield app
    _empty_database(app)


@pytest.fixture
def demo(demo_app):
    from core.extensions import db
    from core.storage import store_for
    from grants.models import Grant

    with demo_app.app_context():
        grant = db.session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        yield db.session, store_for(demo_app.config), grant
        db.session.rollback()


def sheet_rows(data: bytes, index: int = 0) -> list[list]:
    sheet = load_workbook(io.BytesIO(data)).worksheets[index]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    header = next(i for i, row in enumerate(rows) if row and row[0] in ("Code", "Date", "Period", "Level"))
    return rows[header:]


def test_budget_vs_actual_workbook_matches_the_report(demo):
    from budgets.report import budget_vs_actual
    from exports import services

    session, store, grant = demo
    period = grant.periods[0]
    record = services.run_export(session, store, grant=grant, period=period, user="t", builtin="budget_vs_actual")
    data = services.export_bytes(store, record)
    workbook = load_workbook(io.BytesIO(data))
    assert [ws.title for ws in workbook.worksheets] == ["Budget vs actual by category", "Budget vs actual by line"]
    by_category = sheet_rows(data, 0)
    report = budget_vs_actual(session, grant.id, period.id, by="category")
    total_row = next(row for row in by_category if row[0] == "TOTAL")
    assert Decimal(str(total_row[3])) == report.total.planned
    assert Decimal(str(total_row[4])) == report.total.actual
    sheet = workbook.worksheets[0]
    total_cell = next(row[0] for row in sheet.iter_rows() if row[0].value == "TOTAL")
    assert sheet.cell(row=total_cell.row, column=4).number_format == "#,##0.00"  # money looks like money
    assert sheet.cell(row=total_cell.row, column=7).number_format == "0.0%"


def test_expenditure_ledger_lists_every_expenditure_with_its_rate(demo):
    from budgets.ledger import expenditure_ledger
    from exports import services

    session, store, grant = demo
    record = services.run_export(session, store, grant=grant, period=None, user="t", builtin="expenditure_ledger")
    rows = sheet_rows(services.export_bytes(store, record))[1:]
    expected = list(expenditure_ledger(session, grant.id))
    assert len(rows) == len(expected) > 0
    assert {row[7] for row in rows} == {"XCD"}
    assert all("2.7" in (row[10] or "") for row in rows)  # every converted figure says which rate made it


def test_indicator_progress_workbook_has_no_draft_results(demo):
    from exports import services
    from indicators.services import indicator_progress

    session, store, grant = demo
    record = services.run_export(session, store, grant=grant, period=None, user="t", builtin="indicator_progress")
    rows = sheet_rows(services.export_bytes(store, record))[1:]
    assert {row[0] for row in rows} >= {"KP-1c"}
    assert any(r.result_status == "draft" for r in indicator_progress(session, grant.id))  # the demo has drafts...
    assert "draft" not in {row[16] for row in rows}  # ...and none leave for the donor


def test_evidence_register_never_carries_confidential_items(demo):
    from exports import services
    from grants.evidence.models import Evidence

    session, store, grant = demo
    confidential = session.scalars(
        select(Evidence).where(Evidence.grant_id == grant.id, Evidence.sensitivity == "restricted")
    ).all()
    assert confidential, "the demo holds a confidential item"
    record = services.run_export(session, store, grant=grant, period=None, user="t", builtin="evidence_register")
    data = services.export_bytes(store, record)
    rows = sheet_rows(data)[1:]
    assert rows, "non-confidential evidence is listed"
    assert {row[3] for row in rows} == {"Shared with donors"}
    for item in confidential:
        assert item.title.encode() not in data
        assert all(item.title != row[1] for row in rows)


def test_a_mapping_cannot_pull_confidential_rows_either(demo):
    """Even a table mapped straight onto evidence_register gets no confidential row."""
    from exports.datasets import all_datasets, rows_of

    session, _store, grant = demo
    rows = list(rows_of(session, all_datasets()["evidence_register"], grant, None))
    assert rows and all(row["sensitivity"] == "Shared with donors" for row in rows)


def test_compliance_matrix_workbook_explains_each_status(demo):
    from exports import services
    from grants.compliance.services import requirement_status

    session, store, grant = demo
    record = services.run_export(session, store, grant=grant, period=None, user="t", builtin="compliance_matrix")
    rows = sheet_rows(services.export_bytes(store, record))[1:]
    expected = requirement_status(session, grant.id)
    assert len(rows) == len(expected)
    assert all(row[6] for row in rows)  # every status explains itself
