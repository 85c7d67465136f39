"""REST API (JWT) for funders, grants, reporting periods and memberships."""

from __future__ import annotations

from typing import Any

from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.sqla.interface import SQLAInterface

from core.extensions import db
from grants import services
from grants.access import GrantScopedApiMixin, ValidatedApiMixin, visible_funders_filter
from grants.models import Funder, Grant, GrantMembership, ReportingPeriod

GRANT_FIELDS = [
    "id",
    "reference",
    "title",
    "recipient",
    "currency",
    "amount",
    "start_date",
    "end_date",
    "status",
    "countries",
    "description",
    "funder.id",
    "funder.name",
]
GRANT_WRITE_FIELDS = [
    "reference",
    "title",
    "recipient",
    "currency",
    "amount",
    "start_date",
    "end_date",
    "status",
    "countries",
    "description",
    "funder",
    "verifier_roles",  # who may verify results, e.g. "lead,program" (checked by Grant.validate)
]


class SavedByOperation:
    """POST and PUT save through the domain's ``save`` operation; FAB then commits once.
    Refusals become 422 through ValidatedApiMixin."""

    save: Any = None  # staticmethod(services.save_...)

    def pre_add(self, item: Any) -> None:
        super().pre_add(item)  # type: ignore[misc]
        self.save(db.session, item)

    def pre_update(self, item: Any) -> None:
        super().pre_update(item)  # type: ignore[misc]
        self.save(db.session, item)


class FunderApi(SavedByOperation, ValidatedApiMixin, ModelRestApi):
    resource_name = "funders"
    class_permission_name = "Funders"  # one role rule covers the view and the API (FAB.md trap 8)
    datamodel = SQLAInterface(Funder)
    list_columns = show_columns = ["id", "name", "code", "default_currency", "cost_categories", "notes"]
    add_columns = edit_columns = ["name", "code", "default_currency", "cost_categories", "notes"]
    search_columns = ["name", "code", "default_currency"]
    base_filters = visible_funders_filter()
    allow_browser_login = False
    save = staticmethod(services.save_funder)


class GrantApi(SavedByOperation, GrantScopedApiMixin, ModelRestApi):
    grant_column = "id"
    parent_relation = None
    resource_name = "grants"
    class_permission_name = "Grants"
    datamodel = SQLAInterface(Grant)
    list_columns = show_columns = GRANT_FIELDS
    add_columns = edit_columns = GRANT_WRITE_FIELDS
    order_columns = ["reference", "start_date", "end_date", "amount"]
    search_columns = ["reference", "title", "status", "currency", "funder"]
    save = staticmethod(services.save_grant)


class ReportingPeriodApi(SavedByOperation, GrantScopedApiMixin, ModelRestApi):
    resource_name = "periods"
    class_permission_name = "ReportingPeriods"
    datamodel = SQLAInterface(ReportingPeriod)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "label",
        "start_date",
        "end_date",
        "report_due",
        "status",
    ]
    add_columns = edit_columns = ["grant", "label", "start_date", "end_date", "report_due", "status"]
    order_columns = ["label", "start_date", "report_due"]
    search_columns = ["grant", "label", "status", "report_due"]
    save = staticmethod(services.save_period)


class GrantMembershipApi(SavedByOperation, GrantScopedApiMixin, ModelRestApi):
    resource_name = "memberships"
    class_permission_name = "GrantMemberships"
    datamodel = SQLAInterface(GrantMembership)
    list_columns = show_columns = ["id", "grant.id", "grant.reference", "user.id", "user.username", "role"]
    add_columns = edit_columns = ["grant", "user", "role"]
    search_columns = ["grant", "user", "role"]
    save = staticmethod(services.save_membership)


def register(appbuilder: AppBuilder) -> None:
    for api in (FunderApi, GrantApi, ReportingPeriodApi, GrantMembershipApi):
        appbuilder.add_api(api)
