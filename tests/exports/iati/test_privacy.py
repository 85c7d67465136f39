"""What an IATI file, published to the whole world, leaves out: anything not meant for donors, and people."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from lxml import etree

from tests.exports.iati.conftest import PUBLISHER


@pytest.fixture
def store(app):
    from core.storage import store_for

    return store_for(app.config)


def _pdf(text: str) -> bytes:
    from grants.evidence.demo import tiny_pdf

    return tiny_pdf(text)


@pytest.fixture
def grant_with_evidence(session, world, store):
    """Grant A with one item of evidence at each sensitivity, verified, plus an unverified public one."""
    from flask_appbuilder.security.sqla.models import User

    from grants.evidence import services as evidence
    from grants.models import Grant
    from grants.services import update_grant

    grant = session.get(Grant, world.grant_a)
    update_grant(session, grant, countries="LC")
    program = session.get(User, world.users["Program"])
    admin = session.get(User, world.users["Admin"])
    made = {}
    for level in ("public", "internal", "confidential"):
        item = evidence.create_evidence(
            session,
            store,
            grant=grant,
            title=f"{level.capitalize()} outreach report",
            kind="report",
            evidence_date=date(2026, 3, 1),
            sensitivity=level,
            uploaded_by=program,
            content=_pdf(f"{level} report"),
            filename=f"{level}.pdf",
        )
        evidence.verify_evidence(session, item, admin, "verified", "Checked by Ada")
        made[level] = item
    made["unverified"] = evidence.create_evidence(
        session,
        store,
        grant=grant,
        title="Public but not yet verified",
        kind="photo",
        evidence_date=date(2026, 3, 2),
        sensitivity="public",
        uploaded_by=program,
        url="https://example.org/not-yet-verified",
    )
    session.commit()
    return grant, made


def _activity(session, grant):
    from exports.iati.services import make_file

    made = make_file(session, [grant], PUBLISHER, base_url="https://grants.example.org", today=date(2026, 12, 1))
    return made.data.decode(), etree.fromstring(made.data).find("iati-activity")


def test_a_grant_with_restricted_and_staff_only_evidence_links_neither(session, grant_with_evidence):
    grant, made = grant_with_evidence
    text, activity = _activity(session, grant)
    links = activity.findall("document-link")
    assert [link.get("url") for link in links] == [f"https://grants.example.org/evidence/download/{made['public'].id}"]
    assert links[0].findtext("title/narrative") == "Public outreach report"
    for hidden in ("internal", "confidential", "unverified"):
        assert made[hidden].title not in text
        assert f'/evidence/download/{made[hidden].id}"' not in text
    assert "not-yet-verified" not in text


def test_no_name_of_a_person_reaches_the_file(session, world, grant_with_evidence):
    from flask_appbuilder.security.sqla.models import User

    grant, _ = grant_with_evidence
    text, _ = _activity(session, grant)
    for user_id in world.users.values():
        user = session.get(User, user_id)
        for name in (user.username, user.first_name, user.last_name, user.email):
            if name:
                assert f">{name}<" not in text and f"{name} " not in text
    assert "Checked by Ada" not in text  # the verification comment


def test_an_item_shared_with_donors_that_looks_like_a_list_of_people_is_not_linked(session, grant_with_evidence):
    grant, made = grant_with_evidence
    made["public"].looks_like_people_list = True
    session.flush()
    _, activity = _activity(session, grant)
    assert activity.findall("document-link") == []


def test_breakdowns_that_could_single_people_out_are_left_out_but_the_total_stays(session, world):
    from grants.models import Grant, ReportingPeriod
    from indicators import services as indicators

    grant = session.get(Grant, world.grant_a)
    period = session.get(ReportingPeriod, world.period_a1)
    indicators.ensure_standard_dimensions(session)
    indicator = indicators.create_indicator(
        session, grant, code="HR-1", name="Sex workers trained", unit="number", dimensions=["gender", "country"]
    )
    indicators.set_target(
        session,
        indicator,
        period,
        value="40",
        disaggregation={
            "gender=F": "36",
            "gender=M": "2",
            "gender=TG": "2",
            "gender=X": "0",
            "country=LC": "40",
            "country=GD": "0",
        },
    )
    session.commit()
    _, activity = _activity(session, grant)
    targets = activity.findall(".//indicator/period/target")
    assert targets[0].get("value") == "40" and targets[0].find("dimension") is None
    dimensions = {(t.find("dimension").get("name"), t.find("dimension").get("value")) for t in targets[1:]}
    assert dimensions == {
        ("Country", "Grenada"),
        ("Country", "Saint Lucia"),
    }  # no sex/gender parts: 2 and 2 are too few
    assert Decimal(targets[0].get("value")) == Decimal(40)


def test_only_verified_results_are_published_never_drafts(session, world):
    import datetime as dt

    from flask_appbuilder.security.sqla.models import User

    from core import clock
    from grants.models import Grant, ReportingPeriod
    from indicators import services as indicators

    grant = session.get(Grant, world.grant_a)
    period = session.get(ReportingPeriod, world.period_a1)
    indicator = indicators.create_indicator(session, grant, code="ORG-1", name="Groups formed", unit="number")
    with clock.frozen_at(dt.datetime(2026, 7, 2, tzinfo=dt.UTC)):
        result = indicators.record_result(
            session, indicator, period, user=session.get(User, world.users["Program"]), value="7", status="submitted"
        )
        session.commit()
        _, activity = _activity(session, grant)
        assert activity.find(".//indicator/period/actual") is None
        indicators.verify_result(session, result, session.get(User, world.users["Admin"]))
        session.commit()
        _, activity = _activity(session, grant)
    assert activity.find(".//indicator/period/actual").get("value") == "7"
