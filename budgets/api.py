"""REST API (JWT) for budget lines, planned amounts, expenditures, rates, policies, revisions, and budget vs actual."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, ModelRestApi, expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name

from budgets import rates, services
from budgets.models import (
    BudgetAllocation,
    BudgetLine,
    BudgetRevision,
    BudgetRevisionItem,
    ExchangeRate,
    Expenditure,
    OdooAccountMap,
    OdooLink,
    RatePolicy,
    VarianceRule,
)
from budgets.report import budget_vs_actual, variance_flags
from core.errors import DomainValidationError
from core.extensions import db
from grants.access import (
    FilterVisibleGrants,
    GrantScopedApiMixin,
    ValidatedApiMixin,
    current_user_or_none,
    ensure_parent_visible,
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
        return self.response_422(message={"decision": ["must be approve or reject"]})


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
        "amount",
    ]
    add_columns = edit_columns = ["revision", "period", "from_line", "to_line", "amount"]
    search_columns = ["revision", "from_line", "to_line"]
    add_query_rel_fields = edit_query_rel_fields = {
        "revision": _VISIBLE,
        "period": _VISIBLE,
        "from_line": _VISIBLE,
        "to_line": _VISIBLE,
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
    ):
        appbuilder.add_api(api)
