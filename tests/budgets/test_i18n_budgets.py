"""Budgets in the reader's language: budget vs actual, a refused import, the grid and the charts (issue 17)."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy import func, select

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language


def _client_in(app, role: str, language: str):
    _set_language(app, role, language)
    return login(app.test_client(), USERNAMES[role])


def test_a_french_reader_sees_budget_vs_actual_with_french_headings_amounts_and_warning(app, world, budget, spend):
    spend(budget.line_hr, "1234.50", day=date(2026, 2, 3))  # 1,000 planned in S1: over the 15% rule
    client = _client_in(app, "Admin", "fr")
    html = client.get(f"/budget-report/grant/{world.grant_a}?period_id={world.period_a1}").get_data(as_text=True)
    assert 'lang="fr"' in html
    assert "Budget et réalisé" in html
    assert "Prévu</th>" in html and "Réalisé</th>" in html and "Écart</th>" in html and "Restant</th>" in html
    assert "Dépensé à ce jour : 1\u202f234,50 USD" in html  # the burn summary, amount written the French way
    assert "1\u202f234,50" in html
    # The variance warning is a whole French sentence with French figures.
    assert "catégorie de coût STAFF" in html and "dépassement de 234,50 USD, plus de 15% de son montant prévu" in html
    assert "Budget vs actual" not in html and "Planned</th>" not in html and "overspent by" not in html


def test_a_spanish_readers_refused_import_names_row_and_column_in_spanish_and_saves_nothing(app, world, budget):
    from budgets.models import BudgetImport, Expenditure
    from core.extensions import db

    client = _client_in(app, "Finance", "es")
    content = b"Date,Line,Amount,Currency\n2026-02-03,XX-9,12.50,USD\n2026-02-04,HR-1,10.00,ZZZ\n"
    client.post(
        "/budget-imports/upload",
        data={"grant_id": str(world.grant_a), "file": (io.BytesIO(content), "gastos.csv")},
        content_type="multipart/form-data",
    )
    with app.app_context():
        import_id = db.session.scalar(select(BudgetImport.id))
    response = client.post(
        f"/budget-imports/{import_id}/confirm",
        data={
            "map_date": "Date",
            "map_line": "Line",
            "map_amount": "Amount",
            "map_currency": "Currency",
            "date_order": "iso",
        },
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "<th>Fila</th><th>Columna</th><th>Problema</th>" in html
    assert "<td>2</td><td>Line</td><td>«XX-9» no es una línea presupuestaria de GA-1</td>" in html
    assert (
        "<td>3</td><td>Currency</td><td>«ZZZ» no es un código de moneda ISO 4217 (p. ej., USD, EUR, XCD)</td>" in html
    )
    assert "No se importó nada: 2 problemas." in html
    assert "is not a budget line" not in html
    report = client.get(f"/budget-imports/{import_id}/errors.csv").get_data(as_text=True)
    assert report.splitlines()[0] == "fila,columna,problema"
    assert "2,Line,«XX-9» no es una línea presupuestaria de GA-1" in report
    with app.app_context():
        assert db.session.scalar(select(func.count(Expenditure.id))) == 0
        # What is stored stays in English (with its message and values): it is translated when shown.
        stored = db.session.get(BudgetImport, import_id).errors[0]
        assert stored["problem"] == "'XX-9' is not a budget line of GA-1"
        assert stored["values"] == {"code": "XX-9", "grant": "GA-1"}


def test_a_dutch_reader_sees_the_budget_grid_and_its_refusals_in_dutch(app, world, budget):
    from budgets.models import BudgetLine
    from core.extensions import db

    client = _client_in(app, "Finance", "nl")
    html = client.get(f"/budget-grid/grant/{world.grant_a}").get_data(as_text=True)
    assert "Begrotingsraster — GA-1" in html
    assert "Som van de periodes" in html and "Gepland per periode (opgeslagen)" in html
    assert 'aria-label="Kostencategorie van HR-1"' in html
    assert "De begroting opslaan" in html and "Een totaal verdelen" in html
    assert "Budget grid" not in html and "Sum of periods" not in html

    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = client.post(
        f"/budget-grid/grant/{world.grant_a}",
        data={"csrf_token": token, f"name-{budget.line_hr}": "", f"cat-{budget.line_hr}": "STAFF"},
    ).get_data(as_text=True)
    assert "Niet opgeslagen: corrigeer de rood gemarkeerde cellen." in refused
    assert f'id="name-{budget.line_hr}-error">een regel heeft een naam nodig' in refused
    with app.app_context():
        assert db.session.get(BudgetLine, budget.line_hr).description == "Coordinator"


def test_the_budget_charts_speak_the_readers_language(app, world, budget, spend):
    from budgets import charts
    from budgets.report import budget_vs_actual
    from core.extensions import db
    from core.formatting import in_locale

    spend(budget.line_travel, "1500.00", day=date(2026, 3, 1))
    with app.test_request_context(), in_locale("es"):
        report = budget_vs_actual(db.session, world.grant_a, None, by="category")
        bars = str(charts.category_bars(report))
        burn = str(
            charts.burn_line(
                date(2026, 1, 1),
                date(2026, 12, 31),
                [(date(2026, 6, 30), report.total.cumulative_planned)],
                [(date(2026, 3, 31), report.total.cumulative_actual)],
                "USD",
                date(2026, 4, 1),
            )
        )
    assert 'aria-label="Gasto previsto y real por categoría de costo"' in bars
    assert ">previsto</text>" in bars and ">real (USD)</text>" in bars and ">por encima del plan</text>" in bars
    assert "<title>real 1.500</title>" in bars  # the amount written the Spanish way
    assert ">hoy</text>" in burn and "discontinua: previsto · continua: real (USD)" in burn
    assert ">1 ene 2026</text>" in burn  # the axis's first day in Spanish
    assert "planned" not in bars + burn and "today" not in burn

    with app.test_request_context():  # the same chart for an English reader
        english = str(charts.category_bars(budget_vs_actual(db.session, world.grant_a, None, by="category")))
    assert ">planned</text>" in english and "<title>actual 1,500</title>" in english


def test_the_closing_checklist_lines_budgets_adds_read_in_french(app, world, budget, spend):
    spend(budget.line_hr, "120.00", day=date(2026, 2, 3))
    client = _client_in(app, "Admin", "fr")
    html = client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert "Dépenses importées" in html
    assert "1 dépense enregistrée pour S1, USD 120,00 (prévu : USD 1\u202f500,00)" in html
    assert "expenditure recorded" not in html and "Spending imported" not in html


def test_a_dutch_reader_types_grid_amounts_with_a_decimal_comma(app, world, budget):
    import re

    client = _client_in(app, "Finance", "nl")
    html = client.get(f"/budget-grid/grant/{world.grant_a}").get_data(as_text=True)
    assert (
        f'name="cell-{budget.line_hr}-{world.period_a1}" id="cell-{budget.line_hr}-{world.period_a1}" value="1000,00"'
        in html
    )
    assert "3.000,00 USD" in html  # planned in all, written the Dutch way
    form = dict(re.findall(r'<input name="([^"]+)" id="[^"]+" value="([^"]*)"', html))
    for name, body in re.findall(r'<select name="([^"]+)" id="[^"]+".*?>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        form[name] = chosen.group(1) if chosen else ""
    form["csrf_token"] = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    # Posted back as shown ("1000,00"), the amounts are read with the comma: 3,000 planned, over the 1,000 grant.
    refused = client.post(f"/budget-grid/grant/{world.grant_a}", data=form).get_data(as_text=True)
    assert "de begroting komt uit op 3.000,00 USD, meer dan het subsidiebedrag van 1.000,00 USD" in refused


def test_a_french_readers_refused_rates_file_is_explained_in_french(app, world):
    from budgets.models import ExchangeRate
    from core.extensions import db

    client = _client_in(app, "Finance", "fr")
    bad = b"date,from,to,rate\n2026-01-31,ZZZ,USD,0.5\n2026-01-31,GBP,USD,-1\n2026-02-30,EUR,USD,1.1\n"
    html = client.post(
        "/exchange-rates-import/",
        data={"date_order": "iso", "file": (io.BytesIO(bad), "taux.csv")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert (
        "Rien n&#39;a été importé : 3 problèmes, listés ci-dessous." in html
        or "Rien n'a été importé : 3 problèmes" in html
    )
    assert '<th scope="col">Ligne</th><th scope="col">Colonne</th><th scope="col">Problème</th>' in html
    assert "« ZZZ » n&#39;est pas un code de devise ISO 4217" in html
    assert "« -1 » doit être un nombre supérieur à zéro" in html
    assert "« 2026-02-30 » n&#39;est pas une date (ISO (2026-01-31))" in html
    with app.app_context():
        assert db.session.scalar(select(func.count(ExchangeRate.id))) == 0
