"""Web side of the click-a-cell mapper and the ready mappings; routed from ``FunderTemplateView``.

Who may use a template: Admin and Finance any; everybody else only the templates
of the funders of grants they belong to (the program lead maps the reports of
their own grants). The rule is one query, ``visible_funder_ids_query``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, request, url_for
from flask_appbuilder.models.filters import BaseFilter
from sqlalchemy import select

from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from core.storage import file_store
from exports import mapper, services
from exports.errors import TemplateError
from exports.mapping import parse_mapping
from exports.models import FunderTemplate, TemplateVersion
from exports.ready import ready_mappings
from exports.xlsx.inspector import inspect_template
from grants.access import current_user_or_none, flash_domain_error
from grants.models import Funder, Grant, ReportingPeriod
from grants.services import can_see_grant, visible_grant_ids_query

STATIC = str(Path(__file__).resolve().parent / "static")


def assets_blueprint() -> Blueprint:
    """The mapper's script and styles, served as files (the CSP allows scripts from 'self' only by intent)."""
    return Blueprint("exports_assets", __name__, static_folder=STATIC, static_url_path="/exports-static")


# ---------------------------------------------------------------- who sees which template


def visible_funder_ids_query(user: Any):
    """Funder ids whose templates ``user`` may use, or None for every funder (Admin, Finance)."""
    grants = visible_grant_ids_query(user)
    if grants is None:
        return None
    return select(Grant.funder_id).where(Grant.id.in_(grants))


class FilterTemplatesVisible(BaseFilter):
    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        funders = visible_funder_ids_query(current_user_or_none())
        if funders is not None:
            query = query.filter(FunderTemplate.funder_id.in_(funders))
        return query


class FilterFundersVisible(BaseFilter):
    """The funder choices in the template forms: the funders of the user's grants."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        funders = visible_funder_ids_query(current_user_or_none())
        if funders is not None:
            query = query.filter(Funder.id.in_(funders))
        return query


def visible_funders() -> list[Funder]:
    query = select(Funder).order_by(Funder.name)
    funders = visible_funder_ids_query(current_user_or_none())
    if funders is not None:
        query = query.where(Funder.id.in_(funders))
    return list(db.session.scalars(query))


def funder_allowed(funder: Funder | None) -> bool:
    return funder is not None and any(f.id == funder.id for f in visible_funders())


def version_or_404(version_id: int) -> TemplateVersion:
    """The version, when its template's funder is one of the user's; 404 otherwise (nothing said about it)."""
    version = db.session.get(TemplateVersion, version_id)
    if version is None or not funder_allowed(version.template.funder):
        abort(404)
    return version


def _grants_for(version: TemplateVersion) -> list[Grant]:
    query = (
        select(Grant).where(Grant.funder_id == version.template.funder_id).order_by(Grant.start_date.desc(), Grant.id)
    )
    visible = visible_grant_ids_query(current_user_or_none())
    if visible is not None:
        query = query.where(Grant.id.in_(visible))
    return list(db.session.scalars(query))


def _chosen_grant(version: TemplateVersion, value: str | None) -> tuple[Grant | None, list[Grant]]:
    grants = _grants_for(version)
    if value and value.isdigit():
        for grant in grants:
            if grant.id == int(value):
                return grant, grants
    return (grants[0] if grants else None), grants


def _chosen_period(grant: Grant | None, value: str | None) -> ReportingPeriod | None:
    if grant is None:
        return None
    periods = sorted(grant.periods, key=lambda p: p.start_date)
    if value == "":
        return None
    if value and value.isdigit():
        return next((p for p in periods if p.id == int(value)), None)
    return periods[0] if periods else None


# ---------------------------------------------------------------- the mapper page


def mapper_page(view: Any, version_id: int) -> Any:
    version = version_or_404(version_id)
    store = file_store()
    data = services.template_bytes(store, version)
    info = inspect_template(data)
    draft = request.form.get("draft") if request.method == "POST" else None
    if request.method == "POST":
        try:
            mapper.save_from_mapper(db.session, store, version, draft or "{}", data=data)
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(_("Mapping saved: the template is ready to fill."), "success")
            return redirect(
                url_for(
                    "FunderTemplateView.mapper",
                    version_id=version.id,
                    sheet=request.form.get("sheet") or None,
                    grant=request.form.get("grant") or None,
                )
            )
        version = db.session.get(TemplateVersion, version_id) or abort(404)
    draft = draft if draft is not None else mapper.draft_of(version)
    sheet_names = [s.name for s in info.sheets if s.part]
    if not sheet_names:
        abort(404)
    wanted = request.values.get("sheet") or ""
    sheet = next((s for s in sheet_names if s == wanted), sheet_names[0])
    first_row, first_col = mapper.parse_grid_start(request.values.get("at"))
    spec = None
    problems: list[str] = []
    try:
        spec = parse_mapping(draft)
        _spec, problems = services.check_mapping_text(draft, info)
    except TemplateError as exc:
        problems = [str(exc)]
    grid = mapper.sheet_grid(data, info, sheet, first_row=first_row, first_col=first_col, spec=spec)
    grant, grants = _chosen_grant(version, request.values.get("grant"))
    period = _chosen_period(grant, request.values.get("period"))
    mapped = [
        {"target": cell.target, "words": mapper.describe(cell)} for cell in (spec.cells if spec is not None else ())
    ]
    return view.render_template(
        "exports/mapper.html",
        title=_("Map the cells of %(version)s", version=repr(version)),
        version=version,
        grid=grid,
        sheets=[(s.name, s.state) for s in info.sheets if s.part],
        draft=draft,
        mapped=mapped,
        tables=spec.tables if spec is not None else (),
        problems=problems,
        grants=grants,
        grant=grant,
        period=period,
        choices=mapper.choices(db.session, grant),
        choices_json=json.dumps(mapper.choices(db.session, grant)),
    )


def preview_json(version_id: int) -> Any:
    """What one cell would get for the chosen grant and period, in words (JSON for the mapper)."""
    version = version_or_404(version_id)
    grant = db.session.get(Grant, int(request.args.get("grant") or 0))
    if (
        grant is None
        or grant.funder_id != version.template.funder_id
        or not can_see_grant(db.session, current_user_or_none(), grant.id)
    ):
        return jsonify({"ok": False, "problems": [_("choose one of your grants with this funder")]})
    period = _chosen_period(grant, request.args.get("period", ""))
    cell: dict[str, Any] = {}
    for key in ("source", "figure", "item", "measure", "category", "scope", "period_choice"):
        value = request.args.get(key)
        if value:
            cell["period" if key == "period_choice" else key] = int(value) if key == "period_choice" else value
    result = mapper.preview(db.session, grant, period, cell)
    result["period"] = period.label if period else _("the whole grant")
    return jsonify(result)


def export_mapping(version_id: int, fmt: str) -> Any:
    version = version_or_404(version_id)
    if not version.mapping_text:
        abort(404)
    text = mapper.export_text(version, fmt)
    name = f"{version.template.name}-v{version.version}-mapping.{'json' if fmt == 'json' else 'yaml'}"
    response = Response(text, mimetype="application/json" if fmt == "json" else "application/yaml")
    response.headers["Content-Disposition"] = f'attachment; filename="{_safe(name)}"'
    return response


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


# ---------------------------------------------------------------- ready mappings


def ready_page(view: Any) -> Any:
    funders = visible_funders()
    if request.method == "POST":
        funder = db.session.get(Funder, int(request.form.get("funder") or 0))
        try:
            if not funder_allowed(funder):
                raise DomainValidationError({"funder": [_("choose one of the funders of your grants")]})
            assert funder is not None
            version = mapper.use_ready_mapping(
                db.session,
                file_store(),
                funder=funder,
                key=request.form.get("ready", ""),
                user=getattr(current_user_or_none(), "username", None),
            )
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
        else:
            flash(
                _(
                    "%(template)s is ready for %(funder)s: check the cells it fills below.",
                    template=version.template.name,
                    funder=funder.name,
                ),
                "success",
            )
            return redirect(url_for("FunderTemplateView.mapper", version_id=version.id))
    return view.render_template(
        "exports/ready.html",
        title=_("Use a ready mapping"),
        ready=ready_mappings(),
        funders=funders,
        chosen=request.form.get("funder") or request.args.get("funder") or "",
    )
