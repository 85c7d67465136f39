"""What the staged-import pages share: who is acting, the row-by-row error report download, handing work to a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, abort, current_app, flash, redirect, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access

from core.extensions import db
from core.jobs import JobAlreadyRunning, queue_of
from grants.access import current_user_or_none


def username() -> str | None:
    """The signed-in user's name, for the "by" of an operation (None outside a request)."""
    user = current_user_or_none()
    return user.username if user is not None else None


def start_job(kind: str, grant_id: int | None, params: dict[str, Any], back: Any) -> Any:
    """Hand long work (a sync, a large import) to the background jobs (core.jobs) and show the job's page.

    A grant whose job is still queued or running refuses a second one: the message says so
    and the page shown is the running job's.
    """
    try:
        job = queue_of(current_app).submit(db.session, kind, grant_id, params, current_user_or_none())
    except JobAlreadyRunning as exc:
        flash(exc.summary().removeprefix("job: "), "warning")
        return redirect(url_for("JobView.show", pk=exc.job_id)) if exc.job_id else back
    return redirect(url_for("JobView.show", pk=job.id))


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
