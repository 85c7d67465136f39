"""Calendar feed tokens: the secret in a user's feed URL, stored only as a hash."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from core.clock import as_utc
from grants.deadlines.models import CalendarToken


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_calendar_token(session: Session, user_id: int, *, now: dt.datetime) -> str:
    """A new secret for the user's feed URL; any previous URL stops working. Shown once, stored hashed."""
    token = secrets.token_urlsafe(32)
    row = session.scalar(select(CalendarToken).where(CalendarToken.user_id == user_id))
    if row is None:
        row = CalendarToken(user_id=user_id)
        session.add(row)
    row.token_sha256 = _token_hash(token)
    row.created_at = as_utc(now)
    row.last_used_at = None
    session.flush()
    return token


def revoke_calendar_token(session: Session, user_id: int) -> bool:
    # DML returns a CursorResult (which has rowcount); Session.execute is typed as a plain Result.
    result = cast(CursorResult[Any], session.execute(delete(CalendarToken).where(CalendarToken.user_id == user_id)))
    return bool(result.rowcount)


def calendar_token_created(session: Session, user_id: int) -> dt.datetime | None:
    return session.scalar(select(CalendarToken.created_at).where(CalendarToken.user_id == user_id))


def user_for_calendar_token(session: Session, token: str) -> Any | None:
    """The active user whose feed this token opens, or None (unknown, revoked, or deactivated)."""
    from flask_appbuilder.security.sqla.models import User

    if not token or len(token) > 200:
        return None
    user = session.scalar(
        select(User)
        .join(CalendarToken, CalendarToken.user_id == User.id)
        .where(CalendarToken.token_sha256 == _token_hash(token))
    )
    if user is None or not user.active:
        return None
    return user
