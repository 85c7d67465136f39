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
from wtforms import DateField, FileField, SelectField, SelectMultipleField, StringField
from wtforms.validators import NumberRange
from wtforms.validators import Optional as OptionalValue

from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, lazy_gettext
from core.formatting import gettext as _
from core.storage import BlobCorrupted, BlobNotFound, file_store
from grants.access import GrantScopedViewMixin, ValidatedViewMixin, current_user_or_none, flash_domain_error
from grants.evidence import attach, sensitivity, services, uploads
from grants.evidence.models import (
    ATTENDANCE,
    DEFAULT_SENSITIVITY,
    KIND_LABELS,
    SENSITIVITY_HELP,
    SENSITIVITY_LABELS,
    Consultation,
    CoordinatingBody,
    Evidence,
    EvidenceKind,
    EvidenceLink,
    Sensitivity,
    SensitivityRequest,
    VerificationStatus,
)
from grants.evidence.targets import TARGETS, shown_name
from grants.page import Panel, register_panel
from grants.services import visible_grants

PEOPLE_WARNING = N_(
    "This file looks like a list of people (it has a name-like column or rows of names). "
    "Lists of names can endanger the people in them: mark it restricted, or upload counts instead."
)


SENSITIVITY_CHOICES = [(level.value, lazy_gettext(SENSITIVITY_LABELS[level])) for level in Sensitivity]


def _as_sensitivity(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, Sensitivity):
        return value or None
    try:
        return Sensitivity(value)
    except ValueError:
        return value  # the domain rule names the field


def sensitivity_field() -> SelectField:
    """The sensitivity drop-down in words ("Staff only"), staff only preselected."""
    return SelectField(
        lazy_gettext("Who sees it"),
        choices=SENSITIVITY_CHOICES,
        coerce=_as_sensitivity,
        default=DEFAULT_SENSITIVITY.value,
        description=lazy_gettext(
            "Shared with donors: donors and exports too. Staff only: staff and auditors of the grant. "
            "Restricted: lowering it later needs a second person's approval."
        ),
    )


def max_upload_bytes() -> int:
    return int(current_app.config.get("EVIDENCE_MAX_BYTES", uploads.DEFAULT_MAX_BYTES))


# FAB creates view blueprints relative to its own package: give ours by absolute path.
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


class FilterVisibleEvidence(BaseFilter):
    """Evidence the signed-in user may see: their grants, and for donors only what is shared with donors."""

    name = lazy_gettext("Visible to me")
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        return query.filter(services.visible_evidence_clause(current_user_or_none()))


EVIDENCE_FILTERS = [["id", FilterVisibleEvidence, lambda: None]]


# How the link drop-down names each group of records (kinds other packages add fall back to their label).
TARGET_GROUPS = {
    "indicator": lazy_gettext("Indicators"),
    "indicator_result": lazy_gettext("Indicator results"),
    "budget_line": lazy_gettext("Budget lines"),
    "expenditure": lazy_gettext("Expenditures"),
    "consultation": lazy_gettext("Consultations"),
    "requirement": lazy_gettext("Requirements"),
}


def link_candidates(session: Any, evidence: Evidence) -> list[tuple[str, list[tuple[str, str]]]]:
    """What the evidence could support, grouped by kind: only records of its own grant, and only kinds
    the user may read (no expenditures for someone who cannot see spending)."""
    sm = current_app.appbuilder.sm
    readable = {"indicator": "Indicators", "indicator_result": "IndicatorResults", "budget_line": "BudgetLines"}
    readable |= {"expenditure": "Expenditures", "consultation": "Consultations", "requirement": "Requirements"}
    groups: list[tuple[str, list[tuple[str, str]]]] = []
    linked = {(link.target_kind, link.target_id) for link in evidence.links}
    for kind, target in TARGETS.items():
        if kind in readable and not sm.has_access("can_list", readable[kind]):
            continue
        model = target.model
        rows = session.scalars(select(model).where(model.grant_id == evidence.grant_id).order_by(model.id).limit(300))
        options = [(f"{kind}:{row.id}", shown_name(row)) for row in rows if (kind, row.id) not in linked]
        if options:
            groups.append((str(TARGET_GROUPS.get(kind, target.label.capitalize() + "s")), options))
    return groups


class EvidenceView(GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Evidence)
    class_permission_name = "Evidence"
    route_base = "/evidence"
    list_title = lazy_gettext("Evidence")
    show_template = "evidence/show.html"
    list_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "status"]
    show_fieldsets = [
        (
            lazy_gettext("Evidence"),
            {"fields": ["grant", "title", "kind", "evidence_date", "sensitivity", "description"]},
        ),
        (lazy_gettext("Verification"), {"fields": ["status", "verified_by", "verified_at", "verification_comment"]}),
        (lazy_gettext("Upload"), {"fields": ["uploaded_by", "uploaded_at"], "expanded": False}),
    ]
    edit_columns = ["title", "kind", "evidence_date", "sensitivity", "description"]
    search_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "status"]
    order_columns = ["title", "kind", "evidence_date", "sensitivity", "status"]
    base_order = ("evidence_date", "desc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "title": lazy_gettext("Title"),
        "description": lazy_gettext("Description"),
        "evidence_date": lazy_gettext("Date"),
        "kind": lazy_gettext("Kind"),
        "status": lazy_gettext("Verification"),
        "sensitivity": lazy_gettext("Who sees it"),
        "verified_by": lazy_gettext("Verified by"),
        "verified_at": lazy_gettext("Verified at"),
        "verification_comment": lazy_gettext("Verification comment"),
        "uploaded_by": lazy_gettext("Uploaded by"),
        "uploaded_at": lazy_gettext("Uploaded at"),
    }
    edit_form_extra_fields = {"sensitivity": sensitivity_field()}
    search_form_extra_fields = {"sensitivity": SelectField(lazy_gettext("Who sees it"), choices=SENSITIVITY_CHOICES)}
    method_permission_name = {
        "verify": "edit",
        "add_link": "edit",
        "remove_link": "edit",
        "request_sensitivity": "edit",
        "decide_sensitivity": "edit",
    }

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
                    raise DomainValidationError({"grant": [_("choose a grant you have access to")]})
                evidence = services.create_evidence(
                    db.session,
                    file_store(),
                    grant=grant_id,
                    title=form.get("title", ""),
                    kind=form.get("kind", ""),
                    evidence_date=day,
                    sensitivity=form.get("sensitivity") or DEFAULT_SENSITIVITY.value,
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
                flash(
                    _("Evidence '%(title)s' saved; it awaits verification by someone else.", title=evidence.title),
                    "success",
                )
                if evidence.looks_like_people_list and evidence.sensitivity != Sensitivity.restricted:
                    flash(_(PEOPLE_WARNING), "warning")
                return redirect(url_for("EvidenceView.show", pk=evidence.id))
        return self.render_template(
            "evidence/upload.html",
            title=_("Add evidence"),
            grants=grants,
            form=form,
            kinds=[(k.value, KIND_LABELS[k]) for k in EvidenceKind],
            sensitivities=[(level.value, level.label, SENSITIVITY_HELP[level]) for level in Sensitivity],
            default_sensitivity=DEFAULT_SENSITIVITY.value,
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
        pending = sensitivity.pending_request(db.session, evidence)
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
            people_warning=_(PEOPLE_WARNING) if evidence.looks_like_people_list else None,
            pending=pending,
            pending_text=sensitivity.describe(pending) if pending else "",
            may_decide=pending is not None and can_edit and sensitivity.may_decide(db.session, pending, g.user) is None,
            lower_levels=[
                (value, label) for value, label in SENSITIVITY_CHOICES if value != Sensitivity.restricted.value
            ]
            if can_edit and evidence.sensitivity == Sensitivity.restricted and pending is None
            else [],
        )

    @expose("/<int:pk>/sensitivity-request", methods=["POST"])
    @has_access
    def request_sensitivity(self, pk: int) -> Any:
        """Ask for a restricted item to be seen by more people (another person decides)."""
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        if evidence is None:
            abort(404)
        try:
            sensitivity.request_lowering(
                db.session, evidence, request.form.get("to_level", ""), g.user, request.form.get("reason")
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(
                _("Request recorded: another Admin, or a Finance or Program member of the grant, decides."), "success"
            )
        return redirect(url_for("EvidenceView.show", pk=pk))

    @expose("/<int:pk>/sensitivity-request/<int:request_id>", methods=["POST"])
    @has_access
    def decide_sensitivity(self, pk: int, request_id: int) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        asked = db.session.get(SensitivityRequest, request_id)
        if evidence is None or asked is None or asked.evidence_id != evidence.id:
            abort(404)
        approve = request.form.get("decision") == "approve"
        try:
            sensitivity.decide(db.session, asked, g.user, approve, request.form.get("comment"))
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(
                _("Approved: the item is now %(level)s.", level=evidence.sensitivity_label.lower())
                if approve
                else _("Request rejected."),
                "success",
            )
        return redirect(url_for("EvidenceView.show", pk=pk))

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
            flash(_("Evidence marked %(status)s.", status=evidence.status_label), "success")
        return redirect(url_for("EvidenceView.show", pk=pk))

    @expose("/<int:pk>/links", methods=["POST"])
    @has_access
    def add_link(self, pk: int) -> Any:
        evidence = services.get_visible_evidence(db.session, g.user, pk)
        if evidence is None:
            abort(404)
        kind, _colon, target_id = (request.form.get("target") or "").partition(":")
        try:
            services.link_evidence(db.session, evidence, kind, target_id, g.user, request.form.get("note"))
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(_("Link saved."), "success")
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
        flash(_("Link removed."), "success")
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
        if item.looks_like_people_list and item.sensitivity != Sensitivity.restricted:
            flash(_(PEOPLE_WARNING), "warning")

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
    list_title = lazy_gettext("Coordinating bodies")
    list_columns = ["code", "name"]
    add_columns = edit_columns = show_columns = ["code", "name", "description"]
    search_columns = ["code", "name"]


ATTENDANCE_COLUMNS = [f"attendance_{key}" for key in ATTENDANCE]


def _consultation_evidence_choices() -> list[tuple[str, str]]:
    """Evidence the meeting form offers to attach: of the meeting's grant (when editing) or of the
    grants the user sees, each named with its grant; only what the user may see."""
    user = current_user_or_none()
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    pk = (request.view_args or {}).get("pk")
    meeting = db.session.get(Consultation, int(pk)) if pk and str(pk).isdigit() else None
    grant_ids = [meeting.grant_id] if meeting is not None else [gr.id for gr in visible_grants(db.session, user)]
    linked = (
        {e.id for e in services.evidence_for_target(db.session, user, "consultation", meeting.id)} if meeting else set()
    )
    choices = []
    for grant_id in grant_ids:
        for item in attach.candidates(db.session, user, grant_id, linked):
            choices.append(
                (str(item.id), f"{item.grant.reference} · {item.title} ({item.kind_label}, {item.evidence_date})")
            )
    return choices


CONSULTATION_EVIDENCE_FIELDS = {
    "evidence": SelectMultipleField(
        lazy_gettext("Attach evidence already uploaded"),
        choices=_consultation_evidence_choices,
        validate_choice=False,
        description=lazy_gettext("Only evidence of the meeting's grant is attached; others are refused."),
    ),
    "evidence_file": FileField(
        lazy_gettext("…or upload minutes or attendance counts"),
        description=lazy_gettext("Counts, never lists of names"),
    ),
    "evidence_title": StringField(lazy_gettext("Title of the uploaded evidence")),
    "evidence_kind": SelectField(
        lazy_gettext("Kind"),
        choices=[(k.value, KIND_LABELS[k]) for k in EvidenceKind],
        default=EvidenceKind.minutes.value,
    ),
    "evidence_date": DateField(lazy_gettext("Date of the document"), validators=[OptionalValue()]),
    "evidence_sensitivity": SelectField(
        lazy_gettext("Who sees it"), choices=SENSITIVITY_CHOICES, default=DEFAULT_SENSITIVITY.value
    ),
}
EVIDENCE_COLUMNS = list(CONSULTATION_EVIDENCE_FIELDS)


class ConsultationView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Consultation)
    class_permission_name = "Consultations"
    route_base = "/consultations"
    list_title = lazy_gettext("Consultations")
    show_template = "evidence/consultation_show.html"
    list_columns = ["grant", "body", "held_on", "title", "attendance_sex_workers", "total"]
    show_fieldsets = [
        (lazy_gettext("Meeting"), {"fields": ["grant", "body", "held_on", "title", "location"]}),
        (lazy_gettext("Agenda and decisions"), {"fields": ["agenda", "decisions"]}),
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
        *EVIDENCE_COLUMNS,
    ]
    add_form_extra_fields = edit_form_extra_fields = CONSULTATION_EVIDENCE_FIELDS
    search_columns = ["grant", "body", "held_on", "title"]
    order_columns = ["held_on", "title"]
    base_order = ("held_on", "desc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "body": lazy_gettext("Coordinating body"),
        "title": lazy_gettext("Title"),
        "location": lazy_gettext("Location"),
        "agenda": lazy_gettext("Agenda"),
        "decisions": lazy_gettext("Decisions"),
        "held_on": lazy_gettext("Held on"),
        "total": lazy_gettext("Attendance"),
        **{
            f"attendance_{key}": lazy_gettext("%(constituency)s (count)", constituency=lazy_gettext(label))
            for key, label in ATTENDANCE.items()
        },
    }
    description_columns = {
        f"attendance_{key}": lazy_gettext("How many attended; never record names") for key in ATTENDANCE
    }
    validators_columns = {column: [OptionalValue(), NumberRange(min=0)] for column in ATTENDANCE_COLUMNS}

    # The evidence boxes are not columns: FAB's hooks attach them in the same commit as the meeting.
    def pre_add(self, item: Consultation) -> None:
        super().pre_add(item)
        self._attach(item)

    def pre_update(self, item: Consultation) -> None:
        super().pre_update(item)
        self._attach(item)

    def _attach(self, item: Consultation) -> None:
        for name in EVIDENCE_COLUMNS:
            item.__dict__.pop(name, None)  # populate_obj set them as plain attributes
        chosen = request.form.getlist("evidence")
        new = attach.new_evidence_from(request.form, request.files)
        if not chosen and not new.given:
            return
        if not self.appbuilder.sm.has_access("can_add", "Evidence"):
            raise DomainValidationError({"evidence": [_("you may not add evidence")]})
        try:
            db.session.add(item)
            db.session.flush()
            attach.attach_evidence(
                db.session,
                file_store(),
                target_kind="consultation",
                target_id=item.id,
                grant_id=item.grant_id,
                user=current_user_or_none(),
                existing=chosen,
                new=new,
                max_bytes=max_upload_bytes(),
            )
        except Exception:
            db.session.rollback()  # so the form page can still render
            raise

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
            attendance_labels={key: _(label) for key, label in ATTENDANCE.items()},
            evidence=services.evidence_for_target(db.session, g.user, "consultation", consultation.id),
            can_add_evidence=self.appbuilder.sm.has_access("can_add", "Evidence"),
        )


def evidence_panel(session: Any, grant: Any, user: Any) -> Panel | None:
    """The grant page's evidence panel: what the user may see, by verification status."""
    counts = services.evidence_counts(session, user, grant.id)
    consultations = session.scalar(select(func.count(Consultation.id)).where(Consultation.grant_id == grant.id))
    rows = [
        (_("Verified"), counts.get(VerificationStatus.verified.value, 0)),
        (_("Awaiting verification"), counts.get(VerificationStatus.submitted.value, 0)),
        (_("Rejected"), counts.get(VerificationStatus.rejected.value, 0)),
        (_("Consultations recorded"), consultations or 0),
    ]
    links = Markup('<a href="{}">{}</a>').format(
        url_for("ConsultationView.list", _flt_0_grant=grant.id), _("Consultations")
    )
    if current_app.appbuilder.sm.has_access("can_add", "Evidence"):  # no link a user cannot follow
        links += Markup(' · <a href="{}">{}</a>').format(
            url_for("EvidenceView.add", grant_id=grant.id), _("Add evidence")
        )
    return Panel(
        N_("Evidence"),  # the panel's key (data-panel); the grant page translates it
        30,
        rows=rows,
        html=links,
        link=(_("All evidence"), url_for("EvidenceView.list", _flt_0_grant=grant.id)),
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(EvidenceView, N_("Evidence"), icon="fa-paperclip", category=N_("Compliance"))
    appbuilder.add_view(ConsultationView, N_("Consultations"), icon="fa-comments", category="Compliance")
    appbuilder.add_view(CoordinatingBodyView, N_("Coordinating bodies"), icon="fa-sitemap", category="Compliance")
    register_panel(evidence_panel)
