"""The grant's IATI page: Finance and Program preview, download and publish; donors see only what was sent."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from lxml import etree

from tests.conftest import PASSWORD, login
from tests.exports.iati.conftest import FIXTURES, PUBLISHER


@pytest.fixture
def configured(app, monkeypatch):
    settings = dataclasses.replace(app.config["GK_SETTINGS"], iati=PUBLISHER)
    monkeypatch.setitem(app.config, "GK_SETTINGS", settings)
    return settings


def _valid(data: bytes) -> None:
    schema = etree.XMLSchema(etree.parse(str(FIXTURES / "iati-activities-schema.xsd")))
    schema.assertValid(etree.fromstring(data))


def _records(session, grant_id):
    from exports.iati.services import history

    session.rollback()
    return history(session, grant_id)


@pytest.mark.parametrize("role", ["Finance", "Program"])
def test_finance_and_program_preview_and_download_a_valid_file_kept_with_its_sha256(
    role, client_for, world, configured, session
):
    client = client_for(role)
    page = client.get(f"/iati/grant/{world.grant_a}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Valid against the IATI 2.03 schemas" in html and "LC-CRO-98765-GA-1" in html
    response = client.post(f"/iati/grant/{world.grant_a}/download")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "GA-1_iati_activities.xml" in response.headers["Content-Disposition"]
    _valid(response.data)
    records = _records(session, world.grant_a)
    assert len(records) == 1
    assert records[0].sha256 == hashlib.sha256(response.data).hexdigest()
    assert not records[0].published
    history = client.get(f"/exports/file/{records[0].id}")
    assert history.status_code == 200 and history.data == response.data and history.mimetype == "application/xml"


def test_a_donor_of_another_grant_is_refused(app, world, configured, session):
    from app.bootstrap import create_user
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services
    from grants.models import Grant, MemberRole

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        create_user(app, "donor.b", "donor.b@test.example.org", "Donor", PASSWORD)
        user = app.appbuilder.sm.find_user(username="donor.b")
        services.add_member(db.session, db.session.get(Grant, world.grant_b), user, MemberRole.donor)
        db.session.commit()
    client = login(app.test_client(), "donor.b")
    assert client.get(f"/iati/grant/{world.grant_a}").status_code == 404
    assert client.post(f"/iati/grant/{world.grant_a}/download").status_code in (403, 404)
    assert client.post(f"/iati/grant/{world.grant_a}/publish").status_code in (403, 404)
    assert _records(session, world.grant_a) == []


def test_the_grants_own_donor_sees_only_published_files_never_a_preview(
    donor_client, program_client, world, configured, session
):
    before = donor_client.get(f"/iati/grant/{world.grant_a}").get_data(as_text=True)
    assert "iati-xml" not in before and "LC-CRO-98765-GA-1" not in before
    assert "No IATI file has been published to you yet" in before
    assert donor_client.post(f"/iati/grant/{world.grant_a}/download").status_code == 403
    assert program_client.post(f"/iati/grant/{world.grant_a}/download").status_code == 200  # kept, not published
    assert program_client.post(f"/iati/grant/{world.grant_a}/publish").status_code == 302
    records = _records(session, world.grant_a)
    published = [r for r in records if r.published]
    assert len(records) == 2 and len(published) == 1
    after = donor_client.get(f"/iati/grant/{world.grant_a}").get_data(as_text=True)
    assert published[0].sha256 in after
    assert donor_client.get(f"/exports/file/{published[0].id}").status_code == 200
    draft = next(r for r in records if not r.published)
    assert donor_client.get(f"/exports/file/{draft.id}").status_code == 404


def test_an_auditor_previews_but_does_not_download(auditor_client, world, configured):
    html = auditor_client.get(f"/iati/grant/{world.grant_a}").get_data(as_text=True)
    assert "iati-xml" in html and "download-iati" not in html and "sector-form" not in html
    assert auditor_client.post(f"/iati/grant/{world.grant_a}/download").status_code == 403


def test_program_chooses_sectors_from_the_list_and_they_reach_the_file(program_client, world, configured, session):
    from grants.models import Grant

    page = program_client.get(f"/iati/grant/{world.grant_a}").get_data(as_text=True)
    assert '<option value="13040"' in page and "STD control including HIV/AIDS" in page
    saved = program_client.post(f"/iati/grant/{world.grant_a}/sectors", data={"sector": ["13040", "15160", ""]})
    assert saved.status_code == 302
    session.rollback()
    assert session.get(Grant, world.grant_a).iati_sectors == ["13040", "15160"]
    data = program_client.post(f"/iati/grant/{world.grant_a}/download").data
    sectors = etree.fromstring(data).findall("iati-activity/sector")
    assert [(s.get("code"), s.get("percentage"), s.get("vocabulary")) for s in sectors] == [
        ("13040", "50.00", "1"),
        ("15160", "50.00", "1"),
    ]


def test_a_sector_not_in_the_list_is_refused_and_nothing_changes(program_client, world, configured, session):
    from grants.models import Grant

    refused = program_client.post(
        f"/iati/grant/{world.grant_a}/sectors", data={"sector": ["13040", "99999"]}, follow_redirects=True
    )
    html = refused.get_data(as_text=True)
    assert "IATI sectors: &#39;99999&#39; is not in IATI&#39;s Sector list" in html
    assert '<option value="13040" selected' in html  # what was chosen is still chosen
    session.rollback()
    assert not session.get(Grant, world.grant_a).iati_sectors


def test_without_the_organisations_iati_identifier_the_page_says_what_to_set(program_client, world, session):
    html = program_client.get(f"/iati/grant/{world.grant_a}").get_data(as_text=True)
    assert "GRANTKEEPER_IATI_ORG_REF" in html and "iati-xml" not in html
    response = program_client.post(f"/iati/grant/{world.grant_a}/download")
    assert response.status_code == 302
    assert _records(session, world.grant_a) == []


def test_the_grant_page_links_to_the_iati_page(program_client, world, configured):
    html = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert f"/iati/grant/{world.grant_a}" in html and "Open the IATI page" in html
