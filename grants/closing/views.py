"""The period page: one grant, one period, the checklist that closes it, and the actions other packages add.

``ACTIONS`` is the page's extension point: exports adds its Generate / Review /
Publish panel (``exports.closing``) without this package importing it. A
provider is ``provider(session, period, user, checklist) -> Markup | None``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import abort, current_app, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from core import clock
from core.extensions import db
from core.formatting import gettext as _
from core.registry import Registry
from grants.access import current_user_or_none
from grants.closing.checklist import (
    LEVEL_CLASSES,
    LEVEL_LABELS,
    LEVEL_SYMBOLS,
    Checklist,
    Fix,
    build_checklist,
)
from grants.closing.services import period_state
from grants.models import PeriodStatus, ReportingPeriod
from grants.services import can_see_grant, is_read_only

TEMPLATES = str(Path(__file__).resolve().parent / "templates")

ActionProvider = Callable[[Session, ReportingPeriod, Any, Checklist], "Markup | None"]

ACTIONS: Registry[ActionProvider] = Registry("period page action panel")


def fix_url(fix: Fix) -> str | None:
    """The fix's URL, or None when the user may not follow it (no dead or forbidden links)."""
    if fix.permission is not None:
        permission, view = fix.permission
        if not current_app.appbuilder.sm.has_access(permission, view):  # type: ignore[attr-defined]
            return None
    try:
        return url_for(fix.endpoint, **dict(fix.args))
    except BuildError:
        return None


def closing_url(period: ReportingPeriod | int) -> str:
    return url_for("PeriodClosingView.page", period_id=getattr(period, "id", period))


def visible_period_or_404(period_id: int) -> ReportingPeriod:
    period = db.session.get(ReportingPeriod, period_id)
    if period is None or not can_see_grant(db.session, current_user_or_none(), period.grant_id):
        abort(404)
    return period


class PeriodClosingView(BaseView):
    """Close a reporting period: see what is missing, fix it, then report to the donor."""

    route_base = "/closing"
    template_folder = TEMPLATES
    class_permission_name = "ReportingPeriods"
    # Closing changes a period: only those who may edit periods (not donors, not auditors) see the page.
    method_permission_name = {"page": "edit"}
    default_view = "page"

    @expose("/<int:period_id>")
    @has_access
    def page(self, period_id: int) -> Any:
        period = visible_period_or_404(period_id)
        grant = period.grant
        user = current_user_or_none()
        checklist = build_checklist(db.session, grant, period, today=clock.today(), user=user)
        actions = [html for html in (provider(db.session, period, user, checklist) for provider in ACTIONS.values())]
        siblings = list(grant.periods)
        return self.render_template(
            "closing/period.html",
            title=_("%(reference)s — close %(period)s", reference=grant.reference, period=period.label),
            grant=grant,
            period=period,
            checklist=checklist,
            state=period_state(db.session, period),
            actions=[html for html in actions if html],
            labels=LEVEL_LABELS,
            classes=LEVEL_CLASSES,
            symbols=LEVEL_SYMBOLS,
            fix_url=fix_url,
            siblings=siblings,
            submitted=period.status != PeriodStatus.open,
        )


def closing_links(periods: list[ReportingPeriod]) -> Markup:
    """'Close S1 · Close S2' for the grant page's reporting panel."""
    links = [
        Markup('<a href="{}" class="close-period-link">{} {}</a>').format(
            closing_url(p), _("Close") if p.status == PeriodStatus.open else _("Review"), p.label
        )
        for p in periods
    ]
    return Markup(" · ").join(links) if links else Markup.escape(_("generate the periods first"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(PeriodClosingView)


def may_close_periods() -> bool:
    """Whether the signed-in user may open period pages (so no link leads to a refusal)."""
    user = current_user_or_none()
    return (
        user is not None
        and not is_read_only(user)
        and current_app.appbuilder.sm.has_access("can_edit", "ReportingPeriods")  # type: ignore[attr-defined]
    )


def closing_link(period_id: int) -> Markup | str:
    """The periods list's link to a period's page, for those who may open it."""
    if not may_close_periods():
        return "—"
    return Markup('<a href="{}">{}</a>').format(closing_url(period_id), _("Checklist, report and publishing"))
