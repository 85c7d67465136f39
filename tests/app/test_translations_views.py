"""Menus, list pages, column labels and flash messages of the domains' views, in the reader's language."""

from __future__ import annotations

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language

LANGUAGES = ("es", "fr", "nl")

# Menu entries registered by modules that do not mark their labels yet (reported as still English),
# and Flask-AppBuilder's "List Groups", which FAB's own catalogues do not translate.
NOT_YET_MARKED = {
    "My deadlines",
    "My notifications",
    "All deadlines",
    "Reminder policies",
    "Reminder outbox",
    "Deadlines",
    "List Groups",
}


def _menu_labels(app) -> set[str]:
    labels = set()
    for item in app.appbuilder.menu.get_list():
        labels.add(str(item.label))
        for child in item.childs or []:
            if child.name != "-":
                labels.add(str(child.label))
    return labels


def test_every_menu_label_and_category_has_a_translation(app):
    """Fails when a view is added to the menu with a label no catalogue translates."""
    from app.i18n import translations_for

    labels = _menu_labels(app)
    assert {"Grants", "Budget lines", "Expenditures", "Indicator definitions", "Reports", "Compliance"} <= labels
    untranslated = sorted(
        label
        for label in labels - NOT_YET_MARKED
        if all(translations_for(app, language).gettext(label) == label for language in LANGUAGES)
    )
    assert not untranslated, untranslated


def test_a_french_reader_gets_the_grants_list_menu_and_columns_in_french(app, world):
    _set_language(app, "Admin", "fr")
    client = login(app.test_client(), USERNAMES["Admin"])
    response = client.get("/grants/list/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Subventions" in html  # the menu category and the page title
    assert "Date de fin" in html and "Devise (ISO 4217)" in html  # column labels (list and search)
    assert "Lignes budgétaires" in html and "Justificatifs" in html  # other menu entries
    assert "Start date" not in html and "End date" not in html


def test_list_pages_with_translated_labels_and_search_render_in_dutch(app, world):
    _set_language(app, "Admin", "nl")
    client = login(app.test_client(), USERNAMES["Admin"])
    pages = {
        "/expenditures/list/": "Uitgaven",
        "/budget-lines/list/": "Begrotingsregels",
        "/evidence/list/": "Bewijsstukken",
        "/requirements/list/": "Vereisten",
        "/periods/list/": "Rapportageperiodes",
    }
    for url, title in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert title in response.get_data(as_text=True), url


def test_a_flash_message_is_in_the_readers_language(app, world):
    _set_language(app, "Admin", "es")
    client = login(app.test_client(), USERNAMES["Admin"])
    response = client.post(
        f"/grants/{world.grant_b}/generate-periods",
        data={"length": "quarter", "due_days": "soon"},
        follow_redirects=True,
    )
    assert "introduzca un número entero de días" in response.get_data(as_text=True)
