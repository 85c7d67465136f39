"""Plain language on every page, installed once by the app factory.

- ``core.formatting``'s functions become Jinja filters (``amount``, ``day``,
  ``moment``, ``pct``, ``label``, ``number``, ``show``, ...).
- Every FAB list and show column without a formatter of its own gets
  ``core.formatting.show``: no ``None``, ``3.0000``, microseconds, enum values
  or ``[]`` on any generated page.
- FAB's "Added Row" / "Changed Row" / "Deleted Row" become sentences naming the record.
- 403 and 404 answer a page inside the app's layout, with its navigation (JSON under /api/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import flask_babel
from flask import Flask, current_app, jsonify, render_template, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.baseviews import BaseCRUDView
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from core import formatting, jobs
from grants.landing import record_kind

ERROR_PAGES = {403: "errors/403.html", 404: "errors/404.html"}
ERROR_MESSAGES = {
    403: formatting.lazy_gettext("You do not have access to this."),
    404: formatting.lazy_gettext("Not found."),
}


def install(app: Flask, appbuilder: AppBuilder) -> None:
    app.jinja_env.filters.update(formatting.FILTERS)
    app.jinja_env.filters["field_error"] = field_error
    app.jinja_env.filters["translated"] = translated
    app.jinja_env.filters["stored"] = jobs.shown  # a sentence stored in English, in the reader's language
    for code in ERROR_PAGES:
        app.register_error_handler(code, error_page)
    for view in appbuilder.baseviews:
        if isinstance(view, BaseCRUDView):
            plain_columns(view)
            plain_messages(view)


def field_error(message: Any) -> str:
    """A form field's error in the reader's language, as plain text the page escapes.

    FAB's templates write ``{{ _(error) }}``: Jinja's new-style ``_`` marks its result
    safe, so a refusal quoting what the user typed ("'<b>' is not a currency code")
    would reach the page as markup. Flask-Babel's ``gettext`` returns a plain string
    and fills no placeholders ("12.5% is above the cap" stays as written).
    """
    return str(flask_babel.gettext(str(message)))


def translated(text: Any) -> Any:
    """A title others gave as a lazy text (already translated when shown) or as a plain string
    (looked up in the catalogues): fieldset titles, panel titles. Empty stays empty."""
    if text is None or text == "":
        return ""
    if isinstance(text, str) and not isinstance(text, Markup):
        return str(flask_babel.gettext(text)) if text else text
    return text


def plain_columns(view: BaseCRUDView) -> None:
    """Every list and show column reads in plain language unless the view formats it itself."""
    own = dict(view.formatters_columns or {})
    columns = list(view.list_columns or []) + list(view.show_columns or [])
    for _title, fieldset in getattr(view, "show_fieldsets", None) or []:
        columns.extend(fieldset.get("fields", []))
    model = getattr(getattr(view, "datamodel", None), "obj", None)
    table = getattr(model, "__table__", None)
    defaults = {}
    for column in columns:
        if column in own:
            continue
        found = table.c.get(column) if table is not None else None
        # FAB hands enum columns over as their stored value ("period_average"): those get a label.
        enum_class = getattr(found.type, "enum_class", None) if found is not None else None
        defaults[column] = _enum_label(enum_class) if enum_class is not None else formatting.show
    view.formatters_columns = {**defaults, **own}


def _enum_label(enum_class: Any) -> Any:
    """A formatter for one enum column: the member's own label when it has one, else its value in words."""

    def formatter(value: Any) -> str:
        try:
            return formatting.label(enum_class(value))
        except ValueError:
            return formatting.label(value)

    return formatter


def plain_messages(view: BaseCRUDView) -> None:
    model = getattr(getattr(view, "datamodel", None), "obj", None)
    table = getattr(model, "__tablename__", None)
    if not table:
        return
    # Translated when flashed; the kind of record too when the catalogues have it ("budget line").
    kind = formatting.lazy_gettext(record_kind(table))
    view.add_row_message = formatting.lazy_gettext("The new %(kind)s was saved.", kind=kind)
    view.edit_row_message = formatting.lazy_gettext("Your changes to the %(kind)s were saved.", kind=kind)
    view.delete_row_message = formatting.lazy_gettext("The %(kind)s was deleted.", kind=kind)


def _back() -> str | None:
    """The page the user came from, when it is one of ours."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    if parts.path == request.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_page(error: HTTPException) -> Any:
    code = error.code or 500
    if request.path.startswith("/api/"):
        return jsonify(message=str(ERROR_MESSAGES.get(code, error.name))), code
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    html = render_template(
        ERROR_PAGES[code],
        base_template=appbuilder.base_template,
        appbuilder=appbuilder,
        back=_back(),
        title=str(ERROR_MESSAGES.get(code, error.name)),
    )
    return html, code
