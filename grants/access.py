"""Row-level access for the web layer: one filter, one view mixin, one API mixin.

The rule itself lives in ``grants.services.visible_grant_ids_query``. This
module applies it on every path Flask-AppBuilder offers: list/show/edit/delete
(base_filters), the choice of a parent record in forms and in the API
(FAB.md trap 7), and file downloads (trap 6, see ``guard_download``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, has_request_context, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_appbuilder import expose
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import DomainValidationError
from core.extensions import db
from core.records import validate_record
from grants.services import can_see_grant, visible_grant_ids_query


def current_user_or_none() -> Any:
    user = getattr(g, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


class FilterVisibleGrants(BaseFilter):
    """Keeps rows whose grant column points at a grant the signed-in user may see."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        ids = visible_grant_ids()
        if ids is None:
            return query
        return query.filter(getattr(self.model, self.column_name).in_(ids))


def visible_grant_ids() -> list[int] | None:
    """The signed-in user's grant ids (None: all grants), looked up once per request.

    A literal id list lets SQLite use the grant index instead of checking the
    membership subquery for every row of a large list.
    """
    if not has_request_context():
        visible = visible_grant_ids_query(current_user_or_none())
        return None if visible is None else list(db.session.scalars(visible))
    if "visible_grant_ids" not in g:
        visible = visible_grant_ids_query(current_user_or_none())
        g.visible_grant_ids = None if visible is None else list(db.session.scalars(visible))
    return g.visible_grant_ids


class FilterUsersOfVisibleGrants(BaseFilter):
    """Users who are members of a grant the signed-in user may see (for user drop-downs)."""

    name = "Members of my grants"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        from grants.models import GrantMembership

        ids = visible_grant_ids()
        if ids is None:
            return query
        members = select(GrantMembership.user_id).where(GrantMembership.grant_id.in_(ids))
        return query.filter(getattr(self.model, self.column_name).in_(members))


def visible_grants_filter(column: str = "grant_id") -> list[list[Any]]:
    """base_filters / *_query_rel_fields entry limiting ``column`` to visible grants."""
    return [[column, FilterVisibleGrants, lambda: None]]


def grant_id_of(item: Any) -> int | None:
    """The grant a record belongs to (the record itself for a Grant)."""
    from grants.models import Grant

    if isinstance(item, Grant):
        return item.id
    grant_id = getattr(item, "grant_id", None)
    if grant_id is None and getattr(item, "grant", None) is not None:
        grant_id = item.grant.id
    return grant_id


def ensure_parent_visible(item: Any) -> None:
    """Nobody creates or moves a record under a grant they cannot see."""
    from grants.models import Grant

    if isinstance(item, Grant):
        return
    user = current_user_or_none()
    grant_id = grant_id_of(item)
    if grant_id is None or not can_see_grant(db.session, user, grant_id):
        raise DomainValidationError({"grant": ["is not a grant you have access to"]})


def guard_download(item: Any) -> None:
    """404 unless the signed-in user may see the grant a file belongs to."""
    if item is None or not can_see_grant(db.session, current_user_or_none(), grant_id_of(item)):
        abort(404)


def _scope_to_visible_grants(cls: Any, *choice_attributes: str) -> None:
    """Rows limited to visible grants; the parent-grant choices too, next to any the class declares."""
    cls.base_filters = visible_grants_filter(cls.grant_column)
    if cls.parent_relation:
        rel_filter = {cls.parent_relation: visible_grants_filter("id")}
        for attribute in choice_attributes:
            setattr(cls, attribute, {**(cls.__dict__.get(attribute) or {}), **rel_filter})


def _NOTHING(**_kwargs: Any) -> str:
    return ""


class ValidatedViewMixin:
    """For ModelViews: domain rules checked before saving; FAB flashes the message, nothing is saved.

    FAB's stock ``/download/<filename>`` serves any file of UPLOAD_FOLDER to
    anyone with ``can_download`` (FAB.md trap 6); it is switched off here, and
    files are served only by views that check the record they belong to.
    """

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Any:
        abort(404)

    def record_action(self, pk: Any, action: Any, done: str) -> Any:
        """Run one domain action on a record the user can see, commit, and go back to its page.

        404 for a record outside the user's grants; a refused action is flashed
        (naming the field) and rolled back, so nothing is half-done.
        """
        record = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if record is None:
            abort(404)
        try:
            action(record)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(done, "success")
        return redirect(url_for(f"{type(self).__name__}.show", pk=pk))

    def related_view_allowed(self, view: Any) -> bool:
        """FAB renders related views whatever the user's permissions; we don't."""
        return bool(self.appbuilder.sm.has_access("can_list", view.class_permission_name))

    def _get_related_views_widgets(
        self, item: Any, orders: Any = None, pages: Any = None, page_sizes: Any = None, widgets: Any = None, **args: Any
    ) -> Any:
        widgets = super()._get_related_views_widgets(  # type: ignore[misc]
            item, orders=orders, pages=pages, page_sizes=page_sizes, widgets=widgets, **args
        )
        # Same positions as self._related_views (templates index by position); hidden ones render nothing.
        widgets["related_views"] = [
            widget if self.related_view_allowed(view) else _NOTHING
            for view, widget in zip(self._related_views, widgets["related_views"])
        ]
        return widgets

    def _before_save(self, item: Any) -> None:
        try:
            validate_record(db.session, item)
        except DomainValidationError:
            db.session.rollback()
            raise

    def pre_add(self, item: Any) -> None:
        self._before_save(item)

    def pre_update(self, item: Any) -> None:
        self._before_save(item)


class GrantScopedViewMixin(ValidatedViewMixin):
    """For ModelViews of grant records: row filter and parent choices on top of validation.

    Subclasses set ``grant_column`` ("id" for the Grant view itself) and
    ``parent_relation`` (the relationship used to pick the grant, or None).
    """

    grant_column = "grant_id"
    parent_relation: str | None = "grant"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The search form's drop-down would otherwise list every grant's reference.
        _scope_to_visible_grants(
            cls, "add_form_query_rel_fields", "edit_form_query_rel_fields", "search_form_query_rel_fields"
        )

    def _before_save(self, item: Any) -> None:
        try:
            ensure_parent_visible(item)
        except DomainValidationError:
            db.session.rollback()
            raise
        super()._before_save(item)


class ValidatedApiMixin:
    """For ModelRestApis: domain rules return 422 naming the field; nothing is saved.

    A DomainValidationError raised by pre_add, pre_update or pre_delete (or the
    flush after them) becomes 422 ``{"message": {field: [...]}}`` and is rolled back.
    """

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()  # type: ignore[misc]
        if self.add_model_schema is None:
            return
        # FAB marks every non-nullable enum as required; one with a default is optional.
        table = self.datamodel.obj.__table__
        for name, field in self.add_model_schema.fields.items():
            column = table.c.get(name)
            if column is not None and column.default is not None:
                field.required = False

    def pre_add(self, item: Any) -> None:
        validate_record(db.session, item)

    def pre_update(self, item: Any) -> None:
        validate_record(db.session, item)

    def _refusing_bad_input(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except IntegrityError:
            db.session.rollback()
            return self.response_422(message={"_": ["conflicts with an existing record"]})

    def post_headless(self) -> Any:
        return self._refusing_bad_input(ModelRestApi.post_headless, self)

    def put_headless(self, pk: Any) -> Any:
        return self._refusing_bad_input(ModelRestApi.put_headless, self, pk)

    def delete_headless(self, pk: Any) -> Any:
        # FAB calls pre_delete outside any error handling: a refusal there would be a 500.
        return self._refusing_bad_input(ModelRestApi.delete_headless, self, pk)


class GrantScopedApiMixin(ValidatedApiMixin):
    """For ModelRestApis of grant records: the same row rules as the views."""

    grant_column = "grant_id"
    parent_relation: str | None = "grant"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _scope_to_visible_grants(cls, "add_query_rel_fields", "edit_query_rel_fields")

    def pre_add(self, item: Any) -> None:
        ensure_parent_visible(item)
        super().pre_add(item)

    def pre_update(self, item: Any) -> None:
        ensure_parent_visible(item)
        super().pre_update(item)


def security_headers(response: Any) -> Any:
    """Security headers on every response."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'; frame-ancestors 'none'",
    )
    return response


def flash_domain_error(exc: DomainValidationError) -> None:
    for field, messages in exc.errors.items():
        for message in messages:
            flash(f"{field}: {message}" if field != "_" else message, "danger")


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS.

    Behind a TLS-terminating proxy set GRANTKEEPER_BEHIND_PROXY=1 so that
    ProxyFix makes ``request.is_secure`` reflect X-Forwarded-Proto.
    """

    def get_cookie_secure(self, app: Any) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)
