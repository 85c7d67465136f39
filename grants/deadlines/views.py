"""Web pages: deadlines (all, mine, per grant), reminder policies, the outbox, notifications, the .ics feed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, ModelView, expose
from flask_appbuilder.actions import action
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from markupsafe import Markup
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from wtforms import BooleanField, IntegerField
from wtforms.validators import InputRequired, NumberRange, Optional

from core import clock
from core.audit import Actor, acting_as
from core.errors import DomainValidationError
from core.extensions import db
from core.formatting import N_, day, label, lazy_gettext, ngettext
from core.formatting import gettext as _
from grants.access import (
    GrantScopedViewMixin,
    ScopedChoicesMixin,
    ValidatedViewMixin,
    current_user_or_none,
    ensure_parent_visible,
    visible_grants_filter,
    visible_through,
)
from grants.deadlines import calendar as feed_tokens
from grants.deadlines import notifications, services
from grants.deadlines.ical import calendar_for_user
from grants.deadlines.mail import languages_of
from grants.deadlines.missing import missing_for
from grants.deadlines.models import (
    Deadline,
    DeadlineSource,
    DeadlineState,
    ReminderLog,
    ReminderPolicy,
)
from grants.models import Grant
from grants.page import Panel, register_panel
from grants.services import can_see_grant, visible_grant_ids_query

log = logging.getLogger(__name__)
TEMPLATES = str(Path(__file__).resolve().parent / "templates")
SYNC_ACTOR = Actor(None, "deadline-sync", "system")
STATE_LABELS = {
    DeadlineState.overdue: "danger",
    DeadlineState.due: "warning",
    DeadlineState.upcoming: "info",
    DeadlineState.submitted: "success",
    DeadlineState.waived: "default",
}


def base_url() -> str:
    return (current_app.config.get("BASE_URL") or request.host_url).rstrip("/")


def sync_now() -> None:
    """Period deadlines follow their periods at once on the pages that show them, not only at the sweep."""
    try:
        with acting_as(SYNC_ACTOR):
            result = services.sync_period_deadlines(db.session, today=clock.today())
        if result.created or result.updated or result.removed:
            db.session.commit()
    except (IntegrityError, OperationalError):
        db.session.rollback()  # a sweep synced the same periods at the same moment


def state_badge(state: DeadlineState) -> Markup:
    return Markup('<span class="label label-{}">{}</span>').format(STATE_LABELS[state], label(state))


class DeadlineView(GrantScopedViewMixin, ModelView):
    datamodel = SQLAInterface(Deadline)
    class_permission_name = "Deadlines"
    route_base = "/deadlines"
    template_folder = TEMPLATES
    list_title = lazy_gettext("Deadlines")
    show_title = lazy_gettext("Deadline")
    add_title = lazy_gettext("Add a one-off deadline")
    edit_title = lazy_gettext("Edit a deadline")
    show_template = "deadlines/deadline_show.html"
    list_columns = ["grant", "title", "kind", "due_date", "state", "owner"]
    show_columns = [
        "grant",
        "title",
        "kind",
        "due_date",
        "state",
        "owner",
        "source_kind",
        "submitted_on",
        "waived",
        "waived_reason",
        "notes",
    ]
    add_columns = ["grant", "kind", "title", "due_date", "owner", "notes"]
    edit_columns = ["title", "kind", "due_date", "owner", "notes", "submitted_on", "waived", "waived_reason"]
    search_columns = ["grant", "title", "kind", "due_date", "owner", "source_kind", "submitted_on", "waived"]
    order_columns = ["title", "due_date", "kind"]
    base_order = ("due_date", "asc")
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "title": lazy_gettext("Title"),
        "kind": lazy_gettext("Kind"),
        "due_date": lazy_gettext("Due"),
        "state": lazy_gettext("State"),
        "owner": lazy_gettext("Owner"),
        "source_kind": lazy_gettext("Comes from"),
        "submitted_on": lazy_gettext("Submitted on"),
        "waived": lazy_gettext("Waived"),
        "waived_reason": lazy_gettext("Why waived"),
        "notes": lazy_gettext("Internal notes (never in the calendar feed)"),
    }
    description_columns = {
        "title": lazy_gettext("Reporting-period deadlines take their title and date from the period."),
    }
    formatters_columns = {"title": services.title_in_reader_language}
    # FAB makes every non-nullable column required; an unticked box must simply mean "not waived".
    edit_form_extra_fields = {"waived": BooleanField(lazy_gettext("Waived"), validators=[Optional()])}
    # Marking submitted / reopening changes the record: it needs can_edit like the edit form.
    method_permission_name = {"mark_submitted": "edit", "reopen": "edit"}

    @expose("/list/")
    @has_access
    def list(self) -> Any:
        sync_now()
        return super().list()

    def pre_add(self, item: Deadline) -> None:
        item.source_kind = DeadlineSource.manual
        item.source_id = None
        item.waived = bool(item.waived)
        super().pre_add(item)

    def pre_update(self, item: Deadline) -> None:
        try:
            services.refuse_source_field_edits(item)
        except DomainValidationError:
            db.session.rollback()
            raise
        super().pre_update(item)

    def pre_delete(self, item: Deadline) -> None:
        if item.source_kind != DeadlineSource.manual:
            raise DomainValidationError({"_": [services.comes_from_message(item.source_kind)]})

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        deadline = self.datamodel.get(pk, self._base_filters)
        if deadline is None:
            abort(404)
        today = clock.today()
        logs = db.session.scalars(
            select(ReminderLog).where(ReminderLog.deadline_id == deadline.id).order_by(ReminderLog.id.desc()).limit(20)
        ).all()
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            shown_title=services.shown_titles(db.session, [deadline])[deadline.id],
            state_badge=state_badge,
            widgets=self._show(pk),
            related_views=self._related_views,
            deadline=deadline,
            state=deadline.state_on(today),
            when=services.describe_days((deadline.due_date - today).days),
            missing=missing_for(db.session, deadline),
            logs=logs,
            can_edit=self.appbuilder.sm.has_access("can_edit", "Deadlines"),
        )

    @expose("/<int:pk>/submitted", methods=["POST"])
    @has_access
    def mark_submitted(self, pk: int) -> Any:
        deadline = self.datamodel.get(pk, self._base_filters)
        if deadline is None:
            abort(404)
        services.mark_submitted(db.session, deadline, on=clock.today())
        db.session.commit()
        flash(
            _(
                "Marked submitted: %(title)s. Reminders for it stop.",
                title=services.title_in_reader_language(deadline.title),
            ),
            "success",
        )
        return redirect(url_for("DeadlineView.show", pk=pk))

    @expose("/<int:pk>/reopen", methods=["POST"])
    @has_access
    def reopen(self, pk: int) -> Any:
        deadline = self.datamodel.get(pk, self._base_filters)
        if deadline is None:
            abort(404)
        services.reopen_deadline(db.session, deadline)
        db.session.commit()
        flash(_("Reopened: %(title)s.", title=services.title_in_reader_language(deadline.title)), "info")
        return redirect(url_for("DeadlineView.show", pk=pk))


class FilterPolicyVisible(BaseFilter):
    """Funder-wide policies are visible to all who may read policies; grant ones follow the grant."""

    name = "Visible to me"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        visible = visible_grant_ids_query(current_user_or_none())
        if visible is None:
            return query
        return query.filter(or_(ReminderPolicy.grant_id.is_(None), ReminderPolicy.grant_id.in_(visible)))


class ReminderPolicyView(ValidatedViewMixin, ModelView):
    datamodel = SQLAInterface(ReminderPolicy)
    class_permission_name = "ReminderPolicies"
    route_base = "/reminder-policies"
    list_title = lazy_gettext("Reminder policies")
    add_title = lazy_gettext("Add a reminder policy")
    edit_title = lazy_gettext("Edit a reminder policy")
    show_title = lazy_gettext("Reminder policy")
    base_filters = [["id", FilterPolicyVisible, lambda: None]]
    add_form_query_rel_fields = edit_form_query_rel_fields = {"grant": visible_grants_filter("id")}
    list_columns = [
        "grant",
        "funder",
        "days_before",
        "on_due_day",
        "overdue_every_days",
        "escalate_after_days",
        "send_email",
    ]
    show_columns = add_columns = edit_columns = [
        "grant",
        "funder",
        "days_before",
        "on_due_day",
        "overdue_every_days",
        "escalate_after_days",
        "escalate_roles",
        "send_email",
    ]
    label_columns = {
        "grant": lazy_gettext("Grant"),
        "funder": lazy_gettext("Funder"),
        "days_before": lazy_gettext("Remind this many days before (e.g. 30,14,7,1)"),
        "on_due_day": lazy_gettext("Remind on the day"),
        "overdue_every_days": lazy_gettext("While overdue, remind every N days (0: never)"),
        "escalate_after_days": lazy_gettext("Escalate after N days overdue (empty: never)"),
        "escalate_roles": lazy_gettext("Escalate to members with these roles"),
        "send_email": lazy_gettext("Send e-mail (otherwise in-app only)"),
    }
    description_columns = {
        "grant": lazy_gettext(
            "A policy for one grant, or leave empty and choose a funder: the default for its grants."
        ),
    }
    # Unticked boxes and a 0 must be accepted (FAB would make these non-nullable columns "required").
    add_form_extra_fields = edit_form_extra_fields = {
        "on_due_day": BooleanField(lazy_gettext("Remind on the day"), validators=[Optional()]),
        "send_email": BooleanField(lazy_gettext("Send e-mail (otherwise in-app only)"), validators=[Optional()]),
        "overdue_every_days": IntegerField(
            lazy_gettext("While overdue, remind every N days (0: never)"),
            default=7,
            validators=[InputRequired(), NumberRange(min=0, message=lazy_gettext("0 (never) or a number of days"))],
        ),
    }

    def _before_save(self, item: ReminderPolicy) -> None:
        if item.grant is not None or item.grant_id is not None:
            try:
                ensure_parent_visible(item)
            except DomainValidationError:
                db.session.rollback()
                raise
        super()._before_save(item)


class ReminderOutboxView(ScopedChoicesMixin, ModelView):
    """Every reminder: sent, failed (with its error and next try) or waiting in the outbox.

    Auditors read the reminders of the grants they are members of (an organisation-wide auditor, all).
    """

    datamodel = SQLAInterface(ReminderLog)
    class_permission_name = "ReminderOutbox"
    route_base = "/reminder-outbox"
    list_title = lazy_gettext("Reminder outbox")
    show_title = lazy_gettext("Reminder")
    base_permissions = ["can_list", "can_show", "can_requeue"]
    list_columns = [
        "created_at",
        "status",
        "recipient",
        "to_address",
        "subject",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    show_columns = [
        "created_at",
        "status",
        "recipient",
        "to_address",
        "subject",
        "body",
        "offset_key",
        "attempts",
        "claimed_at",
        "sent_at",
        "next_attempt_at",
        "last_error",
    ]
    search_columns = ["status", "recipient", "subject", "created_at"]
    order_columns = ["created_at", "status", "attempts", "next_attempt_at"]
    base_order = ("id", "desc")
    base_filters = visible_through("deadline")
    label_columns = {
        "created_at": lazy_gettext("Created"),
        "status": lazy_gettext("Status"),
        "recipient": lazy_gettext("Recipient"),
        "to_address": lazy_gettext("To"),
        "subject": lazy_gettext("Subject"),
        "body": lazy_gettext("Message"),
        "offset_key": lazy_gettext("Reminder stage"),
        "attempts": lazy_gettext("Attempts"),
        "claimed_at": lazy_gettext("Claimed"),
        "sent_at": lazy_gettext("Sent"),
        "next_attempt_at": lazy_gettext("Next try"),
        "last_error": lazy_gettext("Last error"),
    }
    page_size = 50

    @action(
        "requeue",
        lazy_gettext("Send again"),
        lazy_gettext("Send the selected failed or outbox reminders at the next sweep?"),
        "fa-repeat",
        single=False,
    )
    def requeue(self, items: Any) -> Any:
        items = items if isinstance(items, list) else [items]
        count = notifications.requeue_reminders(db.session, [item.id for item in items], now=clock.now())
        db.session.commit()
        flash(
            ngettext(
                "%(num)d reminder will be sent at the next sweep (sent ones are never resent).",
                "%(num)d reminders will be sent at the next sweep (sent ones are never resent).",
                count,
            ),
            "info",
        )
        return redirect(url_for("ReminderOutboxView.list"))


class MyDeadlinesView(BaseView):
    """What is due, for me or for one grant, most urgent first, with what is still missing."""

    route_base = "/my-deadlines"
    class_permission_name = "MyDeadlines"
    template_folder = TEMPLATES
    default_view = "index"

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self) -> Any:
        return self._render()

    def _render(self, new_feed_url: str | None = None) -> Any:
        sync_now()
        user = g.user
        grant_id = request.args.get("grant", type=int)
        scope = request.args.get("scope", "mine" if grant_id is None else "all")
        include_done = request.args.get("done") == "1"
        rows = services.deadlines_for_user(
            db.session,
            user,
            today=clock.today(),
            mine_only=scope == "mine",
            grant_id=grant_id,
            include_done=include_done,
        )
        grant = None
        if grant_id is not None:
            if not can_see_grant(db.session, user, grant_id):
                abort(404)
            grant = db.session.get(Grant, grant_id)
        return self.render_template(
            "deadlines/my_deadlines.html",
            rows=rows,
            titles=services.shown_titles(db.session, [row.deadline for row in rows]),
            scope=scope,
            grant=grant,
            include_done=include_done,
            state_badge=state_badge,
            unread=notifications.unread_count(db.session, user.id),
            feed_since=feed_tokens.calendar_token_created(db.session, user.id),
            new_feed_url=new_feed_url,
        )

    @expose("/calendar", methods=["POST"])
    @has_access
    @permission_name("list")
    def calendar(self) -> Any:
        user = g.user
        if request.form.get("action") == "revoke":
            feed_tokens.revoke_calendar_token(db.session, user.id)
            db.session.commit()
            flash(_("Your calendar feed URL no longer works."), "info")
            return redirect(url_for("MyDeadlinesView.index"))
        token = feed_tokens.issue_calendar_token(db.session, user.id, now=clock.now())
        db.session.commit()
        # Shown in this response only (never flashed into the cookie, never stored readable).
        return self._render(new_feed_url=f"{base_url()}/calendar/{token}.ics")


class NotificationsView(BaseView):
    route_base = "/notifications"
    class_permission_name = "Notifications"
    template_folder = TEMPLATES
    default_view = "index"

    @expose("/")
    @has_access
    @permission_name("list")
    def index(self) -> Any:
        user = g.user
        return self.render_template(
            "deadlines/notifications.html",
            notifications=notifications.notifications_for(db.session, user.id),
            unread=notifications.unread_count(db.session, user.id),
        )

    @expose("/read", methods=["POST"])
    @has_access
    @permission_name("list")
    def read(self) -> Any:
        ids = None if request.form.get("all") == "1" else [int(i) for i in request.form.getlist("id") if i.isdigit()]
        notifications.mark_read(db.session, g.user.id, ids, now=clock.now())
        db.session.commit()
        return redirect(url_for("NotificationsView.index"))


calendar_blueprint = Blueprint("deadline_calendar", __name__)


@calendar_blueprint.route("/calendar/<token>.ics")
def calendar_feed(token: str) -> Any:
    """The feed needs no login (calendar apps can't sign in): the secret URL is the key."""
    user = feed_tokens.user_for_calendar_token(db.session, token)
    if user is None:
        abort(404)
    sync_now()
    language = languages_of(db.session, [user.id]).get(user.id)  # the user's own: calendar apps send none
    body = calendar_for_user(
        db.session, user, now=clock.now(), base_url=base_url(), today=clock.today(), language=language
    )
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="grantkeeper-deadlines.ics"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def deadlines_panel(session: Any, grant: Any, user: Any) -> Panel | None:
    if not current_app.appbuilder.sm.has_access("can_list", "Deadlines"):
        return None  # donors see the grant page, not the organisation's internal deadlines
    today = clock.today()
    rows = services.deadlines_for_user(
        session, user, today=today, mine_only=False, grant_id=grant.id, with_missing=False
    )
    if not rows:
        return Panel(
            title=_("Deadlines"),
            order=20,
            rows=[(_("Open deadlines"), _("none"))],
            link=(_("All deadlines"), f"/my-deadlines/?scope=all&grant={grant.id}"),
        )
    titles = services.shown_titles(session, [row.deadline for row in rows[:6]])
    html = (
        Markup("<ul class='list-unstyled deadline-panel'>")
        + Markup("").join(
            Markup("<li>{} <a href='/deadlines/show/{}'>{}</a> — {} ({})</li>").format(
                state_badge(row.state), row.deadline.id, titles[row.deadline.id], day(row.deadline.due_date), row.when
            )
            for row in rows[:6]
        )
        + Markup("</ul>")
    )
    return Panel(
        title=_("Deadlines"),
        order=20,
        html=html,
        link=(_("All deadlines"), f"/my-deadlines/?scope=all&grant={grant.id}"),
    )


def unread_notifications() -> dict[str, Any]:
    """The navigation bar's unread count (one indexed COUNT per page, signed-in users only)."""
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    return {"unread_notifications": notifications.unread_count(db.session, user.id)}


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(MyDeadlinesView, N_("My deadlines"), icon="fa-bell", category=N_("Deadlines"))
    appbuilder.add_view(NotificationsView, N_("My notifications"), icon="fa-envelope", category="Deadlines")
    appbuilder.add_view(DeadlineView, N_("All deadlines"), icon="fa-calendar-check-o", category="Deadlines")
    appbuilder.add_view(ReminderPolicyView, N_("Reminder policies"), icon="fa-clock-o", category="Deadlines")
    appbuilder.add_view(ReminderOutboxView, N_("Reminder outbox"), icon="fa-inbox", category="Deadlines")
    current_app.register_blueprint(calendar_blueprint)  # register() runs inside create_app's app context
    current_app.context_processor(unread_notifications)
    register_panel(deadlines_panel)
