"""Fixtures for the evidence tests: a database session of the test's own.

The session is not the app's scoped ``db.session`` and no app context stays
pushed during the test, so each web request made by a test client gets its own
app context (its own ``g.user``) exactly as in production. After requests, call
``session.rollback()`` before reading, to see what they committed.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session


@pytest.fixture
def session(app, world):
    from app.audit import Actor, acting_as
    from app.extensions import db

    with app.app_context():
        engine = db.engine
    own = Session(bind=engine)
    with acting_as(Actor(None, "fixture", "system")):
        yield own
    own.rollback()
    own.close()
