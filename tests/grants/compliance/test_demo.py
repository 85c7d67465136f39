"""The demo's compliance story: grant 1's requirements, the RCM meeting without a sex worker, one confidential item."""

from datetime import date

import pytest
from sqlalchemy import select

from tests.conftest import _empty_database


@pytest.fixture
def demo(app):
    from app.demo import load_demo
    from core.audit import Actor, acting_as
    from core.extensions import db

    _empty_database(app)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        load_demo(app)
        session = db.session
        from grants.models import Grant

        grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        yield session, grant
        session.rollback()
    _empty_database(app)


def test_the_meeting_without_a_sex_worker_puts_the_representation_requirement_at_risk(demo):
    from grants.compliance.services import requirement_status

    session, grant = demo
    rows = {
        (r.requirement_code, r.period_label): r for r in requirement_status(session, grant.id, today=date(2026, 11, 29))
    }
    assert {code for code, _ in rows} == {"R1", "R2", "R3", "R4", "R5", "R6"}
    assert rows[("R1", "S1")].status == "met"
    assert rows[("R1", "S2")].status == "at_risk" and "15 Oct 2026: 0" in rows[("R1", "S2")].explanation
    assert rows[("R2", "S1")].status == "met" and rows[("R6", "S1")].status == "met"
    assert rows[("R3", "S1")].status == "met"


def test_demo_has_verified_and_unverified_evidence_and_one_confidential_item_no_donor_sees(demo):
    from core.storage import store_for
    from grants.evidence.models import Evidence
    from grants.evidence.services import evidence_register, visible_evidence

    session, grant = demo
    items = list(session.scalars(select(Evidence).where(Evidence.grant_id == grant.id)))
    statuses = {item.status.value for item in items}
    assert {"verified", "submitted"} <= statuses
    confidential = [item for item in items if item.sensitivity.value == "restricted"]
    assert len(confidential) == 1
    from flask import current_app

    store = store_for(current_app.config)
    assert all(store.read(item.sha256) for item in items if item.sha256)  # real files, checksums intact
    donor = current_app.appbuilder.sm.find_user(username="donor.gf")
    donor = session.get(type(donor), donor.id)
    seen = set(session.scalars(visible_evidence(donor).with_only_columns(Evidence.id)))
    shared = {item.id for item in items if item.sensitivity.value == "shared_with_donors"}
    assert confidential[0].id not in seen and seen == shared  # donors see only what is shared with them
    assert confidential[0].id not in {row.id for row in evidence_register(session, grant.id)}
