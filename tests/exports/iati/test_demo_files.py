"""The demo grants become IATI activity files that the IATI 2.03 schemas accept, with figures to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lxml import etree

from tests.app.demo_world import DEMO_NOW
from tests.exports.iati.conftest import FIXTURES, PUBLISHER

DEMO_TODAY = DEMO_NOW.date()


@pytest.fixture
def session(loaded_demo):
    from core.extensions import db

    with loaded_demo.app.app_context():
        yield db.session
        db.session.rollback()


def _grants(session):
    from sqlalchemy import select

    from grants.models import Grant

    return list(session.scalars(select(Grant).order_by(Grant.reference)))


def _file(session, grants):
    from exports.iati.services import make_file

    return make_file(session, grants, PUBLISHER, base_url="https://grants.example.org", today=DEMO_TODAY)


def test_every_demo_grant_makes_a_file_the_iati_schema_accepts(session):
    from exports.iati.validation import problems

    grants = _grants(session)
    assert len(grants) == 2
    made = _file(session, grants)
    assert problems(made.data) == []
    document = etree.fromstring(made.data)
    assert document.get("version") == "2.03"
    identifiers = [a.findtext("iati-identifier") for a in document.findall("iati-activity")]
    assert identifiers == [f"LC-CRO-98765-{g.reference}" for g in grants]


def _validate_with_the_fixture_schemas(data: bytes) -> None:
    """An independent check: lxml and the copy of IATI's schemas in tests/fixtures, not the package's code."""
    schema = etree.XMLSchema(etree.parse(str(FIXTURES / "iati-activities-schema.xsd")))
    schema.assertValid(etree.fromstring(data))


def test_the_demo_file_is_valid_against_the_schemas_kept_with_the_tests_too(session):
    _validate_with_the_fixture_schemas(_file(session, _grants(session)).data)


def test_budgets_and_spending_equal_budget_vs_actual_to_the_cent(session):
    from sqlalchemy import select

    from budgets.report import budget_vs_actual
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
    activity = etree.fromstring(_file(session, [grant]).data).find("iati-activity")
    budgets = {b.find("period-start").get("iso-date"): b.findtext("value") for b in activity.findall("budget")}
    spent = {
        t.findtext("description/narrative"): t.findtext("value")
        for t in activity.findall("transaction")
        if t.find("transaction-type").get("code") == "4"
    }
    checked = 0
    for period in grant.periods:
        report = budget_vs_actual(session, grant.id, period.id, by="line")
        total = report.grand_total or report.total
        assert Decimal(budgets[period.start_date.isoformat()]) == total.planned
        assert budgets[period.start_date.isoformat()] == f"{total.planned:.2f}"
        if total.actual and period.start_date <= DEMO_TODAY:
            line = next(v for k, v in spent.items() if k.startswith(f"Spending in {period.label} "))
            assert line == f"{total.actual:.2f}"
            checked += 1
    assert checked == 2  # S1 and S2 2026 have spending in the demo
    whole = budget_vs_actual(session, grant.id)
    assert sum(Decimal(v) for v in spent.values()) == (whole.grand_total or whole.total).actual
    assert activity.get("default-currency") == "USD"
    for value in activity.iter("value"):
        assert value.get("value-date")


def test_the_demo_file_links_evidence_shared_with_donors_only_never_staff_only_or_restricted(session):
    from sqlalchemy import select

    from grants.evidence.models import Evidence, Sensitivity

    data = _file(session, _grants(session)).data
    text = data.decode()
    hidden = list(session.scalars(select(Evidence).where(Evidence.sensitivity != Sensitivity("public"))))
    assert any(e.sensitivity == Sensitivity("confidential") for e in hidden)  # restricted
    assert any(e.sensitivity == Sensitivity("internal") for e in hidden)  # staff only
    for evidence in hidden:
        assert evidence.title not in text
        assert f"/evidence/download/{evidence.id}<" not in text and f'/evidence/download/{evidence.id}"' not in text
        if evidence.url:
            assert evidence.url not in text
    links = etree.fromstring(data).findall(".//document-link")
    assert links, "the demo's public, verified minutes and policy are linked"
    for user in ("program", "admin", "Petra", "Alexander", "Ada"):
        assert user not in text


def test_results_carry_baseline_targets_actuals_and_their_breakdowns(session):
    activity = etree.fromstring(_file(session, _grants(session)).data)
    indicator = next(i for i in activity.iter("indicator") if i.find("reference").get("code") == "KP-1c")
    assert indicator.get("measure") == "2"  # a percentage
    assert indicator.find("baseline").get("value") == "38"
    first = indicator.find("period")
    assert [t.get("value") for t in first.findall("target")][0] == "50"
    countries = {
        a.find("dimension").get("value"): a.get("value")
        for a in first.findall("actual")
        if a.find("dimension") is not None
    }
    assert countries == {"Grenada": "45", "Saint Lucia": "60"}


def test_a_file_with_its_elements_out_of_order_fails_and_names_the_grant_and_element(session):
    from core.errors import DomainValidationError
    from exports.iati import validation

    grants = _grants(session)
    data = _file(session, grants).data
    document = etree.fromstring(data)
    second = document.findall("iati-activity")[1]  # RCM-HIV-2026-SW
    budget = second.find("budget")
    second.remove(budget)
    second.insert(0, budget)  # a budget before the iati-identifier
    broken = etree.tostring(document, xml_declaration=True, encoding="UTF-8")
    found = validation.problems(broken, [g.reference for g in grants])
    assert found and found[0].grant == "RCM-HIV-2026-SW"
    assert found[0].element.startswith("budget")
    with pytest.raises(DomainValidationError) as refused:
        validation.check(broken, [g.reference for g in grants])
    message = refused.value.errors["iati"][0]
    assert "RCM-HIV-2026-SW" in message and "<budget" in message
    with pytest.raises(etree.DocumentInvalid):
        _validate_with_the_fixture_schemas(broken)


def test_the_file_is_refused_before_download_when_the_builder_makes_it_invalid(session, monkeypatch):
    from core.errors import DomainValidationError
    from exports.iati import builder

    def wrong_order(self, grant, activity):
        activity.insert(0, etree.Element("activity-date", type="1", **{"iso-date": grant.start_date.isoformat()}))

    monkeypatch.setattr(builder.ActivityBuilder, "_dates", wrong_order)
    with pytest.raises(DomainValidationError) as refused:
        _file(session, _grants(session))
    assert "activity-date" in refused.value.errors["iati"][0]
