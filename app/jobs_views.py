"""The job pages: one job's progress and outcome (``/jobs/<id>``, with a JSON status), and the recent jobs.

Wiring too: ``init_jobs`` gives each app its ``core.jobs.JobQueue`` (the queue
named by GRANTKEEPER_QUEUE_URL, jobs run in the app's context and session).
A job is shown to Admins, and to users who can see its grant (the grants.access
rule); a job without a grant only to whoever asked for it; never to donors.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, flash, g, jsonify, redirect, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext
from sqlalchemy import Select, or_, select

from core.extensions import db
from core.formatting import N_, moment
from core.jobs import EXTENSION_KEY, JOBS, Job, JobQueue, JobState, cancel, make_huey, shown
from grants.access import current_user_or_none
from grants.models import Grant
from grants.services import user_role_names, visible_grant_ids_query

RECENT = 50


def init_jobs(app: Flask) -> JobQueue:
    """The app's job queue, kept in ``app.extensions``; tests run jobs at once (``JOBS_IMMEDIATE``)."""
    huey = make_huey(app.config["QUEUE_URL"], immediate=bool(app.config.get("JOBS_IMMEDIATE")))
    queue = JobQueue(huey, context=app.app_context, session=lambda: db.session)
    app.extensions[EXTENSION_KEY] = queue
    return queue


def visible_jobs_query(user: Any) -> Select[tuple[Job]]:
    """The jobs ``user`` may see, newest first."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    names = user_role_names(user)
    if user is None or not names or names <= {"Donor"}:
        return query.where(Job.id.is_(None))
    if "Admin" in names:
        return query
    own = Job.requested_by_id == user.id
    visible = visible_grant_ids_query(user)
    if visible is None:
        return query.where(or_(Job.grant_id.is_not(None), own))
    return query.where(or_(Job.grant_id.in_(visible), own))


def status(job: Job) -> dict[str, Any]:
    """What the page and its script show, in words (the JSON status)."""
    return {
        "id": job.id,
        "job": job.label,
        "state": job.state.value,
        "state_label": job.state_label,
        "active": job.active,
        "stage": shown(job.stage),
        "done": job.done,
        "total": job.total,
        "progress": job.progress_text(),
        "result": shown(job.result),
        "error": shown(job.error),
        "requested_by": job.requested_by,
        "requested_at": moment(job.created_at),
        "started_at": moment(job.started_at) if job.started_at else "",
        "finished_at": moment(job.finished_at) if job.finished_at else "",
    }


class JobView(BaseView):
    """``/jobs/``: recent jobs; ``/jobs/<id>``: one job, refreshing itself while it runs."""

    route_base = "/jobs"
    template_folder = "templates"
    default_view = "index"

    def _visible(self, pk: int) -> Job:
        job = db.session.scalar(visible_jobs_query(current_user_or_none()).where(Job.id == pk))
        if job is None:
            abort(404)
        return job

    @staticmethod
    def _signed_in() -> Any:
        user = current_user_or_none()
        if user is None:
            return redirect(url_for("AuthDBView.login"))
        return None

    @expose("/")
    def index(self) -> Any:
        if (away := self._signed_in()) is not None:
            return away
        jobs = list(db.session.scalars(visible_jobs_query(g.user).limit(RECENT)))
        grants = _grant_references(jobs)
        return self.render_template(
            "jobs/list.html", title=gettext("Jobs"), jobs=jobs, grants=grants, moment=moment, shown=shown
        )

    @expose("/<int:pk>")
    def show(self, pk: int) -> Any:
        if (away := self._signed_in()) is not None:
            return away
        job = self._visible(pk)
        kind = JOBS.get(job.kind)
        links = kind.links(job) if kind is not None and kind.links is not None else []
        grant = db.session.get(Grant, job.grant_id) if job.grant_id is not None else None
        return self.render_template(
            "jobs/show.html",
            title=gettext("%(job)s — job %(number)s", job=job.label, number=job.id),
            job=job,
            grant=grant,
            links=links,
            status=status(job),
            status_url=url_for("JobView.status_json", pk=job.id),
            can_cancel=job.state == JobState.queued and _may_cancel(job, g.user),
        )

    @expose("/<int:pk>/cancel", methods=["POST"])
    def cancel(self, pk: int) -> Any:
        """Whoever asked (or an Admin) may withdraw a job that has not started yet."""
        if (away := self._signed_in()) is not None:
            return away
        job = self._visible(pk)
        if not _may_cancel(job, g.user):
            abort(404)
        if cancel(db.session, job.id, g.user.username):
            flash(gettext("The job was cancelled before it started; nothing was done."), "success")
        else:
            flash(gettext("The job had already started, so it was not cancelled; it runs to its end."), "warning")
        return redirect(url_for("JobView.show", pk=pk))

    @expose("/<int:pk>/status.json")
    def status_json(self, pk: int) -> Any:
        if current_user_or_none() is None:
            abort(404)
        response = jsonify(status(self._visible(pk)))
        response.headers["Cache-Control"] = "no-store"
        return response


def _may_cancel(job: Job, user: Any) -> bool:
    return job.requested_by_id == user.id or "Admin" in user_role_names(user)


def _grant_references(jobs: list[Job]) -> dict[int, str]:
    ids = {job.grant_id for job in jobs if job.grant_id is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(Grant.id, Grant.reference).where(Grant.id.in_(ids))).tuples().all())


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(JobView)
    appbuilder.add_link(N_("Jobs"), href="/jobs/", icon="fa-tasks", category=N_("Reports"))


__all__ = ["JobState", "JobView", "init_jobs", "register", "status", "visible_jobs_query"]
