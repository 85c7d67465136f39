"""The iCalendar (.ics) feed of a user's deadlines: title, grant and due date only, nothing confidential."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from core.clock import as_utc
from core.formatting import gettext as _
from core.formatting import in_locale
from grants.deadlines.models import Deadline, DeadlineState
from grants.deadlines.services import shown_titles
from grants.models import Grant
from grants.services import visible_grant_ids_query


def feed_deadlines(session: Session, user: Any) -> list[Deadline]:
    """Every deadline of every grant the user may see, waived ones left out."""
    query = (
        select(Deadline)
        .join(Grant, Grant.id == Deadline.grant_id)
        .options(joinedload(Deadline.grant))
        .where(Deadline.waived.is_(False))
        .order_by(Deadline.due_date, Deadline.id)
    )
    visible = visible_grant_ids_query(user)
    if visible is not None:
        query = query.where(Deadline.grant_id.in_(visible))
    return list(session.scalars(query))


def calendar_for_user(
    session: Session,
    user: Any,
    *,
    now: dt.datetime,
    base_url: str,
    today: dt.date,
    language: str | None = None,
) -> bytes:
    """An all-day event per deadline, in ``language`` (the user's own; English when None).

    Notes and missing items stay in the app, not in the calendar. Calendar apps fetch the
    feed without signing in, so the language is the one the user chose, not the request's.
    """
    with in_locale(language):
        return _calendar(session, user, now=now, base_url=base_url, today=today)


def _calendar(session: Session, user: Any, *, now: dt.datetime, base_url: str, today: dt.date) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//Grantkeeper//Deadlines//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", _("Grantkeeper deadlines"))
    calendar.add("refresh-interval", timedelta(hours=6), parameters={"VALUE": "DURATION"})
    stamp = as_utc(now)
    host = base_url.split("//", 1)[-1].split("/", 1)[0] or "grantkeeper"
    deadlines = feed_deadlines(session, user)
    titles = shown_titles(session, deadlines)
    for deadline in deadlines:
        event = Event()
        event.add("uid", f"deadline-{deadline.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("dtstart", deadline.due_date)
        event.add("dtend", deadline.due_date + timedelta(days=1))
        state = deadline.state_on(today)
        values = {"grant": deadline.grant.reference, "title": titles[deadline.id]}
        if state == DeadlineState.submitted:
            summary = _("%(grant)s: %(title)s (submitted)", **values)
        else:
            summary = _("%(grant)s: %(title)s", **values)
        event.add("summary", summary)
        event.add(
            "description",
            _(
                "Grant: %(grant)s — %(grant_title)s\nDue: %(date)s",
                grant=deadline.grant.reference,
                grant_title=deadline.grant.title,
                date=deadline.due_date.isoformat(),
            ),
        )
        event.add("url", f"{base_url.rstrip('/')}/deadlines/show/{deadline.id}")
        event.add("transp", "TRANSPARENT")
        event.add("class", "PRIVATE")
        calendar.add_component(event)
    return calendar.to_ical()
