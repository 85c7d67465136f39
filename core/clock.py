"""The one clock: what time it is, and what day it is in the organisation's time zone.

Every "now" and "today" in Grantkeeper comes from here, so that pages, rules,
reminders and exports agree on the date, and tests can set the time with
``frozen_at``. Timestamps are stored in UTC; "today" is the date in the
organisation's zone (``GRANTKEEPER_TIMEZONE``), not the server's local date.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

_zone: ZoneInfo = ZoneInfo("UTC")
_frozen: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar("frozen_now", default=None)


def set_zone(name: str) -> None:
    """Set the organisation's time zone (an IANA name such as ``America/St_Lucia``)."""
    global _zone
    _zone = ZoneInfo(name or "UTC")


def zone() -> ZoneInfo:
    return _zone


def now() -> dt.datetime:
    """The current moment, timezone-aware, in UTC."""
    frozen = _frozen.get()
    return frozen if frozen is not None else dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today's date where the organisation is."""
    return now().astimezone(_zone).date()


def local(moment: dt.datetime) -> dt.datetime:
    """A stored moment in the organisation's zone (naive moments are taken as UTC)."""
    return as_utc(moment).astimezone(_zone)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A moment as an aware UTC datetime; SQLite hands back naive ones, which are UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


@contextlib.contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[dt.datetime]:
    """Make ``now()`` and ``today()`` answer ``moment`` inside the block (tests, replays)."""
    token = _frozen.set(as_utc(moment))
    try:
        yield as_utc(moment)
    finally:
        _frozen.reset(token)
