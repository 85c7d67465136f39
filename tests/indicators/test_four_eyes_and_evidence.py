"""The grant's four-eyes policy, evidence attached from the result form, and results only for started periods."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select

from core import clock
from core.errors import DomainValidationError
from grants import services as grant_services
from grants.evidence.models import Evidence, EvidenceLink
from grants.models import Grant, MemberRole, ReportingPeriod
from indicators import services
from indicators.models import Indicator, Result, ResultStatus
from tests.grants.evidence.helpers import PDF, add_evidence

MARCH = datetime(2026, 3, 1, 12, tzinfo=UTC)  # S1 has started, S2 (from 1 July) has not


def _count(app, model):
    from core.extensions import db

    with app.app_context():
        db.session.rollback()
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def second_program(app, world):
    """Another program user, member of GA-1 with the role program."""
    from app.bootstrap import create_user
    from core.extensions import db

    with app.app_context():
        create_user(app, "program2", "program2@test.example.org", "Program", "correct horse battery staple")
        colleague = app.appbuilder.sm.find_user(username="program2")
        grant_services.add_member(db.session, db.session.get(Grant, world.grant_a), colleague, MemberRole.program)
        db.session.commit()
        return colleague.id


def _submitted(session, world, ind):
    return services.record_result(
        session,
        session.get(Indicator, ind.trained),
        session.get(ReportingPeriod, world.period_a1),
        user=session.get(User, world.users["Program"]),
        value=12,
        status="submitted",
    )


# ---------------------------------------------------------------- four eyes, chosen by the grant


def test_another_member_with_a_verifying_role_verifies_and_the_author_never_does(app, world, ind, second_program):
    from core.extensions import db

    with app.app_context():
        session = db.session
        result = _submitted(session, world, ind)
        with pytest.raises(DomainValidationError) as caught:
            services.verify_result(session, result, session.get(User, world.users["Program"]))
        assert "cannot verify it" in caught.value.errors["verified_by"][0]
        services.verify_result(session, result, session.get(User, second_program))
        session.commit()
        assert result.status == ResultStatus.verified and result.verified_by_id == second_program


def test_a_member_whose_role_the_grant_does_not_name_is_refused_with_the_reason(app, world, ind, second_program):
    from core.extensions import db

    with app.app_context():
        session = db.session
        grant = session.get(Grant, world.grant_a)
        grant_services.set_verifying_roles(session, grant, ["lead", "finance"])
        result = _submitted(session, world, ind)
        with pytest.raises(DomainValidationError) as caught:
            services.verify_result(session, result, session.get(User, second_program))
        reason = caught.value.errors["verified_by"][0]
        assert "grant lead or finance" in reason and "your role on this grant is program" in reason
        assert result.status == ResultStatus.submitted


def test_the_grant_chooses_its_verifying_roles_on_a_page_and_nonsense_is_refused(client_for, app, world, ind):
    program = client_for("Program")
    page = program.get(f"/indicator-results/policy/{world.grant_a}").get_data(as_text=True)
    assert 'name="roles" value="program" checked' in page and 'value="donor"' not in page
    program.post(f"/indicator-results/policy/{world.grant_a}", data={"roles": ["lead", "program"]})
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Grant, world.grant_a).verifying_roles == ["lead", "program"]
    refused = program.post(f"/indicator-results/policy/{world.grant_a}", data={}, follow_redirects=True)
    assert "choose at least one member role" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Grant, world.grant_a).verifying_roles == ["lead", "program"]
    assert program.get(f"/indicator-results/policy/{world.grant_b}").status_code == 404


def test_the_grant_api_refuses_a_read_only_role_as_verifier(app, world):
    from core.extensions import db

    with app.app_context():
        grant = db.session.get(Grant, world.grant_a)
        with pytest.raises(DomainValidationError) as caught:
            grant_services.set_verifying_roles(db.session, grant, ["program", "donor"])
        assert "donor cannot verify results" in caught.value.errors["verifier_roles"][0]


# ---------------------------------------------------------------- results only for periods that have started


def test_a_result_for_a_period_not_yet_started_is_refused_by_every_path(app, world, ind, program_client, api_for):
    from core.extensions import db

    with clock.frozen_at(MARCH):
        with app.app_context():
            with pytest.raises(DomainValidationError) as caught:
                services.record_result(
                    db.session,
                    db.session.get(Indicator, ind.trained),
                    db.session.get(ReportingPeriod, ind.period_a2),
                    user=db.session.get(User, world.users["Program"]),
                    value=5,
                )
            db.session.rollback()
        assert "S2 starts on 1 Jul 2026" in caught.value.errors["period"][0]
        url = f"/indicator-results/record?indicator={ind.trained}&period={ind.period_a2}"
        form = program_client.get(url).get_data(as_text=True)
        assert 'id="not-started"' in form
        posted = program_client.post(url, data={"value": "5", "comment": "too early"})
        assert posted.status_code == 422
        assert "results can be entered once it has started" in posted.get_data(as_text=True)
        assert "too early" in posted.get_data(as_text=True)  # what was typed is kept
        api = api_for("Program").post(
            "/api/v1/indicator_results/record", json={"indicator": ind.trained, "period": ind.period_a2, "value": 5}
        )
        assert api.status_code == 422 and "has started" in api.json["message"]["period"][0]
        generic = api_for("Program").post(
            "/api/v1/indicator_results/", json={"indicator": ind.trained, "period": ind.period_a2, "value": 5}
        )
        assert generic.status_code == 422 and "has started" in generic.json["message"]["period"][0]
        chooser = program_client.get(f"/indicator-results/record?indicator={ind.trained}").get_data(as_text=True)
        assert "disabled>GA-1 · S2 (starts 1 Jul 2026)" in chooser
    assert _count(app, Result) == 0


# ---------------------------------------------------------------- evidence from the result form


def test_evidence_uploaded_from_the_result_form_is_linked_and_shown_on_the_result(app, world, ind, program_client):
    url = f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}"
    response = program_client.post(
        url,
        data={
            "value": "12",
            "status": "submitted",
            "evidence_title": "Training attendance counts",
            "evidence_kind": "attendance_summary",
            "evidence_date": "2026-05-10",
            "evidence_sensitivity": "staff_only",
            "evidence_file": (io.BytesIO(PDF), "training.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    from core.extensions import db

    with app.app_context():
        result = db.session.scalar(select(Result))
        link = db.session.scalar(select(EvidenceLink))
        assert (link.target_kind, link.target_id) == ("indicator_result", result.id)
        assert db.session.get(Evidence, link.evidence_id).title == "Training attendance counts"
        result_id = result.id
    page = program_client.get(f"/indicator-results/show/{result_id}").get_data(as_text=True)
    assert "Training attendance counts" in page and "training.pdf" in page and "awaiting verification" in page


def test_a_refused_upload_saves_neither_the_result_nor_the_evidence(app, world, ind, program_client):
    url = f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}"
    response = program_client.post(
        url,
        data={
            "value": "12",
            "evidence_title": "",  # a title is required
            "evidence_date": "2026-05-10",
            "evidence_file": (io.BytesIO(PDF), "training.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "Title: is required" in response.get_data(as_text=True)
    assert _count(app, Result) == 0 and _count(app, Evidence) == 0


def test_only_evidence_of_the_same_grant_can_be_attached_from_the_result_form(app, session, world, ind, client_for):
    own = add_evidence(app, session, world, title="GA minutes")
    other = add_evidence(app, session, world, "Admin", grant=world.grant_b, title="GB secret minutes")
    session.commit()
    admin = client_for("Admin")  # sees both grants, and still only GA-1's evidence is offered
    url = f"/indicator-results/record?indicator={ind.trained}&period={world.period_a1}"
    form = admin.get(url).get_data(as_text=True)
    assert "GA minutes" in form and "GB secret minutes" not in form
    refused = admin.post(url, data={"value": "3", "evidence": [str(other.id)]})
    assert refused.status_code == 422 and "choose evidence of this grant" in refused.get_data(as_text=True)
    assert _count(app, Result) == 0
    admin.post(url, data={"value": "3", "evidence": [str(own.id)]})
    from core.extensions import db

    with app.app_context():
        link = db.session.scalar(select(EvidenceLink))
        assert link.evidence_id == own.id and link.target_kind == "indicator_result"


def test_the_grant_api_sets_who_verifies_and_refuses_a_role_that_cannot(api_for, app, world):
    api = api_for("Finance")
    refused = api.put(f"/api/v1/grants/{world.grant_a}", json={"verifier_roles": "program,auditor"})
    assert refused.status_code == 422 and "auditor cannot verify" in refused.json["message"]["verifier_roles"][0]
    assert api.put(f"/api/v1/grants/{world.grant_a}", json={"verifier_roles": "lead,finance"}).status_code == 200
    from core.extensions import db

    with app.app_context():
        assert db.session.get(Grant, world.grant_a).verifying_roles == ["lead", "finance"]
