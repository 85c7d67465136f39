"""Row-level access for the web layer: one filter, one view mixin, one API mixin.

The rule itself lives in ``grants.services.visible_grant_ids_query``. This
module applies it on every path Flask-AppBuilder offers: list/show/edit/delete
(base_filters), the choice of a parent record in forms and in the API
(FAB.md trap 7), and file downloads (trap 6, see ``guard_download``).

Choices (``ScopedChoicesMixin``, ``choice_filter``): every relation of every
view and API, in add and edit forms, list-page search filters and the REST
API's ``_info``, lists only records of grants the signed-in user may see —
periods, requirements, revisions, indicators, grants, evidence and its links
(for donors only what is shared with them), funders of those grants, and
users who are members of those grants. One rule, by the related model, so a
new relation is scoped without anyone remembering to.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Request, abort, flash, g, has_request_context, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_appbuilder import expose
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from core.formatting import label
from core.forms import guard_api_schema, with_number_checks
from core.records import validate_record
from grants.evidence.models import Evidence
from grants.evidence.services import visible_evidence_clause
from grants.form_input import KeepsTypedInput
from grants.models import Grant, GrantMembership
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
        ids = visible_grant_ids()
        if ids is None:
            return query
        members = select(GrantMembership.user_id).where(GrantMembership.grant_id.in_(ids))
        return query.filter(getattr(self.model, self.column_name).in_(members))


class FilterFundersOfVisibleGrants(BaseFilter):
    """Funders of a grant the signed-in user may see (for funder drop-downs and funder-level records)."""

    name = "Funders of my grants"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        ids = visible_grant_ids()
        if ids is None:
            return query
        funders = select(Grant.funder_id).where(Grant.id.in_(ids))
        return query.filter(getattr(self.model, self.column_name).in_(funders))


class FilterVisibleEvidence(BaseFilter):
    """Evidence the signed-in user may see: their grants, and for donors only what is shared with donors."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        visible = select(Evidence.id).where(visible_evidence_clause(current_user_or_none()))
        return query.filter(getattr(self.model, self.column_name).in_(visible))


def visible_grants_filter(column: str = "grant_id") -> list[list[Any]]:
    """base_filters / *_query_rel_fields entry limiting ``column`` to visible grants."""
    return [[column, FilterVisibleGrants, lambda: None]]


def _none() -> None:
    return None


def visible_funders_filter() -> list[list[Any]]:
    """base_filters of funder lists: the funders of grants the user may see (all for Admin and Finance)."""
    return [["id", FilterFundersOfVisibleGrants, _none]]


# Related models that are not grant records but still say something about grants or people.
_BY_TABLE: dict[str, list[list[Any]]] = {
    "grants": [["id", FilterVisibleGrants, _none]],
    "ab_user": [["id", FilterUsersOfVisibleGrants, _none]],
    "funders": [["id", FilterFundersOfVisibleGrants, _none]],
    "evidence_items": [["id", FilterVisibleEvidence, _none]],
    "evidence_links": [["evidence_id", FilterVisibleEvidence, _none], ["grant_id", FilterVisibleGrants, _none]],
}
# Organisation-wide catalogues and FAB's own tables (Admin-only views): every row may be offered.
UNSCOPED_TABLES = frozenset(
    {
        "coordinating_bodies",
        "dimensions",
        "dimension_categories",
        "ab_role",
        "ab_permission",
        "ab_view_menu",
        "ab_permission_view",
        "ab_group",
        "ab_register_user",
        "exchange_rates",
    }
)


def choice_filter(model: Any, _depth: int = 0) -> list[list[Any]]:
    """The filters a drop-down of ``model`` records gets: only what the signed-in user may see.

    By the related table: grants, users (members of visible grants), funders (of
    visible grants), evidence (and its links) by the evidence rule; any record
    with a ``grant_id`` by its grant, with only a ``funder_id`` by its funder, and
    one that belongs to a grant through its parent (a version through its
    template, a reminder through its deadline) by that parent's rule. Anything
    else is an organisation-wide catalogue (or an Admin's table), offered whole.
    """
    table = getattr(model, "__table__", None)
    if table is None or table.name in UNSCOPED_TABLES:
        return []
    if table.name in _BY_TABLE:
        return _BY_TABLE[table.name]
    if "grant_id" in table.c:
        return [["grant_id", FilterVisibleGrants, _none]]
    if "funder_id" in table.c:
        return [["funder_id", FilterFundersOfVisibleGrants, _none]]
    if _depth < 3:
        parents = [r for r in sa_inspect(model).relationships if r.direction.name == "MANYTOONE"]
        parents.sort(key=lambda r: r.mapper.class_.__table__.name == "ab_user")  # a grant record first
        for relation in parents:
            if choice_filter(relation.mapper.class_, _depth + 1):
                return [[relation.key, FilterThroughParent, _none]]
    return []


class FilterThroughParent(BaseFilter):
    """Rows whose parent relation (the column name given) points at a record the user may see."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        relation = getattr(self.model, self.column_name)
        parent = relation.property.mapper.class_
        visible = select(parent.id)
        for column, flt, _value in choice_filter(parent, 1):
            visible = _apply(parent, flt, column, visible)
        local = next(iter(relation.property.local_columns))
        return query.filter(local.in_(visible))


def visible_through(relation: str) -> list[list[Any]]:
    """base_filters entry for records that reach their grant through ``relation`` (a reminder's deadline)."""
    return [[relation, FilterThroughParent, _none]]


def _apply(model: Any, flt: Any, column: str, query: Any) -> Any:
    """Apply one of our filters to a query of ``model`` outside FAB's datamodel."""
    instance = flt.__new__(flt)
    instance.column_name = column
    instance.model = model
    instance.datamodel = None
    return instance.apply(query, None)


CHOICE_ATTRIBUTES = (
    "add_form_query_rel_fields",
    "edit_form_query_rel_fields",
    "search_form_query_rel_fields",
    "add_query_rel_fields",
    "edit_query_rel_fields",
)


def scope_choices(cls: Any) -> None:
    """Every relation of the class's model gets ``choice_filter`` in every form, search form and API
    ``_info`` (next to whatever filter the class declares itself)."""
    datamodel = getattr(cls, "datamodel", None)
    model = getattr(datamodel, "obj", None)
    if model is None:
        return
    mapper = sa_inspect(model)
    for relation in mapper.relationships:
        filters = choice_filter(relation.mapper.class_)
        if not filters:
            continue
        for attribute in CHOICE_ATTRIBUTES:
            declared = dict(getattr(cls, attribute, None) or {})
            mine = list(declared.get(relation.key) or [])
            declared[relation.key] = mine + [f for f in filters if f not in mine]
            setattr(cls, attribute, declared)


class ScopedChoicesMixin:
    """For every ModelView and ModelRestApi: its drop-downs list only what the user may see."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        scope_choices(cls)


def grant_id_of(item: Any) -> int | None:
    """The grant a record belongs to (the record itself for a Grant)."""
    if isinstance(item, Grant):
        return item.id
    grant_id = getattr(item, "grant_id", None)
    if grant_id is None and getattr(item, "grant", None) is not None:
        grant_id = item.grant.id
    return grant_id


def ensure_parent_visible(item: Any) -> None:
    """Nobody creates or moves a record under a grant they cannot see."""
    if isinstance(item, Grant):
        return
    user = current_user_or_none()
    grant_id = grant_id_of(item)
    if grant_id is None or not can_see_grant(db.session, user, grant_id):
        raise DomainValidationError({"grant": [_("is not a grant you have access to")]})


def guard_download(item: Any) -> None:
    """404 unless the signed-in user may see the grant a file belongs to."""
    if item is None or not can_see_grant(db.session, current_user_or_none(), grant_id_of(item)):
        abort(404)


def _scope_to_visible_grants(cls: Any) -> None:
    """Rows limited to visible grants (the choices are scoped by ``ScopedChoicesMixin``)."""
    cls.base_filters = visible_grants_filter(cls.grant_column)


def _NOTHING(**_kwargs: Any) -> str:
    return ""


class ValidatedViewMixin(KeepsTypedInput, ScopedChoicesMixin):
    """For ModelViews: domain rules checked before saving; nothing is saved.

    A refused add or edit form comes back as the user typed it, each message next
    to its field (``grants.form_input.KeepsTypedInput``), with status 200.

    FAB's stock ``/download/<filename>`` serves any file of UPLOAD_FOLDER to
    anyone with ``can_download`` (FAB.md trap 6); it is switched off here, and
    files are served only by views that check the record they belong to.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Every number typed into a form must be finite and fit its column: refused next to the field.
        datamodel = cls.__dict__.get("datamodel")
        if datamodel is not None:
            cls.validators_columns = with_number_checks(getattr(cls, "validators_columns", None) or {}, datamodel.obj)

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Any:
        abort(404)

    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name: str, pk: Any) -> Any:
        """FAB's action route, with an unknown action or a record outside the user's grants answered 404."""
        if name not in self.actions:  # type: ignore[attr-defined]
            abort(404)
        if not _is_record_id(pk) or self.datamodel.get(pk, self._base_filters) is None:  # type: ignore[attr-defined]
            abort(404)
        return super().action(name, pk)  # type: ignore[misc]

    @expose("/action_post", methods=["POST"])
    def action_post(self) -> Any:
        """FAB's list action, with an unknown action or a record outside the user's grants answered 404."""
        if request.form.get("action") not in self.actions:  # type: ignore[attr-defined]
            abort(404)
        for pk in request.form.getlist("rowid"):
            if not _is_record_id(pk) or self.datamodel.get(pk, self._base_filters) is None:  # type: ignore[attr-defined]
                abort(404)
        return super().action_post()  # type: ignore[misc]

    def _list(self, **kwargs: Any) -> Any:
        """A search filter that names no filter of this list (``_flt_9_grant``) is a bad request, not a 500."""
        known = self._filters.get_search_filters()  # type: ignore[attr-defined]
        for arg in request.args:
            match = _FILTER_ARG.fullmatch(arg)
            if match and (match.group(2) not in known or int(match.group(1)) >= len(known[match.group(2)])):
                abort(400, description=f"'{arg}' is not a search filter of this list")
        return super()._list(**kwargs)  # type: ignore[misc]

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
        _scope_to_visible_grants(cls)

    def _before_save(self, item: Any) -> None:
        try:
            ensure_parent_visible(item)
        except DomainValidationError:
            db.session.rollback()
            raise
        super()._before_save(item)


class ValidatedApiMixin(ScopedChoicesMixin):
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
        for schema in {id(s): s for s in (self.add_model_schema, self.edit_model_schema) if s is not None}.values():
            guard_api_schema(schema, self.datamodel.obj)

    def pre_add(self, item: Any) -> None:
        validate_record(db.session, item)

    def pre_update(self, item: Any) -> None:
        validate_record(db.session, item)

    def _refusing_bad_input(self, call: Any, *args: Any, deleting: bool = False) -> Any:
        if args and not _is_record_id(args[0]):
            return self.response_404()
        if request.method in ("POST", "PUT") and request.is_json:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return self.response_400(message="the request body must be one JSON object of field names and values")
        try:
            return call(self, *args)
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        except IntegrityError:
            db.session.rollback()
            if deleting:
                item = self.datamodel.get(args[0], self._base_filters)  # type: ignore[attr-defined]
                used_by = _still_used_by(item) if item is not None else []
                return self.response_422(message={"_": [_in_use_message(used_by)]})
            return self.response_422(message={"_": ["conflicts with an existing record"]})
        except (DataError, OverflowError):
            db.session.rollback()
            return self.response_422(message={"_": ["a value is out of the range this field can hold"]})

    def get_headless(self, pk: Any, **kwargs: Any) -> Any:
        if not _is_record_id(pk):
            return self.response_404()
        return ModelRestApi.get_headless(self, pk, **kwargs)  # type: ignore[arg-type]

    def post_headless(self) -> Any:
        return self._refusing_bad_input(ModelRestApi.post_headless)

    def put_headless(self, pk: Any) -> Any:
        return self._refusing_bad_input(ModelRestApi.put_headless, pk)

    def delete_headless(self, pk: Any) -> Any:
        # FAB calls pre_delete outside any error handling: a refusal there would be a 500.
        item = self.datamodel.get(pk, self._base_filters) if _is_record_id(pk) else None  # type: ignore[attr-defined]
        used_by = _still_used_by(item) if item is not None else []
        if used_by:
            return self.response_422(message={"_": [_in_use_message(used_by)]})
        return self._refusing_bad_input(ModelRestApi.delete_headless, pk, deleting=True)

    def response_422(self, message: Any = None) -> Any:
        # FAB answers a failed commit with the database's own words and the SQL; never show those.
        if isinstance(message, str) and message.startswith("Database exception"):
            message = {"_": ["could not be saved: it conflicts with other records"]}
        return super().response_422(message=message)  # type: ignore[misc]


def refuse_out_of_range(exc: Exception) -> Any:
    """A number in a request the database cannot hold (an id beyond 32 bits in a query): 400 in words, not 500."""
    db.session.rollback()
    message = "a number in the request is out of range"
    if request.path.startswith("/api/"):
        return {"message": message}, 400
    abort(400, description=message)


def _bounded_int(text: Any) -> int:
    number = int(text)
    if not -(2**31) <= number < 2**31:
        raise ValueError("out of the range of an integer column")
    return number


class BoundedArgs(ImmutableMultiDict):  # type: ignore[type-arg]
    """``request.args.get(name, type=int)`` everywhere: a number no column holds is treated as absent."""

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]  # noqa: A002
        return super().get(key, default, _bounded_int if type is int else type)


class BoundedRequest(Request):
    parameter_storage_class = BoundedArgs


class RecordIdConverter(IntegerConverter):
    """``<int:pk>`` in every route: numbers beyond what an id column holds are not found, not a database overflow."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


_FILTER_ARG = re.compile(r"_flt_(\d)_(.*)")


def _is_record_id(pk: Any) -> bool:
    """An id a primary-key column can hold; anything else is simply not found (never a database overflow)."""
    text = str(pk)
    return text.isdigit() and 0 < int(text) < 2**31


def _in_use_message(used_by: list[str]) -> str:
    if used_by:
        return _(
            "cannot be deleted: other records still refer to it (%(kinds)s); remove or move those first",
            kinds=", ".join(_(kind) for kind in used_by),
        )
    return _("cannot be deleted: other records still refer to it; remove or move those first")


def _still_used_by(item: Any) -> list[str]:
    """In words, the kinds of record whose foreign keys still point at ``item`` (e.g. "expenditures").

    Children the model deletes with it (a delete cascade) and keys the database clears or
    cascades itself do not count.
    """
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import RelationshipDirection

    mapper = sa_inspect(type(item))
    own = mapper.local_table
    cascaded = {
        relation.mapper.local_table.name
        for relation in mapper.relationships
        if relation.direction is RelationshipDirection.ONETOMANY and "delete" in relation.cascade
    }
    found: list[str] = []
    for table in db.metadata.tables.values():
        if table.name in cascaded or table is own:
            continue
        for key in table.foreign_keys:
            if key.column.table is not own or (key.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                continue
            value = getattr(item, mapper.get_property_by_column(key.column).key)
            if db.session.execute(select(key.parent).where(key.parent == value).limit(1)).first() is not None:
                words = table.name.replace("ab_", "").replace("_", " ")
                if words not in found:
                    found.append(words)
    return found


class GrantScopedApiMixin(ValidatedApiMixin):
    """For ModelRestApis of grant records: the same row rules as the views."""

    grant_column = "grant_id"
    parent_relation: str | None = "grant"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _scope_to_visible_grants(cls)

    def pre_add(self, item: Any) -> None:
        ensure_parent_visible(item)
        super().pre_add(item)

    def pre_update(self, item: Any) -> None:
        ensure_parent_visible(item)
        super().pre_update(item)


def csp_nonce() -> str:
    """This request's script nonce: the only inline scripts that run carry it (templates: ``{{ csp_nonce() }}``)."""
    if not has_request_context():
        return ""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def security_headers(response: Any) -> Any:
    """Security headers on every response; scripts only from our origin or with this request's nonce."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"script-src 'self' 'nonce-{csp_nonce()}'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
    )
    return response


def flash_domain_error(exc: DomainValidationError) -> None:
    """Flash each refusal after the field it is about, named in the reader's words ("Title: is required")."""
    for field, messages in exc.errors.items():
        for message in messages:
            if field == "_":
                flash(message, "danger")
            else:  # a path into a document ("mapping.cells.0.source") stays as it is: it locates the problem
                flash(f"{label(field) if field.isidentifier() else field}: {message}", "danger")


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS.

    Behind a TLS-terminating proxy set GRANTKEEPER_BEHIND_PROXY=1 so that
    ProxyFix makes ``request.is_secure`` reflect X-Forwarded-Proto.
    """

    def get_cookie_secure(self, app: Any) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or (has_request_context() and request.is_secure)
