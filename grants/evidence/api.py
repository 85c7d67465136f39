"""REST API (JWT) for evidence, consultations and coordinating bodies, with the same row rules as the views."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app, g, request, send_file
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi, expose, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name, protect

from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from core.storage import BlobCorrupted, BlobNotFound, store_for
from grants.access import GrantScopedApiMixin, ValidatedApiMixin
from grants.evidence import sensitivity, services, uploads
from grants.evidence.models import (
    DEFAULT_SENSITIVITY,
    Consultation,
    CoordinatingBody,
    Evidence,
    EvidenceLink,
    Sensitivity,
    SensitivityRequest,
)
from grants.evidence.views import ATTENDANCE_COLUMNS, EVIDENCE_FILTERS, PEOPLE_WARNING
from grants.services import can_see_grant

EVIDENCE_FIELDS = [
    "id",
    "grant.id",
    "grant.reference",
    "title",
    "kind",
    "evidence_date",
    "sensitivity",
    "status",
    "description",
    "url",
    "display_name",
    "content_type",
    "size_bytes",
    "sha256",
    "looks_like_people_list",
    "uploaded_at",
    "verified_at",
    "verification_comment",
]


def _evidence_json(item: Evidence) -> dict[str, Any]:
    return {
        "id": item.id,
        "grant_id": item.grant_id,
        "title": item.title,
        "kind": item.kind.value,
        "evidence_date": item.evidence_date.isoformat(),
        "sensitivity": item.sensitivity.value,
        "status": item.status.value,
        "display_name": item.display_name,
        "content_type": item.content_type,
        "size_bytes": item.size_bytes,
        "sha256": item.sha256,
        "url": item.url,
        "looks_like_people_list": item.looks_like_people_list,
        "links": [{"id": link.id, "target_kind": link.target_kind, "target_id": link.target_id} for link in item.links],
    }


class EvidenceApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "evidence"
    class_permission_name = "Evidence"
    datamodel = SQLAInterface(Evidence)
    allow_browser_login = False
    exclude_route_methods = {"post"}  # files come in through /upload, checked by content
    list_columns = show_columns = EVIDENCE_FIELDS
    # No stock POST (uploads go through /upload): declared so _info names only these, their choices scoped.
    add_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "description", "url"]
    edit_columns = ["title", "kind", "evidence_date", "sensitivity", "description"]
    order_columns = ["evidence_date", "title", "kind", "status"]
    search_columns = ["grant", "title", "kind", "evidence_date", "sensitivity", "status"]

    def _visible(self, pk: Any) -> Evidence | None:
        return services.get_visible_evidence(db.session, g.user, pk)

    @expose("/upload", methods=["POST"])
    @protect()
    @safe
    @permission_name("post")
    def upload(self) -> Any:
        """Add evidence: multipart (grant_id, title, kind, evidence_date, sensitivity, file) or JSON with a url."""
        values = request.get_json(silent=True) if request.is_json else request.form
        values = values or {}
        upload = request.files.get("file")
        if upload is not None and not upload.filename:
            upload = None  # an empty file field: nothing was uploaded
        try:
            grant_id = int(values.get("grant_id", ""))
        except (TypeError, ValueError):
            return self.response_422(message={"grant_id": [_("give the id of a grant you have access to")]})
        try:
            day = date.fromisoformat(str(values.get("evidence_date", "")))
        except ValueError:
            return self.response_422(message={"evidence_date": [_("give a date as YYYY-MM-DD")]})
        try:
            if not can_see_grant(db.session, g.user, grant_id):
                raise DomainValidationError({"grant": [_("is not a grant you have access to")]})
            evidence = services.create_evidence(
                db.session,
                store_for(current_app.config),
                grant=grant_id,
                title=values.get("title", ""),
                kind=values.get("kind", ""),
                evidence_date=day,
                sensitivity=values.get("sensitivity") or DEFAULT_SENSITIVITY.value,
                uploaded_by=g.user,
                content=upload.stream if upload is not None else None,
                filename=upload.filename if upload is not None else None,
                url=values.get("url"),
                description=values.get("description"),
                max_bytes=int(current_app.config.get("EVIDENCE_MAX_BYTES", uploads.DEFAULT_MAX_BYTES)),
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        body: dict[str, Any] = {"id": evidence.id, "result": _evidence_json(evidence)}
        if evidence.looks_like_people_list and evidence.sensitivity != Sensitivity.restricted:
            body["warning"] = _(PEOPLE_WARNING)
        return self.response(201, **body)

    @expose("/<int:pk>/verify", methods=["POST"])
    @protect()
    @safe
    @permission_name("put")
    def verify(self, pk: int) -> Any:
        """Verify or reject: {"decision": "verified"|"rejected", "comment": "..."}."""
        evidence = self._visible(pk)
        if evidence is None:
            return self.response_404()
        payload = request.get_json(silent=True) or {}
        try:
            services.verify_evidence(db.session, evidence, g.user, payload.get("decision", ""), payload.get("comment"))
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(200, result=_evidence_json(evidence))

    @expose("/<int:pk>/sensitivity-request", methods=["POST"])
    @protect()
    @safe
    @permission_name("put")
    def request_sensitivity(self, pk: int) -> Any:
        """Ask for a restricted item to be seen by more people: {"to_level": "staff_only", "reason": "..."}."""
        evidence = self._visible(pk)
        if evidence is None:
            return self.response_404()
        payload = request.get_json(silent=True) or {}
        try:
            asked = sensitivity.request_lowering(
                db.session, evidence, str(payload.get("to_level", "")), g.user, payload.get("reason")
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(201, id=asked.id, status=asked.status.value)

    @expose("/<int:pk>/sensitivity-request/<int:request_id>", methods=["POST"])
    @protect()
    @safe
    @permission_name("put")
    def decide_sensitivity(self, pk: int, request_id: int) -> Any:
        """A second person decides: {"decision": "approve"|"reject", "comment": "..."}."""
        evidence = self._visible(pk)
        asked = db.session.get(SensitivityRequest, request_id)
        if evidence is None or asked is None or asked.evidence_id != evidence.id:
            return self.response_404()
        payload = request.get_json(silent=True) or {}
        try:
            sensitivity.decide(db.session, asked, g.user, payload.get("decision") == "approve", payload.get("comment"))
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(200, status=asked.status.value, result=_evidence_json(evidence))

    @expose("/<int:pk>/links", methods=["POST"])
    @protect()
    @safe
    @permission_name("put")
    def add_link(self, pk: int) -> Any:
        """Link to what the evidence supports: {"target_kind": "requirement", "target_id": 3, "note": ""}."""
        evidence = self._visible(pk)
        if evidence is None:
            return self.response_404()
        payload = request.get_json(silent=True) or {}
        try:
            link = services.link_evidence(
                db.session,
                evidence,
                str(payload.get("target_kind", "")),
                payload.get("target_id"),
                g.user,
                payload.get("note"),
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            return self.response_422(message=exc.errors)
        return self.response(201, id=link.id, result=_evidence_json(evidence))

    @expose("/<int:pk>/links/<int:link_id>", methods=["DELETE"])
    @protect()
    @safe
    @permission_name("put")
    def remove_link(self, pk: int, link_id: int) -> Any:
        evidence = self._visible(pk)
        link = db.session.get(EvidenceLink, link_id)
        if evidence is None or link is None or link.evidence_id != evidence.id:
            return self.response_404()
        services.unlink_evidence(db.session, link)
        db.session.commit()
        return self.response(200, message="OK")

    @expose("/<int:pk>/file", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def file(self, pk: int) -> Any:
        """The stored file, as an attachment, after the same row rules as get."""
        evidence = self._visible(pk)
        if evidence is None or not evidence.sha256:
            return self.response_404()
        try:
            stream = services.read_evidence_file(store_for(current_app.config), evidence)
        except BlobNotFound:
            return self.response_404()
        except BlobCorrupted as exc:
            return self.response(409, message=str(exc))
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

    def pre_delete(self, item: Evidence) -> None:
        # The row is gone (and expired) by post_delete: remember which blob it used, for this request only.
        g.evidence_deleted_sha = services.delete_evidence(db.session, item)

    def post_delete(self, item: Evidence) -> None:
        services.discard_blob_if_unused(db.session, store_for(current_app.config), g.pop("evidence_deleted_sha", None))


EvidenceApi.base_filters = EVIDENCE_FILTERS


class CoordinatingBodyApi(ValidatedApiMixin, ModelRestApi):
    resource_name = "coordinating-bodies"
    class_permission_name = "CoordinatingBodies"
    datamodel = SQLAInterface(CoordinatingBody)
    allow_browser_login = False
    list_columns = show_columns = ["id", "code", "name", "description"]
    add_columns = edit_columns = ["code", "name", "description"]
    search_columns = ["code", "name"]


class ConsultationApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "consultations"
    class_permission_name = "Consultations"
    datamodel = SQLAInterface(Consultation)
    allow_browser_login = False
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "body.id",
        "body.code",
        "held_on",
        "title",
        "location",
        "agenda",
        "decisions",
        *ATTENDANCE_COLUMNS,
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
    order_columns = ["held_on", "title"]
    search_columns = ["grant", "body", "held_on", "title"]


def register(appbuilder: AppBuilder) -> None:
    for api in (EvidenceApi, CoordinatingBodyApi, ConsultationApi):
        appbuilder.add_api(api)
