"""Exports in the reader's language: built-in workbooks in the language chosen, funder templates as they are."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language


@pytest.fixture
def spent(app, world):
    """One budget line of Grant A with one expenditure of USD 1,234.50 on 5 Feb 2026."""
    from budgets import services
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants.models import Funder, Grant
    from grants.services import GENERIC_COST_CATEGORIES

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in GENERIC_COST_CATEGORIES]
        grant = db.session.get(Grant, world.grant_a)
        line = services.create_line(
            db.session, grant, code="HR-1", description="Coordinator", cost_category="STAFF", planned={"S1": "1000"}
        )
        services.record_expenditure(
            db.session,
            grant,
            line=line,
            spent_on=dt.date(2026, 2, 5),
            amount="1234.50",
            currency="USD",
            description="Salary",
        )
        db.session.commit()


def _latest_export(app):
    from core.extensions import db
    from core.storage import store_for
    from exports import services
    from exports.models import ExportRecord

    with app.app_context():
        record = db.session.scalar(select(ExportRecord).order_by(ExportRecord.id.desc()).limit(1))
        assert record is not None, "nothing was generated"
        return record.filename, services.export_bytes(store_for(app.config), record)


def _generate(client, grant_id: int, report: str, **form: str):
    response = client.post(f"/exports/generate/{grant_id}", data={"report": report, **form})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def _ledger(data: bytes):
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    rows = list(sheet.iter_rows())
    header_at = next(i for i, row in enumerate(rows) if row[0].value in ("Date",))
    return sheet, rows[:header_at], [c.value for c in rows[header_at]], rows[header_at + 1 :]


def test_a_french_user_gets_a_built_in_workbook_in_french_with_real_numbers_and_dates(app, world, spent):
    _set_language(app, "Finance", "fr")
    client = login(app.test_client(), USERNAMES["Finance"])
    _generate(client, world.grant_a, "builtin:expenditure_ledger")  # no language chosen: the user's

    filename, data = _latest_export(app)
    assert filename.endswith("_fr.xlsx")
    sheet, title_rows, header, rows = _ledger(data)
    assert sheet.title == "Grand livre des dépenses"
    assert "Montant" in header and "Devise" in header and "Amount" not in header
    assert "montants en USD" in title_rows[1][0].value
    assert "2026" in title_rows[1][0].value and "janv." in title_rows[1][0].value  # 1 janv. 2026 to ...
    amount = rows[0][header.index("Montant")]
    assert amount.data_type == "n" and amount.value == pytest.approx(1234.5)
    assert amount.number_format == "#,##0.00"  # shown with the reader's own separators
    day = rows[0][header.index("Date")]
    assert isinstance(day.value, dt.datetime) and day.value.date() == dt.date(2026, 2, 5)
    assert day.is_date and day.number_format == "dd/mm/yyyy"


def test_the_same_french_user_choosing_english_gets_english_headers(app, world, spent):
    _set_language(app, "Finance", "fr")
    client = login(app.test_client(), USERNAMES["Finance"])
    page = _generate(client, world.grant_a, "builtin:expenditure_ledger", language="en")

    filename, data = _latest_export(app)
    assert not filename.endswith("_fr.xlsx") and filename.endswith(".xlsx")
    sheet, title_rows, header, rows = _ledger(data)
    assert sheet.title == "Expenditure ledger"
    assert "Amount" in header and "Montant" not in header
    assert "amounts in USD" in title_rows[1][0].value
    assert rows[0][0].number_format == "yyyy-mm-dd" and rows[0][0].is_date
    # The page itself stays in the reader's language.
    flashed = client.get(page.headers["Location"]).get_data(as_text=True)
    assert "Rapports pour le bailleur" in flashed


def test_an_unknown_language_is_refused_and_nothing_is_generated(app, world, db_session):
    from core.errors import DomainValidationError
    from core.storage import store_for
    from exports import services
    from exports.models import ExportRecord
    from grants.models import Grant

    grant = db_session.get(Grant, world.grant_a)
    with pytest.raises(DomainValidationError) as caught:
        services.run_export(
            db_session,
            store_for(app.config),
            grant=grant,
            period=None,
            user="t",
            builtin="reporting_periods",
            language="de",
        )
    assert "language" in caught.value.errors
    db_session.rollback()
    assert db_session.scalar(select(ExportRecord.id).limit(1)) is None


def test_a_built_in_report_made_as_a_job_is_written_in_the_language_it_was_started_in(app, world):
    from core.extensions import db
    from core.storage import store_for
    from exports import services
    from exports.contributions import export_job
    from exports.models import ExportRecord

    with app.app_context():
        outcome = export_job(
            db.session,
            {"grant_id": world.grant_a, "period_id": None, "builtin": "reporting_periods", "language": "nl"},
            lambda *args: None,
        )
        db.session.commit()
        record = db.session.get(ExportRecord, outcome.record_id)
        data = services.export_bytes(store_for(app.config), record)
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet.title == "Rapportageperiodes"
    header = [c.value for c in sheet[3]]
    assert header[0] == "Periode"
    first = sheet["B4"]
    assert isinstance(first.value, dt.datetime) and first.number_format == "dd-mm-yyyy"


def test_a_dutch_users_export_panel_is_in_dutch(app, world):
    _set_language(app, "Finance", "nl")
    client = login(app.test_client(), USERNAMES["Finance"])
    html = client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "Rapporten voor de donor" in html
    assert "Nog niets gemaakt." in html
    assert "Whole grant" not in html and "Generate" not in html
    assert "Recompute formula results" not in html and "Uitkomsten van formules herberekenen" in html
    # The language of a built-in report: each language by its own name, the reader's chosen.
    assert '<option value="nl" lang="nl" selected>Nederlands</option>' in html
    assert '<option value="fr" lang="fr">Français</option>' in html


def _sheet_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist() if n.startswith("xl/") and n.endswith(".xml")}


def test_a_funder_template_is_filled_the_same_whatever_the_users_language(app, world, uploaded):
    _set_language(app, "Finance", "fr")
    _set_language(app, "Admin", "en")
    french = login(app.test_client(), USERNAMES["Finance"])
    english = login(app.test_client(), USERNAMES["Admin"])

    _generate(french, world.grant_a, f"template:{uploaded}", period=str(world.period_a1), language="fr")
    french_name, french_file = _latest_export(app)
    _generate(english, world.grant_a, f"template:{uploaded}", period=str(world.period_a1))
    english_name, english_file = _latest_export(app)

    assert french_name == english_name  # no language in a funder template's file name
    assert _sheet_parts(french_file) == _sheet_parts(english_file)
    values = [[c.value for c in row] for row in load_workbook(io.BytesIO(french_file)).worksheets[0].iter_rows()]
    assert "GA-1" in [v for row in values for v in row]


def test_the_review_summary_in_french(app):
    from core.formatting import in_locale
    from exports.review import CellChange, Comparison

    comparison = Comparison(changes=[CellChange("Budget", "B4", "HR-1", "Actual", 10, 12)], sheets_added=["Annexe"])
    with app.app_context(), in_locale("fr"):
        assert comparison.summary == "1 chiffre a changé; nouvelle feuille : Annexe depuis la dernière soumission."


def test_a_spanish_program_lead_generates_from_the_period_page_in_spanish(app, world):
    _set_language(app, "Program", "es")
    client = login(app.test_client(), USERNAMES["Program"])
    page = client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert "2. Generar el informe para el donante" in page
    assert "Avance de los indicadores (IPTT) (informe integrado)" in page
    assert '<option value="es" lang="es" selected>Español</option>' in page

    response = client.post(f"/period-report/{world.period_a1}/generate", data={"report": "builtin:reporting_periods"})
    assert response.status_code == 302
    review = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Revisión antes de publicar" in review
    assert "Es la primera presentación de este informe para S1" in review
    filename, data = _latest_export(app)
    assert filename.endswith("_es.xlsx")
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet.title == "Períodos de informe"
    assert sheet["B4"].number_format == "dd/mm/yyyy" and isinstance(sheet["B4"].value, dt.datetime)


def test_a_dutch_user_reads_the_export_history_columns_in_dutch(app, world):
    _set_language(app, "Finance", "nl")
    client = login(app.test_client(), USERNAMES["Finance"])
    _generate(client, world.grant_a, "builtin:reporting_periods")
    html = client.get("/exports/list/").get_data(as_text=True)
    assert "Gemaakt door" in html and "Bestand" in html and "Aangemaakt (UTC)" in html
    assert "Created By" not in html and "Filename" not in html
    assert ">Downloaden</a>" in html


def test_the_one_mapping_check_speaks_the_readers_language(app, template_file):
    from core.formatting import in_locale
    from exports.datasets import catalogue
    from exports.mapping import check_mapping, parse_mapping
    from exports.xlsx.inspector import inspect_template

    spec = parse_mapping('cells:\n  - {target: "Nowhere!A1", source: grant.reference}\n', catalogue())
    info = inspect_template(template_file)
    with app.app_context():
        english = check_mapping(spec, info)
        with in_locale("fr"):
            french = check_mapping(spec, info)
    assert len(english) == len(french) == 1
    assert english[0].startswith("Cell Nowhere!A1 (grant.reference): the template has no sheet 'Nowhere'")
    assert french[0].startswith("Cellule Nowhere!A1 (grant.reference) : le modèle n'a pas de feuille « Nowhere »")
