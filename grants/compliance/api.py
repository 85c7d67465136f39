"""REST API (JWT) for requirements, waivers, presets and the per-period requirement status."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from flask import g, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect

from core.errors import DomainValidationError
from core.extensions import db
from grants.access import GrantScopedApiMixin, visible_grants_filter
from grants.compliance import services
from grants.compliance.models import Requirement, RequirementWaiver
from grants.compliance.rules import rule_catalogue
from grants.evidence.models import Evidence
from grants.evidence.services import visible_evidence, visible_sensitivities
from grants.models import Grant
from grants.services import can_see_grant

REQUIREMENT_WRITE = [
    "grant",
    "code",
    "title",
    "titles",
    "category",
    "clause",
    "frequency",
    "owner",
    "due_days",
    "due_date",
    "window_start",
    "window_end",
    "expected_evidence",
    "linked_indicators",
    "linked_budget_lines",
    "rules",
    "notes",
]


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class RequirementApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "requirements"
    class_permission_name = "Requirements"
    datamodel = SQLAInterface(Requirement)
    allow_browser_login = False
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "owner.username",
        "preset",
        *[c for c in REQUIREMENT_WRITE if c not in ("grant", "owner")],
    ]
    add_columns = edit_columns = REQUIREMENT_WRITE
    order_columns = ["code", "title", "category"]
    search_columns = ["grant", "code", "title", "category", "frequency"]

    @expose("/status/<int:grant_id>", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def status(self, grant_id: int) -> Any:
        """Status of each requirement per period (optionally ?period_id=), with the rule's explanation."""
        grant = db.session.get(Grant, grant_id)
        if grant is None or not can_see_grant(db.session, g.user, grant_id):
            return self.response_404()
        period_id = request.args.get("period_id", type=int)
        rows = services.requirement_status(db.session, grant_id, period_id, levels=visible_sensitivities(g.user))
        visible = set(
            db.session.scalars(
                visible_evidence(g.user).with_only_columns(Evidence.id).where(Evidence.grant_id == grant_id)
            )
        )
        result = []
        for row in rows:
            data = _plain(dataclasses.asdict(row))
            data["evidence_ids"] = [i for i in row.evidence_ids if i in visible]  # no confidential ids to donors
            data["requirement_titles"] = dict(row.requirement_titles)  # {"es": ...}, as the requirement API gives them
            result.append(data)
        return self.response(200, result=result)

    @expose("/rules", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def rules(self) -> Any:
        """The rules a requirement can use and their parameters."""
        return self.response(200, result=rule_catalogue())

    @expose("/apply-preset/<int:grant_id>", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def apply_preset(self, grant_id: int) -> Any:
        """Create a preset's requirements on a grant: {"preset": "gf_ccm_eligibility"}."""
        grant = db.session.get(Grant, grant_id)
        if grant is None or not can_see_grant(db.session, g.user, grant_id):
            return self.response_404()
        payload = request.get_json(silent=True) or {}
        try:
            created = services.apply_preset(
                db.session, grant, str(payload.get("preset", "")), owner=g.user, user=g.user
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(201, ids=[r.id for r in created], codes=[r.code for r in created])

    # FAB's post/put/delete commit once after these hooks; refusals become 422 (ValidatedApiMixin).
    def pre_add(self, item: Requirement) -> None:
        super().pre_add(item)
        services.save_requirement(db.session, item)

    def pre_update(self, item: Requirement) -> None:
        super().pre_update(item)
        services.save_requirement(db.session, item)

    def pre_delete(self, item: Requirement) -> None:
        services.delete_requirement(db.session, item)


class RequirementWaiverApi(GrantScopedApiMixin, ModelRestApi):
    parent_relation = None
    resource_name = "waivers"
    class_permission_name = "RequirementWaivers"
    datamodel = SQLAInterface(RequirementWaiver)
    allow_browser_login = False
    list_columns = show_columns = [
        "id",
        "grant.id",
        "requirement.id",
        "requirement.code",
        "period.id",
        "period.label",
        "justification",
        "approved_by",
        "granted_at",
    ]
    add_columns = ["requirement", "period", "justification", "approved_by"]
    edit_columns = ["justification", "approved_by"]
    search_columns = ["requirement", "period", "approved_by", "granted_at"]
    add_query_rel_fields = {
        "requirement": visible_grants_filter("grant_id"),
        "period": visible_grants_filter("grant_id"),
    }

    def pre_add(self, item: RequirementWaiver) -> None:
        services.grant_waiver(db.session, item, granted_by=g.user, user=g.user)

    def pre_delete(self, item: RequirementWaiver) -> None:
        services.revoke_waiver(db.session, item)


def register(appbuilder: AppBuilder) -> None:
    for api in (RequirementApi, RequirementWaiverApi):
        appbuilder.add_api(api)
