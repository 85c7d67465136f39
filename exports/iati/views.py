"""The grant's IATI page: choose its sectors, preview the activity file, download or publish it.

Who may do what: the page applies the grant rule (a user who cannot see the grant gets 404);
staff who may change exports (Finance, Program, Admin) preview, download and publish; read-only
staff (Auditors) preview; a donor sees only the IATI files published to them, never a preview of
what was not sent.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import has_access

from core.audit import Actor, acting_as
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import day, moment
from core.formatting import gettext as _
from core.storage import file_store
from exports.iati import services, validation
from exports.iati.codes import codelist
from exports.views import donor_only
from grants.access import current_user_or_none, flash_domain_error
from grants.models import Grant
from grants.page import Panel, register_panel
from grants.services import can_see_grant, is_read_only

TEMPLATES = str(Path(__file__).resolve().parent.parent / "templates")
SECTOR_ROWS = 4
PREVIEW_CHARACTERS = 200_000


def _username() -> str | None:
    user = current_user_or_none()
    return user.username if user else None


def _grant_or_404(grant_id: int) -> Grant:
    grant = db.session.get(Grant, grant_id)
    if grant is None or not can_see_grant(db.session, current_user_or_none(), grant_id):
        abort(404)
    return grant


def _may_change() -> bool:
    sm = current_app.appbuilder.sm
    return sm.has_access("can_edit", "ExportRecords") and not is_read_only(current_user_or_none())


def _may_choose_sectors() -> bool:
    sm = current_app.appbuilder.sm
    return sm.has_access("can_edit", "Grants") and not is_read_only(current_user_or_none())


def _settings() -> Any:
    return current_app.config["GK_SETTINGS"]


def _make(grant: Grant) -> services.IatiFile:
    settings = _settings()
    return services.make_file(db.session, [grant], settings.iati, base_url=settings.base_url)


class IatiView(BaseView):
    route_base = "/iati"
    template_folder = TEMPLATES
    class_permission_name = "ExportRecords"
    method_permission_name = {"page": "show", "download": "edit", "publish": "edit", "sectors": "edit"}
    default_view = "page"

    @expose("/grant/<int:grant_id>", methods=["GET"])
    @has_access
    def page(self, grant_id: int) -> Any:
        grant = _grant_or_404(grant_id)
        donor = donor_only(current_user_or_none())
        preview = problems = refusal = None
        if not donor:
            try:
                made = _make(grant)
                text = made.data.decode("utf-8")
                preview = text if len(text) <= PREVIEW_CHARACTERS else text[:PREVIEW_CHARACTERS] + "\n…"
            except DomainValidationError as exc:
                problems = [m for field, messages in exc.errors.items() for m in _sentences(field, messages)]
                refusal = exc
        chosen = request.args.getlist("sector") or list(grant.iati_sectors or [])
        return self.render_template(
            "exports/iati.html",
            title=_("IATI activity file — %(grant)s", grant=grant.reference),
            grant=grant,
            donor=donor,
            preview=preview,
            problems=problems,
            needs_settings=bool(refusal and any(k.startswith("GRANTKEEPER_IATI") for k in refusal.errors)),
            records=services.history(db.session, grant.id, published_only=donor),
            sector_choices=codelist("Sector").choices(),
            sector_labels=[codelist("Sector").label(code) for code in grant.iati_sectors or []],
            chosen=chosen + [""] * max(0, SECTOR_ROWS - len(chosen)),
            can_change=_may_change(),
            can_choose_sectors=_may_choose_sectors(),
            publisher=_settings().iati,
            org_type=codelist("OrganisationType").label(_settings().iati.org_type),
            moment=moment,
            day=day,
        )

    @expose("/grant/<int:grant_id>/sectors", methods=["POST"])
    @has_access
    def sectors(self, grant_id: int) -> Any:
        grant = _grant_or_404(grant_id)
        if not _may_choose_sectors():
            abort(403)
        wanted = [code for code in request.form.getlist("sector") if code.strip()][:SECTOR_ROWS]
        try:
            with acting_as(Actor(getattr(g.user, "id", None), _username() or "web", "web")):
                services.set_sectors(db.session, grant, wanted)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
            # What was chosen stays chosen on the page, so nothing has to be picked again.
            return redirect(url_for("IatiView.page", grant_id=grant_id, sector=wanted))
        chosen = ", ".join(codelist("Sector").label(c) for c in wanted) or _("none")
        flash(_("Sectors of %(grant)s: %(sectors)s", grant=grant.reference, sectors=chosen), "success")
        return redirect(url_for("IatiView.page", grant_id=grant_id))

    @expose("/grant/<int:grant_id>/download", methods=["POST"])
    @has_access
    def download(self, grant_id: int) -> Any:
        """Build, validate, keep in the export history, and send the file."""
        grant = _grant_or_404(grant_id)
        if not _may_change():
            abort(403)
        try:
            made = _make(grant)
            with acting_as(Actor(getattr(g.user, "id", None), _username() or "web", "web")):
                services.keep(db.session, file_store(), made, [grant], user=_username())
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
            return redirect(url_for("IatiView.page", grant_id=grant_id))
        response = send_file(
            io.BytesIO(made.data), mimetype=services.MEDIA_TYPE, as_attachment=True, download_name=made.filename
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @expose("/grant/<int:grant_id>/publish", methods=["POST"])
    @has_access
    def publish(self, grant_id: int) -> Any:
        """Build, validate, keep and publish the file to the grant's donor users."""
        grant = _grant_or_404(grant_id)
        if not _may_change():
            abort(403)
        try:
            made = _make(grant)
            with acting_as(Actor(getattr(g.user, "id", None), _username() or "web", "web")):
                records = services.keep(db.session, file_store(), made, [grant], user=_username(), publish=True)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
            return redirect(url_for("IatiView.page", grant_id=grant_id))
        flash(
            _(
                "Published %(file)s to the donor users of %(grant)s (SHA-256 %(sha)s…, kept in the export history).",
                file=made.filename,
                grant=grant.reference,
                sha=records[0].sha256[:12],
            ),
            "success",
        )
        return redirect(url_for("IatiView.page", grant_id=grant_id))


def _sentences(field: str, messages: list[str]) -> list[str]:
    return [f"{field}: {m}" if field.startswith("GRANTKEEPER_") else m for m in messages]


def iati_panel(session: Any, grant: Grant, user: Any) -> Panel | None:
    """On the grant page: the grant's sectors and a link to its IATI page."""
    sm = current_app.appbuilder.sm
    if not sm.has_access("can_show", "ExportRecords"):
        return None
    sectors = ", ".join(codelist("Sector").label(code) for code in grant.iati_sectors or []) or _("none chosen yet")
    rows: list[tuple[str, Any]] = []
    if not donor_only(user):
        rows.append((_("Sectors (DAC)"), sectors))
    published = services.history(session, grant.id, published_only=True)
    rows.append(
        (
            _("Last published"),
            _("%(file)s, %(moment)s", file=published[0].filename, moment=moment(published[0].published_at))
            if published
            else _("nothing yet"),
        )
    )
    return Panel(
        title="IATI",
        order=95,
        rows=rows,
        link=(_("Open the IATI page"), url_for("IatiView.page", grant_id=grant.id)),
    )


def check_schemas_load() -> None:
    """Fail at start-up, not at the first download, when the shipped schemas are missing."""
    validation.activities_schema()


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(IatiView)
    register_panel(iati_panel)
    check_schemas_load()
