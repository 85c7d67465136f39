"""Bringing an instance up: migrations, roles, users, demo data. Used by run.py and tests.

User creation lives in ``app.users`` (shared with ``app.demo``); its names are
re-exported here for run.py and the tests.
"""

from __future__ import annotations

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select

from app.demo import load_demo
from app.users import Credential, UserError, create_user, password_from_env_or_new
from config.roles import ROLE_NAMES
from core.audit import Actor, acting_as
from core.extensions import db

__all__ = [
    "CLI",
    "Credential",
    "UserError",
    "create_user",
    "demo_present",
    "ensure_roles",
    "has_users",
    "initialise",
    "password_from_env_or_new",
    "upgrade_database",
]

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
