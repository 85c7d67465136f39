"""Fixtures for the exports tests: the test template folder and an uploaded funder template."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exports.helpers import MAPPING, TEMPLATES


@pytest.fixture(scope="session")
def templates() -> Path:
    if not TEMPLATES.is_dir():
        pytest.fail(f"test templates not found at {TEMPLATES}")
    return TEMPLATES


@pytest.fixture
def template_file():
    return (TEMPLATES / "synthetic" / "tpl_xlsxwriter.xlsx").read_bytes()


@pytest.fixture
def store(app):
    from core.storage import store_for

    return store_for(app.config)


@pytest.fixture
def uploaded(app, world, db_session, store, template_file):
    """A funder template with a mapping, uploaded for the world's funder."""
    from exports import services
    from grants.models import Funder

    funder = db_session.get(Funder, world.funder_id)
    version = services.upload_template(
        db_session,
        store,
        funder=funder,
        name="Annual report",
        filename="tpl_xlsxwriter.xlsx",
        data=template_file,
        user="finance",
        mapping_text=MAPPING,
    )
    db_session.commit()
    return version.template_id
