"""A donor reads the same status everywhere, and never a sentence about evidence they may not see.

A requirement met only by staff-only evidence is "met" for everyone (the organisation's records
decide the status), but a donor reads "Supported by records held by the organisation." wherever
the requirement is explained: the matrix, a cell, the requirement's page, the grant page, their
start page, the API and the built-in compliance workbook; nothing of the hidden item's number,
kind or title.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from tests.grants.evidence.helpers import add_evidence, user

HIDDEN_TITLE = "Staff-only coordination minutes"
DAY = datetime(2026, 6, 15, 12, tzinfo=UTC)  # inside S1: the grant page speaks of S1


@pytest.fixture
def met_by_hidden_evidence(app, world, session):
    """R1 (minutes) met only by a verified staff-only item; R2 (reports) met by nothing at all."""
    from grants.compliance import services as compliance
    from grants.evidence import services

    met = compliance.create_requirement(
        session,
        world.grant_a,
        code="R1",
        title="Minutes of every meeting",
        category="community_inclusion",
        rules=[{"rule": "evidence_verified", "params": {"kind": "minutes"}}],
    )
    compliance.create_requirement(
        session,
        world.grant_a,
        code="R2",
        title="A progress report",
        category="community_inclusion",
        rules=[{"rule": "evidence_verified", "params": {"kind": "report"}}],
    )
    item = add_evidence(app, session, world, title=HIDDEN_TITLE, sensitivity="staff_only", day=date(2026, 3, 1))
    services.link_evidence(session, item, "requirement", met.id)
    services.verify_evidence(session, item, user(app, session, world, "Finance"), "verified")
    session.commit()
    return met


def _no_trace_of_the_hidden_item(text: str) -> None:
    assert HIDDEN_TITLE not in text
    found = re.findall(r".{80}(?:\d+ verified minutes|minutes item).{40}", text, re.S)
    assert not found, found


def _compliance_panel(page: str) -> str:
    """The grant page's compliance panel: each status of this period and how many requirements are in it."""
    found = re.search(r'data-panel="Compliance".*?<table.*?</table>', page, re.S)
    assert found, "the grant page has a compliance panel"
    return re.sub(r"\s+", " ", found.group(0))


def test_the_donor_reads_the_neutral_sentence_on_every_page_and_the_same_status(
    world, met_by_hidden_evidence, client_for, api_for
):
    from core import clock
    from grants.compliance.rules import HELD_BY_THE_ORGANISATION

    requirement = met_by_hidden_evidence
    with clock.frozen_at(DAY):
        donor = client_for("Donor")
        pages = {
            "matrix": donor.get(f"/requirements/matrix/{world.grant_a}"),
            "cell": donor.get(f"/requirements/cell/{requirement.id}/{world.period_a1}"),
            "requirement": donor.get(f"/requirements/show/{requirement.id}"),
            "grant": donor.get(f"/grants/show/{world.grant_a}"),
        }
        staff_grant = client_for("Program").get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
        staff_requirement = client_for("Program").get(f"/requirements/show/{requirement.id}").get_data(as_text=True)
        status = api_for("Donor").get(f"/api/v1/requirements/status/{world.grant_a}").json["result"]
    texts = {}
    for name, response in pages.items():
        assert response.status_code == 200, name
        texts[name] = response.get_data(as_text=True)
        _no_trace_of_the_hidden_item(texts[name])
    for name in ("matrix", "cell", "requirement"):
        assert HELD_BY_THE_ORGANISATION in texts[name], name
    # Staff read the evidence behind it; the donor does not, yet both read the same status.
    assert "1 verified minutes item(s)" in staff_requirement
    panel = _compliance_panel(texts["grant"])
    assert "<th>S1: met</th><td>1</td>" in panel and panel == _compliance_panel(staff_grant)
    rows = [row for row in status if row["requirement_id"] == requirement.id and row["period_id"] == world.period_a1]
    assert [row["status"] for row in rows] == ["met"]
    assert rows[0]["explanation"] == HELD_BY_THE_ORGANISATION and rows[0]["evidence_ids"] == []
    other = [row for row in status if row["requirement_code"] == "R2" and row["period_id"] == world.period_a1]
    assert other and other[0]["status"] != "met"  # nothing hidden there: its own sentence, its own status
    assert other[0]["explanation"] != HELD_BY_THE_ORGANISATION


def test_the_compliance_dataset_every_export_writes_reads_neutrally_whoever_makes_it(
    app, world, met_by_hidden_evidence, session
):
    from core import clock
    from core.datasets import DATASETS
    from grants.compliance.rules import HELD_BY_THE_ORGANISATION
    from grants.models import Grant, ReportingPeriod

    with clock.frozen_at(DAY):
        rows = list(
            DATASETS["requirement_status"].rows(
                session, session.get(Grant, world.grant_a), session.get(ReportingPeriod, world.period_a1)
            )
        )
    mine = [row for row in rows if row["code"] == "R1"]
    assert [row["status"] for row in mine] == ["met"]
    assert mine[0]["explanation"] == HELD_BY_THE_ORGANISATION
    for row in rows:
        _no_trace_of_the_hidden_item(" ".join(str(v) for v in row.values()))
