"""Verification: submitted, then verified or rejected (with a reason) by someone other than the uploader."""

import pytest

from core.errors import DomainValidationError
from grants.evidence import services
from tests.grants.evidence.helpers import add_evidence, user


def test_the_uploader_cannot_verify_their_own_evidence(app, world, session):
    item = add_evidence(app, session, world, "Program")
    with pytest.raises(DomainValidationError) as caught:
        services.verify_evidence(session, item, user(app, session, world, "Program"), "verified")
    assert "someone other than" in caught.value.errors["reviewer"][0]
    assert item.status.value == "submitted"


def test_a_colleague_verifies_and_it_is_recorded(app, world, session):
    item = add_evidence(app, session, world, "Program")
    finance = user(app, session, world, "Finance")
    services.verify_evidence(session, item, finance, "verified", "Matches the secretariat copy")
    assert item.status.value == "verified" and item.verified_by_id == finance.id and item.verified_at


def test_a_rejection_needs_a_reason(app, world, session):
    item = add_evidence(app, session, world, "Program")
    with pytest.raises(DomainValidationError) as caught:
        services.verify_evidence(session, item, user(app, session, world, "Finance"), "rejected", "  ")
    assert "comment" in caught.value.errors


def test_the_database_rule_holds_even_when_a_path_forgets_the_service(app, world, session):
    item = add_evidence(app, session, world, "Program")
    session.commit()
    uploader = item.uploaded_by_id
    item.status = services.VerificationStatus.verified
    item.verified_by_id = uploader
    with pytest.raises(DomainValidationError) as caught:
        session.flush()
    assert "someone other than" in caught.value.errors["status"][0]
    session.rollback()


def test_verification_through_the_page(app, world, session, client_for):
    item = add_evidence(app, session, world, "Program")
    session.commit()
    own = client_for("Program").post(
        f"/evidence/{item.id}/verify", data={"decision": "verified"}, follow_redirects=True
    )
    assert "someone other than" in own.get_data(as_text=True)
    client_for("Finance").post(f"/evidence/{item.id}/verify", data={"decision": "rejected", "comment": "Unsigned"})
    session.rollback()
    assert item.status.value == "rejected" and item.verification_comment == "Unsigned"


def test_verification_through_the_api(app, world, session, api_for):
    item = add_evidence(app, session, world, "Program")
    session.commit()
    own = api_for("Program").post(f"/api/v1/evidence/{item.id}/verify", json={"decision": "verified"})
    assert own.status_code == 422
    ok = api_for("Finance").post(f"/api/v1/evidence/{item.id}/verify", json={"decision": "verified"})
    assert ok.status_code == 200 and ok.json["result"]["status"] == "verified"
