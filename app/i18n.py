"""Languages: the catalogues, the reader's locale, and each user's own language.

- **Catalogues.** Our messages live in ``app/translations/<lang>/LC_MESSAGES/messages.po``
  (extracted with ``babel.cfg``). At start the app compiles each ``.po`` whose ``.mo``
  is missing or older into ``<instance>/translations`` (no manual step, nothing
  compiled in the repository). Flask-Babel reads Flask-AppBuilder's own catalogues
  first, then ours, so FAB's screens and ours are translated alike.
- **The reader's locale.** ``select_locale`` is Flask-Babel's locale selector for
  every page: ``?_l_=`` (FAB's API), the language kept in the session (set at sign-in
  from the user's preference, or by the navigation bar's language menu), else the
  browser's ``Accept-Language`` among the configured languages.
  ``core.formatting`` gets the same locale through its provider hook, so amounts and
  dates are written the reader's way, and the translations for code below the app.
- **Each user's language.** ``user_preference`` (``app/users.py``) holds it; the
  "My language" page and the navigation bar's menu both store it; reminders read it
  (``grants.deadlines.mail.set_language_lookup``).
- **Typed numbers.** Every Numeric column of every FAB form is a
  ``core.forms.LocaleDecimalField``: shown and read with the reader's decimal mark.
"""

from __future__ import annotations

import functools
import gettext as gettext_module
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.support import Translations
from flask import Flask, flash, g, has_request_context, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose
from flask_babel import gettext, lazy_gettext, refresh
from flask_login import user_logged_in

from core import formatting
from core.extensions import db

log = logging.getLogger(__name__)

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
MAPPING = TRANSLATIONS / "babel.cfg"  # which sources are read for marked strings
ROOT = TRANSLATIONS.parent.parent  # the repository: the mapping's paths start here
DOMAIN = "messages"
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None}  # pybabel extract -k lazy_gettext


def fab_translations() -> Path:
    import flask_appbuilder

    return Path(flask_appbuilder.__file__).resolve().parent / "translations"


# ---------------------------------------------------------------- catalogues


def catalogue_languages() -> list[str]:
    """The languages we ship a catalogue for ("es", "fr", "nl")."""
    return sorted(p.parent.parent.name for p in TRANSLATIONS.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def extract_messages() -> Catalog:
    """Every marked string of the mapped sources, as ``pybabel extract -F app/translations/babel.cfg`` finds it."""
    with MAPPING.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    template = Catalog(project="Grantkeeper", domain=DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def update_catalogues(languages: Iterable[str] | None = None) -> None:
    """``pybabel update``: bring each ``.po`` up to the marked strings (new ones untranslated, gone ones dropped)."""
    template = extract_messages()
    for language in languages or catalogue_languages():
        po = TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if po.exists():
            with po.open("rb") as handle:
                catalogue = read_po(handle, locale=language, domain=DOMAIN)
        else:
            po.parent.mkdir(parents=True, exist_ok=True)
            catalogue = Catalog(locale=language, domain=DOMAIN, project="Grantkeeper", fuzzy=False)
        catalogue.update(template, no_fuzzy_matching=True)
        catalogue.obsolete.clear()
        with po.open("wb") as handle:
            write_po(handle, catalogue, width=100, omit_header=False, ignore_obsolete=True)


def catalogue_problems(languages: Iterable[str] | None = None) -> list[str]:
    """What is wrong with the catalogues, one sentence each; empty when they are complete and current.

    A marked string missing from a catalogue, untranslated or fuzzy; a plural kept as a
    singular (or the reverse); a catalogue entry no source marks any more (the catalogue is
    out of date: run ``python -m app.i18n update``). Run by ``.ci/run`` and by the tests.
    """
    marked = {_message_key(m): m for m in extract_messages() if m.id}
    problems = []
    for language in languages or catalogue_languages():
        po = TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale=language, domain=DOMAIN)
        present = {_message_key(m): m for m in catalogue if m.id}
        for key, message in marked.items():
            found = present.get(key)
            if found is None:
                problems.append(f"{language}: not in the catalogue (run the update): {key!r}")
                continue
            if found.fuzzy:
                problems.append(f"{language}: fuzzy: {key!r}")
            strings = found.string if isinstance(found.string, tuple) else (found.string,)
            if not all(strings):
                problems.append(f"{language}: not translated: {key!r}")
            if isinstance(message.id, tuple) != isinstance(found.id, tuple):
                problems.append(f"{language}: singular/plural differs from the source: {key!r}")
        for key in sorted(present.keys() - marked.keys()):
            problems.append(f"{language}: no source marks it any more (run the update): {key!r}")
    return problems


def _message_key(message: Any) -> str:
    return str(message.id[0] if isinstance(message.id, tuple) else message.id)


def compile_catalogues(target: Path, source: Path = TRANSLATIONS) -> list[Path]:
    """Compile each ``.po`` under ``source`` whose ``.mo`` under ``target`` is missing or older.

    Written to a temporary file and renamed into place, so a second worker starting at
    the same moment reads either the old or the new catalogue. Returns what was compiled.
    """
    compiled = []
    for po in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po.parent.parent.name
        mo = target / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as handle:
            catalogue = read_po(handle, locale=language, domain=DOMAIN)
        temporary = mo.with_name(f".{mo.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            write_mo(handle, catalogue, use_fuzzy=False)
        os.replace(temporary, mo)
        compiled.append(mo)
    return compiled


@functools.lru_cache(maxsize=64)
def _load(directories: tuple[str, ...], language: str) -> gettext_module.NullTranslations:
    merged: Any = None
    for directory in directories:
        found = Translations.load(directory, [language], DOMAIN)
        if not isinstance(found, Translations):
            continue
        if merged is None:
            merged = found
        else:
            merged.merge(found)  # later directories (ours) win
    return merged if merged is not None else gettext_module.NullTranslations()


def translations_for(app: Flask, language: str) -> gettext_module.NullTranslations:
    """FAB's messages and ours in ``language``, for code outside a page (e-mails, the domains' texts)."""
    return _load(tuple(app.config["GK_TRANSLATION_DIRECTORIES"]), language)


# ---------------------------------------------------------------- the reader's locale


def languages(app: Flask | None = None) -> dict[str, Any]:
    from flask import current_app

    return dict((app or current_app).config.get("LANGUAGES") or {"en": {}})


def browser_language(header: Iterable[tuple[str, float]] | Any, offered: Iterable[str]) -> str | None:
    """The best of ``offered`` for an Accept-Language header ("fr-HT, fr;q=0.9" gives "fr")."""
    offered = list(offered)
    best = None
    best_quality = 0.0
    for tag, quality in header:
        base = str(tag).replace("_", "-").split("-")[0].lower()
        if base in offered and quality > best_quality:
            best, best_quality = base, quality
    return best


def select_locale() -> str | None:
    """The language of this page: ``?_l_=``, the session's, else the browser's; None: the default."""
    if not has_request_context():
        return None
    offered = languages()
    asked = request.args.get("_l_")
    if asked in offered:
        return asked
    kept = session.get("locale")
    if kept in offered:
        return str(kept)
    return browser_language(request.accept_languages, offered)


def _current_language() -> str | None:
    if not has_request_context():
        return None
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale) if locale is not None else None


def _signed_in_user() -> Any:
    user = getattr(g, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def _remember(language: str) -> None:
    """Keep ``language`` for the signed-in user (their preference) and for this session."""
    from app.users import set_language

    session["locale"] = language
    user = _signed_in_user()
    if user is not None:
        set_language(db.session, user.id, language, languages())
        db.session.commit()
    refresh()


def _on_sign_in(sender: Any, user: Any, **_extra: Any) -> None:
    """At sign-in the user's own language replaces whatever the session held."""
    from app.users import language_of

    try:
        chosen = language_of(db.session, user.id)
    except Exception:  # noqa: BLE001 - before migrations ran, signing in still works
        db.session.rollback()
        chosen = None
    if chosen and chosen in languages():
        session["locale"] = chosen
        refresh()


# ---------------------------------------------------------------- "My language"


class MyLanguageView(BaseView):
    """Choose the language of your pages and of the reminders you receive."""

    route_base = "/my-language"
    default_view = "page"  # open to every signed-in user, whatever their role

    @expose("/", methods=["GET", "POST"])
    def page(self) -> Any:
        user = _signed_in_user()
        if user is None:
            return redirect(self.appbuilder.get_url_for_login)
        offered = languages()
        if request.method == "POST":
            chosen = request.form.get("language", "")
            if chosen not in offered:
                flash(gettext("Choose one of the languages listed."), "danger")
            else:
                _remember(chosen)
                flash(gettext("Your language is saved."), "success")
                return redirect(url_for("MyLanguageView.page"))
        from app.users import language_of

        return self.render_template(
            "my_language.html",
            languages=offered,
            chosen=language_of(db.session, user.id),
            current=_current_language() or "en",
            title=lazy_gettext("My language"),
        )


def _persisting_locale_view(view: Any) -> Any:
    """FAB's /lang/<locale> (the navigation bar's menu) also stores the signed-in user's choice."""

    @functools.wraps(view)
    def _switch(locale: str, **kwargs: Any) -> Any:
        response = view(locale=locale, **kwargs)
        if locale in languages():
            _remember(locale)
        return response

    return _switch


# ---------------------------------------------------------------- wiring


def configure(app: Flask) -> None:
    """Before AppBuilder: compile the catalogues and point Flask-Babel at them."""
    from core import forms

    compiled_dir = Path(app.instance_path) / "translations"
    try:
        compile_catalogues(compiled_dir)
    except OSError as exc:  # a read-only instance: pages stay in English rather than failing
        log.warning("could not compile the message catalogues into %s: %s", compiled_dir, exc)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_dir)
    app.config["GK_TRANSLATION_DIRECTORIES"] = [str(fab_translations()), str(compiled_dir)]
    _DEFAULT_DIRECTORIES[:] = app.config["GK_TRANSLATION_DIRECTORIES"]  # for threads without an app context
    _numbers_the_readers_way(forms.LocaleDecimalField)


def _numbers_the_readers_way(field: type) -> None:
    from flask_appbuilder.forms import FieldConverter

    FieldConverter.conversion_table = tuple(
        (check, field if check == "is_numeric" else kind, widget)
        for check, kind, widget in FieldConverter.conversion_table
    )


def install(app: Flask, appbuilder: Any) -> None:
    """After AppBuilder: our locale selector, core's hooks, the persisting switch, the "My language" page."""
    from flask_babel import get_babel

    get_babel(app).locale_selector = select_locale
    formatting.set_locale_provider(_current_language)
    formatting.set_translations_provider(_translations_of_current_app)
    endpoint = "LocaleView.index"
    if endpoint in app.view_functions:
        app.view_functions[endpoint] = _persisting_locale_view(app.view_functions[endpoint])
    appbuilder.add_view_no_menu(MyLanguageView)
    user_logged_in.connect(_on_sign_in, app)
    from grants.deadlines import mail

    mail.set_language_lookup(_languages_of)


def _translations_of_current_app(language: str) -> gettext_module.NullTranslations:
    from flask import current_app, has_app_context

    if not has_app_context():
        return _load(tuple(_DEFAULT_DIRECTORIES), language)
    return translations_for(current_app, language)  # type: ignore[arg-type]


_DEFAULT_DIRECTORIES: list[str] = []


def _languages_of(session_: Any, user_ids: Iterable[int]) -> dict[int, str]:
    from app.users import languages_of

    return languages_of(session_, user_ids)


__all__ = [
    "MyLanguageView",
    "browser_language",
    "catalogue_languages",
    "compile_catalogues",
    "configure",
    "install",
    "select_locale",
    "translations_for",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m app.i18n check`` (exit 1 and say what is wrong) or ``python -m app.i18n update``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args == ["update"]:
        update_catalogues()
        return 0
    if args == ["check"]:
        problems = catalogue_problems()
        for problem in problems:
            print(problem)
        print(f"catalogues: {len(problems)} problem(s)" if problems else "catalogues: complete and current")
        return 1 if problems else 0
    print("usage: python -m app.i18n check | update")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
