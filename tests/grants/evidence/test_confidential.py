"""A donor can reach no confidential evidence by any path; an auditor of the grant sees it all."""

from datetime import date

import pytest

from grants.evidence import consultations, services
from tests.grants.evidence.helpers import PDF, add_evidence, user

SECRET_TITLE = "Outreach incident log (confidential)"
SECRET_PDF = PDF + b"% confidential\n"


@pytest.fixture
def setup(app, world, session):
    """Grant A: one public and one confidential item, both linked to a requirement and a consultation."""
    from grants.compliance import services as compliance

    public = add_evidence(
        app, session, world, title="Public minutes", sensitivity="shared_with_donors", day=date(2026, 2, 1)
    )
    secret = add_evidence(
        app,
        session,
        world,
        title=SECRET_TITLE,
        sensitivity="restricted",
        content=SECRET_PDF,
        filename="incidents.pdf",
        kind="minutes",
        day=date(2026, 2, 2),
    )
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    meeting = consultations.record_consultation(
        session,
        grant=world.grant_a,
        body=body,
        held_on=date(2026, 2, 1),
        title="RCM meeting",
        attendance={"sex_workers": 2},
    )
    requirement = compliance.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Minutes of every meeting",
        category="community_inclusion",
        rules=[{"rule": "evidence_verified", "params": {"kind": "minutes"}}],
    )
    finance = user(app, session, world, "Finance")
    for item in (public, secret):
        services.link_evidence(session, item, "requirement", requirement.id)
        services.link_evidence(session, item, "consultation", meeting.id)
        services.verify_evidence(session, item, finance, "verified")
    session.commit()
    return {
        "public": public.id,
        "secret": secret.id,
        "sha": secret.sha256,
        "requirement": requirement.id,
        "meeting": meeting.id,
        "period": world.period_a1,
    }


def test_donor_reaches_no_confidential_evidence_by_any_path(app, world, setup, client_for, api_for, session):
    donor = client_for("Donor")
    secret, sha = setup["secret"], setup["sha"]

    listing = donor.get("/evidence/list/").get_data(as_text=True)
    assert "Public minutes" in listing and SECRET_TITLE not in listing
    searched = donor.get("/evidence/list/?_flt_0_sensitivity=restricted").get_data(as_text=True)
    assert SECRET_TITLE not in searched
    assert donor.get(f"/evidence/show/{secret}").status_code == 404
    for url in (f"/evidence/download/{secret}", f"/evidence/download/{sha}", f"/evidence/download/{sha[:12]}"):
        response = donor.get(url)
        assert response.status_code in (403, 404) and SECRET_PDF not in response.data, url
    assert donor.get(f"/evidence/edit/{secret}").status_code in (302, 403, 404)

    grant_page = donor.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert SECRET_TITLE not in grant_page
    meeting_page = donor.get(f"/consultations/show/{setup['meeting']}").get_data(as_text=True)
    assert "Public minutes" in meeting_page and SECRET_TITLE not in meeting_page
    matrix = donor.get(f"/requirements/matrix/{world.grant_a}")
    assert matrix.status_code == 200 and SECRET_TITLE not in matrix.get_data(as_text=True)
    cell = donor.get(f"/requirements/cell/{setup['requirement']}/{setup['period']}").get_data(as_text=True)
    assert "Public minutes" in cell and SECRET_TITLE not in cell

    api = api_for("Donor")
    listed = api.get("/api/v1/evidence/?q=(page_size:100)")
    assert listed.status_code == 200
    assert setup["public"] in listed.json["ids"] and secret not in listed.json["ids"]
    assert SECRET_TITLE not in listed.get_data(as_text=True)
    assert api.get(f"/api/v1/evidence/{secret}").status_code == 404
    assert api.get(f"/api/v1/evidence/{secret}/file").status_code == 404
    status = api.get(f"/api/v1/requirements/status/{world.grant_a}")
    assert status.status_code == 200
    assert all(secret not in row["evidence_ids"] for row in status.json["result"])
    assert setup["public"] in status.json["result"][0]["evidence_ids"]

    register = services.evidence_register(session, world.grant_a)
    assert [row.id for row in register] == [setup["public"]]


def test_donor_counts_on_the_grant_page_leave_out_confidential_items(app, world, setup, session):
    donor = user(app, session, world, "Donor")
    program = user(app, session, world, "Program")
    assert services.evidence_counts(session, donor, world.grant_a) == {"verified": 1}
    assert services.evidence_counts(session, program, world.grant_a) == {"verified": 2}


def test_auditor_of_the_grant_sees_and_downloads_confidential_evidence(world, setup, client_for, api_for):
    auditor = client_for("Auditor")
    assert SECRET_TITLE in auditor.get("/evidence/list/").get_data(as_text=True)
    assert auditor.get(f"/evidence/show/{setup['secret']}").status_code == 200
    download = auditor.get(f"/evidence/download/{setup['secret']}")
    assert download.status_code == 200 and download.data == SECRET_PDF
    assert api_for("Auditor").get(f"/api/v1/evidence/{setup['secret']}").status_code == 200


def test_the_register_includes_hidden_items_only_when_asked(world, setup, session):
    ids = [row.id for row in services.evidence_register(session, world.grant_a, all_levels=True)]
    assert setup["secret"] in ids
    assert all(row.sensitivity == "shared_with_donors" for row in services.evidence_register(session, world.grant_a))
