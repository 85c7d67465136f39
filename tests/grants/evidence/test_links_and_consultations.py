"""Evidence supports several things; consultations count attendance by constituency, never names."""

from datetime import date

import pytest
from sqlalchemy import func, select

from core.errors import DomainValidationError
from grants.evidence import consultations, services
from grants.evidence.models import Consultation, EvidenceLink
from tests.grants.evidence.helpers import add_evidence, user


@pytest.fixture
def rcm(session):
    return consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")


def meeting(session, grant_id, body, **attendance):
    return consultations.record_consultation(
        session, grant=grant_id, body=body, held_on=date(2026, 2, 12), title="RCM meeting", attendance=attendance
    )


def links(session):
    return session.scalar(select(func.count(EvidenceLink.id)))


def test_one_item_supports_several_things_and_one_thing_has_several_items(app, world, session, rcm):
    from grants.compliance.services import create_requirement

    program = user(app, session, world, "Program")
    first, second = meeting(session, world.grant_a, rcm), meeting(session, world.grant_a, rcm)
    minutes = add_evidence(app, session, world, title="Minutes")
    counts = add_evidence(app, session, world, title="Counts", kind="attendance_summary")
    requirement = create_requirement(session, world.grant_a, code="R1", title="KP at RCM")
    for target_kind, target_id in (
        ("consultation", first.id),
        ("consultation", second.id),
        ("requirement", requirement.id),
    ):
        services.link_evidence(session, minutes, target_kind, target_id, program)
    services.link_evidence(session, counts, "consultation", first.id, program)
    assert {e.title for e in services.evidence_for_target(session, program, "consultation", first.id)} == {
        "Minutes",
        "Counts",
    }
    assert len(minutes.links) == 3
    with pytest.raises(DomainValidationError, match="already linked"):
        services.link_evidence(session, minutes, "consultation", first.id, program)


def test_a_link_to_a_record_the_user_cannot_see_is_refused_and_nothing_saved(app, world, session, rcm):
    hidden = meeting(session, world.grant_b, rcm)
    item = add_evidence(app, session, world)
    before = links(session)
    with pytest.raises(DomainValidationError) as caught:
        services.link_evidence(session, item, "consultation", hidden.id, user(app, session, world, "Program"))
    # Same words as for a record that does not exist: its existence is not confirmed.
    assert caught.value.errors["target"] == [f"there is no consultation #{hidden.id}"]
    with pytest.raises(DomainValidationError) as caught:
        services.link_evidence(session, item, "consultation", hidden.id, user(app, session, world, "Finance"))
    assert "belongs to another grant" in caught.value.errors["target"][0]
    assert links(session) == before


@pytest.mark.parametrize(
    ("kind", "target_id", "words"),
    [
        ("gossip", 1, "not something evidence can support"),
        ("consultation", 999999, "there is no consultation"),
        ("consultation", "abc", "not a record number"),
    ],
)
def test_bad_link_targets_are_named(app, world, session, kind, target_id, words):
    item = add_evidence(app, session, world)
    with pytest.raises(DomainValidationError) as caught:
        services.link_evidence(session, item, kind, target_id, user(app, session, world, "Program"))
    assert words in " ".join(sum(caught.value.errors.values(), []))


def test_links_through_the_page_and_the_api(app, world, session, rcm, client_for, api_for):
    own = meeting(session, world.grant_a, rcm)
    hidden = meeting(session, world.grant_b, rcm)
    item = add_evidence(app, session, world)
    session.commit()
    client = client_for("Program")
    page = client.post(
        f"/evidence/{item.id}/links", data={"target": f"consultation:{hidden.id}"}, follow_redirects=True
    )
    assert "there is no consultation" in page.get_data(as_text=True)
    client.post(f"/evidence/{item.id}/links", data={"target": f"consultation:{own.id}"})
    api = api_for("Program")
    refused = api.post(
        f"/api/v1/evidence/{item.id}/links", json={"target_kind": "consultation", "target_id": hidden.id}
    )
    assert refused.status_code == 422
    session.rollback()
    assert [(l.target_kind, l.target_id) for l in session.scalars(select(EvidenceLink))] == [("consultation", own.id)]


def test_attendance_is_counted_by_constituency(session, world, rcm):
    held = meeting(session, world.grant_a, rcm, government=5, sex_workers=2, transgender=1)
    assert held.count("sex_workers") == 2 and held.total_attendance == 8


@pytest.mark.parametrize(
    ("attendance", "field"),
    [
        ({"sex_workers": -1}, "attendance.sex_workers"),
        ({"sex_workers": "Maria, Joan"}, "attendance.sex_workers"),
        ({"names": 3}, "attendance.names"),
    ],
)
def test_attendance_must_be_counts_of_known_constituencies(session, world, rcm, attendance, field):
    before = session.scalar(select(func.count(Consultation.id)))
    with pytest.raises(DomainValidationError) as caught:
        meeting(session, world.grant_a, rcm, **attendance)
    assert field in caught.value.errors
    assert session.scalar(select(func.count(Consultation.id))) == before


def test_a_body_code_is_unique(session, rcm):
    with pytest.raises(DomainValidationError, match="already used"):
        consultations.create_body(session, code="RCM", name="Another")


def test_program_records_a_meeting_through_the_form_with_counts_only(world, session, rcm, client_for):
    session.commit()
    form = {
        "grant": str(world.grant_a),
        "body": str(rcm.id),
        "held_on": "2026-03-03",
        "title": "RCM March",
        "attendance_sex_workers": "3",
        "attendance_government": "5",
    }
    response = client_for("Program").post("/consultations/add", data=form)
    assert response.status_code == 302
    negative = client_for("Program").post(
        "/consultations/add", data={**form, "title": "Bad", "attendance_msm": "-2"}, follow_redirects=True
    )
    assert negative.status_code == 200
    session.rollback()
    saved = session.scalars(select(Consultation)).all()
    assert [(c.title, c.count("sex_workers"), c.count("msm")) for c in saved] == [("RCM March", 3, 0)]


def test_evidence_supports_an_indicator_result_of_its_own_grant_only(app, world, session):
    indicators = pytest.importorskip("indicators.services")
    from grants.models import Grant, ReportingPeriod

    program = user(app, session, world, "Program")
    own_period = session.get(ReportingPeriod, world.period_a1)
    own = indicators.create_indicator(
        session, session.get(Grant, world.grant_a), code="T-1", name="Trained", unit="number"
    )
    result = indicators.record_result(session, own, own_period, user=program, value=12)
    foreign_indicator = indicators.create_indicator(
        session, session.get(Grant, world.grant_b), code="B-1", name="B", unit="number"
    )
    foreign = indicators.record_result(
        session,
        foreign_indicator,
        session.get(ReportingPeriod, world.period_b1),
        user=user(app, session, world, "Finance"),
        value=3,
    )
    sheet = add_evidence(
        app,
        session,
        world,
        title="Training attendance counts",
        kind="attendance_summary",
        content=b"constituency,count\nSex workers,12\n",
        filename="training.csv",
    )
    link = services.link_evidence(session, sheet, "indicator_result", result.id, program)
    assert link.grant_id == world.grant_a
    with pytest.raises(DomainValidationError, match="there is no indicator result"):
        services.link_evidence(session, sheet, "indicator_result", foreign.id, program)
