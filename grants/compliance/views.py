"""Web views: requirements, waivers, presets, the compliance matrix and the grant page's compliance panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, ModelView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from sqlalchemy import select
from wtforms import TextAreaField

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from grants.access import GrantScopedViewMixin, flash_domain_error, visible_grants_filter
from grants.compliance import services
from grants.compliance.models import Requirement, RequirementWaiver
from grants.compliance.presets import PRESETS
from grants.compliance.rules import STATUS_LABELS, Status, rule_catalogue
from grants.evidence.models import Consultation, Evidence
from grants.evidence.services import visible_evidence
from grants.evidence.views import NoStockDownloadMixin
from grants.models import Grant
from grants.page import Panel, register_panel
from grants.services import can_see_grant

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

RULES_HELP = (
    'JSON list of rules, e.g. [{"rule": "evidence_verified", "params": {"kind": "minutes"}}]. Rules: '
    + "; ".join(f"{r['rule']} ({', '.join(r['params'])})" for r in rule_catalogue())
)


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


class RequirementView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    template_folder = TEMPLATES
    datamodel = SQLAInterface(Requirement)
    class_permission_name = "Requirements"
    route_base = "/requirements"
    list_title = "Requirements"
    list_columns = ["grant", "code", "title", "category", "frequency", "owner"]
    show_fieldsets = [
        ("Requirement", {"fields": ["grant", "code", "title", "category", "clause", "frequency", "owner"]}),
        (
            "Due rule and links",
            {
                "fields": [
                    "due_days",
                    "due_date",
                    "expected_evidence",
                    "linked_indicators",
                    "linked_budget_lines",
                    "preset",
                ]
            },
        ),
        ("Rules", {"fields": ["rules_text", "notes"]}),
    ]
    add_columns = edit_columns = [
        "grant",
        "code",
        "title",
        "category",
        "clause",
        "frequency",
        "owner",
        "due_days",
        "due_date",
        "expected_evidence",
        "linked_indicators",
        "linked_budget_lines",
        "rules_text",
        "notes",
    ]
    add_form_extra_fields = edit_form_extra_fields = {
        "rules_text": TextAreaField("Rules", description=RULES_HELP, render_kw={"rows": 8}),
    }
    search_columns = ["grant", "code", "title", "category", "frequency", "owner"]
    order_columns = ["code", "title", "category", "frequency"]
    base_order = ("code", "asc")
    label_columns = {
        "due_days": "Due (days after period end)",
        "due_date": "Due date (one-off)",
        "expected_evidence": "Expected evidence kinds",
        "linked_indicators": "Linked indicator ids",
        "linked_budget_lines": "Linked budget line ids",
        "rules_text": "Rules",
    }
    description_columns = {
        "expected_evidence": "comma separated: minutes, attendance_summary, photo, receipt, report, policy, contract, other",
        "linked_indicators": "comma separated ids of this grant's indicators",
        "linked_budget_lines": "comma separated ids of this grant's budget lines",
    }
    method_permission_name = {"matrix": "list", "cell": "show", "apply_preset": "add"}

    # FAB's add/edit/delete commit once after these hooks; the operation does the rest first.
    def pre_add(self, item: Requirement) -> None:
        super().pre_add(item)
        _or_roll_back(services.save_requirement, item)

    def pre_update(self, item: Requirement) -> None:
        super().pre_update(item)
        _or_roll_back(services.save_requirement, item)

    def pre_delete(self, item: Requirement) -> None:
        services.delete_requirement(db.session, item)

    @expose("/matrix/<int:grant_id>")
    @has_access
    def matrix(self, grant_id: int) -> Any:
        grant = visible_grant_or_404(grant_id)
        matrix = services.compliance_matrix(db.session, grant, clock.today())
        return self.render_template(
            "compliance/matrix.html",
            title=f"Compliance — {grant.reference}",
            grant=grant,
            matrix=matrix,
            classes=STATUS_CLASSES,
            labels={s.value: label for s, label in STATUS_LABELS.items()},
            presets=PRESETS,
            can_add=self.appbuilder.sm.has_access("can_add", "Requirements"),
        )

    @expose("/cell/<int:requirement_id>/<int:period_id>")
    @has_access
    def cell(self, requirement_id: int, period_id: int) -> Any:
        requirement = self.datamodel.get(requirement_id, self._base_filters)
        if requirement is None:
            abort(404)
        rows = services.requirement_status(db.session, requirement.grant_id, period_id, clock.today())
        row = next((r for r in rows if r.requirement_id == requirement.id), None)
        if row is None:
            abort(404)
        # Only the evidence this user may see: donors never get confidential items here.
        evidence = list(
            db.session.scalars(
                visible_evidence(g.user)
                .where(Evidence.id.in_(row.evidence_ids or (0,)))
                .order_by(Evidence.evidence_date)
            )
        )
        consultations = list(
            db.session.scalars(
                select(Consultation)
                .where(Consultation.id.in_(row.consultation_ids or (0,)))
                .order_by(Consultation.held_on)
            )
        )
        return self.render_template(
            "compliance/cell.html",
            title=f"{requirement.code} — {row.period_label}",
            requirement=requirement,
            row=row,
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
            flash(f"Added {len(created)} requirements from the preset; edit them to fit the agreement.", "success")
        return redirect(url_for("RequirementView.matrix", grant_id=grant.id))


class RequirementWaiverView(NoStockDownloadMixin, GrantScopedViewMixin, ModelView):
    parent_relation = None
    datamodel = SQLAInterface(RequirementWaiver)
    class_permission_name = "RequirementWaivers"
    route_base = "/waivers"
    list_title = "Waivers"
    list_columns = ["grant", "requirement", "period", "approved_by", "granted_at"]
    show_columns = ["grant", "requirement", "period", "justification", "approved_by", "granted_at"]
    add_columns = ["requirement", "period", "justification", "approved_by"]
    edit_columns = ["justification", "approved_by"]
    search_columns = ["requirement", "period", "approved_by"]
    label_columns = {"approved_by": "Approved by (at the donor)"}
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
        return Panel("Compliance", 20, rows=[("Requirements", "no reporting periods yet")])
    rows = services.requirement_status(session, grant.id, period.id, day)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status_label] = counts.get(row.status_label, 0) + 1
    listed: list[tuple[str, Any]] = [(f"{period.label}: {label}", count) for label, count in sorted(counts.items())]
    total = session.scalar(select(Requirement.id).where(Requirement.grant_id == grant.id).limit(1))
    if total is None:
        listed = [("Requirements", "none yet — add them or apply a preset")]
    return Panel(
        "Compliance", 20, rows=listed, link=("Compliance matrix", url_for("RequirementView.matrix", grant_id=grant.id))
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(RequirementView, "Requirements", icon="fa-check-square-o", category="Compliance")
    appbuilder.add_view(RequirementWaiverView, "Waivers", icon="fa-unlock", category="Compliance")
    register_panel(compliance_panel)
