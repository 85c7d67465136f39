"""In-app notifications of a user, and sending failed reminders again (the outbox)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, joinedload

from core.clock import as_utc
from grants.deadlines.models import Notification, ReminderLog, ReminderStatus


def notifications_for(
    session: Session, user_id: int, *, limit: int = 100, unread_only: bool = False
) -> list[Notification]:
    # A reminder's notification shows the reminder's subject and body: loaded in the same query.
    query = select(Notification).options(joinedload(Notification.reminder_log)).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user_id: int) -> int:
    return (
        session.scalar(
            select(func.count(Notification.id)).where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(session: Session, user_id: int, notification_ids: list[int] | None, *, now: dt.datetime) -> int:
    """Mark some (or, with None, all) of a user's notifications read. Others' are never touched."""
    stmt = update(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    if notification_ids is not None:
        stmt = stmt.where(Notification.id.in_(notification_ids))
    # DML returns a CursorResult (which has rowcount); Session.execute is typed as a plain Result.
    result = cast(
        CursorResult[Any],
        session.execute(stmt.values(read_at=as_utc(now)).execution_options(synchronize_session=False)),
    )
    return result.rowcount or 0


# ---------------------------------------------------------------- the outbox


def requeue_reminders(session: Session, log_ids: list[int], *, now: dt.datetime) -> int:
    """Send failed (or outbox) reminders again at the next sweep. Sent ones are never resent."""
    result = cast(
        CursorResult[Any],
        session.execute(
            update(ReminderLog)
            .where(
                ReminderLog.id.in_(log_ids),
                ReminderLog.status.in_([ReminderStatus.failed, ReminderStatus.outbox]),
            )
            .values(status=ReminderStatus.failed, next_attempt_at=as_utc(now))
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount or 0
