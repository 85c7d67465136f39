"""Browsing the audit trail: Admins and organisation-wide auditors read all of it, an Auditor the
entries of the grants they are a member of; nobody edits it.

Entries read in words: the kind of record ("export", not ``export_records``),
what was done ("added"), where from ("in the browser"), when (in the
organisation's zone, to the minute), and each changed field as before → after.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask_appbuilder import AppBuilder, ModelView
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from markupsafe import Markup, escape

from config.roles import WHOLE_TRAIL_ROLES
from core.audit import AuditEntry
from core.formatting import N_, NOTHING, day, gettext, label, lazy_gettext, moment, words
from grants.access import current_user_or_none, visible_grant_ids
from grants.landing import ACTIONS, record_kind, source_words
from grants.services import user_role_names

_SNAKE = re.compile(r"^[a-z]+(_[a-z0-9]+)+$")


def _value(value: Any) -> str:
    """A stored before/after value as people read it: dates and moments formatted, enum values as labels."""
    if value is None or value == "":
        return NOTHING
    if isinstance(value, str):
        try:
            if "T" in value or " " in value.strip():
                return moment(dt.datetime.fromisoformat(value))
            return day(dt.date.fromisoformat(value))
        except ValueError:
            pass
        if _SNAKE.match(value):
            return label(value)
        return value
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, (list, dict)):
        return (
            ", ".join(str(v) for v in value)
            if isinstance(value, list) and value
            else (str(value) if value else gettext("none"))
        )
    return str(value)


def changes_in_words(changes: Any) -> Markup:
    """{"title": [before, after]} as a list: "Title: old → new"; additions and deletions show one side."""
    if not changes:
        return Markup('<span class="text-muted">%s</span>') % gettext("no field changed")
    items = []
    for field, pair in changes.items():
        before, after = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        # Field names are the stored columns' names in words, as recorded.
        if before is None:
            text = gettext("%(field)s: %(after)s", field=words(field), after=_value(after))
        elif after is None:
            text = gettext("%(field)s: was %(before)s", field=words(field), before=_value(before))
        else:
            text = gettext(
                "%(field)s: %(before)s → %(after)s", field=words(field), before=_value(before), after=_value(after)
            )
        items.append(f"<li>{escape(text)}</li>")
    return Markup('<ul class="list-unstyled audit-changes">' + "".join(items) + "</ul>")


def reads_whole_trail(user: Any) -> bool:
    """Admins and organisation-wide auditors read every entry, users' and roles' included."""
    return bool(user_role_names(user) & WHOLE_TRAIL_ROLES)


class FilterAuditOfMyGrants(BaseFilter):
    """Entries of the grants the signed-in user may see; the organisation's own entries (users, roles,
    funders) only for those who read the whole trail."""

    name = "Of my grants"
    arg_name = None

    def apply(self, query: Any, value: Any) -> Any:
        user = current_user_or_none()
        if reads_whole_trail(user):
            return query
        ids = visible_grant_ids()
        if ids is None:  # sees every grant (Finance): every grant's entries, not the organisation's
            return query.filter(AuditEntry.grant_id.isnot(None))
        return query.filter(AuditEntry.grant_id.in_(ids or [-1]))


class AuditLogView(ModelView):
    datamodel = SQLAInterface(AuditEntry)
    class_permission_name = "AuditLog"
    route_base = "/audit"
    list_title = lazy_gettext("Audit trail")
    show_title = lazy_gettext("Audit entry")
    base_permissions = ["can_list", "can_show"]
    list_columns = ["at", "username", "source", "action", "table_name", "record_id", "record_label"]
    show_columns = [
        "at",
        "username",
        "user_id",
        "source",
        "action",
        "table_name",
        "record_id",
        "record_label",
        "changes",
    ]
    search_columns = ["at", "username", "source", "action", "table_name", "record_id", "record_label"]
    order_columns = ["at", "username", "action", "table_name"]
    base_order = ("id", "desc")
    base_filters = [["id", FilterAuditOfMyGrants, lambda: None]]
    label_columns = {
        "at": lazy_gettext("When"),
        "username": lazy_gettext("Who"),
        "user_id": lazy_gettext("User number"),
        "source": lazy_gettext("Where from"),
        "action": lazy_gettext("What"),
        "table_name": lazy_gettext("Kind of record"),
        "record_id": lazy_gettext("Record number"),
        "record_label": lazy_gettext("Record"),
        "changes": lazy_gettext("Changes"),
    }
    # The words come from grants.landing; core.labels lists them for the catalogues.
    formatters_columns = {
        "at": moment,
        "source": lambda source: gettext(source_words(source)),
        "action": lambda action: gettext(ACTIONS.get(action, str(action))),
        "table_name": lambda table: gettext(record_kind(table)),
        "changes": changes_in_words,
        "user_id": lambda user_id: NOTHING if user_id is None else str(user_id),
    }
    page_size = 50


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(AuditLogView, N_("Audit trail"), icon="fa-history", category=N_("Administration"))
