"""The start page: the signed-in user's grants and what is due next."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import g
from flask_appbuilder import IndexView, expose
from sqlalchemy import exists, select

from core import clock
from core.extensions import db
from grants.models import Grant, PeriodStatus, ReportingPeriod
from grants.services import visible_grant_ids_query, visible_grants


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


class DashboardIndexView(IndexView):
    index_template = "dashboard.html"

    @expose("/")
    def index(self) -> Any:
        user = getattr(g, "user", None)
        if user is None or not user.is_authenticated:
            return self.render_template("welcome.html")
        today = clock.today()
        return self.render_template(
            self.index_template,
            grants=visible_grants(db.session, user),
            reports=upcoming_reports(user, today),
            today=today,
        )
