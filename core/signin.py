"""Signing in: failed attempts counted in the database, and a per-user session version.

Both live in the database every web worker shares, so a limit holds across workers
(no in-memory counter per process) and a logout ends every copy of a session cookie.
No Flask here: ``app/signin.py`` applies these to requests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_appbuilder import Model
from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from core import clock


class LoginFailure(Model):
    """One failed sign-in, under a key such as ``account:program`` or ``address:10.0.0.7``."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class SessionVersion(Model):
    """A user's session version: raised at logout, so every cookie signed before it is refused."""

    __tablename__ = "session_versions"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failed attempts per key within ``window``."""

    failures: int
    window: dt.timedelta


@dataclass(frozen=True)
class Refusal:
    kind: str  # "account" or "address"
    retry_after: dt.timedelta


def refusal(
    connection: Connection, limits: dict[str, tuple[str, Limit]], now: dt.datetime | None = None
) -> Refusal | None:
    """The first limit reached among ``{kind: (key, limit)}``, with how long until an attempt is counted again."""
    now = now or clock.now()
    for kind, (key, limit) in limits.items():
        since = now - limit.window
        count, oldest = connection.execute(
            select(func.count(LoginFailure.id), func.min(LoginFailure.at)).where(
                LoginFailure.key == key, LoginFailure.at > since
            )
        ).one()
        if count >= limit.failures:
            wait = clock.as_utc(oldest) + limit.window - now if oldest is not None else limit.window
            return Refusal(kind, max(wait, dt.timedelta(seconds=1)))
    return None


def record_failure(connection: Connection, keys: list[str], keep: dt.timedelta, now: dt.datetime | None = None) -> None:
    """Count one failed attempt under every key; attempts older than ``keep`` are forgotten."""
    now = now or clock.now()
    connection.execute(delete(LoginFailure).where(LoginFailure.at < now - keep))
    connection.execute(insert(LoginFailure), [{"key": key, "at": now} for key in keys])


def forget_failures(connection: Connection, key: str) -> None:
    """A correct password: the account's failed attempts no longer count."""
    connection.execute(delete(LoginFailure).where(LoginFailure.key == key))


def session_version(connection: Connection, user_id: int) -> int:
    found = connection.execute(select(SessionVersion.version).where(SessionVersion.user_id == user_id)).scalar()
    return int(found or 0)


def end_sessions(connection: Connection, user_id: int) -> int:
    """Raise the user's session version: every session cookie issued before is refused from now on."""
    changed = connection.execute(
        update(SessionVersion).where(SessionVersion.user_id == user_id).values(version=SessionVersion.version + 1)
    ).rowcount
    if not changed:
        connection.execute(insert(SessionVersion).values(user_id=user_id, version=1))
    return session_version(connection, user_id)
