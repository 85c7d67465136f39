"""Languages: the catalogues are complete and current, each user reads their own language, reminders too."""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from babel.messages.pofile import read_po

from tests.conftest import USERNAMES, login
from tests.conftest import set_user_language as _set_language

LANGUAGES = ("es", "fr", "nl")
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _catalogue(language: str):
    from app.i18n import TRANSLATIONS

    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


# ---------------------------------------------------------------- the catalogues


def test_every_marked_string_is_in_every_catalogue_translated_and_not_fuzzy():
    """Fails when a string is marked but the catalogues were not updated, or a translation is missing."""
    from app.i18n import catalogue_languages, catalogue_problems, extract_messages

    assert set(LANGUAGES) <= set(catalogue_languages())
    assert len([m for m in extract_messages() if m.id]) > 100  # the mapping really reads the sources
    problems = catalogue_problems(LANGUAGES)
    assert not problems, "\n".join(problems)


def test_the_check_names_a_missing_an_untranslated_and_an_obsolete_message(tmp_path, monkeypatch):
    import app.i18n as i18n

    for language in LANGUAGES:
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_bytes(
            (i18n.TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").read_bytes()
        )
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)
    assert i18n.catalogue_problems(LANGUAGES) == []
    assert i18n.main(["check"]) == 0

    french = _catalogue_at(tmp_path, "fr")
    french.get("Evidence attached and verified").string = ""
    french.add("A message nobody marks", "Un message")
    french.delete("Page size")
    _write_catalogue_at(tmp_path, "fr", french)

    problems = i18n.catalogue_problems(LANGUAGES)
    assert "fr: not translated: 'Evidence attached and verified'" in problems
    assert "fr: not in the catalogue (run the update): 'Page size'" in problems
    assert "fr: no source marks it any more (run the update): 'A message nobody marks'" in problems
    assert len(problems) == 3
    assert i18n.main(["check"]) == 1


def _catalogue_at(root, language: str):
    with (root / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def _write_catalogue_at(root, language: str, catalogue) -> None:
    from babel.messages.pofile import write_po

    with (root / language / "LC_MESSAGES" / "messages.po").open("wb") as handle:
        write_po(handle, catalogue)


def test_translations_keep_every_placeholder_of_their_message():
    problems = []
    for language in LANGUAGES:
        for message in _catalogue(language):
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            wanted = set(PLACEHOLDER.findall(ids[-1])) | set(PLACEHOLDER.findall(ids[0]))
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in strings:
                if text and set(PLACEHOLDER.findall(text)) != wanted:
                    problems.append(f"{language}: {ids[0]!r} -> {text!r}")
    assert not problems, "\n".join(problems)


def test_catalogues_are_compiled_at_start_when_missing_or_older(tmp_path):
    from app.i18n import TRANSLATIONS, compile_catalogues

    source = tmp_path / "source"
    for language in LANGUAGES:
        folder = source / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_bytes((TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").read_bytes())
    target = tmp_path / "compiled"
    assert len(compile_catalogues(target, source)) == 3
    assert compile_catalogues(target, source) == []  # up to date: nothing to do
    po = source / "fr" / "LC_MESSAGES" / "messages.po"
    later = (target / "fr" / "LC_MESSAGES" / "messages.mo").stat().st_mtime + 10
    os.utime(po, (later, later))
    assert compile_catalogues(target, source) == [target / "fr" / "LC_MESSAGES" / "messages.mo"]


def test_the_app_serves_flask_appbuilder_screens_and_ours_in_french(app):
    from app.i18n import translations_for

    french = translations_for(app, "fr")
    assert french.gettext("Evidence attached and verified") == "Justificatifs joints et vérifiés"  # ours
    assert french.gettext("Page size") == "Taille de page"  # ours over FAB's
    assert french.gettext("Password") == "Mot de passe"  # FAB's own screens (the sign-in page)


# ---------------------------------------------------------------- each user's language


def test_a_french_user_reads_the_start_page_in_french_with_french_amounts_and_dates(app, world):
    _set_language(app, "Admin", "fr")
    client = login(app.test_client(), USERNAMES["Admin"])
    html = client.get("/").get_data(as_text=True)
    assert 'lang="fr"' in html
    assert "Mes subventions" in html and "Aller au contenu principal" in html
    assert "USD 1\u202f000,00" in html  # Grant A's amount
    assert "31 déc. 2026" in html  # its end date
    assert "Langue :" in html  # the navigation bar's language menu


def test_a_user_without_a_language_gets_their_browsers(app, world):
    client = app.test_client()
    login(client, USERNAMES["Program"])
    html = client.get("/", headers={"Accept-Language": "nl-SR, nl;q=0.9, en;q=0.5"}).get_data(as_text=True)
    assert 'lang="nl"' in html and "Mijn subsidies" in html
    html = client.get("/", headers={"Accept-Language": "de, ht;q=0.8"}).get_data(as_text=True)
    assert 'lang="en"' in html and "My grants" in html  # nothing offered matches: English


def test_switching_language_in_the_navigation_bar_is_kept_as_the_users_language(app, world):
    from app.users import language_of
    from core.extensions import db

    client = login(app.test_client(), USERNAMES["Finance"])
    response = client.get("/lang/es", headers={"Referer": "/"})
    assert response.status_code == 302
    assert "Mis subvenciones" in client.get("/").get_data(as_text=True)
    with app.app_context():
        assert language_of(db.session, world.users["Finance"]) == "es"
    # A new session (another browser) starts in the chosen language, whatever the browser says.
    other = login(app.test_client(), USERNAMES["Finance"])
    html = other.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Mis subvenciones" in html


def test_my_language_page_saves_the_choice_and_refuses_an_unknown_one(app, world):
    from app.users import language_of
    from core.extensions import db

    client = login(app.test_client(), USERNAMES["Donor"])
    page = client.get("/my-language/").get_data(as_text=True)
    assert "My language" in page and "Nederlands" in page
    refused = client.post("/my-language/", data={"language": "xx"}, follow_redirects=True)
    assert "Choose one of the languages listed." in refused.get_data(as_text=True)
    saved = client.post("/my-language/", data={"language": "nl"}, follow_redirects=True)
    assert "Uw taal is opgeslagen." in saved.get_data(as_text=True)
    with app.app_context():
        assert language_of(db.session, world.users["Donor"]) == "nl"


def test_the_period_page_reads_in_dutch(app, world):
    _set_language(app, "Admin", "nl")
    client = login(app.test_client(), USERNAMES["Admin"])
    html = client.get(f"/closing/{world.period_a1}").get_data(as_text=True)
    assert "S1 afsluiten" in html
    assert "Bewijsstukken bijgevoegd en geverifieerd" in html
    assert "1 jan 2026" in html  # the period's first day
    assert "Nakijken" in html or "Ontbreekt" in html or "Klaar" in html  # checklist levels in words


# ---------------------------------------------------------------- numbers typed the reader's way


@pytest.mark.parametrize(
    ("language", "typed", "expected"),
    [
        ("en", "1,234.50", Decimal("1234.50")),
        ("nl", "1.234,50", Decimal("1234.50")),
        ("es", "1.234,50", Decimal("1234.50")),
        ("fr", "1\u202f234,50", Decimal("1234.50")),
        ("fr", "1 234,5", Decimal("1234.5")),
    ],
)
def test_amount_fields_read_the_readers_decimal_mark(language, typed, expected):
    from wtforms import Form

    from core import formatting
    from core.forms import LocaleDecimalField

    class AmountForm(Form):
        amount = LocaleDecimalField("Amount")

    with formatting.in_locale(language):
        form = AmountForm(formdata=_FormData(amount=typed))
        assert form.validate(), form.errors
        assert form.amount.data == expected
        shown = AmountForm(data={"amount": expected}).amount._value()
        assert AmountForm(formdata=_FormData(amount=shown)).amount.data == expected


def test_an_amount_with_the_other_decimal_mark_is_refused_in_words():
    from wtforms import Form

    from core import formatting
    from core.forms import LocaleDecimalField

    class AmountForm(Form):
        amount = LocaleDecimalField("Amount")

    with formatting.in_locale("nl"):
        form = AmountForm(formdata=_FormData(amount="1,234.50"))
        assert not form.validate()
        assert "decimaalteken" in " ".join(form.amount.errors)  # told in Dutch which mark to use


def test_fab_forms_get_the_locale_aware_number_field(app):
    from flask_appbuilder.forms import FieldConverter

    from core.forms import LocaleDecimalField

    kinds = {check: kind for check, kind, _widget in FieldConverter.conversion_table}
    assert kinds["is_numeric"] is LocaleDecimalField


class _FormData(dict):
    def getlist(self, key):
        return [self[key]] if key in self else []


# ---------------------------------------------------------------- reminders in the recipient's language


def _row(due: date):
    return SimpleNamespace(
        id=7, reference="GA-1", title="Rapport S1", grant_title="Grant A", due_date=due, owner_id=None
    )


def test_a_reminder_is_written_in_its_recipients_language():
    from grants.deadlines.mail import render_reminder

    person = SimpleNamespace(first_name="Marie")
    common = dict(
        today=date(2026, 11, 24),
        recipient=person,
        owner=None,
        escalation=False,
        reason="",
        missing=[],
        base_url="https://gk.example.org",
    )
    subject, body = render_reminder(row=_row(date(2026, 12, 1)), language="fr", **common)
    assert subject == "[Grantkeeper] GA-1 — Rapport S1 à rendre dans 7 jours (1 déc. 2026)"
    assert "Bonjour Marie," in body and "mardi 1 décembre 2026" in body
    subject, body = render_reminder(row=_row(date(2026, 12, 1)), language="nl", **common)
    assert subject == "[Grantkeeper] GA-1 — Rapport S1 uiterlijk over 7 dagen (1 dec 2026)"
    assert "Beste Marie," in body and "dinsdag 1 december 2026" in body
    subject, _body = render_reminder(row=_row(date(2026, 12, 1)), language=None, **common)
    assert subject == "[Grantkeeper] GA-1 — Rapport S1 due in 7 days (01 Dec 2026)"
