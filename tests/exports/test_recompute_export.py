"""Finance asks for formula results to be recomputed so the donor's ingestion script reads totals, not blanks."""

import io
import shutil
import warnings

import openpyxl
import pytest

from core.errors import DomainValidationError
from exports import services
from exports.models import FunderTemplate
from exports.xlsx.inspector import read_cells
from grants.models import Grant

needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")

# Budget!D4 feeds Budget!K4 (variance), L4 (burn %) and D11 (total) in the synthetic template.
BUDGET_MAPPING = """
cells:
  - {target: "Cover!C4", source: grant.reference}
  - {target: "Budget!D4", source: grant.amount}
"""


@pytest.fixture
def budget_template(db_session, store, uploaded):
    template = db_session.get(FunderTemplate, uploaded)
    services.set_mapping(db_session, store, template.latest, BUDGET_MAPPING)
    db_session.commit()
    return template


def _budget(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(io.BytesIO(data), data_only=True)["Budget"]


@needs_soffice
def test_finance_exports_with_recomputed_formula_results(db_session, world, store, budget_template):
    grant = db_session.get(Grant, world.grant_a)
    plain = services.run_export(db_session, store, grant=grant, period=None, user="finance", template=budget_template)
    recomputed = services.run_export(
        db_session, store, grant=grant, period=None, user="finance", template=budget_template, recompute=True
    )
    db_session.commit()

    plain_ws = _budget(services.export_bytes(store, plain))
    assert plain_ws["K4"].value is None  # without the option a non-recalculating reader sees blanks
    data = services.export_bytes(store, recomputed)
    actual = read_cells(data, "Budget", ["D4"])["D4"].value
    assert actual == float(grant.amount)
    ws = _budget(data)
    assert ws["K4"].value == pytest.approx(10_000 - actual)
    assert ws["L4"].value == pytest.approx(actual / 10_000)
    assert ws["D11"].value == pytest.approx(actual)
    assert recomputed.size == len(data)


def test_missing_libreoffice_refuses_the_export_and_records_nothing(
    db_session, world, store, budget_template, monkeypatch
):
    from exports.xlsx import recompute

    monkeypatch.setattr(recompute.shutil, "which", lambda name: None)
    grant = db_session.get(Grant, world.grant_a)
    before = len(services.history(db_session, grant.id))
    with pytest.raises(DomainValidationError) as caught:
        services.run_export(
            db_session, store, grant=grant, period=None, user="finance", template=budget_template, recompute=True
        )
    assert "LibreOffice" in str(caught.value)
    db_session.rollback()
    assert len(services.history(db_session, grant.id)) == before


@needs_soffice
def test_finance_ticks_recompute_on_the_grant_page(client_for, world, budget_template, app, store):
    from core.extensions import db
    from exports.models import ExportRecord

    finance = client_for("Finance")
    page = finance.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'name="recompute"' in page
    response = finance.post(
        f"/exports/generate/{world.grant_a}",
        data={"report": f"template:{budget_template.id}", "recompute": "1"},
        follow_redirects=True,
    )
    assert "Generated" in response.get_data(as_text=True)
    with app.app_context():
        record = db.session.query(ExportRecord).order_by(ExportRecord.id.desc()).first()
        assert _budget(services.export_bytes(store, record))["K4"].value is not None
