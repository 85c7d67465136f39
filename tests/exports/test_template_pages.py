"""Uploading, inspecting and mapping a funder template through the web pages."""

import io

from sqlalchemy import select

from tests.exports.helpers import MAPPING, TEMPLATES


def upload(client, world, data, filename="annual.xlsx", name="Annual report", mapping=""):
    return client.post(
        "/funder-templates/upload",
        data={"funder": str(world.funder_id), "name": name, "mapping": mapping, "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_finance_uploads_inspects_and_maps_a_template(finance_client, world, db_session):
    from exports.models import TemplateVersion

    data = (TEMPLATES / "real" / "COP25_PSNUxIM_Template.xlsx").read_bytes()
    page = upload(finance_client, world, data, "COP25.xlsx", "PEPFAR allocation").get_data(as_text=True)
    assert "Inspect" in page and "PSNUxIM" in page and "Formula cells" in page  # landed on the inspector
    version = db_session.scalar(select(TemplateVersion))
    bad = finance_client.post(
        f"/funder-templates/version/{version.id}/mapping",
        data={"mapping": "cells:\n  - {target: 'Home!A1', source: grant.titel}\n"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "mapping.cells.0.source" in bad and "grant.title" in bad
    db_session.rollback()
    assert db_session.get(TemplateVersion, version.id).mapping_text is None
    good = finance_client.post(
        f"/funder-templates/version/{version.id}/mapping",
        data={"mapping": "cells:\n  - {target: 'Home!B30', source: grant.title}\n"},
        follow_redirects=True,
    )
    assert "Mapping saved" in good.get_data(as_text=True)


def test_a_file_that_is_not_a_workbook_is_refused_with_a_message(finance_client, world, db_session):
    from exports.models import FunderTemplate

    page = upload(finance_client, world, b"PK\x03\x04 not really a zip", "evil.xlsx").get_data(as_text=True)
    assert "File:" in page
    assert db_session.scalar(select(FunderTemplate)) is None


def test_a_zip_bomb_is_refused(finance_client, world, db_session):
    import zipfile

    from exports.models import FunderTemplate

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    page = upload(finance_client, world, buffer.getvalue(), "bomb.xlsx").get_data(as_text=True)
    assert "File:" in page
    assert db_session.scalar(select(FunderTemplate)) is None


def test_donor_and_auditor_cannot_upload(client_for, world):
    # The program lead may (for the funders of their own grants): see test_mapper_pages.py.
    data = (TEMPLATES / "synthetic" / "tpl_xlsxwriter.xlsx").read_bytes()
    assert upload(client_for("Auditor"), world, data).status_code == 403
    assert client_for("Donor").get("/funder-templates/list/").status_code == 403


def test_the_mapping_can_come_with_the_upload(finance_client, world, db_session):
    from exports.models import TemplateVersion

    data = (TEMPLATES / "synthetic" / "tpl_xlsxwriter.xlsm").read_bytes()
    upload(finance_client, world, data, "macro.xlsm", mapping=MAPPING)
    version = db_session.scalar(select(TemplateVersion))
    assert version.has_macros and version.mapping_text.strip().startswith("cells:")
