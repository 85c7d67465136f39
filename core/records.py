"""Pieces every domain model uses: the Audited marker, validation before flush, enum columns."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from flask_appbuilder import Model
from sqlalchemy import Enum, event, select
from sqlalchemy.orm import Session

from core.errors import DomainValidationError, ErrorCollector
from core.formatting import gettext as _
from core.money import numbers_out_of_range

E = TypeVar("E", bound=enum.Enum)


def enum_column(enum_cls: type[enum.Enum], length: int = 20) -> Enum:
    """Store an enum as a VARCHAR with a CHECK, the same on SQLite and PostgreSQL.

    Members are named like their values (``active = "active"``): FAB's form
    fields look enum members up by the stored string.
    """
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        validate_strings=True,
        create_constraint=True,
        name=f"ck_{enum_cls.__name__.lower()}",
    )


@overload
def parse_enum(enum_cls: type[E], value: Any, field: str, *, allow_none: Literal[False] = False) -> E: ...
@overload
def parse_enum(enum_cls: type[E], value: Any, field: str, *, allow_none: bool) -> E | None: ...
def parse_enum(enum_cls: type[E], value: Any, field: str, *, allow_none: bool = False) -> E | None:
    """A member of ``enum_cls`` from a member or its value; a wrong value names the field and the choices."""
    if value is None and allow_none:
        return None
    if isinstance(value, enum_cls):
        return value
    try:
        return enum_cls(value)
    except ValueError:
        known = ", ".join(member.value for member in enum_cls)
        raise DomainValidationError(
            {field: [_("'%(value)s' is not one of %(choices)s", value=value, choices=known)]}
        ) from None


class Audited:
    """Marks a model whose every insert, update and delete goes to the audit trail."""

    __audited__ = True

    if TYPE_CHECKING:
        # Set by every mapped class that uses the mixin; the audit hook reads it.
        __tablename__: str

    def validate(self, session: Session) -> None:  # pragma: no cover - overridden
        """Raise DomainValidationError if the record breaks a domain rule."""


def check_unique(session: Session, record: Model, errors: ErrorCollector, *fields: str) -> None:
    """Name a duplicate in words before the database refuses it with an IntegrityError."""
    model = type(record)
    for field in fields:
        value = getattr(record, field)
        if value is None:
            continue
        query = select(model.id).where(getattr(model, field) == value)
        if record.id is not None:
            query = query.where(model.id != record.id)
        with session.no_autoflush:
            if session.scalar(query) is not None:
                errors.add(
                    field,
                    _("'%(value)s' is already used by another %(kind)s", value=value, kind=model.__name__.lower()),
                )


def validate_record(session: Session, record: object) -> None:
    """Run a record's domain rules without letting its own queries flush it half-made.

    First of all, every number must fit its column: a 1E+20 amount or an id beyond 32 bits
    is refused by field here rather than by the database with an error page.
    """
    out_of_range = numbers_out_of_range(record)
    if out_of_range:
        raise DomainValidationError(out_of_range)
    validate = getattr(record, "validate", None)
    if validate is not None:
        with session.no_autoflush:
            validate(session)


def _validate_before_flush(session: Session, flush_context: object, instances: object) -> None:
    # Every path (form, API, CLI, import, sync) flushes; checking here means no path
    # can store a record that breaks a rule, whatever the view forgot to check.
    for record in list(session.new):
        if isinstance(record, Audited):
            validate_record(session, record)
    for record in list(session.dirty):
        if isinstance(record, Audited) and session.is_modified(record, include_collections=False):
            validate_record(session, record)


def install_validation(session_class: type[Session] = Session) -> None:
    if not event.contains(session_class, "before_flush", _validate_before_flush):
        event.listen(session_class, "before_flush", _validate_before_flush)
