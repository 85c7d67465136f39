"""REST API (JWT) for deadlines: the usual CRUD plus /mine with state and what is missing."""

from __future__ import annotations

from typing import Any

from flask import g, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import ModelRestApi, expose, protect, safe
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import permission_name

from core import clock
from core.errors import DomainValidationError
from core.extensions import db
from grants.access import GrantScopedApiMixin
from grants.deadlines import services
from grants.deadlines.models import Deadline, DeadlineSource
from grants.deadlines.views import sync_now


class DeadlineApi(GrantScopedApiMixin, ModelRestApi):
    resource_name = "deadlines"
    class_permission_name = "Deadlines"  # one role rule for the view and the API (FAB.md trap 8)
    datamodel = SQLAInterface(Deadline)
    list_columns = show_columns = [
        "id",
        "grant.id",
        "grant.reference",
        "title",
        "kind",
        "due_date",
        "owner.id",
        "owner.username",
        "source_kind",
        "source_id",
        "submitted_on",
        "waived",
        "waived_reason",
    ]
    add_columns = ["grant", "kind", "title", "due_date", "owner", "notes"]
    edit_columns = ["title", "kind", "due_date", "owner", "notes", "submitted_on", "waived", "waived_reason"]
    order_columns = ["due_date", "title", "kind"]
    search_columns = ["grant", "title", "kind", "due_date", "owner", "source_kind", "waived"]
    allow_browser_login = False

    def pre_add(self, item: Deadline) -> None:
        item.source_kind = DeadlineSource.manual
        item.source_id = None
        item.waived = bool(item.waived)
        super().pre_add(item)

    def pre_update(self, item: Deadline) -> None:
        services.refuse_source_field_edits(item)
        super().pre_update(item)

    def pre_delete(self, item: Deadline) -> None:
        if item.source_kind != DeadlineSource.manual:
            raise DomainValidationError({"_": [services.comes_from_message(item.source_kind)]})

    @expose("/mine", methods=["GET"])
    @protect()
    @safe
    @permission_name("get")
    def mine(self) -> Any:
        """My deadlines, most urgent first, with state, days left and what is still missing.
        ---
        get:
          parameters:
          - in: query
            name: scope
            schema: {type: string, enum: [mine, all]}
          - in: query
            name: grant
            schema: {type: integer}
          responses:
            200:
              description: the deadlines
        """
        sync_now()
        grant_id = request.args.get("grant", type=int)
        scope = request.args.get("scope", "mine" if grant_id is None else "all")
        rows = services.deadlines_for_user(
            db.session,
            g.user,
            today=clock.today(),
            mine_only=scope == "mine",
            grant_id=grant_id,
            include_done=request.args.get("done") == "1",
        )
        return self.response(
            200,
            result=[
                {
                    "id": row.deadline.id,
                    "grant": row.deadline.grant.reference,
                    "title": row.deadline.title,
                    "kind": row.deadline.kind.value,
                    "due_date": row.deadline.due_date.isoformat(),
                    "state": row.state.value,
                    "days_left": row.days_left,
                    "owner_id": row.deadline.owner_id,
                    "missing": row.missing,
                }
                for row in rows
            ],
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_api(DeadlineApi)
