"""Refused forms come back as the user typed them, each message next to its field.

One mechanism for every Flask-AppBuilder add and edit form (``ValidatedViewMixin``
mixes ``KeepsTypedInput`` in). FAB's own ``_add``/``_edit`` flash the refusal and
redirect to an empty form; here a ``DomainValidationError`` raised by ``pre_add`` /
``pre_update`` (a view's save operation or the rules at flush) re-renders the form
with every typed value in place and each message under its field. Nothing is saved.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, request
from flask_appbuilder.urltools import get_filter_args, get_order_args, get_page_args, get_page_size_args

from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_
from core.formatting import gettext as _

log = logging.getLogger(__name__)

NOT_SAVED = N_("Not saved: correct the fields marked below.")  # translated when flashed


def attach_errors(form: Any, exc: DomainValidationError, labels: dict[str, str] | None = None) -> None:
    """Each message on its form field; a message about a field the form does not show is flashed, named in words."""
    fields = getattr(form, "_fields", {}) or {}
    for name, messages in exc.errors.items():
        field = fields.get(name)
        if field is None and name.endswith("_id"):
            field = fields.get(name[:-3])  # "line_id" is shown as the "line" drop-down
        if field is not None:
            # Shown by app/templates/appbuilder/general/lib.html through the ``field_error`` filter: escaped, never %-formatted.
            field.errors = [*list(field.errors or []), *messages]
            continue
        label = (labels or {}).get(name) or (name.replace("_", " ").capitalize() if name != "_" else "")
        for message in messages:
            flash(f"{label}: {message}" if label else message, "danger")


class KeepsTypedInput:
    """For ModelViews: a save refused by the domain re-renders the form with what was typed."""

    def _refused(self, form: Any, exc: DomainValidationError) -> None:
        db.session.rollback()
        attach_errors(form, exc, getattr(self, "label_columns", None))
        flash(_(NOT_SAVED), "danger")

    def _not_saved(self, exc: Exception) -> None:
        """Anything else that stops a save: rolled back, said in words (never the database's own)."""
        db.session.rollback()
        log.warning("form save failed: %s", type(exc).__name__)
        flash(
            str(getattr(self, "database_error_message", None) or _("Not saved: the record could not be saved.")),
            "danger",
        )

    def _add(self) -> Any:
        if request.method != "POST":
            return super()._add()  # type: ignore[misc]
        view: Any = self
        get_filter_args(view._filters, disallow_if_not_in_search=False)
        exclude_cols = view._filters.get_relation_cols()
        form = view.add_form.refresh()
        view._fill_form_exclude_cols(exclude_cols, form)
        if not form.validate():
            return view._get_add_widget(form=form, exclude_cols=exclude_cols)
        view.process_form(form, True)
        item = view.datamodel.obj()
        try:
            form.populate_obj(item)
            view.pre_add(item)
            view.datamodel.add(item)
        except DomainValidationError as exc:
            self._refused(form, exc)
            return view._get_add_widget(form=form, exclude_cols=exclude_cols)
        except Exception as exc:  # noqa: BLE001 - any other failure: the form stays as typed
            self._not_saved(exc)
            return view._get_add_widget(form=form, exclude_cols=exclude_cols)
        view.post_add(item)
        flash(view.add_row_message, "success")
        return None

    def _edit(self, pk: Any) -> Any:
        if request.method != "POST":
            return super()._edit(pk)  # type: ignore[misc]
        view: Any = self
        get_filter_args(view._filters, disallow_if_not_in_search=False)
        exclude_cols = view._filters.get_relation_cols()
        item = view.datamodel.get(pk, view._base_filters)
        if not item:
            abort(404)
        pk = view.datamodel.get_pk_value(item)
        form = view.edit_form.refresh(request.form)
        view._fill_form_exclude_cols(exclude_cols, form)
        form._id = pk
        if form.validate():
            view.process_form(form, False)
            try:
                form.populate_obj(item)
                view.pre_update(item)
                view.datamodel.edit(item)
            except DomainValidationError as exc:
                self._refused(form, exc)
            except Exception as exc:  # noqa: BLE001 - any other failure: the form stays as typed
                self._not_saved(exc)
            else:
                view.post_update(item)
                flash(view.edit_row_message, "success")
                return None
        widgets = view._get_edit_widget(form=form, exclude_cols=exclude_cols)
        item = view.datamodel.get(pk, view._base_filters)
        if item is None:
            abort(404)
        return view._get_related_views_widgets(
            item,
            filters={},
            orders=get_order_args(),
            pages=get_page_args(),
            page_sizes=get_page_size_args(),
            widgets=widgets,
        )
