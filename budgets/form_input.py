"""Refused forms come back as the user typed them, each message next to its field (FAB add and edit forms)."""

from __future__ import annotations

from typing import Any

from flask import flash, request
from flask_appbuilder.urltools import get_filter_args, get_order_args, get_page_args, get_page_size_args

from core.errors import DomainValidationError
from core.extensions import db


def attach_errors(form: Any, exc: DomainValidationError, labels: dict[str, str] | None = None) -> None:
    """Each message on its form field; a message about a field the form does not show is flashed, named."""
    for name, messages in exc.errors.items():
        field = form._fields.get(name) if hasattr(form, "_fields") else None
        if field is not None:
            field.errors = [*list(field.errors or []), *messages]
        else:
            label = (labels or {}).get(name, name.replace("_", " ") if name != "_" else "")
            for message in messages:
                flash(f"{label}: {message}" if label else message, "danger")


class KeepsTypedInput:
    """For ModelViews: a save refused by the domain re-renders the form with what was typed.

    FAB's own add and edit flash the refusal and redirect to an empty form; here the
    rules' messages (keyed by field, from ``DomainValidationError``) are shown under
    their fields and every value stays in place. Nothing is saved.
    """

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
        except DomainValidationError as exc:
            db.session.rollback()
            attach_errors(form, exc, view.label_columns)
            flash("Not saved: correct the fields marked below.", "danger")
            return view._get_add_widget(form=form, exclude_cols=exclude_cols)
        try:
            view.datamodel.add(item)
        except Exception:
            flash(view.database_error_message, "danger")
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
            from flask import abort

            abort(404)
        pk = view.datamodel.get_pk_value(item)
        form = view.edit_form.refresh(request.form)
        view._fill_form_exclude_cols(exclude_cols, form)
        form._id = pk
        refused = None
        if form.validate():
            view.process_form(form, False)
            try:
                form.populate_obj(item)
                view.pre_update(item)
            except DomainValidationError as exc:
                db.session.rollback()
                refused = exc
            else:
                try:
                    view.datamodel.edit(item)
                except Exception:
                    flash(view.database_error_message, "danger")
                else:
                    view.post_update(item)
                    flash(view.edit_row_message, "success")
                    return None
        if refused is not None:
            attach_errors(form, refused, view.label_columns)
            flash("Not saved: correct the fields marked below.", "danger")
        widgets = view._get_edit_widget(form=form, exclude_cols=exclude_cols)
        item = view.datamodel.get(pk, view._base_filters)
        return view._get_related_views_widgets(
            item,
            filters={},
            orders=get_order_args(),
            pages=get_page_args(),
            page_sizes=get_page_size_args(),
            widgets=widgets,
        )
