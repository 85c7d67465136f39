"""Requirements and waivers saved from a form or the API go through one operation and one commit."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from core import clock
from grants.compliance.models import Requirement, RequirementWaiver
from tests.grants.test_write_path import counting_commits


def test_a_requirement_added_in_the_form_gets_its_deadline_in_the_same_commit(world, client_for, session):
    deadlines = pytest.importorskip("grants.deadlines.services")
    client = client_for("Program")
    with clock.frozen_at(datetime(2026, 3, 1, 12, tzinfo=UTC)), counting_commits() as commits:
        response = client.post(
            "/requirements/add",
            data={
                "grant": str(world.grant_a),
                "code": "R5",
                "title": "Minutes",
                "category": "reporting",
                "frequency": "per_period",
                "due_days": "30",
                "expected_evidence": "minutes",
            },
        )
    assert response.status_code == 302
    assert len(commits) == 1
    session.rollback()
    requirement = session.scalar(select(Requirement).where(Requirement.code == "R5"))
    assert deadlines.deadline_for_source(session, "requirement", requirement.id).due_date == date(2026, 7, 30)


def test_a_requirement_changed_through_the_api_moves_its_deadline_in_the_same_commit(world, api_for, session):
    deadlines = pytest.importorskip("grants.deadlines.services")
    api = api_for("Program")
    with clock.frozen_at(datetime(2026, 3, 1, 12, tzinfo=UTC)):
        created = api.post(
            "/api/v1/requirements/", json={"grant": world.grant_a, "code": "R6", "title": "Report", "due_days": 30}
        )
        assert created.status_code == 201, created.get_data(as_text=True)
        with counting_commits() as commits:
            changed = api.put(f"/api/v1/requirements/{created.json['id']}", json={"due_days": 10})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert len(commits) == 1
    session.rollback()
    assert deadlines.deadline_for_source(session, "requirement", created.json["id"]).due_date == date(2026, 7, 10)


def test_a_waiver_granted_in_the_form_records_who_granted_it_and_when(world, client_for, session):
    from grants.compliance import services

    requirement = services.create_requirement(session, world.grant_a, code="R1", title="Minutes")
    session.commit()
    client = client_for("Program")
    moment = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)
    with clock.frozen_at(moment), counting_commits() as commits:
        client.post(
            "/waivers/add",
            data={
                "requirement": str(requirement.id),
                "period": str(world.period_a1),
                "justification": "The RCM meeting was cancelled by the ministry.",
            },
        )
    assert len(commits) == 1
    session.rollback()
    waiver = session.scalar(select(RequirementWaiver))
    assert (waiver.grant_id, waiver.granted_by_id) == (world.grant_a, world.users["Program"])
    assert clock.as_utc(waiver.granted_at) == moment


def test_a_waiver_granted_through_the_api_takes_the_requirements_grant(world, api_for, session):
    from grants.compliance import services

    requirement = services.create_requirement(session, world.grant_a, code="R1", title="Minutes")
    session.commit()
    granted = api_for("Program").post(
        "/api/v1/waivers/",
        json={
            "requirement": requirement.id,
            "period": world.period_a1,
            "justification": "The RCM meeting was cancelled by the ministry.",
        },
    )
    assert granted.status_code == 201, granted.get_data(as_text=True)
    session.rollback()
    waiver = session.get(RequirementWaiver, granted.json["id"])
    assert waiver.grant_id == world.grant_a and waiver.granted_at is not None
