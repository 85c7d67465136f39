"""Indicators in the reader's language: pages, refusals, charts, and indicator names given per language."""

from __future__ import annotations

from decimal import Decimal

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from core.formatting import in_locale, number, pct
from grants.models import ReportingPeriod
from indicators import services
from indicators.chart import progress_chart
from indicators.models import Indicator, Result
from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language

SPANISH_NAME = "Trabajadoras sexuales capacitadas en derechos humanos y VIH"
ENGLISH_NAME = "Sex workers trained in human rights and HIV"


def _client(app, role: str, language: str):
    _set_language(app, role, language)
    return login(app.test_client(), USERNAMES[role])


def _count_results(app) -> int:
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Result))


def _figures(app, world, ind, *, target: str, result: str) -> None:
    """T-1 gets a target and a submitted result in GA-1's first period."""
    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        session = db.session
        indicator = session.get(Indicator, ind.trained)
        period = session.get(ReportingPeriod, world.period_a1)
        services.set_target(session, indicator, period, value=target)
        services.record_result(
            session, indicator, period, user=session.get(User, world.users["Program"]), value=result, status="submitted"
        )
        session.commit()


def _give_spanish_name(app, ind) -> None:
    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        indicator = db.session.get(Indicator, ind.trained)
        services.update_indicator(db.session, indicator, titles={"es": f"  {SPANISH_NAME} ", "fr": "  "})
        db.session.commit()
        assert indicator.titles == {"es": SPANISH_NAME}  # trimmed, the blank French name dropped


def test_a_french_user_reads_the_iptt_in_french_with_french_numbers(app, world, ind):
    _figures(app, world, ind, target="2000", result="1234.5")
    html = _client(app, "Program", "fr").get(f"/indicator-progress/{world.grant_a}").get_data(as_text=True)
    with in_locale("fr"):
        actual, achievement = number(Decimal("1234.5")), pct(Decimal("61.7"), 1)
    assert "," in actual and "," in achievement  # 1 234,5 and 61,7 %
    assert actual in html and achievement in html
    assert "1234.5" not in html and "61.7%" not in html
    assert "Période de rapport la plus récente" in html or "Dernière période rapportée" in html
    assert "Cible de la subvention" in html or "Cible sur la durée de la subvention" in html
    assert "Réalisé" in html and "Notation" in html
    assert "réalisé par rapport à la cible" in html  # the chart's own labels
    assert "Actual" not in html and "Life-of-grant target" not in html


def test_the_chart_speaks_the_readers_language(app, world, ind):
    from core.extensions import db
    from indicators.progress import indicator_progress

    _figures(app, world, ind, target="20", result="12")
    with app.app_context():
        rows = [r for r in indicator_progress(db.session, world.grant_a) if r.indicator_id == ind.trained]
        with in_locale("nl"):
            dutch = str(progress_chart(rows))
        english = str(progress_chart(rows))
    assert ">doel</text>" in dutch and ">werkelijk</text>" in dutch
    assert ">target</text>" in english and ">actual</text>" in english


def test_a_dutch_users_refused_result_is_explained_in_dutch_and_nothing_is_saved(app, world, ind):
    client = _client(app, "Program", "nl")
    response = client.post(
        f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}", data={"value": "-3"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "mag niet negatief zijn" in html
    assert "must not be negative" not in html
    assert _count_results(app) == 0


def test_an_indicator_with_a_spanish_name_shows_it_to_a_spanish_reader_only(app, world, ind):
    _give_spanish_name(app, ind)
    _figures(app, world, ind, target="20", result="12")
    spanish = _client(app, "Program", "es").get(f"/indicator-progress/{world.grant_a}").get_data(as_text=True)
    assert SPANISH_NAME in spanish and ENGLISH_NAME not in spanish
    english = _client(app, "Finance", "en").get(f"/indicator-progress/{world.grant_a}").get_data(as_text=True)
    assert ENGLISH_NAME in english and SPANISH_NAME not in english
    french = _client(app, "Admin", "fr").get(f"/indicator-progress/{world.grant_a}").get_data(as_text=True)
    assert ENGLISH_NAME in french  # no French name given: the one entered first
    listing = _client(app, "Program", "es").get("/indicators/list/").get_data(as_text=True)
    assert SPANISH_NAME in listing


def test_the_indicator_form_saves_and_shows_the_names_per_language(app, world, ind):
    client = _client(app, "Program", "fr")
    form = client.get("/indicators/add").get_data(as_text=True)
    assert "Nom en espagnol" in form and "Nom en néerlandais" in form
    response = client.post(
        "/indicators/add",
        data={
            "grant": world.grant_a,
            "code": "NEW-1",
            "name": "Peer educators active",
            "title_es": "  Educadores pares activos  ",
            "title_fr": "Pairs éducateurs actifs",
            "title_nl": "",
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
            "sort_order": "5",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200
    from core.extensions import db

    with app.app_context():
        indicator = db.session.scalar(select(Indicator).where(Indicator.code == "NEW-1"))
        assert indicator.titles == {"es": "Educadores pares activos", "fr": "Pairs éducateurs actifs"}
        pk = indicator.id
    edit = client.get(f"/indicators/edit/{pk}").get_data(as_text=True)
    assert 'value="Educadores pares activos"' in edit and 'value="Pairs éducateurs actifs"' in edit
    shown = client.get(f"/indicators/show/{pk}").get_data(as_text=True)
    assert "Nom en espagnol : Educadores pares activos" in shown or "Nom en espagnol: Educadores pares activos" in shown


def test_a_name_longer_than_300_characters_is_refused_naming_the_field(app, world, ind):
    client = _client(app, "Program", "en")
    response = client.post(
        f"/indicators/edit/{ind.trained}",
        data={
            "grant": world.grant_a,
            "code": "T-1",
            "name": ENGLISH_NAME,
            "sort_order": "1",
            "title_nl": "x" * 301,
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
        },
    )
    html = response.get_data(as_text=True)
    assert "Name in Dutch has 301 characters; at most 300 are allowed" in html
    from core.extensions import db

    with app.app_context():
        assert not db.session.get(Indicator, ind.trained).titles


def test_the_api_accepts_and_returns_names_per_language(api_for, app, world, ind):
    api = api_for("Program")
    response = api.put(f"/api/v1/indicators/{ind.trained}", json={"titles": {"es": f" {SPANISH_NAME} ", "nl": ""}})
    assert response.status_code == 200, response.json
    shown = api.get(f"/api/v1/indicators/{ind.trained}").json["result"]
    assert shown["titles"] == {"es": SPANISH_NAME}


def test_the_api_refuses_an_unknown_language_or_a_name_that_is_not_text(api_for, app, world, ind):
    api = api_for("Program")
    unknown = api.put(f"/api/v1/indicators/{ind.trained}", json={"titles": {"de": "Geschulte Sexarbeiterinnen"}})
    assert unknown.status_code == 422
    assert "titles" in unknown.json["message"] and "'de'" in unknown.json["message"]["titles"][0]
    not_text = api.put(f"/api/v1/indicators/{ind.trained}", json={"titles": {"fr": 12}})
    assert not_text.status_code == 422
    assert "Name in French must be text" in not_text.json["message"]["titles"][0]
    from core.extensions import db

    with app.app_context():
        assert not db.session.get(Indicator, ind.trained).titles


def test_the_results_list_names_the_indicator_in_the_readers_language(app, world, ind):
    _give_spanish_name(app, ind)
    _figures(app, world, ind, target="20", result="12")
    spanish = _client(app, "Program", "es").get("/indicator-results/list/").get_data(as_text=True)
    assert f"T-1 {SPANISH_NAME}" in spanish
    english = _client(app, "Finance", "en").get("/indicator-results/list/").get_data(as_text=True)
    assert f"T-1 {ENGLISH_NAME}" in english and SPANISH_NAME not in english


def test_a_french_user_types_a_result_with_a_decimal_comma(app, world, ind):
    client = _client(app, "Program", "fr")
    url = f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}"
    response = client.post(url, data={"value": "1 234,5"})
    assert response.status_code == 302
    from core.extensions import db

    with app.app_context():
        assert db.session.scalar(select(Result.value)) == Decimal("1234.5")
    assert 'value="1234,5"' in client.get(url).get_data(as_text=True)
    refused = client.post(url, data={"value": "1,234.5"})
    assert refused.status_code == 422 and "virgule" in refused.get_data(as_text=True)


def test_a_result_awaiting_verification_and_a_submitted_period_keep_their_own_words():
    """Both enums hold "submitted": one wording must not overwrite the other."""
    from grants.models import PeriodStatus
    from indicators.models import ResultStatus, period_status_word

    assert ResultStatus.submitted.label == "Awaiting verification"
    assert period_status_word(PeriodStatus.submitted) == "submitted"
    assert period_status_word("submitted") == "submitted"
