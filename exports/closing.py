"""The period page's report actions: Generate, Review (what changed since the last submission), Publish.

Grants owns the period page and its checklist but cannot import exports; this
module adds the report panel to it (``grants.closing.views.ACTIONS``) and
serves the actions, each a thin call to ``exports.services``. It also renders
an export's own page, which says in words whether and when the file went to
the donors, with the Publish / Unpublish buttons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import formatting
from core.audit import Actor, acting_as
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import gettext as _
from core.storage import StorageError, file_store
from exports import services
from exports.models import ExportKind, ExportRecord, FunderTemplate
from exports.review import Comparison, compare_workbooks, show
from grants.access import current_user_or_none, flash_domain_error
from grants.closing.checklist import Checklist, Level
from grants.closing.services import display_names, who_and_when
from grants.closing.views import ACTIONS, closing_url
from grants.models import ReportingPeriod
from grants.services import can_see_grant, is_read_only

TEMPLATES = str(Path(__file__).resolve().parent / "templates")
PERIOD_EXPORTS_SHOWN = 10


def _username() -> str | None:
    user = current_user_or_none()
    return user.username if user else None


def _can_change_exports() -> bool:
    user = current_user_or_none()
    return (
        user is not None
        and not is_read_only(user)
        and current_app.appbuilder.sm.has_access("can_edit", "ExportRecords")  # type: ignore[attr-defined]
    )


def publication(session: Session, record: ExportRecord) -> str:
    """'Published to donors on 1 Dec 2026 by Petra Alexander', or 'Not published' (and why it was taken back)."""
    if record.published:
        return _(
            "Published to donors %(who_and_when)s",
            who_and_when=who_and_when(session, record.published_by, record.published_at),
        )
    if record.unpublished_at is not None:
        return _(
            "Not published: taken back from donors %(who_and_when)s (reason: %(reason)s)",
            who_and_when=who_and_when(session, record.unpublished_by, record.unpublished_at),
            reason=record.unpublish_reason,
        )
    return _("Not published")


def report_choices(session: Session, period: ReportingPeriod) -> list[tuple[str, str, bool]]:
    """(value, label, chosen) for the Generate form: the funder's mapped templates first, then built-in reports.

    The first mapped funder template is chosen; without one, the indicator progress report.
    """
    choices: list[tuple[str, str, bool]] = []
    for template in services.templates_for_grant(session, period.grant):
        latest = template.latest
        if latest is not None and latest.mapping_text:
            label = _("%(template)s (the funder's template)", template=template.name)
            choices.append((f"template:{template.id}", label, not choices))
    has_template = bool(choices)
    for report in services.available_builtin_reports():
        chosen = not has_template and report.name == "indicator_progress"
        choices.append((f"builtin:{report.name}", _("%(report)s (built-in report)", report=report.title), chosen))
    if choices and not any(chosen for _value, _label, chosen in choices):
        value, label, _chosen = choices[0]
        choices[0] = (value, label, True)
    return choices


def period_panel(session: Session, period: ReportingPeriod, user: Any, checklist: Checklist) -> Markup | None:
    """Steps 2 and 3 of the period page: generate the donor's report, review it, publish it."""
    if not current_app.appbuilder.sm.has_access("can_list", "ExportRecords"):  # type: ignore[attr-defined]
        return None
    records = list(
        session.scalars(
            select(ExportRecord)
            .where(ExportRecord.period_id == period.id)
            .order_by(ExportRecord.created_at.desc(), ExportRecord.id.desc())
            .limit(PERIOD_EXPORTS_SHOWN)
        )
    )
    names = display_names(session, {r.created_by for r in records} | {r.published_by for r in records})
    html = render_template(
        "exports/closing_panel.html",
        period=period,
        records=records,
        names=names,
        publication={r.id: publication(session, r) for r in records},
        choices=report_choices(session, period),
        can_change=_can_change_exports(),
        red=checklist.level == Level.missing,
        moment=formatting.moment,
        languages=_language_choices(),
    )
    return Markup(html)


def _language_choices() -> list[tuple[str, str, bool]]:
    """(code, the language's own name, chosen) for a built-in report; the reader's language is chosen."""
    mine = formatting.current_language()
    names = current_app.config.get("LANGUAGES") or {}
    return [
        (code, str((names.get(code) or {}).get("name", code)), code == mine) for code in services.builtin_languages()
    ]


def _record_or_404(record_id: int) -> ExportRecord:
    record = db.session.get(ExportRecord, record_id)
    if record is None or not can_see_grant(db.session, current_user_or_none(), record.grant_id):
        abort(404)
    return record


def _back(record: ExportRecord) -> str:
    return closing_url(record.period_id) if record.period_id else url_for("ExportRecordView.show", pk=record.id)


class PeriodReportView(BaseView):
    """Generate, review and publish the donor's report of a period (the period page's step 2 and 3)."""

    route_base = "/period-report"
    template_folder = TEMPLATES
    class_permission_name = "ExportRecords"
    # Drafts and publishing are for staff who may change exports; donors see only what was published.
    method_permission_name = {"generate": "edit", "review": "edit", "publish": "edit", "unpublish": "edit"}
    default_view = "review"

    @expose("/<int:period_id>/generate", methods=["POST"])
    @has_access
    def generate(self, period_id: int) -> Any:
        period = db.session.get(ReportingPeriod, period_id)
        if period is None or not can_see_grant(db.session, current_user_or_none(), period.grant_id):
            abort(404)
        if is_read_only(current_user_or_none()):
            abort(403)
        choice = request.form.get("report", "")
        try:
            with acting_as(Actor(getattr(g.user, "id", None), _username() or "web", "web")):
                if choice.startswith("template:"):
                    template_id = choice.partition(":")[2]
                    template = db.session.get(FunderTemplate, int(template_id)) if template_id.isdigit() else None
                    if template is None:
                        raise DomainValidationError({"report": [_("choose a report to generate")]})
                    record = services.run_export(
                        db.session, file_store(), grant=period.grant, period=period, user=_username(), template=template
                    )
                elif choice.startswith("builtin:"):
                    record = services.run_export(
                        db.session,
                        file_store(),
                        grant=period.grant,
                        period=period,
                        user=_username(),
                        builtin=choice.removeprefix("builtin:"),
                        language=request.form.get("language") or None,
                    )
                else:
                    raise DomainValidationError({"report": [_("choose a report to generate")]})
            db.session.commit()
        except DomainValidationError as exc:
            db.session.rollback()
            flash_domain_error(exc)
            return redirect(closing_url(period))
        flash(_("Generated %(file)s: review it, then publish it to the donor", file=record.filename), "success")
        return redirect(url_for("PeriodReportView.review", record_id=record.id))

    @expose("/review/<int:record_id>")
    @has_access
    def review(self, record_id: int) -> Any:
        record = _record_or_404(record_id)
        previous = services.last_published(db.session, record)
        comparison: Comparison | None = None
        problem = None
        if previous is not None:
            try:
                store = file_store()
                comparison = compare_workbooks(
                    services.export_bytes(store, previous), services.export_bytes(store, record)
                )
            except StorageError:
                problem = _("The last submitted file is missing from storage, so it cannot be compared.")
        return self.render_template(
            "exports/closing_review.html",
            title=_("Review %(file)s", file=record.filename),
            record=record,
            previous=previous,
            comparison=comparison,
            problem=problem,
            publication=publication(db.session, record),
            previous_publication=publication(db.session, previous) if previous else None,
            can_change=_can_change_exports(),
            back=_back(record),
            show=show,
        )

    @expose("/publish/<int:record_id>", methods=["POST"])
    @has_access
    def publish(self, record_id: int) -> Any:
        record = _record_or_404(record_id)
        return _publish(record, _back(record))

    @expose("/unpublish/<int:record_id>", methods=["POST"])
    @has_access
    def unpublish(self, record_id: int) -> Any:
        record = _record_or_404(record_id)
        return _unpublish(record, _back(record))


def _publish(record: ExportRecord, back: str) -> Any:
    if is_read_only(current_user_or_none()):
        abort(403)
    try:
        services.publish(db.session, record, user=_username())
        db.session.commit()
    except DomainValidationError as exc:
        db.session.rollback()
        flash_domain_error(exc)
        return redirect(back)
    if record.period is not None:
        message = _(
            "Published %(file)s to the donor users of %(grant)s. %(period)s is marked submitted and its report "
            "deadline is closed.",
            file=record.filename,
            grant=record.grant.reference,
            period=record.period.label,
        )
    else:
        message = _(
            "Published %(file)s to the donor users of %(grant)s.", file=record.filename, grant=record.grant.reference
        )
    flash(message, "success")
    return redirect(back)


def _unpublish(record: ExportRecord, back: str) -> Any:
    if is_read_only(current_user_or_none()):
        abort(403)
    try:
        services.unpublish(db.session, record, user=_username(), reason=request.form.get("reason", ""))
        db.session.commit()
    except DomainValidationError as exc:
        db.session.rollback()
        flash_domain_error(exc)
        return redirect(back)
    if record.period is not None and record.period.status.value == "open":
        message = _(
            "%(file)s is no longer visible to donors. %(period)s is open again and its report deadline counts again.",
            file=record.filename,
            period=record.period.label,
        )
    else:
        message = _("%(file)s is no longer visible to donors.", file=record.filename)
    flash(message, "success")
    return redirect(back)


def export_show(view: Any, pk: Any) -> Any:
    """An export's own page: what it is, whether the donors have it (in words), and Publish / Unpublish."""
    record = view.datamodel.get(pk, view._base_filters)
    if record is None:
        abort(404)
    names = display_names(db.session, {record.created_by})
    if record.kind == ExportKind.template and record.template_version is not None:
        made_from = _(
            "%(template)s, the funder's template (version %(version)s)",
            template=record.template_version.template.name,
            version=record.template_version.version,
        )
    else:
        report = services.BUILTIN_REPORTS.get(record.report)
        made_from = _("%(report)s (built-in report)", report=report.title if report else record.report)
    return view.render_template(
        "exports/export_show.html",
        title=record.filename,
        record=record,
        made_from=made_from,
        created_by=names.get(record.created_by or "", record.created_by or "—"),
        publication=publication(db.session, record),
        can_change=_can_change_exports(),
        period_page=closing_url(record.period_id) if record.period_id and _can_change_exports() else None,
        moment=formatting.moment,
        number=formatting.number,
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(PeriodReportView)
    ACTIONS.add("exports.report", period_panel, order=10)
