"""Compliance in the reader's language: the matrix, a requirement's page and its rule explanations,
and requirement titles given per language (form, pages and API)."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from core import clock
from grants.compliance import services
from grants.compliance.models import Requirement
from grants.evidence import consultations
from tests.conftest import set_user_language as _set_language


@pytest.fixture
def requirement(session, world):
    """R1 on grant A: sex workers at every RCM meeting; the February meeting had none (at risk in S1)."""
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    consultations.record_consultation(
        session,
        grant=world.grant_a,
        body=body,
        held_on=date(2026, 2, 12),
        title="RCM February",
        attendance={"sex_workers": 0, "government": 5},
    )
    kp = services.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Sex workers at every RCM meeting",
        titles={"es": "Trabajadoras sexuales en cada reunión del RCM"},
        category="community_inclusion",
        rules=[{"rule": "consultation_representation", "params": {"body": "RCM", "population": "sex_workers"}}],
    )
    session.commit()
    return kp.id


def _builder_form(**changes):
    form = {
        "code": "R1",
        "title": "Sex workers at every RCM meeting",
        "category": "community_inclusion",
        "frequency": "per_period",
        "rule-0-rule": "consultation_representation",
        "rule-0-consultation_representation-body": "RCM",
        "rule-0-consultation_representation-population": "sex_workers",
    }
    form.update(changes)
    return form


# ---------------------------------------------------------------- pages in French


def test_a_french_user_reads_the_matrix_in_french_with_the_rule_explanation(app, world, requirement, client_for):
    _set_language(app, "Program", "fr")
    html = client_for("Program").get(f"/requirements/matrix/{world.grant_a}").get_data(as_text=True)
    assert "<th>Exigence</th>" in html and "<th>Catégorie</th>" in html
    assert "Inclusion communautaire" in html  # the category, in words
    assert "à risque" in html  # the status of the cell
    # The explanation the cell carries, with the date the French way.
    assert "comptaient moins de 1 représentant·e des travailleuses et travailleurs du sexe" in html
    assert "12 févr. 2026" in html
    assert "had fewer than" not in html and "Add requirement" not in html


def test_a_french_user_reads_a_requirement_page_and_its_cell_in_french(app, world, requirement, client_for):
    _set_language(app, "Program", "fr")
    client = client_for("Program")
    page = client.get(f"/requirements/show/{requirement}").get_data(as_text=True)
    assert "Fenêtres évaluées" in page and "<th>Pourquoi</th>" in page
    # The builder's sentence: what the requirement asks, in French.
    assert "Au moins 1 représentant·e des travailleuses et travailleurs du sexe à chaque réunion de RCM" in page
    assert "par période de rapport" in page
    assert "comptaient moins de 1 représentant·e" in page
    cell = client.get(f"/requirements/cell/{requirement}/{world.period_a1}").get_data(as_text=True)
    assert "Retour à la matrice" in cell and "Justificatifs pris en compte" in cell
    assert "(12 févr. 2026: 0)" in cell
    assert "Back to the matrix" not in cell


def test_the_same_pages_stay_in_english_for_an_english_reader(app, world, requirement, client_for):
    html = client_for("Program").get(f"/requirements/matrix/{world.grant_a}").get_data(as_text=True)
    assert "<th>Requirement</th>" in html
    assert "had fewer than 1 sex worker representative (12 Feb 2026: 0)" in html


# ---------------------------------------------------------------- titles per language


def test_a_spanish_reader_sees_the_spanish_title_and_an_english_reader_the_default(app, world, requirement, client_for):
    english = client_for("Program")
    _set_language(app, "Finance", "es")
    spanish = client_for("Finance")
    for path in (f"/requirements/matrix/{world.grant_a}", f"/requirements/show/{requirement}"):
        in_spanish = spanish.get(path).get_data(as_text=True)
        in_english = english.get(path).get_data(as_text=True)
        assert "Trabajadoras sexuales en cada reunión del RCM" in in_spanish, path
        assert "Sex workers at every RCM meeting" not in in_spanish, path
        assert "Sex workers at every RCM meeting" in in_english, path
        assert "Trabajadoras sexuales" not in in_english, path
    # A French reader has no French title: the default is shown.
    _set_language(app, "Admin", "fr")
    french = client_for("Admin").get(f"/requirements/show/{requirement}").get_data(as_text=True)
    assert "Sex workers at every RCM meeting" in french


def test_the_requirement_form_saves_trimmed_titles_per_language_and_shows_them_again(
    app, world, requirement, client_for, session
):
    client = client_for("Program")
    page = client.get(f"/requirements/edit/{requirement}").get_data(as_text=True)
    assert 'name="title_es"' in page and 'value="Trabajadoras sexuales en cada reunión del RCM"' in page
    assert "Title in French" in page and "Title in Dutch" in page
    response = client.post(
        f"/requirements/edit/{requirement}",
        data=_builder_form(title_es="", title_fr="  Travailleuses du sexe à chaque réunion  ", title_nl=" "),
    )
    assert response.status_code == 302
    session.rollback()
    assert session.get(Requirement, requirement).titles == {"fr": "Travailleuses du sexe à chaque réunion"}
    again = client.get(f"/requirements/edit/{requirement}").get_data(as_text=True)
    assert 'value="Travailleuses du sexe à chaque réunion"' in again


def test_a_title_too_long_is_refused_with_a_message_and_nothing_changes(app, world, requirement, client_for, session):
    _set_language(app, "Program", "nl")
    response = client_for("Program").post(
        f"/requirements/edit/{requirement}", data=_builder_form(title_nl="x" * 301, title="Changed")
    )
    assert response.status_code == 422
    assert "de titel in &#39;nl&#39; is langer dan 300 tekens" in response.get_data(as_text=True)
    session.rollback()
    saved = session.get(Requirement, requirement)
    assert saved.title == "Sex workers at every RCM meeting"
    assert saved.titles == {"es": "Trabajadoras sexuales en cada reunión del RCM"}


def test_the_language_labels_of_the_form_are_translated(app, world, requirement, client_for):
    _set_language(app, "Program", "nl")
    page = client_for("Program").get(f"/requirements/edit/{requirement}").get_data(as_text=True)
    assert "Titel in het Spaans" in page and "Titel in het Frans" in page and "Vereiste opslaan" in page


# ---------------------------------------------------------------- the API


def test_the_api_takes_and_returns_titles_per_language(world, requirement, api_for, session):
    api = api_for("Program")
    created = api.post(
        "/api/v1/requirements/",
        json={"grant": world.grant_a, "code": "R2", "title": "Minutes", "titles": {"nl": " Notulen ", "fr": ""}},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    shown = api.get(f"/api/v1/requirements/{created.json['id']}").json["result"]
    assert shown["title"] == "Minutes" and shown["titles"] == {"nl": "Notulen"}
    changed = api.put(f"/api/v1/requirements/{requirement}", json={"titles": {"fr": "Titre"}})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert api.get(f"/api/v1/requirements/{requirement}").json["result"]["titles"] == {"fr": "Titre"}


@pytest.mark.parametrize(
    ("titles", "message"),
    [
        ({"de": "Anforderung"}, "'de' is not a language of titles; use: es, fr, nl"),
        ({"fr": 3}, "the title in 'fr' must be text"),
        ({"fr": ["a"]}, "the title in 'fr' must be text"),
        ("Titre", "must be an object of titles per language"),
    ],
)
def test_the_api_refuses_an_unknown_language_or_a_title_that_is_not_text(
    world, requirement, api_for, session, titles, message
):
    before = session.scalar(select(func.count(Requirement.id)))
    api = api_for("Program")
    refused = api.post(
        "/api/v1/requirements/", json={"grant": world.grant_a, "code": "R3", "title": "x", "titles": titles}
    )
    assert refused.status_code == 422
    assert message in refused.json["message"]["titles"][0]
    changed = api.put(f"/api/v1/requirements/{requirement}", json={"titles": titles})
    assert changed.status_code == 422 and "titles" in changed.json["message"]
    session.rollback()
    assert session.scalar(select(func.count(Requirement.id))) == before
    assert session.get(Requirement, requirement).titles == {"es": "Trabajadoras sexuales en cada reunión del RCM"}


def test_the_grant_page_panel_and_an_evidence_link_are_in_the_readers_language(
    app, world, requirement, client_for, session
):
    from grants.evidence import services as evidence_services
    from tests.grants.evidence.helpers import add_evidence

    minutes = add_evidence(app, session, world, title="RCM minutes")
    evidence_services.link_evidence(session, minutes, "requirement", requirement)
    session.commit()
    _set_language(app, "Program", "es")
    client = client_for("Program")
    with clock.frozen_at(datetime(2026, 3, 1, 12, tzinfo=UTC)):  # in S1, after the short February meeting
        grant_page = client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Compliance"' in grant_page  # the panel's key stays the same in every language
    assert "Matriz de cumplimiento" in grant_page and "S1: en riesgo" in grant_page
    evidence_page = client.get(f"/evidence/show/{minutes.id}").get_data(as_text=True)
    assert "R1 Trabajadoras sexuales en cada reunión del RCM" in evidence_page
    assert "Respalda" in evidence_page
