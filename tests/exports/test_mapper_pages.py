"""The program lead maps a funder template by clicking cells; the one check speaks before anything is saved."""

from __future__ import annotations

import io
import json

from sqlalchemy import select

from tests.exports.helpers import TEMPLATES

DFID = (TEMPLATES / "real" / "DFID_Template.xlsx").read_bytes()


def upload(client, funder_id, data, filename="logframe.xlsx", name="Logframe", mapping=""):
    return client.post(
        "/funder-templates/upload",
        data={"funder": str(funder_id), "name": name, "mapping": mapping, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def other_funder(app):
    """A funder none of the program lead's grants has."""
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = services.create_funder(db.session, name="Other Fund", code="OF", default_currency="USD")
        db.session.commit()
        return funder.id


def test_program_lead_uploads_a_template_for_the_funder_of_their_grant(program_client, world, db_session):
    from exports.models import TemplateVersion

    page = upload(program_client, world.funder_id, DFID).get_data(as_text=True)
    assert "RESULTS FRAMEWORK" in page
    assert db_session.scalar(select(TemplateVersion)) is not None


def test_program_lead_cannot_upload_for_a_funder_of_no_grant_of_theirs(program_client, world, app, db_session):
    from exports.models import FunderTemplate

    funder_id = other_funder(app)
    form = program_client.get("/funder-templates/upload").get_data(as_text=True)
    assert "Other Fund" not in form  # not even offered
    page = upload(program_client, funder_id, DFID).get_data(as_text=True)
    assert "choose one of the funders of your grants" in page
    assert 'value="Logframe"' in page  # what was typed is kept
    assert db_session.scalar(select(FunderTemplate)) is None


def test_program_lead_does_not_see_templates_of_other_funders(program_client, finance_client, world, app):
    funder_id = other_funder(app)
    upload(finance_client, funder_id, DFID, name="Other logframe")
    listing = program_client.get("/funder-templates/list/").get_data(as_text=True)
    assert "Other logframe" not in listing
    from core.extensions import db
    from exports.models import TemplateVersion

    with app.app_context():
        version_id = db.session.scalar(select(TemplateVersion.id))
    assert program_client.get(f"/funder-templates/version/{version_id}/mapper").status_code == 404
    assert program_client.get(f"/funder-templates/version/{version_id}/file").status_code == 404


def test_donor_cannot_upload_or_map(donor_client, world):
    assert donor_client.get("/funder-templates/upload").status_code in (302, 403)
    assert donor_client.get("/funder-templates/ready").status_code in (302, 403)


def test_the_mapper_draws_the_sheet_with_merged_cells_and_saves_a_drawn_mapping(program_client, world, db_session):
    from exports.models import TemplateVersion

    upload(program_client, world.funder_id, DFID)
    version = db_session.scalar(select(TemplateVersion))
    page = program_client.get(f"/funder-templates/version/{version.id}/mapper").get_data(as_text=True)
    assert 'data-cell="D19"' in page
    assert 'data-cell="B20"' not in page  # inside the merged B19:B21, not drawn
    assert 'rowspan="3"' in page and "Output Indicator" in page
    draft = {"cells": [{"target": "RESULTS FRAMEWORK!B1", "source": "grant.title"}]}
    saved = program_client.post(
        f"/funder-templates/version/{version.id}/mapper",
        data={"draft": json.dumps(draft), "sheet": "RESULTS FRAMEWORK"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Mapping saved" in saved
    db_session.rollback()
    text = db_session.get(TemplateVersion, version.id).mapping_text
    assert "RESULTS FRAMEWORK!B1" in text and "grant.title" in text and not text.lstrip().startswith("{")


def test_a_refused_drawing_keeps_the_draft_and_says_every_problem(program_client, world, db_session):
    from exports.models import TemplateVersion

    upload(program_client, world.funder_id, DFID)
    version = db_session.scalar(select(TemplateVersion))
    draft = {
        "cells": [
            {"target": "RESULTS FRAMEWORK!B20", "source": "grant.title"},
            {"target": "RESULTS FRAMEWORK!D19", "figure": "indicator", "item": "FCDO-1", "measure": "target"},
            {"target": "NOPE!A1", "source": "grant.reference"},
        ]
    }
    page = program_client.post(
        f"/funder-templates/version/{version.id}/mapper",
        data={"draft": json.dumps(draft), "sheet": "RESULTS FRAMEWORK"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "inside the merged cells B19:B21" in page
    assert "no sheet &#39;NOPE&#39;" in page or "no sheet 'NOPE'" in page
    assert "FCDO-1" in page  # the draft is still there
    db_session.rollback()
    assert db_session.get(TemplateVersion, version.id).mapping_text is None


def test_preview_says_the_value_a_cell_would_get_in_words(program_client, world, db_session):
    from exports.models import TemplateVersion

    upload(program_client, world.funder_id, DFID)
    version = db_session.scalar(select(TemplateVersion))
    url = f"/funder-templates/version/{version.id}/preview"
    answer = program_client.get(url, query_string={"grant": world.grant_a, "source": "grant.amount"}).json
    assert answer["ok"] and answer["words"] == "1,000.00 USD"
    unknown = program_client.get(
        url, query_string={"grant": world.grant_a, "figure": "indicator", "item": "NOPE", "measure": "target"}
    ).json
    assert not unknown["ok"] and "no indicator code 'NOPE'" in unknown["problems"][0]
    hidden = program_client.get(url, query_string={"grant": world.grant_b, "source": "grant.title"}).json
    assert not hidden["ok"] and "secret" not in json.dumps(hidden)


def test_a_mapping_exports_as_yaml_and_json_and_imports_back(finance_client, world, db_session):
    from exports.models import TemplateVersion

    mapping = "cells:\n  - {target: 'RESULTS FRAMEWORK!B1', source: grant.title}\n"
    upload(finance_client, world.funder_id, DFID, mapping=mapping)
    version = db_session.scalar(select(TemplateVersion))
    as_json = finance_client.get(f"/funder-templates/version/{version.id}/mapping.json")
    assert as_json.status_code == 200 and json.loads(as_json.data)["cells"][0]["source"] == "grant.title"
    as_yaml = finance_client.get(f"/funder-templates/version/{version.id}/mapping.yaml").get_data(as_text=True)
    assert "grant.title" in as_yaml
    imported = finance_client.post(
        f"/funder-templates/version/{version.id}/mapping",
        data={"mapping": "", "mapping_file": (io.BytesIO(as_json.data), "mapping.json")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Mapping saved" in imported.get_data(as_text=True)
