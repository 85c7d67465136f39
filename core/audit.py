"""The audit trail: one session-level hook records every change of an Audited record.

Whatever path made the change (form, REST API, CLI, import, sync, a service
called from a script), the ``after_flush`` hook writes who, when, which record
and the before/after of each changed field, in the same transaction as the
change itself: if the change rolls back, so does its audit entry.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask_appbuilder import Model
from sqlalchemy import JSON, DateTime, Integer, String, event, insert, inspect
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import clock
from core.records import Audited

# Fields never copied into the audit trail, whatever model carries them.
REDACTED_FIELDS = frozenset({"password", "secret", "token", "api_key", "password_hash", "calendar_token"})
# What the trail says for a secret field that was set or changed: that it changed, never the value.
CHANGED = "changed"


@dataclass(frozen=True)
class AlsoAudited:
    """How a model we do not own (Flask-AppBuilder's users and roles) goes into the trail."""

    ignored: frozenset[str] = frozenset()  # bookkeeping columns (last login, counters): never an entry
    secret: frozenset[str] = frozenset()  # recorded as "changed", never the value
    relationships: tuple[str, ...] = ()  # collections recorded by the names of their members


_ALSO: dict[type, AlsoAudited] = {}


def audit_also(
    model: type,
    *,
    ignored: tuple[str, ...] = (),
    secret: tuple[str, ...] = (),
    relationships: tuple[str, ...] = (),
) -> None:
    """Record inserts, updates and deletes of ``model`` as if it were ``Audited`` (for library models)."""
    _ALSO[model] = AlsoAudited(frozenset(ignored), frozenset(secret), tuple(relationships))


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    username: str
    source: str  # web, api, cli, scheduler, system


SYSTEM = Actor(None, "system", "system")
_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)
_actor_provider: Callable[[], Actor | None] | None = None


class AuditEntry(Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10), index=True)
    table_name: Mapped[str] = mapped_column(String(80), index=True)
    # The grant the record belongs to (None for organisation-wide records: funders, users, roles).
    # No foreign key: an entry outlives its grant. Auditors read the entries of their grants only.
    grant_id: Mapped[int | None] = mapped_column(Integer, index=True)
    record_id: Mapped[str] = mapped_column(String(80), index=True)
    record_label: Mapped[str | None] = mapped_column(String(300))
    # {"field": [before, after]}; inserts have before = null, deletes after = null.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"{self.action} {self.table_name}#{self.record_id} by {self.username}"


def set_actor_provider(provider: Callable[[], Actor | None]) -> None:
    """The web layer tells the audit trail how to find the signed-in user."""
    global _actor_provider
    _actor_provider = provider


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute changes made inside the block to ``actor`` (CLI, scheduler, sync)."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def explicit_actor() -> Actor | None:
    """The actor set by ``acting_as`` around this code, if any."""
    return _actor.get()


def current_actor() -> Actor:
    explicit = _actor.get()
    if explicit is not None:
        return explicit
    if _actor_provider is not None:
        found = _actor_provider()
        if found is not None:
            return found
    return SYSTEM


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str, float)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, dict)):
        return value
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _column_changes(record: Any, action: str, also: AlsoAudited | None = None) -> dict[str, list[Any]]:
    state = inspect(record)
    changes: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        key = attr.key
        if also is not None and key in also.ignored:
            continue
        if also is not None and key in also.secret:
            if action != "delete" and (action == "insert" or state.attrs[key].history.has_changes()):
                changes[key] = [None, CHANGED]
            continue
        if key in REDACTED_FIELDS:
            continue
        if action == "insert":
            value = getattr(record, key)
            if value is not None:
                changes[key] = [None, _plain(value)]
        elif action == "delete":
            # Only what was loaded: reading an unloaded column of a deleted row would fail.
            value = state.dict.get(key)
            if value is not None:
                changes[key] = [_plain(value), None]
        else:
            history = state.attrs[key].history
            if history.has_changes():
                before = history.deleted[0] if history.deleted else None
                after = history.added[0] if history.added else None
                if _plain(before) != _plain(after):
                    changes[key] = [_plain(before), _plain(after)]
    return changes


def _relationship_changes(record: Any, action: str, also: AlsoAudited) -> dict[str, list[Any]]:
    """A collection (a user's roles) as the sorted names of its members, before and after."""
    state = inspect(record)
    changes: dict[str, list[Any]] = {}
    for key in also.relationships:
        history = state.attrs[key].history
        if action == "update" and not history.has_changes():
            continue
        before = sorted(str(item) for item in (*history.unchanged, *history.deleted))
        after = sorted(str(item) for item in (*history.unchanged, *history.added))
        if action == "insert" and after:
            changes[key] = [None, after]
        elif action == "delete" and before:
            changes[key] = [before, None]
        elif action == "update" and before != after:
            changes[key] = [before, after]
    return changes


def _grant_of(record: Any) -> int | None:
    """The grant an audited record belongs to (the record itself for a grant), if any."""
    values = inspect(record).dict
    value = values.get("id") if record.__tablename__ == "grants" else values.get("grant_id")
    return value if isinstance(value, int) else None


def _record_id(record: Any) -> str:
    identity = inspect(record).identity
    if identity:
        return ",".join(str(part) for part in identity)
    return ",".join(str(v) for v in inspect(record).mapper.primary_key_from_instance(record))


def _label(record: Any) -> str:
    try:
        return str(record)[:300]
    except Exception:  # a half-loaded record must not break the transaction
        return ""


def _after_flush(session: Session, flush_context: Any) -> None:
    rows = []
    actor = None
    now = clock.now()
    for action, records in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for record in records:
            also = _ALSO.get(type(record))
            if also is None and not isinstance(record, Audited):
                continue
            changes = _column_changes(record, action, also)
            if also is not None:
                changes.update(_relationship_changes(record, action, also))
            if action == "update" and not changes:
                continue
            actor = actor or current_actor()
            rows.append(
                {
                    "at": now,
                    "user_id": actor.user_id,
                    "username": actor.username,
                    "source": actor.source,
                    "action": action,
                    "table_name": record.__tablename__,
                    "grant_id": _grant_of(record),
                    "record_id": _record_id(record),
                    "record_label": _label(record),
                    "changes": changes,
                }
            )
    if rows:
        # Core insert on the flush's own connection: same transaction, no re-entrant flush.
        session.connection().execute(insert(AuditEntry.__table__), rows)


# The common value types of bulk-written rows, said as ``_plain`` says them, without its chain of checks.
_PLAIN_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    str: lambda v: v,
    int: lambda v: v,
    Decimal: str,
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
}


def record_inserts(
    session: Session, table_name: str, records: list[tuple[int, int | None, str, dict[str, Any]]]
) -> None:
    """Audit rows a bulk writer inserted without the ORM: one statement for the whole batch.

    ``records``: (id, grant id, label, column values as inserted), every record with the same
    columns; each entry says what the flush hook says of an ORM insert (every non-empty
    column, secrets left out).
    """
    if not records:
        return
    actor = current_actor()
    now = clock.now()
    keys = [key for key in records[0][3] if key not in REDACTED_FIELDS and key != "id"]
    rows = []
    for record_id, grant_id, label, values in records:
        changes: dict[str, list[Any]] = {"id": [None, record_id]}
        for key in keys:
            value = values.get(key)
            if value is not None:
                plain = _PLAIN_BY_TYPE.get(type(value))
                changes[key] = [None, plain(value) if plain is not None else _plain(value)]
        rows.append(
            {
                "at": now,
                "user_id": actor.user_id,
                "username": actor.username,
                "source": actor.source,
                "action": "insert",
                "table_name": table_name,
                "grant_id": grant_id,
                "record_id": str(record_id),
                "record_label": label[:300],
                "changes": changes,
            }
        )
    session.connection().execute(insert(AuditEntry.__table__), rows)


def install_audit(session_class: type[Session] = Session) -> None:
    if not event.contains(session_class, "after_flush", _after_flush):
        event.listen(session_class, "after_flush", _after_flush)
