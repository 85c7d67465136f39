"""The rest of budgets in the reader's language: budget-file row problems, budgets jobs, refused spending (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape

from sqlalchemy import func, select

from tests.budgets.test_budget_import import _run, _stage, quarterly  # noqa: F401  (the fixture)
from tests.budgets.test_i18n_budgets import _client_in


def test_a_french_readers_refused_budget_file_shows_its_row_problems_in_french_and_saves_nothing(app, quarterly):  # noqa: F811
    from budgets import budget_import
    from budgets.models import BudgetLine, BudgetPlanImport
    from core.extensions import db

    csv = (
        b"Code,Line name,Cost category,Total,Q1,Q2,Q3,Q4,Q5,Q6,Q7,Q8\n"
        b"TR-1,Travel,Flights,4000,,,,,,,,\n"
        b"TR-2,Ferry,2,100,abc,,,,,,,\n"
        b"EP-1,Trainer,3,900,100,100,100,100,100,100,100,100\n"
    )
    import_id = _stage(app, quarterly, csv, "budget.csv")
    result = _run(app, import_id)
    assert result.outcome is None
    # Stored in English with its message and values; translated where it is shown.
    assert (3, "Q1", "'abc' is not a number") in [(e["row"], e["column"], e["problem"]) for e in result.errors]
    client = _client_in(app, "Admin", "fr")
    html = unescape(client.get(f"/budget-file-imports/show/{import_id}").get_data(as_text=True))
    assert 'lang="fr"' in html
    assert (
        "« Flights » n'est pas une des catégories de coûts du bailleur de fonds ; choisissez celle qu'il désigne"
        in html
    )
    assert "« abc » n'est pas un nombre" in html
    assert "ligne EP-1 : les périodes totalisent 800.00 USD mais le total indique 900.00 USD" in html
    assert "is not one of the funder's cost categories" not in html and "is not a number" not in html
    with app.app_context():
        assert db.session.scalar(select(func.count(BudgetLine.id)).where(BudgetLine.grant_id == quarterly)) == 0
        staged = db.session.get(BudgetPlanImport, import_id)
        assert all(e.get("message") for e in staged.errors)
        assert "'abc' is not a number" in budget_import.error_report_csv(staged)


def test_a_dutch_readers_jobs_page_shows_a_budgets_jobs_kind_and_result_in_dutch(app, world):
    import budgets.contributions  # noqa: F401  (registers the budgets jobs and their sentences)
    from core.extensions import db
    from core.jobs import Job, JobState

    with app.app_context():
        moment = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        db.session.add_all(
            [
                Job(
                    kind="actuals_import",
                    grant_id=world.grant_a,
                    state=JobState.done,
                    result="Imported 1,234 expenditures; 1 was already there.",
                    requested_by="admin",
                    created_at=moment,
                    finished_at=moment,
                ),
                Job(
                    kind="odoo_sync",
                    grant_id=world.grant_a,
                    state=JobState.failed,
                    error="Odoo sync failed, nothing saved: Odoo refused the login 'gk' on database 'ngo': "
                    "check the login and the API key",
                    requested_by="admin",
                    created_at=moment,
                    finished_at=moment,
                ),
                Job(
                    kind="odoo_sync",
                    grant_id=world.grant_a,
                    state=JobState.done,
                    result="GA-1: full sync (first sync), 2 Odoo lines read: 1 created, 0 updated, 0 removed, "
                    "1 unchanged",
                    requested_by="admin",
                    created_at=moment,
                    finished_at=moment,
                ),
            ]
        )
        db.session.commit()
    html = unescape(_client_in(app, "Admin", "nl").get("/jobs/").get_data(as_text=True))
    assert 'lang="nl"' in html
    assert "Import van werkelijke uitgaven" in html and "Synchronisatie met Odoo" in html
    assert "1.234 uitgaven geïmporteerd; 1 was er al." in html  # the count written the Dutch way
    assert (
        "Synchronisatie met Odoo mislukt, niets opgeslagen: Odoo weigerde de gebruikersnaam 'gk' op database "
        "'ngo': controleer de gebruikersnaam en de API-sleutel" in html
    )
    assert (
        "GA-1: volledige synchronisatie (eerste synchronisatie), 2 Odoo-regels gelezen: 1 aangemaakt, "
        "0 bijgewerkt, 0 verwijderd, 1 ongewijzigd" in html
    )
    assert (
        "Imported" not in html
        and "full sync" not in html
        and "Odoo sync failed" not in html
        and "Import of actuals" not in html
    )


def test_a_spanish_readers_refused_expenditure_is_explained_in_spanish_and_nothing_is_saved(app, world, budget):
    from budgets.models import Expenditure
    from core.extensions import db

    client = _client_in(app, "Finance", "es")
    page = unescape(
        client.post(
            "/expenditures/add",
            data={"line": str(budget.line_hr), "spent_on": "2025-12-31", "amount": "5", "currency": "USD"},
            follow_redirects=True,
        ).get_data(as_text=True)
    )
    assert "2025-12-31 está fuera de la subvención GA-1 (2026-01-01 a 2026-12-31)" in page
    assert "is outside grant" not in page
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 0
