"""Sign-in limits that fit an office, and sessions that end at logout.

Limits: only *failed* sign-ins count, per account and per address, in the database
every worker shares (``core.signin``). Reaching the account limit pauses password
checks for that account only; the address limit is much higher, so an office behind
one address keeps signing in while a guesser from one address is stopped. A correct
password clears the account's count. Both the web form and the API's JWT login are
limited; the refusal is a page in words (or a JSON message) with ``Retry-After``.

Sessions: every session cookie carries the user's session version; logout raises it
in the database, so a cookie copied before logout no longer signs anyone in.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from flask import Flask, g, jsonify, render_template, request, session
from flask_login import current_user, logout_user, user_logged_in, user_logged_out
from limits import parse

from core.extensions import db
from core.formatting import ngettext
from core.signin import Limit, end_sessions, forget_failures, record_failure, refusal, session_version

log = logging.getLogger(__name__)

LOGIN_ENDPOINTS = {"AuthDBView.login": "web", "SecurityApi.login": "api"}
SESSION_KEY = "gk_sv"


def _limit(text: str) -> Limit:
    item = parse(text)
    return Limit(item.amount, dt.timedelta(seconds=item.get_expiry()))


def init_app(app: Flask) -> None:
    """Take sign-in limiting over from FAB's per-address counter of every attempt, and check sessions."""
    enabled = bool(app.config.get("RATELIMIT_ENABLED") and app.config.get("AUTH_RATE_LIMITED"))
    app.config["AUTH_RATE_LIMITED"] = False  # FAB's own limiter counts successes too; ours replaces it
    account = _limit(app.config.get("AUTH_RATE_LIMIT", "10 per 15 minute"))
    address = _limit(app.config.get("AUTH_RATE_LIMIT_PER_ADDRESS", "100 per 15 minute"))
    keep = max(account.window, address.window)

    @app.before_request
    def _refuse_when_paused() -> Any:
        kind = LOGIN_ENDPOINTS.get(request.endpoint or "")
        if not enabled or kind is None or request.method != "POST":
            return None
        username = _attempted_username(kind)
        keys = {"account": (f"account:{username}", account), "address": (f"address:{request.remote_addr}", address)}
        with db.engine.connect() as connection:
            refused = refusal(connection, keys)
        if refused is not None:
            log.warning("sign-in paused (%s limit reached)", refused.kind)  # no username, no address
            return _paused(kind, refused.kind, refused.retry_after)
        g.gk_signin_attempt = (kind, [key for key, _limit in keys.values()])
        return None

    @app.after_request
    def _count_failure(response: Any) -> Any:
        attempt = g.pop("gk_signin_attempt", None)
        if attempt is None:
            return response
        kind, keys = attempt
        succeeded = response.status_code == 200 if kind == "api" else bool(current_user.is_authenticated)
        with db.engine.begin() as connection:
            if succeeded:
                forget_failures(connection, keys[0])
            else:
                record_failure(connection, keys, keep)
        return response

    @app.before_request
    def _refuse_ended_sessions() -> Any:
        if request.endpoint == "static" or "_user_id" not in session:
            return None
        user_id = int(session["_user_id"]) if str(session["_user_id"]).isdigit() else None
        if user_id is None:
            return None
        with db.engine.connect() as connection:
            current = session_version(connection, user_id)
        if session.get(SESSION_KEY, 0) != current:
            logout_user()
            session.clear()
            g.user = None
        return None

    @user_logged_in.connect_via(app)
    def _stamp(sender: Any, user: Any, **_extra: Any) -> None:
        with db.engine.connect() as connection:
            session[SESSION_KEY] = session_version(connection, user.id)

    @user_logged_out.connect_via(app)
    def _end_every_copy(sender: Any, user: Any, **_extra: Any) -> None:
        if user is None or getattr(user, "id", None) is None:
            return
        with db.engine.begin() as connection:
            end_sessions(connection, user.id)


def _attempted_username(kind: str) -> str:
    if kind == "api":
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    else:
        name = request.form.get("username")
    return str(name or "").strip().lower()[:100]


def _paused(kind: str, limit_kind: str, wait: dt.timedelta) -> Any:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    headers = {"Retry-After": str(math.ceil(wait.total_seconds()))}
    if kind == "api":
        if limit_kind == "account":
            message = ngettext(
                "too many wrong passwords for this account; try again in %(num)d minute",
                "too many wrong passwords for this account; try again in %(num)d minutes",
                minutes,
            )
        else:
            message = ngettext(
                "too many wrong passwords for this network address; try again in %(num)d minute",
                "too many wrong passwords for this network address; try again in %(num)d minutes",
                minutes,
            )
        response = jsonify(message=message)
        response.status_code = 429
        response.headers.update(headers)
        return response
    page = render_template(
        "errors/signin_paused.html",
        kind=limit_kind,
        minutes=minutes,
        appbuilder=_appbuilder(),
        base_template=_appbuilder().base_template,
    )
    return page, 429, headers


def _appbuilder() -> Any:
    from flask import current_app

    return current_app.appbuilder  # type: ignore[attr-defined]
