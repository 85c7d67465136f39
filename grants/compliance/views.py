"""Web views: requirements, waivers, presets, the compliance matrix and the grant page's compliance panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, lazy_gettext
from core.formatting import gettext as _
from grants.access import GrantScopedViewMixin, flash_domain_error, visible_grants_filter
from grants.compliance import builder, services
from grants.compliance.models import FREQUENCY_LABELS, TITLE_LANGUAGES, TITLE_MAX, Requirement, RequirementWaiver
from grants.compliance.presets import PRESETS
from grants.compliance.rules import STATUS_LABELS, Status
from grants.evidence.models import KIND_LABELS, Consultation, Evidence, EvidenceKind
from grants.evidence.services import visible_evidence, visible_sensitivities
from grants.evidence.targets import TARGETS
from grants.evidence.views import NoStockDownloadMixin
from grants.models import Grant, GrantMembership
from grants.page import Panel, register_panel
from grants.services import can_see_grant, sees_all_grants, visible_grants

# FAB creates view blueprints relative to its own package: give ours by absolute path.
TEMPLATES = str(Path(__file__).resolve().parent / "templates")
# Bootstrap 3 classes for status colours in the matrix.
STATUS_CLASSES = {
    Status.met.value: "success",
    Status.pending.value: "default",
    Status.not_evaluable.value: "active",
    Status.at_risk.value: "warning",
    Status.not_met.value: "danger",
    Status.overdue.value: "danger",
    Status.waived.value: "info",
}

# What the builder form sends besides the rules (which come as rule-N-... rows).
BUILDER_FIELDS = (
    "code",
    "title",
    "category",
    "clause",
    "frequency",
    "due_days",
    "due_date",
    "window_start",
    "window_end",
    "notes",
)
# The title in each other language: form fields "title_es", "title_fr", "title_nl".
TITLE_FIELDS = {language: f"title_{language}" for language in TITLE_LANGUAGES}
TITLE_LABELS = {
    "es": lazy_gettext("Title in Spanish"),
    "fr": lazy_gettext("Title in French"),
    "nl": lazy_gettext("Title in Dutch"),
}


def title_of(requirement: Any) -> str:
    """A requirement's title as the reader sees it: in their language when one was given."""
    return str(requirement.reader_title)


def _or_roll_back(operation: Any, item: Any, **options: Any) -> None:
    """Run a save operation from a FAB hook; when refused, roll back so the form page can still render."""
    try:
        operation(db.session, item, **options)
    except Exception:
        db.session.rollback()
        raise


def visible_grant_or_404(grant_id: int) -> Grant:
    grant = db.session.get(Grant, grant_id)
    if grant is None or not can_see_grant(db.session, g.user, grant.id):
        abort(404)
    return grant


def _owner_choices(user: Any) -> list[tuple[int, str]]:
    """People who may own a requirement: those on the grants the user sees (everyone for Admin/Finance)."""
    from flask_appbuilder.security.sqla.models import User

    query = select(User).order_by(User.first_name, User.last_name, User.username)
    if not sees_all_grants(user):
        grants = select(GrantMembership.grant_id).where(GrantMembership.user_id == user.id)
        members = select(GrantMembership.user_id).where(GrantMembership.grant_id.in_(grants))
        query = query.where((User.id.in_(members)) | (User.id == user.id))
    return [(u.id, f"{u.first_name} {u.last_name}".strip() or u.username) for u in db.session.scalars(query)]


def _form_of(requirement: Requirement) -> MultiDict[str, Any]:
    """A saved requirement as the builder form's fields, so editing starts from what is there."""
    form: MultiDict[str, Any] = MultiDict()
    for name in BUILDER_FIELDS:
        value = getattr(requirement, name)
        form[name] = "" if value is None else getattr(value, "value", value)
    form["owner"] = requirement.owner_id or ""
    for language, name in TITLE_FIELDS.items():
        form[name] = (requirement.titles or {}).get(language, "")
    for name, values in (
        ("expected_evidence", requirement.expected_kinds),
        ("linked_indicators", requirement.indicator_ids),
        ("linked_budget_lines", requirement.budget_line_ids),
    ):
        for value in values:
            form.add(name, value)
    for index, entry in enumerate(requirement.rules or []):
        if not isinstance(entry, dict):
            continue
        name = entry.get("rule", "")
        form[f"rule-{index}-rule"] = name
        for param, value in (entry.get("params") or {}).items():
            key = f"rule-{index}-{name}-{param}"
            if isinstance(value, list):
                for item in value:
                    form.add(key, item)
            elif isinstance(value, bool):
                if value:
                    form[key] = "y"
            else:
                form[key] = value
    return form


class RequirementView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Requirement)
    class_permission_name = "Requirements"
    route_base = "/requirements"
    list_title = lazy_gettext("Requirements")
    show_template = "compliance/requirement_show.html"
    # reader_title: the title in the reader's language when one was given (title stays the stored default).
    list_columns = ["grant", "code", "reader_title", "category", "frequency", "owner"]
    show_fieldsets = [
        (lazy_gettext("Requirement"), {"fields": ["grant", "code", "reader_title", "category", "clause", "owner"]}),
        (lazy_gettext("Notes"), {"fields": ["notes"], "expanded": False}),
    ]
    search_columns = ["grant", "code", "title", "category", "frequency", "owner"]
    order_columns = ["code", "title", "category", "frequency"]
    base_order = ("code", "asc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "code": lazy_gettext("Code"),
        "title": lazy_gettext("Title"),
        "reader_title": lazy_gettext("Title"),
        "category": lazy_gettext("Category"),
        "owner": lazy_gettext("Owner"),
        "notes": lazy_gettext("Notes"),
        "frequency": lazy_gettext("Judged"),
        "clause": lazy_gettext("Clause of the agreement"),
    }
    formatters_columns = {
        "category": lambda value: builder.CATEGORY_LABELS.get(value, value),
        "frequency": lambda value: FREQUENCY_LABELS.get(value, value),
    }
    method_permission_name = {"matrix": "list", "cell": "show", "apply_preset": "add", "add": "add", "edit": "edit"}

    def pre_delete(self, item: Requirement) -> None:
        services.delete_requirement(db.session, item)

    # ------------------------------------------------------------ the builder (replaces FAB's add and edit forms)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self) -> Any:
        grants = visible_grants(db.session, g.user)
        grant_id = request.values.get("grant", type=int) or request.values.get("grant_id", type=int)
        if grant_id is None and len(grants) == 1:
            grant_id = grants[0].id
        grant = next((gr for gr in grants if gr.id == grant_id), None)
        if grant is None:
            # First step: which grant (its bodies, indicators and budget lines fill the drop-downs).
            return self.render_template("compliance/choose_grant.html", title=_("Add a requirement"), grants=grants)
        return self._builder(grant, None)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk: Any) -> Any:
        requirement = self.datamodel.get(pk, self._base_filters)
        if requirement is None:
            abort(404)
        return self._builder(requirement.grant, requirement)

    def _builder(self, grant: Grant, requirement: Requirement | None) -> Any:
        choices = builder.rule_fields(db.session, grant)
        form: MultiDict[str, Any] = (
            request.form if request.method == "POST" else _form_of(requirement) if requirement else MultiDict()
        )
        status = 200
        if request.method == "POST":
            values: dict[str, Any] = {name: (form.get(name) or "").strip() or None for name in BUILDER_FIELDS}
            values["owner_id"] = form.get("owner", type=int)
            values["expected_evidence"] = form.getlist("expected_evidence")
            values["linked_indicators"] = form.getlist("linked_indicators")
            values["linked_budget_lines"] = form.getlist("linked_budget_lines")
            values["rules"] = builder.rules_from_form(choices, form.get, form.getlist)
            values["titles"] = {language: form.get(name) or "" for language, name in TITLE_FIELDS.items()}
            try:
                values = services.parse_form_values(values)
                if requirement is None:
                    saved = services.create_requirement(db.session, grant, user=g.user, **values)
                else:
                    saved = services.update_requirement(db.session, requirement, **values)
                db.session.commit()
            except DomainValidationError as exc:
                db.session.rollback()
                flash_domain_error(exc)
                status = 422
            else:
                flash(
                    _(
                        "Saved %(code)s: %(rule)s",
                        code=saved.code,
                        rule=builder.describe_requirement(db.session, saved),
                    ),
                    "success",
                )
                return redirect(url_for("RequirementView.show", pk=saved.id))
        sm = self.appbuilder.sm
        return (
            self.render_template(
                "compliance/builder.html",
                title=(
                    _("Change a requirement — %(grant)s", grant=grant.reference)
                    if requirement
                    else _("Add a requirement — %(grant)s", grant=grant.reference)
                ),
                grant=grant,
                requirement=requirement,
                form=form,
                choices=choices,
                rows=range(builder.MAX_RULES),
                title_fields=[
                    (TITLE_FIELDS[language], TITLE_LABELS.get(language, language)) for language in TITLE_FIELDS
                ],
                title_max=TITLE_MAX,
                categories=list(builder.CATEGORY_LABELS.items()),
                windows=builder.WINDOW_CHOICES,
                kinds=[(k.value, KIND_LABELS[k]) for k in EvidenceKind],
                owners=_owner_choices(g.user),
                indicators=builder._grant_records(db.session, "indicator", grant.id),
                budget_lines=builder._grant_records(db.session, "budget_line", grant.id)
                if "budget_line" in TARGETS and sm.has_access("can_list", "BudgetLines")
                else [],
            ),
            status,
        )

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        requirement = self.datamodel.get(pk, self._base_filters)
        if requirement is None:
            abort(404)
        widgets = self._show(pk)
        rows = services.judge_requirement(db.session, requirement, clock.today(), visible_sensitivities(g.user))
        evidence = list(
            db.session.scalars(
                visible_evidence(g.user)
                .where(Evidence.id.in_({i for row in rows for i in row.evidence_ids} or {0}))
                .order_by(Evidence.evidence_date)
            )
        )
        return self.render_template(
            self.show_template,
            pk=pk,
            title=f"{requirement.code} {title_of(requirement)}",
            widgets=widgets,
            related_views=self._related_views,
            requirement=requirement,
            sentence=builder.describe_requirement(db.session, requirement),
            rows=rows,
            evidence=evidence,
            classes=STATUS_CLASSES,
            title_of=title_of,
            can_edit=self.appbuilder.sm.has_access("can_edit", "Requirements"),
        )

    @expose("/matrix/<int:grant_id>")
    @has_access
    def matrix(self, grant_id: int) -> Any:
        grant = visible_grant_or_404(grant_id)
        # Sentences over what this viewer may see: a donor's count only evidence shared with donors.
        matrix = services.compliance_matrix(db.session, grant, clock.today(), visible_sensitivities(g.user))
        return self.render_template(
            "compliance/matrix.html",
            title=_("Compliance — %(grant)s", grant=grant.reference),
            grant=grant,
            matrix=matrix,
            classes=STATUS_CLASSES,
            labels={s.value: label for s, label in STATUS_LABELS.items()},
            presets=PRESETS,
            sentences={r.id: builder.describe_requirement(db.session, r) for r in matrix.requirements},
            title_of=title_of,
            categories=builder.CATEGORY_LABELS,
            can_add=self.appbuilder.sm.has_access("can_add", "Requirements"),
        )

    @expose("/cell/<int:requirement_id>/<int:period_id>")
    @has_access
    def cell(self, requirement_id: int, period_id: int) -> Any:
        requirement = self.datamodel.get(requirement_id, self._base_filters)
        if requirement is None:
            abort(404)
        rows = services.requirement_status(
            db.session, requirement.grant_id, period_id, clock.today(), visible_sensitivities(g.user)
        )
        windows = [r for r in rows if r.requirement_id == requirement.id]
        if not windows:
            abort(404)
        row = max(windows, key=lambda r: (services.CELL_SEVERITY[r.status], r.window_start))
        evidence_ids = {i for r in windows for i in r.evidence_ids} or {0}
        consultation_ids = {i for r in windows for i in r.consultation_ids} or {0}
        # Only the evidence this user may see: donors never get confidential items here.
        evidence = list(
            db.session.scalars(
                visible_evidence(g.user).where(Evidence.id.in_(evidence_ids)).order_by(Evidence.evidence_date)
            )
        )
        consultations = list(
            db.session.scalars(
                select(Consultation)
                .where(Consultation.id.in_(consultation_ids), Consultation.grant_id == requirement.grant_id)
                .order_by(Consultation.held_on)
            )
        )
        return self.render_template(
            "compliance/cell.html",
            title=f"{requirement.code} — {row.period_label}",
            title_of=title_of,
            requirement=requirement,
            status_labels={status.value: str(label) for status, label in STATUS_LABELS.items()},
            row=row,
            windows=windows,
            sentence=builder.describe_requirement(db.session, requirement),
            evidence=evidence,
            consultations=consultations,
            classes=STATUS_CLASSES,
            can_waive=self.appbuilder.sm.has_access("can_add", "RequirementWaivers"),
        )

    @expose("/apply-preset/<int:grant_id>", methods=["POST"])
    @has_access
    def apply_preset(self, grant_id: int) -> Any:
        grant = visible_grant_or_404(grant_id)
        preset = request.form.get("preset", "")
        try:
            created = services.apply_preset(db.session, grant, preset, owner=g.user, user=g.user)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(
                _(
                    "Added %(count)s requirements from the preset; edit them to fit the agreement.",
                    count=len(created),
                ),
                "success",
            )
        return redirect(url_for("RequirementView.matrix", grant_id=grant.id))


class RequirementWaiverView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    parent_relation = None
    datamodel = SQLAInterface(RequirementWaiver)
    class_permission_name = "RequirementWaivers"
    route_base = "/waivers"
    list_title = lazy_gettext("Waivers")
    list_columns = ["grant", "requirement", "period", "approved_by", "granted_at"]
    show_columns = ["grant", "requirement", "period", "justification", "approved_by", "granted_at"]
    add_columns = ["requirement", "period", "justification", "approved_by"]
    edit_columns = ["justification", "approved_by"]
    search_columns = ["requirement", "period", "approved_by"]
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "requirement": lazy_gettext("Requirement"),
        "period": lazy_gettext("Period"),
        "justification": lazy_gettext("Justification"),
        "approved_by": lazy_gettext("Approved by (at the donor)"),
        "granted_at": lazy_gettext("Granted at"),
    }
    add_form_query_rel_fields = {
        "requirement": visible_grants_filter("grant_id"),
        "period": visible_grants_filter("grant_id"),
    }

    def pre_add(self, item: RequirementWaiver) -> None:
        _or_roll_back(services.grant_waiver, item, granted_by=g.user, user=g.user)

    def pre_delete(self, item: RequirementWaiver) -> None:
        services.revoke_waiver(db.session, item)


def compliance_panel(session: Any, grant: Any, user: Any) -> Panel | None:
    """The grant page's compliance summary: this period's statuses and a link to the matrix."""
    day = clock.today()
    period = services.current_period(list(grant.periods), day)
    if period is None:
        return Panel(N_("Compliance"), 20, rows=[(_("Requirements"), _("no reporting periods yet"))])
    rows = services.requirement_status(session, grant.id, period.id, day, visible_sensitivities(user))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status_label] = counts.get(row.status_label, 0) + 1
    listed: list[tuple[str, Any]] = [
        (_("%(period)s: %(status)s", period=period.label, status=label), count)
        for label, count in sorted(counts.items())
    ]
    total = session.scalar(select(Requirement.id).where(Requirement.grant_id == grant.id).limit(1))
    if total is None:
        listed = [(_("Requirements"), _("none yet — add them or apply a preset"))]
    return Panel(
        N_("Compliance"),  # the panel's key (data-panel); the grant page translates it
        20,
        rows=listed,
        link=(_("Compliance matrix"), url_for("RequirementView.matrix", grant_id=grant.id)),
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(RequirementView, N_("Requirements"), icon="fa-check-square-o", category=N_("Compliance"))
    appbuilder.add_view(RequirementWaiverView, N_("Waivers"), icon="fa-unlock", category="Compliance")
    register_panel(compliance_panel)
