"""Creating users with one of the roles, the passwords of new accounts, and users in the audit trail.

Users, their roles and their passwords live in Flask-AppBuilder's ``ab_*`` tables.
``install_user_audit`` puts every insert, update and delete of a user or a role
into the audit trail through the same session hook as our own records, whatever
the path (the CLI, the web's user forms, "reset password", the REST API): who
changed what, the roles before and after, and that a password changed, never
the password. Commands run outside a web request are attributed to "cli".
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, has_request_context
from flask_appbuilder import Model
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from config.roles import ROLE_NAMES
from core.audit import Actor, acting_as, audit_also, explicit_actor
from core.formatting import gettext as _

CLI = Actor(None, "cli", "cli")
# Bookkeeping FAB changes at every sign-in: never an audit entry of its own.
USER_BOOKKEEPING = (
    "last_login",
    "login_count",
    "fail_login_count",
    "changed_on",
    "created_on",
    "changed_by_fk",
    "created_by_fk",
)


def install_user_audit(appbuilder: Any) -> None:
    """Record user and role changes (FAB's models) in the audit trail; passwords only as "changed"."""
    sm = appbuilder.sm
    audit_also(sm.user_model, ignored=USER_BOOKKEEPING, secret=("password",), relationships=("roles",))
    audit_also(sm.role_model)


@contextlib.contextmanager
def _attributed() -> Iterator[None]:
    """Outside a request and without an actor set by the caller, changes are the CLI's."""
    if explicit_actor() is None and not has_request_context():
        with acting_as(CLI):
            yield
    else:
        yield


class UserError(ValueError):
    pass


class UserPreference(Model):
    """A user's own settings: the language of their pages and of the e-mails they receive."""

    __tablename__ = "user_preference"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(10))


def language_of(session: Session, user_id: int) -> str | None:
    """The language a user chose ("fr"), or None when they never chose one (their browser's applies)."""
    return session.scalar(select(UserPreference.language).where(UserPreference.user_id == user_id))


def languages_of(session: Session, user_ids: Any) -> dict[int, str]:
    """The chosen language of each of ``user_ids`` that chose one, in one query."""
    wanted = sorted({int(i) for i in user_ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(
        select(UserPreference.user_id, UserPreference.language).where(UserPreference.user_id.in_(wanted))
    )
    return {row.user_id: row.language for row in rows}


def set_language(session: Session, user_id: int, language: str, languages: Any) -> None:
    """Store a user's language; one of ``languages`` (the configured ones), else a UserError naming it."""
    if language not in languages:
        raise UserError(
            _(
                "%(field)s: '%(value)s' is not one of %(choices)s",
                field="language",
                value=language,
                choices=", ".join(languages),
            )
        )
    found = session.get(UserPreference, user_id)
    if found is None:
        session.add(UserPreference(user_id=user_id, language=language))
    else:
        found.language = language
    session.flush()


def create_user(
    app: Flask,
    username: str,
    email: str,
    role: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> object:
    """Create a user with one of the roles. The password is never logged (the trail says it was set)."""
    with app.app_context(), _attributed():
        sm = app.appbuilder.sm
        if role not in ROLE_NAMES:
            raise UserError(
                _(
                    "%(field)s: '%(value)s' is not one of %(choices)s",
                    field="role",
                    value=role,
                    choices=", ".join(ROLE_NAMES),
                )
            )
        if not password:
            raise UserError(_("%(field)s: must not be empty", field="password"))
        check_password_policy(app, password)
        if sm.find_user(username=username) is not None:
            raise UserError(_("%(field)s: '%(value)s' already exists", field="username", value=username))
        role_row = sm.find_role(role)
        if role_row is None:
            raise UserError(
                _(
                    "%(field)s: '%(value)s' has not been created; run 'python run.py init' first",
                    field="role",
                    value=role,
                )
            )
        user = sm.add_user(
            username=username,
            first_name=first_name or username,
            last_name=last_name or "-",
            email=email,
            role=role_row,
            password=password,
        )
        if not user:
            raise UserError(
                _("could not create '%(name)s' (is the e-mail '%(email)s' already used?)", name=username, email=email)
            )
        return user


def reset_password(app: Flask, username: str, password: str) -> None:
    """Set a user's password (the CLI's reset-password); audited as "password changed"."""
    with app.app_context(), _attributed():
        sm = app.appbuilder.sm
        if not password:
            raise UserError(_("%(field)s: must not be empty", field="password"))
        check_password_policy(app, password)
        user = sm.find_user(username=username)
        if user is None:
            raise UserError(_("%(field)s: no user '%(value)s'", field="username", value=username))
        sm.reset_password(user.id, password)


def check_password_policy(app: Flask, password: str) -> None:
    """The web form's password rule (FAB's complexity check and its validator setting), for every other path."""
    from flask_appbuilder.exceptions import PasswordComplexityValidationError
    from flask_appbuilder.validators import default_password_complexity

    if not app.config.get("FAB_PASSWORD_COMPLEXITY_ENABLED", False):
        return
    validator = app.config.get("FAB_PASSWORD_COMPLEXITY_VALIDATOR") or default_password_complexity
    try:
        validator(password)
    except PasswordComplexityValidationError as exc:
        raise UserError(f"password: {exc}") from None


def new_password() -> str:
    """A random password that meets the web form's rule (capitals, digits, lower case, a sign; 16 characters)."""
    chooser = secrets.SystemRandom()
    required = [
        *(secrets.choice(string.ascii_uppercase) for _ in range(2)),
        *(secrets.choice(string.digits) for _ in range(2)),
        *(secrets.choice(string.ascii_lowercase) for _ in range(3)),
        secrets.choice("-_.!#%"),
    ]
    rest = [secrets.choice(string.ascii_letters + string.digits) for _ in range(8)]
    characters = required + rest
    chooser.shuffle(characters)
    return "".join(characters)


@dataclass
class Credential:
    username: str
    password: str
    generated: bool


def password_from_env_or_new(username: str) -> Credential:
    """``GRANTKEEPER_PASSWORD_<USER>`` (dots become underscores), else a new random one."""
    variable = "GRANTKEEPER_PASSWORD_" + username.upper().replace(".", "_")
    value = os.environ.get(variable)
    if value:
        return Credential(username, value, generated=False)
    return Credential(username, new_password(), generated=True)
