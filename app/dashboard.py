"""The start page: what needs the signed-in user now, by role, then their grants.

The sections come from the domains through ``grants.landing.LANDING`` (each
domain adds its own from its ``contributions`` module); this page only builds
them for the user, turns their links into URLs, and drops every link the user
could not follow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, url_for
from flask_appbuilder import IndexView, expose
from sqlalchemy import exists, select
from werkzeug.routing import BuildError

from core import clock
from core.extensions import db
from grants.landing import BuiltSection, LandingContext, LandingItem, Link, sections_for
from grants.models import Grant, PeriodStatus, ReportingPeriod
from grants.services import user_role_names, visible_grant_ids_query, visible_grants


def demo_loaded() -> bool:
    try:
        return bool(db.session.scalar(select(exists().where(Grant.is_demo.is_(True)))))
    except Exception:  # before migrations ran, the page still renders
        db.session.rollback()
        return False


def upcoming_reports(user: Any, today: dt.date, limit: int = 10) -> list[ReportingPeriod]:
    query = (
        select(ReportingPeriod)
        .where(ReportingPeriod.status == PeriodStatus.open, ReportingPeriod.report_due.is_not(None))
        .order_by(ReportingPeriod.report_due)
        .limit(limit)
    )
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(ReportingPeriod.grant_id.in_(visible))
    return list(db.session.scalars(query))


def can_follow(endpoint: str) -> bool:
    """Whether the signed-in user may open ``endpoint``: the same check FAB's ``has_access`` makes."""
    view_name, _, method = endpoint.partition(".")
    appbuilder = current_app.appbuilder  # type: ignore[attr-defined]
    view = next((v for v in appbuilder.baseviews if v.endpoint == view_name), None)
    if view is None or not method:
        return endpoint in current_app.view_functions
    function = getattr(view, method, None)
    if function is None:
        return False
    name = (view.method_permission_name or {}).get(method) or getattr(function, "_permission_name", None)
    if name is None:
        return True  # not protected by has_access
    permission = name if name.startswith("can_") else f"can_{name}"
    return permission in view.base_permissions and appbuilder.sm.has_access(permission, view.class_permission_name)


def link_url(link: Link | None) -> str | None:
    """The URL of a landing link, or None when the user could not follow it."""
    if link is None or not can_follow(link.endpoint):
        return None
    try:
        return url_for(link.endpoint, **dict(link.values))
    except BuildError:
        return None


@dataclass
class ShownItem:
    item: LandingItem
    url: str | None
    grant_url: str | None = None


@dataclass
class ShownSection:
    key: str
    title: str
    items: list[ShownItem]
    empty: str
    link_text: str | None
    link_url: str | None


def landing_sections(user: Any, today: dt.date) -> list[ShownSection]:
    ctx = LandingContext(
        session=db.session,
        user=user,
        roles=frozenset(user_role_names(user)),
        grants=visible_grants(db.session, user),
        today=today,
        settings=current_app.config.get("GK_SETTINGS"),
    )
    grant_pages = {grant.reference: url_for("GrantView.show", pk=grant.id) for grant in ctx.grants}
    return [_shown(section, grant_pages) for section in sections_for(ctx)]


def _shown(section: BuiltSection, grant_pages: dict[str, str]) -> ShownSection:
    more = link_url(section.link)
    return ShownSection(
        key=section.key,
        title=section.title,
        items=[ShownItem(item, link_url(item.link), grant_pages.get(item.grant or "")) for item in section.items],
        empty=section.empty,
        link_text=section.link.text if section.link and more else None,
        link_url=more,
    )


class DashboardIndexView(IndexView):
    index_template = "dashboard.html"

    @expose("/")
    def index(self) -> Any:
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return self.render_template("welcome.html")
        today = clock.today()
        roles = user_role_names(user)
        return self.render_template(
            self.index_template,
            grants=visible_grants(db.session, user),
            sections=landing_sections(user, today),
            reports=upcoming_reports(user, today) if roles & {"Admin", "Auditor"} else None,
            today=today,
            donor_only=bool(roles) and roles <= {"Donor"},
        )
