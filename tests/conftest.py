"""Fixtures: one migrated database per test session (SQLite, or PostgreSQL via
TEST_DATABASE_URL), emptied before each test; a small world of grants; a client
per role for the web UI and a JWT token per role for the REST API."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config.settings import Settings, TestConfig, normalise_database_url

PASSWORD = "correct horse battery staple"
ROLES = ("Admin", "Finance", "Program", "Donor", "Auditor")
USERNAMES = {"Admin": "admin", "Finance": "finance", "Program": "program", "Donor": "donor", "Auditor": "auditor"}


def _postgres_database(base_url: str) -> Iterator[str]:
    """Create a throw-away database on the given server and drop it afterwards."""
    url = make_url(normalise_database_url(base_url))
    name = f"gk_test_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        yield from _postgres_database(base)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


def make_app(instance_path: Path, database_url: str, **overrides: Any):
    from app import create_app

    settings = Settings.from_env({**os.environ, "DATABASE_URL": database_url}, instance_path=instance_path)
    return create_app(TestConfig, settings=settings, **overrides)


def make_settings(tmp_path: Path, **environ: str) -> Settings:
    """Settings as an operator would set them, from ``environ`` only (not the test runner's environment)."""
    return Settings.from_env({"GRANTKEEPER_INSTANCE": str(tmp_path), **environ})


@pytest.fixture(scope="session")
def app(instance_path: Path, database_url: str):
    from app.bootstrap import ensure_roles, upgrade_database

    application = make_app(instance_path, database_url)
    upgrade_database(application)
    ensure_roles(application)
    return application


def _empty_database(application) -> None:
    """Delete every row except roles, children first, so each test starts clean."""
    from core.extensions import db

    with application.app_context():
        keep = {"ab_role", "alembic_version", "ab_permission", "ab_view_menu", "ab_permission_view"}
        for table in reversed(db.metadata.sorted_tables):
            if table.name not in keep:
                db.session.execute(table.delete())
        db.session.commit()


@dataclass
class World:
    users: dict[str, Any]
    funder_id: int
    grant_a: int  # the program, donor and auditor users are members
    grant_b: int  # nobody but Admin and Finance sees it
    period_a1: int
    period_b1: int


@pytest.fixture
def world(app) -> Iterator[World]:
    from app.bootstrap import create_user
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services
    from grants.models import MemberRole

    _empty_database(app)
    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        users = {}
        for role, username in USERNAMES.items():
            create_user(app, username, f"{username}@test.example.org", role, PASSWORD)
            users[role] = app.appbuilder.sm.find_user(username=username)
        funder = services.create_funder(db.session, name="Test Fund", code="TF", default_currency="USD")
        grant_a = services.create_grant(
            db.session,
            funder=funder,
            reference="GA-1",
            title="Grant A",
            recipient="Coalition",
            currency="USD",
            amount=Decimal("1000.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        grant_b = services.create_grant(
            db.session,
            funder=funder,
            reference="GB-1",
            title="Grant B (secret)",
            recipient="Other org",
            currency="EUR",
            amount=Decimal("500.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        pa = services.generate_periods(db.session, grant_a, "semester", 45)
        pb = services.generate_periods(db.session, grant_b, "semester", 30)
        services.add_member(db.session, grant_a, users["Program"], MemberRole.program)
        services.add_member(db.session, grant_a, users["Donor"], MemberRole.donor)
        services.add_member(db.session, grant_a, users["Auditor"], MemberRole.auditor)
        db.session.commit()
        result = World(
            users={role: user.id for role, user in users.items()},
            funder_id=funder.id,
            grant_a=grant_a.id,
            grant_b=grant_b.id,
            period_a1=pa[0].id,
            period_b1=pb[0].id,
        )
    yield result
    with app.app_context():
        db.session.remove()


def set_user_language(app, role: str, language: str) -> None:
    """Store the language of the world's user of ``role``, as the My language page does."""
    from app.users import set_language
    from core.extensions import db

    with app.app_context():
        user = app.appbuilder.sm.find_user(username=USERNAMES[role])
        set_language(db.session, user.id, language, app.config["LANGUAGES"])
        db.session.commit()


def login(client, username: str) -> Any:
    response = client.post("/login/", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 302, f"login of {username} failed: {response.status_code}"
    return client


@pytest.fixture
def client_for(app, world):
    """client_for("Program") -> a test client signed in with that role."""

    def _make(role: str):
        return login(app.test_client(), USERNAMES[role])

    return _make


@pytest.fixture
def admin_client(client_for):
    return client_for("Admin")


@pytest.fixture
def finance_client(client_for):
    return client_for("Finance")


@pytest.fixture
def program_client(client_for):
    return client_for("Program")


@pytest.fixture
def donor_client(client_for):
    return client_for("Donor")


@pytest.fixture
def auditor_client(client_for):
    return client_for("Auditor")


@pytest.fixture
def anonymous_client(app, world):
    return app.test_client()


class ApiClient:
    """A test client that sends the role's JWT on every call."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str, **kw: Any):
        return self.client.get(url, headers=self.headers, **kw)

    def post(self, url: str, json: Any = None, **kw: Any):
        return self.client.post(url, headers=self.headers, json=json, **kw)

    def put(self, url: str, json: Any = None, **kw: Any):
        return self.client.put(url, headers=self.headers, json=json, **kw)

    def delete(self, url: str, **kw: Any):
        return self.client.delete(url, headers=self.headers, **kw)


@pytest.fixture
def api_for(app, world):
    def _make(role: str) -> ApiClient:
        client = app.test_client()
        response = client.post(
            "/api/v1/security/login",
            json={"username": USERNAMES[role], "password": PASSWORD, "provider": "db"},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return ApiClient(client, response.json["access_token"])

    return _make


@pytest.fixture
def db_session(app):
    """A session of the test's own: no app context stays pushed, so each request a test
    client makes gets its own app context (its own ``g.user`` and ``db.session``), as in
    production. Call ``db_session.rollback()`` to see what requests committed since."""
    from sqlalchemy.orm import Session

    from core.extensions import db

    with app.app_context():
        engine = db.engine
    session = Session(bind=engine)
    yield session
    session.rollback()
    session.close()


# ---------------------------------------------------------------- a database session of the test's own
# Not the app's scoped ``db.session``, and no app context stays pushed during the test, so
# each web request made by a test client gets its own app context (its own ``g.user``)
# exactly as in production. After requests, call ``session.rollback()`` before reading,
# to see what they committed.


@pytest.fixture
def session(app, world):
    from sqlalchemy.orm import Session

    from core.audit import Actor, acting_as
    from core.extensions import db

    with app.app_context():
        engine = db.engine
    own = Session(bind=engine)
    with acting_as(Actor(None, "fixture", "system")):
        yield own
    own.rollback()
    own.close()


# ---------------------------------------------------------------- real server, real browser (tests/live.py)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """demo_server("name", passwords=..., environment=..., args=..., ready=...) -> the base URL of ``python run.py``
    with the demo, in an instance folder of its own (and, under TEST_DATABASE_URL, a PostgreSQL database of its
    own); see ``tests.live.running_server``. Every server started by a module stops at its end."""
    from tests.live import running_server

    with ExitStack() as stack:

        def start(name: str = "demo-server", **options: Any) -> str:
            return stack.enter_context(running_server(tmp_path_factory.mktemp(name), **options))

        yield start


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    """Options of the ``page`` fixture's browser context (viewport...); a module overrides it to change them."""
    return {}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, with tests.live's launch arguments, shared by a module's tests."""
    from tests.live import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, browser_context_options: dict[str, Any]) -> Iterator[Any]:
    """A page in a browser context of the test's own (no cookies or storage from other tests)."""
    context = browser.new_context(**browser_context_options)
    yield context.new_page()
    context.close()
