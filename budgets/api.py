"""REST API (JWT) for budget lines, planned amounts, expenditures, rates, policies, revisions, shared costs and
allocation keys, and budget vs actual."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import g, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, ModelRestApi, expose, protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name
from sqlalchemy import select

from budgets import rates, services, sharing
from budgets.models import (
    AllocationKey,
    AllocationKeyShare,
    BudgetAllocation,
    BudgetLine,
    BudgetRevision,
    BudgetRevisionItem,
    ExchangeRate,
    Expenditure,
    OdooAccountMap,
    OdooLink,
    RatePolicy,
    SharedCost,
    SplitMethod,
    VarianceRule,
)
from budgets.report import budget_vs_actual, variance_flags
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from grants.access import (
    FilterVisibleGrants,
    GrantScopedApiMixin,
    ValidatedApiMixin,
    current_user_or_none,
    ensure_parent_visible,
    visible_grant_ids,
)
from grants.services import can_see_grant

_VISIBLE = [["grant_id", FilterVisibleGrants, lambda: None]]


def _save(operation: Any, item: Any, *, grant_scoped: bool = True) -> None:
    """Hand a request's record to its write operation before FAB's one commit.

    Refusals become 422 through ValidatedApiMixin, which rolls back.
    """
    if grant_scoped:
        services.derive_grant(item)
        ensure_parent_visible(item)
    operation(db.session, item)


class BudgetLineApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "budget_lines"
    class_permission_name = "BudgetLines"
    datamodel = SQLAInterface(BudgetLine)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "code",
        "description",
        "cost_category",
        "module",
        "intervention",
        "notes",
    ]
    add_columns = edit_columns = ["grant", "code", "description", "cost_category", "module", "intervention", "notes"]
    order_columns = ["code", "cost_category"]
    search_columns = ["grant", "code", "cost_category", "module", "intervention"]


class BudgetAllocationApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "budget_allocations"
    class_permission_name = "BudgetLines"
    parent_relation = None
    datamodel = SQLAInterface(BudgetAllocation)
    list_columns = show_columns = ["id", "grant.id", "line.id", "line.code", "period.id", "period.label", "amount"]
    add_columns = edit_columns = ["line", "period", "amount"]
    search_columns = ["grant", "line", "period"]
    add_query_rel_fields = edit_query_rel_fields = {"line": _VISIBLE, "period": _VISIBLE}

    def pre_add(self, item: Any) -> None:
        _save(services.save_allocation, item)

    def pre_update(self, item: Any) -> None:
        _save(services.save_allocation, item)


class ExpenditureApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "expenditures"
    class_permission_name = "Expenditures"
    parent_relation = None
    datamodel = SQLAInterface(Expenditure)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "line.id",
        "line.code",
        "period.id",
        "period.label",
        "spent_on",
        "amount",
        "currency",
        "description",
        "converted_amount",
        "rate",
        "rate_source",
        "source",
        "external_ref",
    ]
    add_columns = edit_columns = ["line", "spent_on", "amount", "currency", "description"]
    order_columns = ["spent_on", "amount", "converted_amount"]
    search_columns = ["grant", "line", "period", "spent_on", "currency", "source", "external_ref"]
    base_order = ("spent_on", "desc")
    add_query_rel_fields = edit_query_rel_fields = {"line": _VISIBLE}

    def pre_add(self, item: Any) -> None:
        _save(services.create_expenditure, item)

    def pre_update(self, item: Any) -> None:
        _save(services.update_expenditure, item)

    def pre_delete(self, item: Any) -> None:
        services.check_not_a_part(item)


class ExchangeRateApi(ValidatedApiMixin, ModelRestApi):
    resource_name = "exchange_rates"
    class_permission_name = "ExchangeRates"
    datamodel = SQLAInterface(ExchangeRate)
    list_columns = show_columns = ["id", "rate_date", "from_currency", "to_currency", "rate", "source"]
    add_columns = edit_columns = ["rate_date", "from_currency", "to_currency", "rate", "source"]
    order_columns = ["rate_date", "from_currency", "to_currency"]
    search_columns = ["rate_date", "from_currency", "to_currency"]
    base_order = ("rate_date", "desc")

    # Refusals (an expenditure left without a rate) become 422 through ValidatedApiMixin.
    def pre_add(self, item: Any) -> None:
        _save(rates.save_rate, item, grant_scoped=False)

    def pre_update(self, item: Any) -> None:
        _save(rates.save_rate, item, grant_scoped=False)

    def pre_delete(self, item: Any) -> None:
        _save(rates.delete_rate, item, grant_scoped=False)


class RatePolicyApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "rate_policies"
    class_permission_name = "RatePolicies"
    datamodel = SQLAInterface(RatePolicy)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "method",
        "fixed_currency",
        "fixed_rate",
        "notes",
    ]
    add_columns = edit_columns = ["grant", "method", "fixed_currency", "fixed_rate", "notes"]
    search_columns = ["grant", "method"]

    def pre_add(self, item: Any) -> None:
        _save(rates.save_policy, item)

    def pre_update(self, item: Any) -> None:
        _save(rates.save_policy, item)


class VarianceRuleApi(ValidatedApiMixin, ModelRestApi):
    resource_name = "variance_rules"
    class_permission_name = "VarianceRules"
    datamodel = SQLAInterface(VarianceRule)
    list_columns = show_columns = [
        "id",
        "funder.id",
        "funder.code",
        "cost_category",
        "basis",
        "direction",
        "threshold_percent",
        "description",
    ]
    add_columns = edit_columns = ["funder", "cost_category", "basis", "direction", "threshold_percent", "description"]
    search_columns = ["funder", "cost_category", "basis"]


class BudgetRevisionApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "budget_revisions"
    class_permission_name = "BudgetRevisions"
    datamodel = SQLAInterface(BudgetRevision)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "title",
        "justification",
        "status",
        "created_at",
        "submitted_at",
        "decided_at",
        "decided_by",
        "decision_note",
        "version_number",
    ]
    add_columns = ["grant", "title", "justification"]
    edit_columns = ["title", "justification"]
    search_columns = ["grant", "title", "status"]
    # submit and decide change the record: they need can_put, like an edit.

    def pre_update(self, item: Any) -> None:
        _save(services.update_revision, item)

    def _load(self, pk: int) -> BudgetRevision | None:
        return self.datamodel.get(pk, self._base_filters)

    @expose("/<int:pk>/submit", methods=["POST"])
    @protect()
    @permission_name("put")
    @safe
    def submit(self, pk: int) -> Any:
        """Submit a draft revision for approval."""
        revision = self._load(pk)
        if revision is None:
            return self.response_404()
        try:
            services.submit_revision(db.session, revision)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(200, status=revision.status.value)

    @expose("/<int:pk>/decide", methods=["POST"])
    @protect()
    @permission_name("put")
    @safe
    def decide(self, pk: int) -> Any:
        """Approve or reject a submitted revision: {"decision": "approve"|"reject", "note": "..."}."""
        revision = self._load(pk)
        if revision is None:
            return self.response_404()
        body = request.get_json(silent=True) or {}
        user = current_user_or_none()
        by = user.username if user else None
        try:
            if body.get("decision") == "approve":
                version = services.approve_revision(db.session, revision, by=by, note=body.get("note"))
                db.session.commit()
                return self.response(200, status="approved", version=version.number)
            if body.get("decision") == "reject":
                services.reject_revision(db.session, revision, by=by, note=body.get("note"))
                db.session.commit()
                return self.response(200, status="rejected")
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response_422(message={"decision": [_("must be approve or reject")]})


class BudgetRevisionItemApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "budget_revision_items"
    class_permission_name = "BudgetRevisions"
    parent_relation = None
    datamodel = SQLAInterface(BudgetRevisionItem)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "revision.id",
        "period.id",
        "period.label",
        "from_line.id",
        "from_line.code",
        "to_line.id",
        "to_line.code",
        "to_period.id",
        "to_period.label",
        "amount",
    ]
    add_columns = edit_columns = ["revision", "period", "from_line", "to_line", "to_period", "amount"]
    search_columns = ["revision", "from_line", "to_line"]
    add_query_rel_fields = edit_query_rel_fields = {
        "revision": _VISIBLE,
        "period": _VISIBLE,
        "from_line": _VISIBLE,
        "to_line": _VISIBLE,
        "to_period": _VISIBLE,
    }

    def pre_add(self, item: Any) -> None:
        _save(services.save_revision_item, item)

    def pre_update(self, item: Any) -> None:
        _save(services.save_revision_item, item)


class OdooLinkApi(GrantScopedApiMixin, ModelRestApi):
    """Grants' Odoo links; the sync itself runs from the web page or 'run.py sync-odoo'."""

    resource_name = "odoo_links"
    class_permission_name = "OdooLinks"
    datamodel = SQLAInterface(OdooLink)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "enabled",
        "last_write_date",
        "last_sync_at",
        "last_status",
        "last_message",
    ]
    add_columns = [
        "grant",
        "analytic_account_id",
        "analytic_account_name",
        "analytic_plan",
        "company_currency",
        "enabled",
    ]
    edit_columns = ["analytic_account_id", "analytic_account_name", "analytic_plan", "company_currency", "enabled"]
    search_columns = ["grant", "enabled", "last_status"]


class OdooAccountMapApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "odoo_account_maps"
    class_permission_name = "OdooAccountMaps"
    datamodel = SQLAInterface(OdooAccountMap)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "odoo_account_id",
        "odoo_account_label",
        "line.id",
        "line.code",
    ]
    add_columns = ["grant", "odoo_account_id", "odoo_account_label", "line"]
    edit_columns = ["odoo_account_id", "odoo_account_label", "line"]
    search_columns = ["grant", "odoo_account_id", "line"]


# The mixin limits the grant choice; the line choice is limited here too (FAB.md trap 7).
OdooAccountMapApi.add_query_rel_fields = {**OdooAccountMapApi.add_query_rel_fields, "line": _VISIBLE}
OdooAccountMapApi.edit_query_rel_fields = {**OdooAccountMapApi.edit_query_rel_fields, "line": _VISIBLE}


# ---------------------------------------------------------------- shared costs and allocation keys
# A shared cost (or a key) is shown and changed only by someone who sees every grant it is split over,
# as on the web pages (budgets/sharing_views.py); the parts of others' grants are never named.


def _hidden_grants_clause(column: Any) -> Any:
    ids = visible_grant_ids()
    return None if ids is None else column.not_in(ids) if ids else column.isnot(None)


class FilterCostsOfVisibleGrants(BaseFilter):
    """Shared costs none of whose parts is on a grant the user cannot see."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        hidden = _hidden_grants_clause(Expenditure.grant_id)
        if hidden is None:
            return query
        elsewhere = select(Expenditure.shared_cost_id).where(Expenditure.shared_cost_id.isnot(None), hidden)
        return query.filter(SharedCost.id.not_in(elsewhere))


class FilterKeysOfVisibleGrants(BaseFilter):
    """Allocation keys none of whose shares is on a grant the user cannot see."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        hidden = _hidden_grants_clause(AllocationKeyShare.grant_id)
        if hidden is None:
            return query
        return query.filter(AllocationKey.id.not_in(select(AllocationKeyShare.key_id).where(hidden)))


def _none() -> None:
    return None


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise DomainValidationError({"_": [_("the request body must be one JSON object of field names and values")]})
    return body


def _day(value: Any, field: str = "spent_on") -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DomainValidationError(
            {field: [_("'%(value)s' is not a date written as YYYY-MM-DD", value=value)]}
        ) from None


def _visible_line_or_error(raw: Any, field: str, number: int) -> Any:
    from budgets.models import BudgetLine

    line_id = raw.get("line") if isinstance(raw, dict) else None
    if isinstance(line_id, dict):
        line_id = line_id.get("id")
    line = db.session.get(BudgetLine, line_id) if isinstance(line_id, int) and 0 < line_id < 2**31 else None
    ids = visible_grant_ids()
    if line is None or (ids is not None and line.grant_id not in ids):
        message = (
            _("part %(number)s: 'line' must be the id of a budget line you have access to", number=number)
            if field == "parts"
            else _("row %(number)s: 'line' must be the id of a budget line you have access to", number=number)
        )
        raise DomainValidationError({field: [message]})
    return line


def _rows(body: dict[str, Any], field: str, value_name: str) -> list[dict[str, Any]] | None:
    rows = body.get(field)
    if rows is None:
        return None
    if not isinstance(rows, list):
        raise DomainValidationError(
            {field: [_('must be a list like [{"line": 12, "%(name)s": "60"}]', name=value_name)]}
        )
    return [
        {"line": _visible_line_or_error(raw, field, number), value_name: raw.get(value_name)}
        for number, raw in enumerate(rows, start=1)
    ]


def _key_of(body: dict[str, Any]) -> AllocationKey | None:
    key_id = body.get("key")
    if isinstance(key_id, dict):
        key_id = key_id.get("id")
    if key_id in (None, ""):
        return None
    key = db.session.get(AllocationKey, key_id) if isinstance(key_id, int) and 0 < key_id < 2**31 else None
    if key is None or not _sees_all({s.grant_id for s in key.shares}):
        raise DomainValidationError({"key": [_("must be the id of an allocation key you have access to")]})
    return key


def _sees_all(grant_ids: set[int]) -> bool:
    ids = visible_grant_ids()
    return ids is None or grant_ids <= set(ids)


def _unknown_fields(body: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(body) - known)
    if unknown:
        raise DomainValidationError({name: [_("is not a field you can set here")] for name in unknown})


def _cost_dict(cost: SharedCost) -> dict[str, Any]:
    return {
        "id": cost.id,
        "spent_on": cost.spent_on.isoformat(),
        "amount": f"{cost.amount:.2f}",
        "currency": cost.currency,
        "description": cost.description,
        "method": cost.method.value,
        "key": None if cost.key is None else {"id": cost.key.id, "name": cost.key.name},
        "parts": [
            {
                "id": part.id,
                "grant": {"id": part.grant_id, "reference": part.grant.reference},
                "line": {"id": part.line_id, "code": part.line.code},
                "share": None if part.share is None else f"{part.share.normalize():f}",
                "amount": f"{part.amount:.2f}",
                "currency": part.currency,
                "amount_in_grant_currency": f"{part.converted_amount:.2f}",
                "grant_currency": part.grant.currency,
            }
            for part in cost.parts
        ],
    }


def _key_dict(key: AllocationKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "basis": key.basis,
        "shares": [
            {
                "line": {"id": share.line_id, "code": share.line.code},
                "grant": {"id": share.grant_id, "reference": share.grant.reference},
                "weight": f"{share.weight.normalize():f}",
            }
            for share in key.shares
        ],
    }


class _SharingApi(ValidatedApiMixin, ModelRestApi):
    """List, show and delete through FAB (scoped by ``base_filters``); add and change through
    ``budgets.sharing``, because a record and its parts are saved as one."""

    def _refused(self, call: Any) -> Any:
        try:
            return call()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)

    def _actor(self) -> str | None:
        user = current_user_or_none()
        return user.username if user else None


class SharedCostApi(_SharingApi):
    """Payments split over several grants' budget lines.

    POST/PUT body: {"spent_on": "2026-07-31", "amount": "1000.00", "currency": "USD",
    "description": "Office rent July", "method": "percent"|"amount"|"key",
    "parts": [{"line": 12, "share": "60"}, {"line": 31, "share": "40"}]} or, by key, {"key": 3}.
    GET /<id> adds each part: its grant, line, amount and the amount in the grant's currency.
    """

    resource_name = "shared_costs"
    class_permission_name = "SharedCosts"
    datamodel = SQLAInterface(SharedCost)
    base_filters = [["id", FilterCostsOfVisibleGrants, _none]]
    list_columns = show_columns = [
        "id",
        "spent_on",
        "amount",
        "currency",
        "description",
        "method",
        "key.id",
        "key.name",
        "created_at",
        "created_by",
    ]
    add_columns = edit_columns = ["spent_on", "amount", "currency", "description", "method", "key"]
    search_columns = ["spent_on", "currency", "description", "method", "key"]
    order_columns = ["spent_on", "amount", "currency", "description"]
    add_query_rel_fields = edit_query_rel_fields = search_query_rel_fields = {
        "key": [["id", FilterKeysOfVisibleGrants, _none]]
    }
    FIELDS = {"spent_on", "amount", "currency", "description", "method", "parts", "key"}

    def pre_get(self, data: dict[str, Any]) -> None:
        cost = db.session.get(SharedCost, data.get("id"))
        if cost is not None:
            data["result"]["parts"] = _cost_dict(cost)["parts"]

    def post_headless(self) -> Any:
        def create() -> Any:
            body = _body()
            _unknown_fields(body, self.FIELDS)
            cost = sharing.record_shared_cost(
                db.session,
                spent_on=_day(body.get("spent_on")),  # type: ignore[arg-type]  # None is refused, naming the field
                amount=body.get("amount"),
                currency=str(body.get("currency") or ""),
                description=str(body.get("description") or ""),
                method=str(body.get("method") or SplitMethod.percent.value),
                parts=_rows(body, "parts", "share"),
                key=_key_of(body),
                created_by=self._actor(),
            )
            db.session.commit()
            return self.response(201, id=cost.id, result=_cost_dict(cost))

        return self._refused(create)

    def put_headless(self, pk: Any) -> Any:
        cost = self.datamodel.get(pk, self._base_filters) if str(pk).isdigit() and 0 < int(pk) < 2**31 else None
        if cost is None:
            return self.response_404()

        def change() -> Any:
            body = _body()
            _unknown_fields(body, self.FIELDS)
            sharing.update_shared_cost(
                db.session,
                cost,
                spent_on=_day(body.get("spent_on")),
                amount=body.get("amount"),
                currency=body.get("currency"),
                description=body.get("description"),
                method=body.get("method"),
                parts=_rows(body, "parts", "share"),
                key=_key_of(body),
            )
            db.session.commit()
            return self.response(200, id=cost.id, result=_cost_dict(cost))

        return self._refused(change)


class AllocationKeyApi(_SharingApi):
    """Saved ways of sharing costs (rent 60/40 by floor space): {"name": ..., "basis": ...,
    "shares": [{"line": 12, "weight": "60"}, ...]}. POST /<id>/rerun splits again every cost that
    follows the key ({"since": "2026-07-01"} optional); the audit trail shows each part before and after."""

    resource_name = "allocation_keys"
    class_permission_name = "AllocationKeys"
    datamodel = SQLAInterface(AllocationKey)
    base_filters = [["id", FilterKeysOfVisibleGrants, _none]]
    list_columns = show_columns = ["id", "name", "basis", "created_at"]
    add_columns = edit_columns = ["name", "basis"]
    search_columns = ["name", "basis"]
    order_columns = ["name", "created_at"]
    FIELDS = {"name", "basis", "shares"}

    def pre_get(self, data: dict[str, Any]) -> None:
        key = db.session.get(AllocationKey, data.get("id"))
        if key is not None:
            data["result"]["shares"] = _key_dict(key)["shares"]

    def post_headless(self) -> Any:
        def create() -> Any:
            body = _body()
            _unknown_fields(body, self.FIELDS)
            key = sharing.save_allocation_key(
                db.session,
                None,
                name=str(body.get("name") or ""),
                basis=body.get("basis"),
                shares=_rows(body, "shares", "weight") or [],
            )
            db.session.commit()
            return self.response(201, id=key.id, result=_key_dict(key))

        return self._refused(create)

    def put_headless(self, pk: Any) -> Any:
        key = self.datamodel.get(pk, self._base_filters) if str(pk).isdigit() and 0 < int(pk) < 2**31 else None
        if key is None:
            return self.response_404()

        def change() -> Any:
            body = _body()
            _unknown_fields(body, self.FIELDS)
            rows = _rows(body, "shares", "weight")
            sharing.save_allocation_key(
                db.session,
                key,
                name=str(body["name"]) if body.get("name") is not None else key.name,
                basis=body.get("basis", key.basis),
                shares=rows if rows is not None else [{"line": s.line, "weight": s.weight} for s in key.shares],
            )
            db.session.commit()
            return self.response(200, id=key.id, result=_key_dict(key))

        return self._refused(change)

    @expose("/<int:pk>/rerun", methods=["POST"])
    @protect()
    @permission_name("put")
    @safe
    def rerun(self, pk: int) -> Any:
        """Split again every shared cost that follows this key, by its current weights."""
        key = self.datamodel.get(pk, self._base_filters)
        if key is None:
            return self.response_404()

        def run() -> Any:
            body = request.get_json(silent=True) or {}
            since = _day(body.get("since"), "since") if isinstance(body, dict) else None
            changed = sharing.rerun_key(db.session, key, since)
            db.session.commit()
            return self.response(200, changed=changed)

        return self._refused(run)


class BudgetReportApi(BaseApi):
    """GET /api/v1/budget_report/<grant_id>?period_id=&by=line|category&version= → budget vs actual as JSON."""

    resource_name = "budget_report"
    class_permission_name = "BudgetReports"
    allow_browser_login = False

    @expose("/<int:grant_id>", methods=["GET"])
    @protect()
    @permission_name("get")
    @safe
    def report(self, grant_id: int) -> Any:
        """Budget vs actual of one grant, with the variance flags of the same period."""
        if not can_see_grant(db.session, g.user, grant_id):
            return self.response_404()
        period_id = request.args.get("period_id", type=int)
        version = request.args.get("version", type=int)
        try:
            # An unknown ?by= is refused by budget_vs_actual itself (422), as in the HTML view.
            by = request.args.get("by", "line")
            report = budget_vs_actual(db.session, grant_id, period_id, by=by, version=version)  # type: ignore[arg-type]
            flags = variance_flags(db.session, grant_id, period_id)
        except DomainValidationError as exc:
            return self.response_422(message=exc.errors)
        return self.response(200, report=report.as_dict(), variance_flags=[f.as_dict() for f in flags])


def register(appbuilder: AppBuilder) -> None:
    for api in (
        BudgetLineApi,
        BudgetAllocationApi,
        ExpenditureApi,
        ExchangeRateApi,
        RatePolicyApi,
        VarianceRuleApi,
        BudgetRevisionApi,
        BudgetRevisionItemApi,
        BudgetReportApi,
        OdooLinkApi,
        OdooAccountMapApi,
        SharedCostApi,
        AllocationKeyApi,
    ):
        appbuilder.add_api(api)
