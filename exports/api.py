"""REST API (JWT) for the export history: list, show, download what one may see."""

from __future__ import annotations

import io
from typing import Any

from flask import current_app, send_file
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi, expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface

from core.formatting import gettext as _
from core.storage import StorageError, store_for
from exports import services
from exports.models import ExportRecord
from exports.views import FilterExportsVisible
from grants.access import ScopedChoicesMixin


class ExportRecordApi(ScopedChoicesMixin, ModelRestApi):
    resource_name = "exports"
    class_permission_name = "ExportRecords"
    datamodel = SQLAInterface(ExportRecord)
    base_filters = [["id", FilterExportsVisible, lambda: None]]
    include_route_methods = {"get", "get_list", "info", "file"}
    method_permission_name = {"file": "get"}
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "period.label",
        "kind",
        "report",
        "filename",
        "sha256",
        "size",
        "created_by",
        "created_at",
        "published",
        "published_at",
    ]
    order_columns = ["created_at", "report"]
    # No add or edit route; declared so that _info describes only these (their choices scoped).
    add_columns = edit_columns = ["grant", "period", "report"]
    search_columns = ["grant", "period", "report", "kind", "published"]

    @expose("/<int:pk>/file", methods=["GET"])
    @protect()
    @safe
    def file(self, pk: int) -> Any:
        """Download the exact file that was generated.
        ---
        get:
          parameters:
          - in: path
            name: pk
            schema:
              type: integer
          responses:
            200:
              description: the workbook
            404:
              $ref: '#/components/responses/404'
        """
        record = self.datamodel.get(pk, self._base_filters)
        if record is None:
            return self.response_404()
        try:
            data = services.export_bytes(store_for(current_app.config), record)
        except StorageError:
            return self.response(410, message=_("the stored file is missing or damaged"))
        response = send_file(
            io.BytesIO(data), mimetype=services.media_type(record), as_attachment=True, download_name=record.filename
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_api(ExportRecordApi)
