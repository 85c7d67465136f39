"""Web views for funder templates (upload, inspect, map), generated files, and donor downloads."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import select

from core.audit import Actor, acting_as
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, lazy_gettext
from core.formatting import gettext as _
from core.jobs import JobAlreadyRunning, queue_of
from core.storage import StorageError, file_store
from exports import closing, mapper_views, services
from exports.datasets import catalogue
from exports.models import ExportRecord, FunderTemplate
from grants.access import (
    GrantScopedViewMixin,
    ValidatedViewMixin,
    current_user_or_none,
    flash_domain_error,
    guard_download,
)
from grants.models import Funder, Grant, ReportingPeriod
from grants.page import Panel, register_panel
from grants.services import can_see_grant, is_read_only, visible_grant_ids_query

TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def _username() -> str | None:
    user = current_user_or_none()
    return user.username if user else None


def donor_only(user: Any) -> bool:
    names = {role.name for role in getattr(user, "roles", None) or []}
    return bool(names) and names <= {"Donor"}


class FilterExportsVisible(BaseFilter):
    """Exports of grants the user sees; a Donor sees only what was published to them."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        user = current_user_or_none()
        visible = visible_grant_ids_query(user)
        if visible is not None:
            query = query.filter(ExportRecord.grant_id.in_(visible))
        if user is None or donor_only(user):
            query = query.filter(ExportRecord.published.is_(True))
        return query


def exports_query_for(user: Any):
    query = select(ExportRecord)
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(ExportRecord.grant_id.in_(visible))
    if user is None or donor_only(user):
        query = query.where(ExportRecord.published.is_(True))
    return query


class ExportRecordView(GrantScopedViewMixin, ModelView):
    """Export history: every generated file, who made it, when, from which template version."""

    datamodel = SQLAInterface(ExportRecord)
    template_folder = TEMPLATES
    class_permission_name = "ExportRecords"
    route_base = "/exports"
    list_title = lazy_gettext("Export history")
    base_permissions = ["can_list", "can_show", "can_edit"]
    list_columns = ["created_at", "grant", "period", "report", "filename", "created_by", "published", "download"]
    show_columns = [
        "created_at",
        "grant",
        "period",
        "kind",
        "report",
        "template_version",
        "filename",
        "sha256",
        "size",
        "created_by",
        "published",
        "published_by",
        "published_at",
        "note",
        "download",
    ]
    search_columns = ["grant", "report", "created_at", "published", "created_by"]
    order_columns = ["created_at", "report", "filename"]
    base_order = ("created_at", "desc")
    edit_columns = ["note"]
    label_columns = {
        "sha256": lazy_gettext("SHA-256"),
        "created_at": lazy_gettext("Generated (UTC)"),
        "size": lazy_gettext("Bytes"),
    }
    formatters_columns = {
        "download": lambda pk: Markup('<a class="btn btn-xs btn-default" href="{}">Download</a>').format(
            url_for("ExportRecordView.file", pk=pk)
        ),
    }
    method_permission_name = {"publish": "edit", "unpublish": "edit", "generate": "edit", "file": "show"}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        """Says in words whether the donors have the file, with Publish / Unpublish (exports.closing)."""
        return closing.export_show(self, pk)

    @expose("/file/<int:pk>")
    @has_access
    def file(self, pk: int) -> Any:
        record = self.datamodel.get(pk, self._base_filters)
        guard_download(record)
        try:
            data = services.export_bytes(file_store(), record)
        except StorageError:
            abort(410)
        response = send_file(
            io.BytesIO(data), mimetype=services.media_type(record), as_attachment=True, download_name=record.filename
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @expose("/<int:pk>/publish", methods=["POST"])
    @has_access
    def publish(self, pk: int) -> Any:
        record = self.datamodel.get(pk, self._base_filters)
        if record is None:
            abort(404)
        try:
            services.publish(db.session, record, user=_username())
            db.session.commit()
            flash(
                _(
                    "%(file)s is now visible to the donor users of %(grant)s",
                    file=record.filename,
                    grant=record.grant.reference,
                ),
                "success",
            )
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        return redirect(request.referrer or url_for("ExportRecordView.list"))

    @expose("/<int:pk>/unpublish", methods=["POST"])
    @has_access
    def unpublish(self, pk: int) -> Any:
        record = self.datamodel.get(pk, self._base_filters)
        if record is None:
            abort(404)
        try:
            services.unpublish(db.session, record, user=_username(), reason=request.form.get("reason", ""))
            db.session.commit()
            flash(_("%(file)s is no longer visible to donors", file=record.filename), "success")
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        return redirect(request.referrer or url_for("ExportRecordView.list"))

    @expose("/generate/<int:grant_id>", methods=["POST"])
    @has_access
    def generate(self, grant_id: int) -> Any:
        """The grant page's export button: fill a funder template or build a built-in report."""
        grant = db.session.get(Grant, grant_id)
        if grant is None or not can_see_grant(db.session, current_user_or_none(), grant_id):
            abort(404)
        back = url_for("GrantView.show", pk=grant_id)
        period = None
        if request.form.get("period"):
            period = db.session.get(ReportingPeriod, int(request.form["period"]))
            if period is None or period.grant_id != grant.id:
                flash(_("period: is not a period of this grant"), "danger")
                return redirect(back)
        choice = request.form.get("report", "")
        if choice.startswith("template:") and request.form.get("recompute") == "1":
            # LibreOffice may take two minutes: off the request (core.jobs); the job's page follows it.
            return _start_export_job(grant, period, choice, back)
        try:
            with acting_as(Actor(getattr(g.user, "id", None), _username() or "web", "web")):
                if choice.startswith("template:"):
                    template = db.session.get(FunderTemplate, int(choice.split(":", 1)[1]))
                    if template is None:
                        raise DomainValidationError({"report": ["choose a template"]})
                    record = services.run_export(
                        db.session,
                        file_store(),
                        grant=grant,
                        period=period,
                        user=_username(),
                        template=template,
                        recompute=request.form.get("recompute") == "1",
                    )
                else:
                    record = services.run_export(
                        db.session,
                        file_store(),
                        grant=grant,
                        period=period,
                        user=_username(),
                        builtin=choice.removeprefix("builtin:"),
                    )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
            return redirect(back)
        flash(
            Markup(_('Generated %(file)s — <a href="%(url)s">download</a>'))
            % {"file": record.filename, "url": url_for("ExportRecordView.file", pk=record.id)},
            "success",
        )
        return redirect(back)


def _start_export_job(grant: Grant, period: ReportingPeriod | None, choice: str, back: str) -> Any:
    template_id = choice.split(":", 1)[1]
    if not template_id.isdigit() or db.session.get(FunderTemplate, int(template_id)) is None:
        flash(_("report: choose a template"), "danger")
        return redirect(back)
    params = {
        "grant_id": grant.id,
        "period_id": period.id if period is not None else None,
        "template_id": int(template_id),
        "recompute": True,
        "user": _username(),
    }
    try:
        job = queue_of(current_app).submit(db.session, "export", grant.id, params, current_user_or_none())
    except JobAlreadyRunning as exc:
        flash(exc.summary().removeprefix("job: "), "warning")
        return redirect(url_for("JobView.show", pk=exc.job_id) if exc.job_id else back)
    return redirect(url_for("JobView.show", pk=job.id))


# Not a GrantScopedViewMixin subclass hook: the donor rule needs its own filter.
ExportRecordView.base_filters = [["id", FilterExportsVisible, lambda: None]]


class FunderTemplateView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(FunderTemplate)
    template_folder = TEMPLATES
    class_permission_name = "FunderTemplates"
    route_base = "/funder-templates"
    list_title = lazy_gettext("Funder templates")
    show_template = "exports/template_show.html"
    list_columns = ["funder", "name", "description"]
    add_columns = edit_columns = ["funder", "name", "description"]
    show_columns = ["funder", "name", "description"]
    search_columns = ["funder", "name"]
    method_permission_name = {
        "upload": "add",
        "ready": "add",
        "mapping": "edit",
        "mapper": "edit",
        "preview": "edit",
        "export_mapping": "show",
        "inspect": "show",
        "file": "show",
    }
    # Program leads see and choose only the funders of the grants they belong to (exports.mapper_views).
    base_filters = [["id", mapper_views.FilterTemplatesVisible, lambda: None]]
    add_form_query_rel_fields = edit_form_query_rel_fields = {
        "funder": [["id", mapper_views.FilterFundersVisible, lambda: None]]
    }

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        template = self.datamodel.get(pk, self._base_filters)
        if template is None:
            abort(404)
        return self.render_template(
            self.show_template,
            funder_template=template,
            title=_("Template: %(template)s", template=repr(template)),
            can_edit=self.appbuilder.sm.has_access("can_edit", "FunderTemplates"),
        )

    @expose("/upload", methods=["GET", "POST"])
    @has_access
    def upload(self) -> Any:
        funders = mapper_views.visible_funders()
        if request.method == "POST":
            upload = request.files.get("file")
            funder = db.session.get(Funder, int(request.form.get("funder") or 0))
            try:
                if funder is None or not mapper_views.funder_allowed(funder):
                    raise DomainValidationError({"funder": ["choose one of the funders of your grants"]})
                if upload is None or not upload.filename:
                    raise DomainValidationError({"file": ["choose an .xlsx or .xlsm file"]})
                version = services.upload_template(
                    db.session,
                    file_store(),
                    funder=funder,
                    name=request.form.get("name", ""),
                    filename=upload.filename,
                    data=upload.read(services.TEMPLATE_MAX_BYTES + 1),
                    user=_username(),
                    description=request.form.get("description") or None,
                    mapping_text=request.form.get("mapping") or None,
                )
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                flash_domain_error(exc)
            else:
                flash(_("Uploaded %(version)s", version=repr(version)), "success")
                return redirect(url_for("FunderTemplateView.inspect", version_id=version.id))
        return self.render_template(
            "exports/upload.html", funders=funders, title=_("Upload a funder template"), form=request.form
        )

    @expose("/ready", methods=["GET", "POST"])
    @has_access
    def ready(self) -> Any:
        """Use a ready mapping: a real funder template with its mapping, in one click."""
        return mapper_views.ready_page(self)

    @expose("/version/<int:version_id>/mapper", methods=["GET", "POST"])
    @has_access
    def mapper(self, version_id: int) -> Any:
        """The click-a-cell mapper."""
        return mapper_views.mapper_page(self, version_id)

    @expose("/version/<int:version_id>/preview")
    @has_access
    def preview(self, version_id: int) -> Any:
        return mapper_views.preview_json(version_id)

    @expose("/version/<int:version_id>/mapping.<fmt>")
    @has_access
    def export_mapping(self, version_id: int, fmt: str) -> Any:
        if fmt not in ("yaml", "json"):
            abort(404)
        return mapper_views.export_mapping(version_id, fmt)

    @expose("/version/<int:version_id>/inspect")
    @has_access
    def inspect(self, version_id: int) -> Any:
        version = mapper_views.version_or_404(version_id)
        info = services.inspect_version(file_store(), version)
        return self.render_template(
            "exports/inspect.html",
            version=version,
            info=info,
            title=_("Inspect %(version)s", version=repr(version)),
            catalogue=catalogue(),
        )

    @expose("/version/<int:version_id>/mapping", methods=["GET", "POST"])
    @has_access
    def mapping(self, version_id: int) -> Any:
        version = mapper_views.version_or_404(version_id)
        text = version.mapping_text or ""
        if request.method == "POST":
            text = request.form.get("mapping", "")
            imported = request.files.get("mapping_file")
            if imported is not None and imported.filename:
                # Import: the YAML or JSON file a mapping was exported to, checked like typed text.
                text = imported.read(1_000_001).decode("utf-8", errors="replace")
            try:
                services.set_mapping(db.session, file_store(), version, text)
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                flash_domain_error(exc)
            else:
                flash(_("Mapping saved"), "success")
                return redirect(url_for("FunderTemplateView.show", pk=version.template_id))
        return self.render_template(
            "exports/mapping.html",
            version=version,
            text=text,
            catalogue=catalogue(),
            title=_("Mapping of %(version)s", version=repr(version)),
        )

    @expose("/version/<int:version_id>/file")
    @has_access
    def file(self, version_id: int) -> Any:
        version = mapper_views.version_or_404(version_id)
        data = services.template_bytes(file_store(), version)
        response = send_file(
            io.BytesIO(data), as_attachment=True, download_name=version.filename, mimetype="application/octet-stream"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def exports_panel(session: Any, grant: Grant, user: Any) -> Panel | None:
    from flask import render_template

    sm = current_app.appbuilder.sm
    if not sm.has_access("can_list", "ExportRecords"):
        return None
    records = list(
        session.scalars(
            exports_query_for(user)
            .where(ExportRecord.grant_id == grant.id)
            .order_by(ExportRecord.created_at.desc())
            .limit(8)
        )
    )
    html = render_template(
        "exports/grant_panel.html",
        grant=grant,
        records=records,
        can_generate=sm.has_access("can_edit", "ExportRecords") and not is_read_only(user),
        templates=services.templates_for_grant(session, grant),
        builtins=services.available_builtin_reports(),
    )
    return Panel(
        title="Reports for the donor",
        order=90,
        html=Markup(html),
        link=("History", url_for("ExportRecordView.list", _flt_0_grant=grant.id)),
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(ExportRecordView, N_("Export history"), icon="fa-file-excel-o", category=N_("Reports"))
    appbuilder.add_view(FunderTemplateView, N_("Funder templates"), icon="fa-table", category="Reports")
    appbuilder.add_link(N_("Upload a template"), href="/funder-templates/upload", icon="fa-upload", category="Reports")
    appbuilder.add_link(N_("Use a ready mapping"), href="/funder-templates/ready", icon="fa-magic", category="Reports")
    current_app.register_blueprint(mapper_views.assets_blueprint())
    register_panel(exports_panel)
    closing.register(appbuilder)
