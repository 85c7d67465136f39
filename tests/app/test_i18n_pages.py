"""The app's own pages in the reader's language: the start page, the grant page's frame, jobs, the audit trail."""

from __future__ import annotations

import html as html_module
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language


def _page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return html_module.unescape(response.get_data(as_text=True))


def test_a_french_user_reads_the_start_page_in_french(app, world):
    _set_language(app, "Admin", "fr")
    page = _page(login(app.test_client(), USERNAMES["Admin"]), "/")
    assert "Mes subventions" in page and "Rapports à rendre" in page
    assert "USD 1\u202f000,00" in page and "31 déc. 2026" in page
    assert 'data-gk-scrolls="%(table)s (défile horizontalement)"' in page  # words the page's script uses
    assert "My grants" not in page


def test_a_french_user_reads_the_grant_pages_frame_in_french(app, world):
    _set_language(app, "Admin", "fr")
    page = _page(login(app.test_client(), USERNAMES["Admin"]), f"/grants/show/{world.grant_a}")
    assert "Générer les périodes de rapport à partir d’une règle" in page
    assert "jours après la fin de la période" in page
    assert ">Semestre</option>" in page and ">Trimestre</option>" in page  # period lengths in words
    assert "1 janv. 2026" in page and "31 déc. 2026" in page  # the grant's dates
    assert ">Active</span>" in page  # its status, a label the catalogues translate
    assert "Generate reporting periods" not in page and ">semester</option>" not in page


def test_the_same_grant_page_stays_in_english_for_an_english_reader(app, world):
    _set_language(app, "Admin", "en")
    page = _page(login(app.test_client(), USERNAMES["Admin"]), f"/grants/show/{world.grant_a}")
    assert "Generate reporting periods from a rule" in page and ">Semester</option>" in page


@pytest.fixture
def waiting_kind() -> Iterator[None]:
    from core.jobs import JOBS, JobKind

    JOBS.add("test_waiting", JobKind("Reading lines", lambda session, params, progress: "done", unit="rows"))
    yield
    JOBS.remove("test_waiting")


def test_a_dutch_user_reads_the_jobs_and_their_states_in_dutch(app, world, waiting_kind):
    from core.extensions import db
    from core.jobs import cancel, enqueue

    _set_language(app, "Finance", "nl")
    with app.app_context():
        finance = app.appbuilder.sm.find_user(username=USERNAMES["Finance"])
        asker = SimpleNamespace(id=finance.id, username=finance.username)
        waiting = enqueue(db.session, "test_waiting", world.grant_a, {}, asker).id
        cancelled = enqueue(db.session, "test_waiting", world.grant_b, {}, asker).id
        assert cancel(db.session, cancelled, asker.username)
    client = login(app.test_client(), USERNAMES["Finance"])

    listing = _page(client, "/jobs/")
    assert "Taken" in listing and "Aangevraagd door" in listing
    assert "Wacht op start" in listing and "Mislukt" in listing  # the two jobs' states
    assert f"Geannuleerd door {asker.username} voordat hij begon; er is niets gedaan." in listing  # stored in English
    assert "Waiting to start" not in listing and "Cancelled by" not in listing

    one = _page(client, f"/jobs/{waiting}")
    assert "Toestand:" in one and "Wacht tot de taakverwerker hem start" in one and "Deze taak annuleren" in one
    status = client.get(f"/jobs/{waiting}/status.json").get_json()
    assert status["state_label"] == "Wacht op start" and status["state"] == "queued"

    with app.app_context():
        db.session.execute(db.text("DELETE FROM jobs"))
        db.session.commit()


def test_a_spanish_auditor_reads_the_audit_trail_in_spanish(app, world):
    _set_language(app, "Admin", "es")
    page = _page(login(app.test_client(), USERNAMES["Admin"]), "/audit/list/")
    assert "Registro de auditoría" in page and "Tipo de registro" in page and "Origen" in page
    assert "subvención" in page and "agregado" in page  # a grant was added: kind and action in words
    assert "Kind of record" not in page


def test_fieldset_titles_and_help_texts_others_give_render_in_the_readers_language(app):
    from flask import render_template_string

    from core.formatting import lazy_gettext

    page = (
        '{% import "appbuilder/general/lib.html" as lib %}'
        "{% call lib.accordion_tag(1, lazy, true) %}{% endcall %}"
        "{% call lib.accordion_tag(2, plain, false) %}{% endcall %}"
        "<p>{{ help }}</p>"
    )
    values = {"lazy": lazy_gettext("Reporting periods"), "plain": "Budget lines", "help": lazy_gettext("Evidence")}
    with app.test_request_context("/?_l_=fr"):
        french = render_template_string(page, **values)
    with app.test_request_context("/?_l_=en"):
        english = render_template_string(page, **values)
    assert "Périodes de rapport" in french and "Lignes budgétaires" in french and "<p>Justificatifs</p>" in french
    assert "Reporting periods" in english and "Budget lines" in english and "<p>Evidence</p>" in english
