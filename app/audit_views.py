"""Browsing the audit trail: Admin and Auditor read it, nobody edits it."""

from __future__ import annotations

from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.models.sqla.interface import SQLAInterface

from core.audit import AuditEntry


class AuditLogView(ModelView):
    datamodel = SQLAInterface(AuditEntry)
    class_permission_name = "AuditLog"
    route_base = "/audit"
    list_title = "Audit trail"
    show_title = "Audit entry"
    base_permissions = ["can_list", "can_show"]
    list_columns = ["at", "username", "source", "action", "table_name", "record_id", "record_label"]
    show_columns = [
        "at",
        "username",
        "user_id",
        "source",
        "action",
        "table_name",
        "record_id",
        "record_label",
        "changes",
    ]
    search_columns = ["at", "username", "source", "action", "table_name", "record_id", "record_label"]
    order_columns = ["at", "username", "action", "table_name"]
    base_order = ("id", "desc")
    label_columns = {
        "at": "When (UTC)",
        "table_name": "Record type",
        "record_id": "Record id",
        "record_label": "Record",
    }
    page_size = 50


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(AuditLogView, "Audit trail", icon="fa-history", category="Administration")
