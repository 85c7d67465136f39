"""The demo organisation loaded once for a test module, at a fixed moment, with a signed-in client per demo user.

Pages are only read by these tests; the database is emptied when the module is done.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import _empty_database

# The demo's story is told relative to the day it is loaded; the tests pin that day.
DEMO_NOW = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
DEMO_USERS = ("admin", "finance", "program", "donor.gf", "auditor")


@dataclass
class LoadedDemo:
    app: Any
    passwords: dict[str, str]

    def client(self, username: str) -> Any:
        client = self.app.test_client()
        response = client.post("/login/", data={"username": username, "password": self.passwords[username]})
        assert response.status_code == 302, f"login of {username} failed"
        return client


def visible_text(html: str) -> str:
    """What a person reads: no scripts, styles, tags or attribute values; entities decoded; spaces collapsed."""
    import html as html_lib

    html = re.sub(r"(?is)<(script|style|template)\b[^>]*>.*?</\1>", " ", html)
    html = re.sub(r"(?s)<!--.*?-->", " ", html)
    text = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", html_lib.unescape(text)).strip()


@pytest.fixture(scope="module")
def loaded_demo(app) -> Iterator[LoadedDemo]:
    from app.demo import load_demo
    from core import clock
    from core.audit import Actor, acting_as
    from core.extensions import db

    _empty_database(app)
    with clock.frozen_at(DEMO_NOW):
        with app.app_context(), acting_as(Actor(None, "cli", "cli")):
            credentials = load_demo(app)
            db.session.remove()
        yield LoadedDemo(app, {c.username: c.password for c in credentials})
    _empty_database(app)
