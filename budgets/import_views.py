"""What the staged-import pages share: who is acting, and the row-by-row error report download."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access

from grants.access import current_user_or_none


def username() -> str | None:
    """The signed-in user's name, for the "by" of an operation (None outside a request)."""
    user = current_user_or_none()
    return user.username if user is not None else None


class ErrorReportMixin:
    """``/<pk>/errors.csv`` for a view of staged imports: the refused rows as a CSV download."""

    #: Turns a staged import into the CSV text of its row errors.
    error_report: Callable[[Any], str]
    #: The download's name; ``{id}`` is the staged import's id.
    error_report_name = "import-{id}-errors.csv"

    @expose("/<int:pk>/errors.csv", methods=["GET"])
    @has_access
    def errors_csv(self, pk: int) -> Any:
        staged = self.datamodel.get(pk, self._base_filters)  # type: ignore[attr-defined]
        if staged is None:
            abort(404)
        return Response(
            type(self).error_report(staged),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{self.error_report_name.format(id=staged.id)}"'},
        )
