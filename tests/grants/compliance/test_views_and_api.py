"""The compliance matrix, the grant page panel, requirement forms and the API, with row-level rules."""

from datetime import date

import pytest
from sqlalchemy import func, select

from grants.compliance import services
from grants.compliance.models import Requirement, RequirementWaiver
from grants.evidence import consultations


@pytest.fixture
def requirements(session, world):
    body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
    consultations.record_consultation(
        session,
        grant=world.grant_a,
        body=body,
        held_on=date(2026, 2, 12),
        title="RCM February",
        attendance={"sex_workers": 0, "government": 5},
    )
    kp = services.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Sex workers at every RCM meeting",
        category="community_inclusion",
        rules=[{"rule": "consultation_representation", "params": {"body": "RCM", "population": "sex_workers"}}],
    )
    hidden = services.create_requirement(session, world.grant_b, code="B1", title="Grant B secret requirement")
    session.commit()
    return {"kp": kp.id, "hidden": hidden.id, "body": body.id}


def count(session, model):
    session.rollback()
    return session.scalar(select(func.count(model.id)))


def test_donor_reads_the_matrix_with_colours_and_clicks_through_to_the_explanation(world, requirements, client_for):
    donor = client_for("Donor")
    page = donor.get(f"/requirements/matrix/{world.grant_a}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-status="at_risk"' in html and 'class="warning"' in html
    cell = donor.get(f"/requirements/cell/{requirements['kp']}/{world.period_a1}").get_data(as_text=True)
    assert "had fewer than 1 sex worker representative (12 Feb 2026: 0)" in cell
    assert "RCM February" in cell


def test_nobody_sees_the_matrix_or_cells_of_a_grant_they_cannot_see(world, requirements, client_for):
    for role in ("Program", "Donor", "Auditor"):
        client = client_for(role)
        assert client.get(f"/requirements/matrix/{world.grant_b}").status_code == 404
        assert client.get(f"/requirements/cell/{requirements['hidden']}/{world.period_b1}").status_code == 404
        assert client.get(f"/requirements/show/{requirements['hidden']}").status_code == 404
        assert "Grant B secret requirement" not in client.get("/requirements/list/").get_data(as_text=True)


def test_the_grant_page_shows_a_compliance_summary_and_an_evidence_panel(world, requirements, client_for):
    html = client_for("Program").get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Compliance"' in html and "Compliance matrix" in html
    assert 'data-panel="Evidence"' in html


def test_a_requirement_built_with_a_parameter_out_of_range_says_so_and_keeps_what_was_typed(
    world, requirements, client_for, session
):
    before = count(session, Requirement)
    form = {
        "grant": str(world.grant_a),
        "code": "R9",
        "title": "Minutes",
        "category": "reporting",
        "frequency": "per_period",
        "rule-0-rule": "evidence_verified",
        "rule-0-evidence_verified-kind": "minutes",
        "rule-0-evidence_verified-min_count": "0",
    }
    refused = client_for("Program").post("/requirements/add", data=form)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "parameter &#39;min_count&#39;" in html or "parameter 'min_count'" in html
    assert 'value="Minutes"' in html and 'value="R9"' in html  # what was typed is kept
    assert count(session, Requirement) == before
    good = client_for("Program").post("/requirements/add", data={**form, "rule-0-evidence_verified-min_count": "2"})
    assert good.status_code == 302
    session.rollback()
    saved = session.scalar(select(Requirement).where(Requirement.code == "R9"))
    assert good.headers["Location"].endswith(f"/requirements/show/{saved.id}")  # lands on the requirement
    assert saved.rules == [
        {"rule": "evidence_verified", "params": {"kind": "minutes", "min_count": 2, "linked_only": False}}
    ]


def test_program_applies_the_preset_from_the_matrix(world, requirements, client_for, session):
    client = client_for("Program")
    client.post(f"/requirements/apply-preset/{world.grant_a}", data={"preset": "gf_ccm_eligibility"})
    session.rollback()
    codes = set(session.scalars(select(Requirement.code).where(Requirement.grant_id == world.grant_a)))
    assert {"ER1", "ER4", "ER6"} <= codes
    assert (
        client.post(f"/requirements/apply-preset/{world.grant_b}", data={"preset": "gf_ccm_eligibility"}).status_code
        == 404
    )
    assert client_for("Donor").post(
        f"/requirements/apply-preset/{world.grant_a}", data={"preset": "gf_ccm_eligibility"}
    ).status_code in (302, 403)


def test_api_refuses_unknown_parameters_foreign_grants_and_read_only_roles(world, requirements, api_for, session):
    before = count(session, Requirement)
    api = api_for("Program")
    unknown = api.post(
        "/api/v1/requirements/",
        json={
            "grant": world.grant_a,
            "code": "R8",
            "title": "x",
            "rules": [{"rule": "report_submitted", "params": {"grace": 3}}],
        },
    )
    assert unknown.status_code == 422 and "unknown parameter 'grace'" in unknown.json["message"]["rules"][0]
    foreign = api.post("/api/v1/requirements/", json={"grant": world.grant_b, "code": "R8", "title": "x"})
    assert foreign.status_code in (400, 422)
    assert api.put(f"/api/v1/requirements/{requirements['hidden']}", json={"title": "mine"}).status_code == 404
    assert api.delete(f"/api/v1/requirements/{requirements['hidden']}").status_code == 404
    for role in ("Donor", "Auditor"):
        assert (
            api_for(role)
            .post("/api/v1/requirements/", json={"grant": world.grant_a, "code": "R8", "title": "x"})
            .status_code
            == 403
        )
        assert api_for(role).delete(f"/api/v1/requirements/{requirements['kp']}").status_code == 403
    assert count(session, Requirement) == before
    created = api.post(
        "/api/v1/requirements/",
        json={
            "grant": world.grant_a,
            "code": "R8",
            "title": "Semester update",
            "rules": [{"rule": "report_submitted", "params": {}}],
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)


def test_api_status_gives_each_requirement_per_period_with_its_explanation(world, requirements, api_for):
    response = api_for("Donor").get(f"/api/v1/requirements/status/{world.grant_a}?period_id={world.period_a1}")
    assert response.status_code == 200
    [row] = response.json["result"]
    assert row["requirement_code"] == "R1" and row["period_label"] == "S1"
    assert row["status"] in ("at_risk", "pending") and row["explanation"]
    assert api_for("Program").get(f"/api/v1/requirements/status/{world.grant_b}").status_code == 404


def test_api_waiver_needs_a_justification(world, requirements, api_for, session):
    api = api_for("Program")
    refused = api.post(
        "/api/v1/waivers/", json={"requirement": requirements["kp"], "period": world.period_a1, "justification": ""}
    )
    assert refused.status_code == 422 and "justification" in refused.json["message"]
    assert count(session, RequirementWaiver) == 0
    foreign = api.post(
        "/api/v1/waivers/",
        json={
            "requirement": requirements["hidden"],
            "period": world.period_b1,
            "justification": "We want to waive grant B.",
        },
    )
    assert foreign.status_code in (400, 422)
    granted = api.post(
        "/api/v1/waivers/",
        json={
            "requirement": requirements["kp"],
            "period": world.period_a1,
            "justification": "RCM meeting cancelled by the ministry.",
        },
    )
    assert granted.status_code == 201, granted.get_data(as_text=True)
    assert count(session, RequirementWaiver) == 1
    assert (
        api_for("Donor")
        .post(
            "/api/v1/waivers/",
            json={
                "requirement": requirements["kp"],
                "period": world.period_a1,
                "justification": "Donor tries to waive.",
            },
        )
        .status_code
        == 403
    )


def test_waiver_form_without_justification_saves_nothing(world, requirements, client_for, session):
    response = client_for("Program").post(
        "/waivers/add",
        data={"requirement": str(requirements["kp"]), "period": str(world.period_a1), "justification": " "},
        follow_redirects=True,
    )
    assert "justification" in response.get_data(as_text=True)
    assert count(session, RequirementWaiver) == 0


def test_a_requirements_deadline_is_what_the_matrix_says_is_still_owed(session, world, client_for):
    from grants.models import ReportingPeriod

    deadlines = pytest.importorskip("grants.deadlines.services")
    requirement = services.create_requirement(
        session, world.grant_a, code="R7", title="Minutes", due_days=30, expected_evidence="minutes"
    )
    services.register_deadlines(session, requirement, today=date(2026, 3, 1))
    deadline = deadlines.deadline_for_source(session, "requirement", requirement.id)
    assert (deadline.grant_id, deadline.due_date) == (world.grant_a, date(2026, 7, 30))
    assert "R7 Minutes (S1)" in deadline.title
    # S1 is past due and not met: the matrix says overdue, so the deadline stays (overdue) on S1.
    services.register_deadlines(session, requirement, today=date(2026, 8, 1))
    assert deadlines.deadline_for_source(session, "requirement", requirement.id).due_date == date(2026, 7, 30)
    row = services.judge_requirement(session, requirement, date(2026, 8, 1))[0]
    assert row.status == "overdue"
    # Once S1 is settled (here waived), the deadline moves on to S2; when all are settled, it goes.
    s1, s2 = session.scalars(
        select(ReportingPeriod).where(ReportingPeriod.grant_id == world.grant_a).order_by(ReportingPeriod.start_date)
    )
    services.waive(session, requirement, s1, "The donor agreed in writing to skip S1.")
    services.register_deadlines(session, requirement, today=date(2026, 8, 1))
    assert deadlines.deadline_for_source(session, "requirement", requirement.id).due_date == date(2027, 1, 30)
    services.waive(session, requirement, s2, "The donor agreed in writing to skip S2 too.")
    services.register_deadlines(session, requirement, today=date(2027, 6, 1))
    assert deadlines.deadline_for_source(session, "requirement", requirement.id) is None
    services.register_deadlines(session, requirement, today=date(2026, 3, 1))
    session.commit()
    requirement_id = requirement.id
    client_for("Program").post(f"/requirements/delete/{requirement_id}")
    session.rollback()
    assert session.get(Requirement, requirement_id) is None
    assert deadlines.deadline_for_source(session, "requirement", requirement_id) is None


def test_rules_are_chosen_from_drop_downs_in_the_requirement_form(world, requirements, client_for, session):
    form = {
        "code": "R1",
        "title": "Sex workers at every RCM meeting",
        "category": "community_inclusion",
        "frequency": "per_period",
        "rule-0-rule": "consultation_representation",
        "rule-0-consultation_representation-population": "msm",
    }
    page = client_for("Program").get(f"/requirements/edit/{requirements['kp']}").get_data(as_text=True)
    assert '<option value="RCM" selected' in page and "Regional Coordinating Mechanism" in page
    assert "rules_text" not in page and "&#34;rule&#34;" not in page  # no JSON to type
    refused = client_for("Program").post(
        f"/requirements/edit/{requirements['kp']}",
        data={**form, "rule-0-consultation_representation-body": "CCM"},
        follow_redirects=True,
    )
    assert "no coordinating body with code" in refused.get_data(as_text=True)
    client_for("Program").post(
        f"/requirements/edit/{requirements['kp']}", data={**form, "rule-0-consultation_representation-body": "RCM"}
    )
    session.rollback()
    assert session.get(Requirement, requirements["kp"]).rules[0]["params"]["population"] == "msm"
