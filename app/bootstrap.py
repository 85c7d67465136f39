"""Bringing an instance up: migrations, roles, users, demo data. Used by run.py and tests."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from app.audit import Actor, acting_as
from app.extensions import db
from config.roles import ROLE_NAMES

CLI = Actor(None, "cli", "cli")


def upgrade_database(app: Flask) -> None:
    """Apply every migration: they own all tables, FAB's included."""
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)


def ensure_roles(app: Flask) -> None:
    """The five roles exist as rows so users can hold them; their rules come from config."""
    with app.app_context():
        sm = app.appbuilder.sm
        for name in (*ROLE_NAMES, sm.auth_role_public):
            if sm.find_role(name) is None:
                sm.add_role(name)
        db.session.commit()


class UserError(ValueError):
    pass


def create_user(
    app: Flask, username: str, email: str, role: str, password: str,
    first_name: str = "", last_name: str = "",
) -> object:
    """Create a user with one of the five roles. The password is never logged."""
    with app.app_context():
        sm = app.appbuilder.sm
        if role not in ROLE_NAMES:
            raise UserError(f"role: '{role}' is not one of {', '.join(ROLE_NAMES)}")
        if not password:
            raise UserError("password: must not be empty")
        if sm.find_user(username=username) is not None:
            raise UserError(f"username: '{username}' already exists")
        role_row = sm.find_role(role)
        if role_row is None:
            raise UserError(f"role: '{role}' has not been created; run 'python run.py init' first")
        user = sm.add_user(
            username=username, first_name=first_name or username, last_name=last_name or "-",
            email=email, role=role_row, password=password,
        )
        if not user:
            raise UserError(f"could not create '{username}' (is the e-mail '{email}' already used?)")
        return user


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
    return Credential(username, secrets.token_urlsafe(12), generated=True)


def has_users(app: Flask) -> bool:
    with app.app_context():
        return app.appbuilder.sm.count_users() > 0


def initialise(app: Flask, *, demo: bool) -> list[Credential]:
    """Migrations, roles, and on an empty instance the admin user (and the demo if asked).

    Returns the credentials created now, so the caller can print them once.
    """
    upgrade_database(app)
    ensure_roles(app)
    created: list[Credential] = []
    if demo:
        from app.demo import load_demo

        with app.app_context(), acting_as(CLI):
            created = load_demo(app)
    elif not has_users(app):
        credential = password_from_env_or_new("admin")
        create_user(app, "admin", "admin@example.org", "Admin", credential.password)
        created = [credential]
    return created


def demo_present(app: Flask) -> bool:
    from grants.models import Grant

    with app.app_context():
        return db.session.scalar(select(Grant.id).where(Grant.is_demo.is_(True)).limit(1)) is not None
