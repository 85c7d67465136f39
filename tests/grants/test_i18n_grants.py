"""Grants, their forms, periods and deadlines read in the user's own language (issue 17).

Each test signs in as a user whose stored language is French, Dutch or Spanish and checks
words, an amount or a date that only a translated page (or feed) carries.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from icalendar import Calendar

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language


def _client(app: Any, role: str, language: str) -> Any:
    _set_language(app, role, language)
    return login(app.test_client(), USERNAMES[role])


def _csrf(client: Any, url: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True))
    return found.group(1) if found else ""


def test_a_french_user_reads_the_grant_list_with_french_labels_amounts_and_dates(app, world):
    client = _client(app, "Admin", "fr")
    html = client.get("/grants/list/").get_data(as_text=True)
    assert 'lang="fr"' in html
    assert "Subventions" in html and "Référence" in html and "Date de fin" in html
    assert "1\u202f000,00" in html  # Grant A's amount, the French way
    assert "31 déc. 2026" in html  # its end date
    assert "1,000.00" not in html and "Reference" not in html


def test_a_french_user_reads_the_grant_form_and_page_in_french(app, world):
    client = _client(app, "Admin", "fr")
    form = client.get("/grants/add").get_data(as_text=True)
    assert "Les coûts indirects sont calculés sur" in form  # a label
    assert "Total des coûts directs" in form  # a choice of the indirect cost base
    assert "Vide : la subvention n’impute aucun coût indirect." in form  # a help text
    assert "Indirect costs are charged on" not in form
    page = client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "Convention" in page and "Montants et dates" in page  # fieldset titles
    assert "Prochain rapport" in page and "S1, échéance le 14 août 2026" in page  # the reporting panel


def test_a_french_user_reads_the_deadlines_page_with_french_titles_and_dates(app, world):
    client = _client(app, "Admin", "fr")
    html = client.get("/my-deadlines/?scope=all").get_data(as_text=True)
    assert "Échéances de mes subventions" in html and "Flux de calendrier" in html
    assert "Il manque encore" in html and "Responsable" in html  # table headers
    # A period's deadline is titled by the system: written in French from its period.
    assert "Rapport de S1 (1 janv. 2026 – 30 juin 2026)" in html
    assert "14 août 2026" in html  # S1's report is due 45 days after the period ends
    assert "Report for S1" not in html and "Still missing" not in html
    listed = client.get("/deadlines/list/").get_data(as_text=True)
    assert "Échéances" in listed and "Rapport de S1 (1 janv. 2026 – 30 juin 2026)" in listed
    assert "Ajouter une subvention" in client.get("/grants/add").get_data(as_text=True)  # the form's title


def test_a_dutch_user_is_refused_in_dutch_and_nothing_is_saved(app, world):
    from sqlalchemy import func, select

    from core.extensions import db
    from grants.models import ReportingPeriod

    client = _client(app, "Admin", "nl")
    with app.app_context():
        before = db.session.scalar(select(func.count(ReportingPeriod.id)))
    response = client.post(
        "/periods/add",
        data={
            "csrf_token": _csrf(client, "/periods/add"),
            "grant": str(world.grant_a),
            "label": "Getypt P9",
            "start_date": "2027-01-01",
            "end_date": "2027-02-01",
            "report_due": "2027-03-01",
            "status": "open",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Niet opgeslagen: corrigeer de hieronder gemarkeerde velden." in html
    assert "de periode moet binnen de subsidie vallen (1 jan 2026 tot 31 dec 2026)" in html
    assert "Getypt P9" in html  # the form comes back as typed
    assert "must lie within the grant" not in html
    with app.app_context():
        assert db.session.scalar(select(func.count(ReportingPeriod.id))) == before


def test_a_dutch_user_is_told_in_dutch_when_a_label_is_taken(app, world):
    from core.errors import DomainValidationError
    from core.extensions import db
    from core.formatting import in_locale
    from grants.models import ReportingPeriod

    with app.app_context(), in_locale("nl"):
        period = ReportingPeriod(
            grant_id=world.grant_a, label="S1", start_date=date(2026, 1, 1), end_date=date(2026, 2, 1), status="open"
        )
        with pytest.raises(DomainValidationError) as refused:
            period.validate(db.session)
    assert refused.value.errors["label"] == ["'S1' is al een periode van GA-1"]


def test_a_spanish_users_calendar_feed_has_spanish_summaries(app, world):
    client = _client(app, "Program", "es")
    page = client.post(
        "/my-deadlines/calendar", data={"action": "new", "csrf_token": _csrf(client, "/my-deadlines/")}
    ).get_data(as_text=True)
    found = re.search(r'id="feed-url" value="([^"]+)"', page)
    assert found, "the new feed URL is shown once on the page"
    assert "Copie esta dirección ahora" in page
    path = "/" + found.group(1).split("/", 3)[3]
    # Calendar apps fetch the feed without a session or a language: the user's own language is used.
    response = app.test_client().get(path, headers={"Accept-Language": "en"})
    assert response.status_code == 200
    calendar = Calendar.from_ical(response.data)
    assert str(calendar["x-wr-calname"]) == "Plazos de Grantkeeper"
    summaries = {str(event["summary"]) for event in calendar.walk("VEVENT")}
    assert "GA-1: Informe de S1 (1 ene 2026 – 30 jun 2026)" in summaries, summaries
    assert not any("Report for" in summary for summary in summaries)
    descriptions = " ".join(str(event["description"]) for event in calendar.walk("VEVENT"))
    assert "Subvención: GA-1 — Grant A" in descriptions and "Vence: 2026-08-14" in descriptions


def test_an_english_users_feed_and_pages_keep_their_english_words(app, world):
    client = login(app.test_client(), USERNAMES["Admin"])
    html = client.get("/my-deadlines/?scope=all").get_data(as_text=True)
    assert "Deadlines of my grants" in html and "Report for S1 (1 Jan 2026 – 30 Jun 2026)" in html
    assert "1,000.00" in client.get("/grants/list/").get_data(as_text=True)


def test_a_french_program_officer_reads_their_start_page_sections_in_french(app, world):
    import datetime as dt

    from core import clock

    client = _client(app, "Program", "fr")
    with clock.frozen_at(dt.datetime(2026, 8, 20, 12, 0, tzinfo=dt.UTC)):
        html = client.get("/").get_data(as_text=True)
    assert "Périodes à clôturer" in html and "Vos échéances" in html
    assert "Clôturez S1 et envoyez le rapport" in html
    assert "terminée le 30 juin 2026 ; rapport attendu le 14 août 2026, 6 jours de retard" in html
    assert "Close S1 and send the report" not in html
