"""Web views for evidence (upload, download, verification, links), coordinating bodies and consultations."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms.validators import NumberRange
from wtforms.validators import Optional as OptionalValue

from core.errors import DomainValidationError
from core.extensions import db
from core.storage import BlobCorrupted, BlobNotFound, file_store
from grants.access import GrantScopedViewMixin, ValidatedViewMixin, current_user_or_none, flash_domain_error
from grants.evidence import services, uploads
from grants.evidence.models import (
    ATTENDANCE,
    KIND_LABELS,
    Consultation,
    CoordinatingBody,
    Evidence,
    EvidenceKind,
    EvidenceLink,
    Sensitivity,
    VerificationStatus,
)
from grants.evidence.targets import TARGETS
from grants.page import Panel, register_panel
from grants.services import visible_grants

PEOPLE_WARNING = (
    "This file looks like a list of people (it has a name-like column or rows of names). "
    "Lists of names can endanger the people in them: mark it confidential, or upload counts instead."
)


def max_upload_bytes() -> int:
    return int(current_app.config.get("EVIDENCE_MAX_BYTES", uploads.DEFAULT_MAX_BYTES))


# FAB creates view blueprints relative to its own package: give ours by absolute path.
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


class FilterVisibleEvidence(BaseFilter):
    """Evidence the signed-in user may see: their grants, and nothing confidential for donors."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        return query.filter(services.visible_evidence_clause(current_user_or_none()))


EVIDENCE_FILTERS = [["id", FilterVisibleEvidence, lambda: None]]


def link_candidates(session: Any, evidence: Evidence) -> list[tuple[str, str]]:
    """(value "kind:id", label) of the records of the evidence's grant it could support."""
    options: list[tuple[str, str]] = []
    linked = {(link.target_kind, link.target_id) for link in evidence.links}
    for kind, target in TARGETS.items():
        model, label = target.model, target.label
        rows = session.scalars(select(model).where(model.grant_id == evidence.grant_id).order_by(model.id).limit(300))
        for row in rows:
            if (kind, row.id) not in linked:
                options.append((f"{kind}:{row.id}", f"{label}: {row}"))
    return options


class EvidenceView(GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Evidence)
    class_permission_name = "Evidence"
    route_base = "/evidence"
    list_title = "Evidence"
    show_template = "evidence/show.html"
    list_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "status"]
    show_fieldsets = [
        ("Evidence", {"fields": ["grant", "title", "kind", "evidence_date", "sensitivity", "description"]}),
        ("Verification", {"fields": ["status", "verified_by", "verified_at", "verification_comment"]}),
        ("Upload", {"fields": ["uploaded_by", "uploaded_at"], "expanded": False}),
    ]
    edit_columns = ["title", "kind", "evidence_date", "sensitivity", "description"]
    search_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "status"]
    order_columns = ["title", "kind", "evidence_date", "sensitivity", "status"]
    base_order = ("evidence_date", "desc")
    label_columns = {"evidence_date": "Date", "kind": "Kind", "status": "Verification"}
    method_permission_name = {"verify": "edit", "add_link": "edit", "remove_link": "edit"}

    # ------------------------------------------------------------ upload (replaces the stock add form)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        grants = [gr for gr in visible_grants(db.session, g.user)]
        form = request.form
        if request.method == "POST":
            upload = request.files.get("file")
            if upload is not None and not upload.filename:
                upload = None  # an empty file field: nothing was uploaded
            try:
                grant_id = int(form.get("grant_id", ""))
            except ValueError:
                grant_id = None
            try:
                day = date.fromisoformat(form.get("evidence_date", ""))
            except ValueError:
                day = None
            try:
                if grant_id not in {gr.id for gr in grants}:
                    raise DomainValidationError({"grant": ["choose a grant you have access to"]})
                evidence = services.create_evidence(
                    db.session,
                    file_store(),
                    grant=grant_id,
                    title=form.get("title", ""),
                    kind=form.get("kind", ""),
                    evidence_date=day,
                    sensitivity=form.get("sensitivity", Sensitivity.internal.value),
                    uploaded_by=g.user,
                    content=upload.stream if upload is not None else None,
                    filename=upload.filename if upload is not None else None,
                    url=form.get("url"),
                    description=form.get("description") or None,
                    max_bytes=max_upload_bytes(),
                )
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                flash_domain_error(exc)
            else:
                flash(f"Evidence '{evidence.title}' saved; it awaits verification by someone else.", "success")
                if evidence.looks_like_people_list and evidence.sensitivity != Sensitivity.confidential:
                    flash(PEOPLE_WARNING, "warning")
                return redirect(url_for("EvidenceView.show", pk=evidence.id))
        return self.render_template(
            "evidence/upload.html",
            title="Add evidence",
            grants=grants,
            form=form,
            kinds=[(k.value, KIND_LABELS[k]) for k in EvidenceKind],
            sensitivities=[s.value for s in Sensitivity],
            max_mb=max_upload_bytes() / (1024 * 1024),
            preselect=request.args.get("grant_id", type=int),
        )

    # ------------------------------------------------------------ show with links and verification

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        if evidence is None:
            abort(404)
        widgets = self._show(pk)
        can_edit = self.appbuilder.sm.has_access("can_edit", "Evidence")
        return self.render_template(
            self.show_template,
            pk=pk,
            title=str(evidence),
            widgets=widgets,
            related_views=self._related_views,
            evidence=evidence,
            links=services.describe_links(db.session, evidence),
            can_edit=can_edit,
            candidates=link_candidates(db.session, evidence) if can_edit else [],
            can_verify=can_edit and evidence.uploaded_by_id != g.user.id,
            people_warning=PEOPLE_WARNING if evidence.looks_like_people_list else None,
        )

    @expose("/<int:pk>/verify", methods=["POST"])
    @has_access
    def verify(self, pk: int) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        if evidence is None:
            abort(404)
        try:
            services.verify_evidence(
                db.session, evidence, g.user, request.form.get("decision", ""), request.form.get("comment")
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(f"Evidence marked {evidence.status.value}.", "success")
        return redirect(url_for("EvidenceView.show", pk=pk))

    @expose("/<int:pk>/links", methods=["POST"])
    @has_access
    def add_link(self, pk: int) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        if evidence is None:
            abort(404)
        kind, _, target_id = (request.form.get("target") or "").partition(":")
        try:
            services.link_evidence(db.session, evidence, kind, target_id, g.user, request.form.get("note"))
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash("Link saved.", "success")
        return redirect(url_for("EvidenceView.show", pk=pk))

    @expose("/<int:pk>/links/<int:link_id>/delete", methods=["POST"])
    @has_access
    def remove_link(self, pk: int, link_id: int) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        link = db.session.get(EvidenceLink, link_id)
        if evidence is None or link is None or link.evidence_id != evidence.id:
            abort(404)
        services.unlink_evidence(db.session, link)
        db.session.commit()
        flash("Link removed.", "success")
        return redirect(url_for("EvidenceView.show", pk=pk))

    # ------------------------------------------------------------ download: the only way to the bytes

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Any:
        """Serve an evidence file by record id, after the same row rules as list and show (FAB.md trap 6)."""
        if not filename.isdigit():
            abort(404)  # never by checksum or stored name: only through a record the user may see
        evidence = services.get_visible_evidence(db.session, g.user, filename)
        if evidence is None or not evidence.sha256:
            abort(404)
        try:
            stream = services.read_evidence_file(file_store(), evidence)
        except BlobNotFound:
            abort(404)
        except BlobCorrupted as exc:
            flash(str(exc), "danger")
            return redirect(url_for("EvidenceView.show", pk=evidence.id))
        response = send_file(
            stream,
            mimetype=evidence.content_type or "application/octet-stream",
            as_attachment=True,
            download_name=evidence.display_name or evidence.file_name or f"evidence-{evidence.id}",
            max_age=0,
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        return response

    def pre_update(self, item: Evidence) -> None:
        super().pre_update(item)
        if item.looks_like_people_list and item.sensitivity != Sensitivity.confidential:
            flash(PEOPLE_WARNING, "warning")

    def pre_delete(self, item: Evidence) -> None:
        # The row is gone (and expired) by post_delete: remember which blob it used, for this request only.
        g.evidence_deleted_sha = services.delete_evidence(db.session, item)

    def post_delete(self, item: Evidence) -> None:
        services.discard_blob_if_unused(db.session, file_store(), g.pop("evidence_deleted_sha", None))


EvidenceView.base_filters = EVIDENCE_FILTERS


class NoStockDownloadMixin:
    """These records hold no files: FAB's stock /download/<filename> must not serve anything (FAB.md trap 6)."""

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Any:
        abort(404)


class CoordinatingBodyView(NoStockDownloadMixin, ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(CoordinatingBody)
    class_permission_name = "CoordinatingBodies"
    route_base = "/coordinating-bodies"
    list_title = "Coordinating bodies"
    list_columns = ["code", "name"]
    add_columns = edit_columns = show_columns = ["code", "name", "description"]
    search_columns = ["code", "name"]


ATTENDANCE_COLUMNS = [f"attendance_{key}" for key in ATTENDANCE]


class ConsultationView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Consultation)
    class_permission_name = "Consultations"
    route_base = "/consultations"
    list_title = "Consultations"
    show_template = "evidence/consultation_show.html"
    list_columns = ["grant", "body", "held_on", "title", "attendance_sex_workers", "total"]
    show_fieldsets = [
        ("Meeting", {"fields": ["grant", "body", "held_on", "title", "location"]}),
        ("Agenda and decisions", {"fields": ["agenda", "decisions"]}),
    ]
    add_columns = edit_columns = [
        "grant",
        "body",
        "held_on",
        "title",
        "location",
        "agenda",
        "decisions",
        *ATTENDANCE_COLUMNS,
    ]
    search_columns = ["grant", "body", "held_on", "title"]
    order_columns = ["held_on", "title"]
    base_order = ("held_on", "desc")
    label_columns = {
        "held_on": "Held on",
        "total": "Attendance",
        **{f"attendance_{key}": f"{label} (count)" for key, label in ATTENDANCE.items()},
    }
    description_columns = {f"attendance_{key}": "How many attended; never record names" for key in ATTENDANCE}
    validators_columns = {column: [OptionalValue(), NumberRange(min=0)] for column in ATTENDANCE_COLUMNS}

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        consultation = self.datamodel.get(pk, self._base_filters)
        if consultation is None:
            abort(404)
        widgets = self._show(pk)
        return self.render_template(
            self.show_template,
            pk=pk,
            title=str(consultation),
            widgets=widgets,
            related_views=self._related_views,
            consultation=consultation,
            attendance_labels=ATTENDANCE,
            evidence=services.evidence_for_target(db.session, g.user, "consultation", consultation.id),
            can_add_evidence=self.appbuilder.sm.has_access("can_add", "Evidence"),
        )


def evidence_panel(session: Any, grant: Any, user: Any) -> Panel | None:
    """The grant page's evidence panel: what the user may see, by verification status."""
    counts = services.evidence_counts(session, user, grant.id)
    consultations = session.scalar(select(func.count(Consultation.id)).where(Consultation.grant_id == grant.id))
    rows = [
        ("Verified", counts.get(VerificationStatus.verified.value, 0)),
        ("Awaiting verification", counts.get(VerificationStatus.submitted.value, 0)),
        ("Rejected", counts.get(VerificationStatus.rejected.value, 0)),
        ("Consultations recorded", consultations or 0),
    ]
    links = Markup('<a href="{}">Consultations</a> · <a href="{}">Add evidence</a>').format(
        url_for("ConsultationView.list", _flt_0_grant=grant.id), url_for("EvidenceView.add", grant_id=grant.id)
    )
    return Panel(
        "Evidence",
        30,
        rows=rows,
        html=links,
        link=("All evidence", url_for("EvidenceView.list", _flt_0_grant=grant.id)),
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(EvidenceView, "Evidence", icon="fa-paperclip", category="Compliance")
    appbuilder.add_view(ConsultationView, "Consultations", icon="fa-comments", category="Compliance")
    appbuilder.add_view(CoordinatingBodyView, "Coordinating bodies", icon="fa-sitemap", category="Compliance")
    register_panel(evidence_panel)
