"""Row-level rules for evidence and consultations, through the UI and the API."""

import io
from datetime import date

import pytest
from sqlalchemy import func, select

from grants.evidence import consultations
from grants.evidence.models import Consultation, Evidence
from tests.grants.evidence.helpers import PDF, add_evidence


@pytest.fixture
def other_grant_item(app, world, session):
    """Evidence and a meeting of grant B, which only Admin and Finance see."""
    item = add_evidence(app, session, world, "Finance", grant=world.grant_b, title="Grant B minutes")
    body = consultations.create_body(session, code="RCM", name="RCM")
    meeting = consultations.record_consultation(
        session,
        grant=world.grant_b,
        body=body,
        held_on=date(2026, 3, 1),
        title="Grant B meeting",
        attendance={"sex_workers": 1},
    )
    session.commit()
    return {"evidence": item.id, "meeting": meeting.id, "body": body.id}


def test_program_cannot_list_show_edit_or_delete_another_grants_evidence(world, other_grant_item, client_for, session):
    client = client_for("Program")
    pk = other_grant_item["evidence"]
    assert "Grant B minutes" not in client.get("/evidence/list/").get_data(as_text=True)
    assert client.get(f"/evidence/show/{pk}").status_code == 404
    assert client.get(f"/evidence/download/{pk}").status_code == 404
    client.post(
        f"/evidence/edit/{pk}",
        data={
            "title": "hijacked",
            "kind": "minutes",
            "evidence_date": "2026-03-01",
            "sensitivity": "shared_with_donors",
        },
    )
    client.post(f"/evidence/delete/{pk}")
    client.post(f"/evidence/{pk}/verify", data={"decision": "verified"})
    session.rollback()
    item = session.get(Evidence, pk)
    assert item.title == "Grant B minutes" and item.status.value == "submitted"


def test_api_applies_the_same_rules(world, other_grant_item, api_for, session):
    api = api_for("Program")
    pk = other_grant_item["evidence"]
    assert pk not in api.get("/api/v1/evidence/").json["ids"]
    assert api.get(f"/api/v1/evidence/{pk}").status_code == 404
    assert api.put(f"/api/v1/evidence/{pk}", json={"title": "hijacked"}).status_code == 404
    assert api.delete(f"/api/v1/evidence/{pk}").status_code == 404
    assert api.post(f"/api/v1/evidence/{pk}/verify", json={"decision": "verified"}).status_code == 404
    assert api.get(f"/api/v1/evidence/{pk}/file").status_code == 404
    session.rollback()
    assert session.get(Evidence, pk).title == "Grant B minutes"


def test_donor_and_auditor_change_nothing(app, world, client_for, api_for, session):
    item = add_evidence(app, session, world, title="Minutes A", sensitivity="shared_with_donors")
    session.commit()
    for role in ("Donor", "Auditor"):
        client = client_for(role)
        upload = client.post(
            "/evidence/add",
            data={
                "grant_id": world.grant_a,
                "title": "x",
                "kind": "minutes",
                "evidence_date": "2026-02-01",
                "file": (io.BytesIO(PDF), "x.pdf"),
            },
            content_type="multipart/form-data",
        )
        assert upload.status_code in (302, 403)
        client.post(f"/evidence/delete/{item.id}")
        client.post(f"/evidence/{item.id}/verify", data={"decision": "verified"})
        api = api_for(role)
        assert (
            api.post(
                "/api/v1/evidence/upload",
                json={
                    "grant_id": world.grant_a,
                    "title": "x",
                    "kind": "report",
                    "evidence_date": "2026-02-01",
                    "url": "https://example.org",
                },
            ).status_code
            == 403
        )
        assert api.put(f"/api/v1/evidence/{item.id}", json={"title": "changed"}).status_code == 403
        assert api.delete(f"/api/v1/evidence/{item.id}").status_code == 403
        assert (
            api.post(
                "/api/v1/consultations/",
                json={"grant": world.grant_a, "body": 1, "held_on": "2026-02-01", "title": "x"},
            ).status_code
            == 403
        )
    session.rollback()
    assert session.scalar(select(func.count(Evidence.id))) == 1
    assert session.get(Evidence, item.id).status.value == "submitted"


def test_program_cannot_see_or_create_consultations_of_another_grant(
    world, other_grant_item, client_for, api_for, session
):
    client = client_for("Program")
    assert "Grant B meeting" not in client.get("/consultations/list/").get_data(as_text=True)
    assert client.get(f"/consultations/show/{other_grant_item['meeting']}").status_code == 404
    api = api_for("Program")
    refused = api.post(
        "/api/v1/consultations/",
        json={
            "grant": world.grant_b,
            "body": other_grant_item["body"],
            "held_on": "2026-04-01",
            "title": "sneaky",
        },
    )
    assert refused.status_code in (400, 422)
    created = api.post(
        "/api/v1/consultations/",
        json={
            "grant": world.grant_a,
            "body": other_grant_item["body"],
            "held_on": "2026-04-01",
            "title": "RCM April",
            "attendance_sex_workers": 2,
            "attendance_government": 4,
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    session.rollback()
    titles = set(session.scalars(select(Consultation.title)))
    assert "sneaky" not in titles and "RCM April" in titles


def test_finance_sees_every_grants_evidence(world, other_grant_item, client_for):
    assert "Grant B minutes" in client_for("Finance").get("/evidence/list/").get_data(as_text=True)
