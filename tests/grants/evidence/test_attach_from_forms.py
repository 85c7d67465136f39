"""Evidence attached or uploaded from the meeting form, in the same save as the meeting."""

import io
from datetime import date

from sqlalchemy import func, select

from grants.evidence import consultations
from grants.evidence.models import Consultation, Evidence, EvidenceLink
from tests.grants.evidence.helpers import PDF, add_evidence


def _count(session, model):
    session.rollback()
    return session.scalar(select(func.count(model.id)))


def _meeting_form(world, body_id, **extra):
    return {
        "grant": str(world.grant_a),
        "body": str(body_id),
        "held_on": "2026-03-12",
        "title": "RCM March",
        "attendance_sex_workers": "2",
        **extra,
    }


def test_minutes_uploaded_with_a_new_meeting_are_linked_to_it(session, world, client_for):
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    session.commit()
    response = client_for("Program").post(
        "/consultations/add",
        data=_meeting_form(
            world,
            body.id,
            evidence_title="RCM March minutes",
            evidence_kind="minutes",
            evidence_date="2026-03-12",
            evidence_sensitivity="staff_only",
            evidence_file=(io.BytesIO(PDF), "minutes.pdf"),
        ),
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    session.rollback()
    meeting = session.scalar(select(Consultation))
    link = session.scalar(select(EvidenceLink))
    assert (link.target_kind, link.target_id) == ("consultation", meeting.id)
    assert session.get(Evidence, link.evidence_id).title == "RCM March minutes"
    page = client_for("Program").get(f"/consultations/show/{meeting.id}").get_data(as_text=True)
    assert "RCM March minutes" in page


def test_the_meeting_form_offers_only_its_grants_evidence_and_refuses_another(app, session, world, client_for):
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    meeting = consultations.record_consultation(
        session, grant=world.grant_a, body=body, held_on=date(2026, 2, 12), title="RCM February"
    )
    own = add_evidence(app, session, world, title="February minutes")
    other = add_evidence(app, session, world, "Admin", grant=world.grant_b, title="GB secret minutes")
    session.commit()
    admin = client_for("Admin")
    form = admin.get(f"/consultations/edit/{meeting.id}").get_data(as_text=True)
    assert "February minutes" in form and "GB secret minutes" not in form
    refused = admin.post(
        f"/consultations/edit/{meeting.id}",
        data={**_meeting_form(world, body.id, title="RCM February (changed)"), "evidence": [str(other.id)]},
        follow_redirects=True,
    )
    assert "choose evidence of this grant" in refused.get_data(as_text=True)
    assert _count(session, EvidenceLink) == 0
    assert session.get(Consultation, meeting.id).title == "RCM February"  # nothing half-saved
    admin.post(
        f"/consultations/edit/{meeting.id}",
        data={**_meeting_form(world, body.id, held_on="2026-02-12", title="RCM February"), "evidence": [str(own.id)]},
    )
    session.rollback()
    link = session.scalar(select(EvidenceLink))
    assert (link.evidence_id, link.target_kind, link.target_id) == (own.id, "consultation", meeting.id)
