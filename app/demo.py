"""Loads the demo organisation of DEMO.md: users first, then each domain's part in order.

Each domain listed in ``app.domains`` may have a ``demo`` module whose
``load(session, ctx)`` adds its part, reading and extending the shared
DemoContext (users, funders, grants, and ``extra`` for anything else).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Flask

from app.domains import domain_modules
from app.users import Credential, create_user, password_from_env_or_new
from core import clock
from core.extensions import db

DEMO_USERS = [
    ("admin", "Admin", "Ada", "Admin"),
    ("finance", "Finance", "Faith", "Joseph"),
    ("program", "Program", "Petra", "Alexander"),
    ("donor.gf", "Donor", "Dominic", "Funder"),
    ("auditor", "Auditor", "Audrey", "Charles"),
]


@dataclass
class DemoContext:
    users: dict[str, Any] = field(default_factory=dict)
    funders: dict[str, Any] = field(default_factory=dict)
    grants: dict[str, Any] = field(default_factory=dict)
    today: date = field(default_factory=clock.today)
    extra: dict[str, Any] = field(default_factory=dict)


def load_demo(app: Flask) -> list[Credential]:
    """Create the demo users and records, all in one transaction. Returns new credentials."""
    ctx = DemoContext()
    created: list[Credential] = []
    sm = app.appbuilder.sm
    for username, role, first, last in DEMO_USERS:
        user = sm.find_user(username=username)
        if user is None:
            credential = password_from_env_or_new(username)
            user = create_user(app, username, f"{username}@demo.example.org", role, credential.password, first, last)
            created.append(credential)
        ctx.users[username] = user
    # Users were made in their own app contexts: hand the domains copies bound to this session.
    ctx.users = {name: db.session.get(type(user), user.id) for name, user in ctx.users.items()}
    try:
        for module in domain_modules("demo"):
            module.load(db.session, ctx)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return created
