"""Sensitivity says who sees an item: shared with donors, staff only (the default), restricted.

Donors see only what is shared with them, on every path. Lowering a restricted item takes a
second person: a request, then another Admin or a Finance or Program member of the grant approves.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.errors import DomainValidationError
from grants.evidence import sensitivity as levels
from grants.evidence import services
from grants.evidence.models import Evidence, RequestStatus, Sensitivity, SensitivityRequest
from tests.conftest import PASSWORD
from tests.grants.evidence.helpers import PDF, add_evidence, user

STAFF_TITLE = "Staff-only outreach notes"
STAFF_PDF = PDF + b"% staff only\n"


def _second_program_member(app, session, world):
    from app.users import create_user
    from grants import services as grants
    from grants.models import Grant, MemberRole

    with app.app_context():
        create_user(app, "program2", "program2@test.example.org", "Program", PASSWORD, "Second", "Reader")
        second_id = app.appbuilder.sm.find_user(username="program2").id
    second = session.get(app.appbuilder.sm.user_model, second_id)
    grants.add_member(session, session.get(Grant, world.grant_a), second, MemberRole.program)
    session.commit()
    return second


def test_evidence_uploaded_without_choosing_a_level_is_staff_only_and_donors_never_see_it(
    app, world, client_for, api_for, session
):
    program = client_for("Program")
    response = program.post(
        "/evidence/add",
        data={
            "grant_id": world.grant_a,
            "title": STAFF_TITLE,
            "kind": "minutes",
            "evidence_date": "2026-03-01",
            "url": "https://example.org/staff-notes",
        },
        content_type="multipart/form-data",
        buffered=True,
        follow_redirects=False,
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    via_api = api_for("Program").post(
        "/api/v1/evidence/upload",
        json={
            "grant_id": world.grant_a,
            "title": "Linked staff note",
            "kind": "report",
            "evidence_date": "2026-03-02",
            "url": "https://example.org/note",
        },
    )
    assert via_api.status_code == 201, via_api.get_data(as_text=True)
    session.rollback()
    made = list(session.scalars(select(Evidence).where(Evidence.grant_id == world.grant_a)))
    assert {item.sensitivity for item in made} == {Sensitivity.staff_only}
    form = program.get("/evidence/add").get_data(as_text=True)
    assert '<option value="staff_only" selected>Staff only' in form
    assert "Shared with donors" in form and "Restricted" in form and "internal" not in form.lower()

    donor = client_for("Donor")
    assert STAFF_TITLE not in donor.get("/evidence/list/").get_data(as_text=True)
    for item in made:
        assert donor.get(f"/evidence/show/{item.id}").status_code == 404
        assert api_for("Donor").get(f"/api/v1/evidence/{item.id}").status_code == 404


@pytest.fixture
def shared_and_staff_only(app, world, session):
    shared = add_evidence(app, session, world, title="Shared minutes", sensitivity="shared_with_donors")
    staff = add_evidence(
        app, session, world, title=STAFF_TITLE, sensitivity="staff_only", content=STAFF_PDF, filename="notes.pdf"
    )
    session.commit()
    return shared.id, staff.id


def test_donor_reaches_no_staff_only_evidence_by_any_path(world, shared_and_staff_only, client_for, api_for, session):
    shared, staff = shared_and_staff_only
    donor = client_for("Donor")
    listing = donor.get("/evidence/list/").get_data(as_text=True)
    assert "Shared minutes" in listing and STAFF_TITLE not in listing
    assert donor.get(f"/evidence/show/{staff}").status_code == 404
    download = donor.get(f"/evidence/download/{staff}")
    assert download.status_code == 404 and STAFF_PDF not in download.data
    assert STAFF_TITLE not in donor.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    api = api_for("Donor")
    assert staff not in api.get("/api/v1/evidence/?q=(page_size:100)").json["ids"]
    assert api.get(f"/api/v1/evidence/{staff}/file").status_code == 404
    assert [row.id for row in services.evidence_register(session, world.grant_a)] == [shared]
    # Staff and the grant's auditor still see it.
    assert client_for("Program").get(f"/evidence/show/{staff}").status_code == 200
    assert client_for("Auditor").get(f"/evidence/download/{staff}").data == STAFF_PDF


def test_levels_read_in_words_on_the_evidence_pages(world, shared_and_staff_only, client_for):
    shared, staff = shared_and_staff_only
    program = client_for("Program")
    listing = program.get("/evidence/list/").get_data(as_text=True)
    assert "Shared with donors" in listing and "Staff only" in listing
    # Never the stored value as words a person reads (in the table or the search form's options).
    assert ">shared_with_donors<" not in listing and "\\u003eshared_with_donors\\u003c" not in listing
    edit = program.get(f"/evidence/edit/{staff}").get_data(as_text=True)
    assert "Who sees it" in edit and ">Staff only<" in edit


@pytest.fixture
def restricted(app, world, session):
    item = add_evidence(app, session, world, title="Safety incident log", sensitivity="restricted")
    session.commit()
    return item.id


def test_a_program_user_alone_cannot_lower_restricted_evidence(world, restricted, client_for, api_for, session):
    program = client_for("Program")
    response = program.post(
        f"/evidence/edit/{restricted}",
        data={
            "title": "Safety incident log",
            "kind": "minutes",
            "evidence_date": "2026-03-01",
            "sensitivity": "shared_with_donors",
        },
        follow_redirects=True,
    )
    assert "second person" in response.get_data(as_text=True)
    put = api_for("Program").put(f"/api/v1/evidence/{restricted}", json={"sensitivity": "staff_only"})
    assert put.status_code == 422 and "second person" in put.json["message"]["sensitivity"][0]
    session.rollback()
    assert session.get(Evidence, restricted).sensitivity == Sensitivity.restricted
    assert session.get(Evidence, restricted).title == "Safety incident log"


def test_raising_the_level_needs_nobody_else(app, world, session):
    item = add_evidence(app, session, world, title="Minutes", sensitivity="shared_with_donors")
    levels.change_sensitivity(session, item, "restricted", user(app, session, world, "Program"))
    session.commit()
    assert session.get(Evidence, item.id).sensitivity == Sensitivity.restricted


def test_lowering_restricted_evidence_takes_a_request_and_a_second_member_of_the_grant(
    app, world, restricted, client_for, session
):
    from core.audit import AuditEntry

    second = _second_program_member(app, session, world)
    program = client_for("Program")
    asked = program.post(
        f"/evidence/{restricted}/sensitivity-request",
        data={"to_level": "shared_with_donors", "reason": "The donor asked for the summary"},
        follow_redirects=True,
    )
    assert "another Admin, or a Finance or Program member" in asked.get_data(as_text=True)
    session.rollback()
    request = session.scalar(select(SensitivityRequest).where(SensitivityRequest.evidence_id == restricted))
    assert request.status == RequestStatus.pending
    assert session.get(Evidence, restricted).sensitivity == Sensitivity.restricted

    # The person who asked cannot approve their own request.
    own = program.post(f"/evidence/{restricted}/sensitivity-request/{request.id}", data={"decision": "approve"})
    assert own.status_code == 302
    session.rollback()
    assert session.get(SensitivityRequest, request.id).status == RequestStatus.pending
    # Finance sees every grant but is not a member of this one; the donor and auditor may not edit.
    finance = user(app, session, world, "Finance")
    assert levels.may_decide(session, request, finance) is not None
    assert client_for("Donor").post(
        f"/evidence/{restricted}/sensitivity-request/{request.id}", data={"decision": "approve"}
    ).status_code in (302, 403, 404)
    session.rollback()
    assert session.get(Evidence, restricted).sensitivity == Sensitivity.restricted

    from tests.conftest import login

    reviewer = login(app.test_client(), "program2")
    page = reviewer.get(f"/evidence/show/{restricted}").get_data(as_text=True)
    assert "The donor asked for the summary" in page and "Approve" in page
    reviewer.post(f"/evidence/{restricted}/sensitivity-request/{request.id}", data={"decision": "approve"})
    session.rollback()
    assert session.get(Evidence, restricted).sensitivity == Sensitivity.shared_with_donors
    decided = session.get(SensitivityRequest, request.id)
    assert decided.status == RequestStatus.approved and decided.decided_by_id == second.id
    trail = list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.table_name == "evidence_items", AuditEntry.record_id == str(restricted))
        )
    )
    change = [e for e in trail if e.action == "update" and "sensitivity" in e.changes]
    assert change and change[-1].changes["sensitivity"] == ["restricted", "shared_with_donors"]
    assert change[-1].grant_id == world.grant_a  # auditors of the grant read it
    assert session.scalar(
        select(AuditEntry.id).where(AuditEntry.table_name == "sensitivity_requests", AuditEntry.action == "insert")
    )
    assert "Safety incident log" in client_for("Donor").get("/evidence/list/").get_data(as_text=True)


def test_a_rejected_request_changes_nothing_and_needs_a_reason(app, world, restricted, session):
    second = _second_program_member(app, session, world)
    item = session.get(Evidence, restricted)
    request = levels.request_lowering(session, item, "staff_only", user(app, session, world, "Program"), "audit over")
    with pytest.raises(DomainValidationError) as refused:
        levels.decide(session, request, second, approve=False)
    assert "comment" in refused.value.errors
    levels.decide(session, request, second, approve=False, comment="Still names people")
    session.commit()
    assert session.get(Evidence, restricted).sensitivity == Sensitivity.restricted
    assert session.get(SensitivityRequest, request.id).status == RequestStatus.rejected


def test_the_old_level_words_are_read_by_what_they_meant(app, world, session):
    item = add_evidence(app, session, world, title="Older client", sensitivity="internal", day=date(2026, 3, 2))
    assert item.sensitivity == Sensitivity.staff_only
    assert Sensitivity("public") == Sensitivity.shared_with_donors
    assert Sensitivity("confidential") == Sensitivity.restricted


# ---------------------------------------------------------------- explanations over what the viewer may see


@pytest.fixture
def minutes_requirement(app, world, session):
    from grants.compliance import services as compliance

    requirement = compliance.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Minutes of every meeting",
        category="community_inclusion",
        rules=[{"rule": "evidence_verified", "params": {"kind": "minutes"}}],
    )
    session.commit()
    return requirement


def _verified(app, session, world, title, level, requirement):
    item = add_evidence(app, session, world, title=title, sensitivity=level, day=date(2026, 3, 1))
    services.link_evidence(session, item, "requirement", requirement.id)
    services.verify_evidence(session, item, user(app, session, world, "Finance"), "verified")
    session.commit()
    return item


def test_a_requirement_met_only_by_staff_only_evidence_reads_neutrally_to_a_donor(
    app, world, minutes_requirement, client_for, api_for, session
):
    from datetime import UTC, datetime

    from core import clock
    from core.datasets import DATASETS
    from grants.compliance.rules import HELD_BY_THE_ORGANISATION
    from grants.compliance.services import requirement_status
    from grants.evidence.models import SHARED_WITH_DONORS
    from grants.models import Grant, ReportingPeriod

    _verified(app, session, world, STAFF_TITLE, "staff_only", minutes_requirement)
    cell_url = f"/requirements/cell/{minutes_requirement.id}/{world.period_a1}"
    with clock.frozen_at(datetime(2026, 8, 1, 12, tzinfo=UTC)):
        staff = client_for("Program").get(cell_url).get_data(as_text=True)
        assert "1 verified minutes item(s)" in staff and STAFF_TITLE in staff

        donor = client_for("Donor")
        cell = donor.get(cell_url).get_data(as_text=True)
        matrix = donor.get(f"/requirements/matrix/{world.grant_a}").get_data(as_text=True)
        status = api_for("Donor").get(f"/api/v1/requirements/status/{world.grant_a}").json["result"]
        grant = session.get(Grant, world.grant_a)
        period = session.get(ReportingPeriod, world.period_a1)
        exported = list(DATASETS["requirement_status"].rows(session, grant, period))
    for page in (cell, matrix):
        assert HELD_BY_THE_ORGANISATION in page
        assert "verified minutes" not in page and "item(s)" not in page and STAFF_TITLE not in page
    assert 'id="cell-status">met<' in cell  # the organisation's records say met
    first = next(row for row in status if row["period_id"] == world.period_a1)
    assert first["status"] == "met" and first["explanation"] == HELD_BY_THE_ORGANISATION
    assert first["evidence_ids"] == [] and all("item(s)" not in r["explanation"] for r in first["rules"])
    assert exported[0]["explanation"] == HELD_BY_THE_ORGANISATION  # exports can reach donors
    rows = requirement_status(session, world.grant_a, world.period_a1, date(2026, 8, 1), SHARED_WITH_DONORS)
    assert rows[0].status == "met" and rows[0].explanation == HELD_BY_THE_ORGANISATION


def test_a_donor_counts_only_what_is_shared_with_them_where_that_decides_the_status(
    app, world, minutes_requirement, session
):
    from grants.compliance.services import requirement_status
    from grants.evidence.models import SHARED_WITH_DONORS

    shared = _verified(app, session, world, "Shared minutes", "shared_with_donors", minutes_requirement)
    _verified(app, session, world, STAFF_TITLE, "staff_only", minutes_requirement)
    today = date(2026, 8, 1)
    staff = requirement_status(session, world.grant_a, world.period_a1, today)[0]
    donor = requirement_status(session, world.grant_a, world.period_a1, today, SHARED_WITH_DONORS)[0]
    assert staff.status == donor.status == "met"
    assert staff.explanation.startswith("2 verified minutes item(s)")
    assert donor.explanation.startswith("1 verified minutes item(s)")
    assert donor.evidence_ids == (shared.id,)


def test_the_api_refuses_a_self_approval_and_takes_a_second_members(app, world, restricted, api_for, session):
    _second_program_member(app, session, world)
    program = api_for("Program")
    asked = program.post(
        f"/api/v1/evidence/{restricted}/sensitivity-request", json={"to_level": "staff_only", "reason": "Audit done"}
    )
    assert asked.status_code == 201, asked.get_data(as_text=True)
    own = program.post(
        f"/api/v1/evidence/{restricted}/sensitivity-request/{asked.json['id']}", json={"decision": "approve"}
    )
    assert own.status_code == 422 and "second person" in own.json["message"]["decided_by"][0]
    from tests.conftest import ApiClient

    client = app.test_client()
    login = {"username": "program2", "password": PASSWORD, "provider": "db"}
    token = client.post("/api/v1/security/login", json=login).json["access_token"]
    decided = ApiClient(client, token).post(
        f"/api/v1/evidence/{restricted}/sensitivity-request/{asked.json['id']}", json={"decision": "approve"}
    )
    assert decided.status_code == 200 and decided.json["result"]["sensitivity"] == "staff_only"
