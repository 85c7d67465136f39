from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / ".." / "shared" / "templates"

MAPPING = """
cells:
  - {target: "Cover!C4", source: grant.reference}
  - {target: "Cover!C5", source: grant.title}
  - {target: "Cover!C8", source: period.label}
  - {target: "Cover!C9", source: grant.amount}
"""


@pytest.fixture
def template_file():
    return (TEMPLATES / "synthetic" / "tpl_xlsxwriter.xlsx").read_bytes()


@pytest.fixture
def store(app):
    from grants.storage import store_for

    return store_for(app.config)


@pytest.fixture
def uploaded(app, world, db_session, store, template_file):
    """A funder template with a mapping, uploaded for the world's funder."""
    from exports import services
    from grants.models import Funder

    funder = db_session.get(Funder, world.funder_id)
    version = services.upload_template(
        db_session, store, funder=funder, name="Annual report", filename="tpl_xlsxwriter.xlsx",
        data=template_file, user="finance", mapping_text=MAPPING,
    )
    db_session.commit()
    return version.template_id
