"""Every evidence and compliance page renders for the people who use it."""

from datetime import date

from grants.compliance import services as compliance
from grants.evidence import consultations
from tests.grants.evidence.helpers import add_evidence


def test_the_pages_render(app, world, session, client_for):
    item = add_evidence(app, session, world, title="Minutes Feb")
    body = consultations.create_body(session, code="RCM", name="RCM")
    meeting = consultations.record_consultation(
        session,
        grant=world.grant_a,
        body=body,
        held_on=date(2026, 2, 1),
        title="RCM Feb",
        attendance={"sex_workers": 1},
    )
    requirement = compliance.create_requirement(
        session, world.grant_a, code="R1", title="Minutes", expected_evidence="minutes"
    )
    session.commit()
    program = client_for("Program")
    for url in (
        "/evidence/list/",
        "/evidence/add",
        f"/evidence/add?grant_id={world.grant_a}",
        f"/evidence/show/{item.id}",
        f"/evidence/edit/{item.id}",
        "/consultations/list/",
        "/consultations/add",
        f"/consultations/show/{meeting.id}",
        f"/consultations/edit/{meeting.id}",
        "/coordinating-bodies/list/",
        "/requirements/list/",
        "/requirements/add",
        f"/requirements/show/{requirement.id}",
        f"/requirements/edit/{requirement.id}",
        f"/requirements/matrix/{world.grant_a}",
        f"/requirements/cell/{requirement.id}/{world.period_a1}",
        "/waivers/list/",
        "/waivers/add",
    ):
        response = program.get(url)
        assert response.status_code == 200, url
    show = program.get(f"/evidence/show/{item.id}").get_data(as_text=True)
    assert (
        "Download minutes.pdf" in show
        and f"consultation:{meeting.id}" in show
        and f"requirement:{requirement.id}" in show
    )
    assert "evidence-verify" not in show  # the uploader is not offered to verify their own item
    assert "evidence-verify" in client_for("Finance").get(f"/evidence/show/{item.id}").get_data(as_text=True)


def test_files_of_other_records_are_not_served_by_the_stock_download(world, client_for):
    for url in ("/consultations/download/x.pdf", "/requirements/download/1", "/waivers/download/1"):
        assert client_for("Admin").get(url).status_code == 404
