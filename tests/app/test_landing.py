"""Each role lands on what needs them: finance, program, donor, auditor and admin start pages."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from tests.app.demo_world import visible_text


def section(html: str, key: str) -> str | None:
    """The visible text of one start-page section (``budgets.burn`` → id landing-budgets-burn), None if absent."""
    ident = "landing-" + key.replace(".", "-").replace("_", "-")
    found = re.search(rf'(?s)<section[^>]*id="{re.escape(ident)}".*?</section>', html)
    return visible_text(found.group(0)) if found else None


def sections(html: str) -> list[str]:
    return re.findall(r'<section[^>]*id="landing-([a-z-]+)"', html)


def start_page(client) -> str:
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


# ---------------------------------------------------------------- the demo, as each of its users


def test_finance_sees_burn_lines_over_threshold_spending_to_import_and_her_overdue_audit(loaded_demo):
    html = start_page(loaded_demo.client("finance"))
    burn = section(html, "budgets.burn")
    assert burn is not None
    assert re.search(r"RCM-HIV-2026-SW · USD [\d,]+\.\d\d spent of USD 150,000\.00 \(\d+(\.\d)?%\)", burn), burn
    assert "EUR 40,000.00" in burn and "of the grant's time has passed" in burn
    over = section(html, "budgets.over_threshold")
    assert "TRC-01" in over and "over plan" in over and "needs the funder's approval" in over
    assert "switched off" in section(html, "budgets.awaiting_import")
    mine = section(html, "grants.my_deadlines")
    assert "Annual external audit" in mine and "10 days overdue" in mine
    assert 'class="list-group-item list-group-item-danger"' in html
    # Not the other roles' boxes.
    assert not {"grants-recent-changes", "exports-published", "grants-setup-gaps"} & set(sections(html))


def test_program_lead_sees_what_needs_her_now(loaded_demo):
    html = start_page(loaded_demo.client("program"))
    results = section(html, "indicators.results_to_enter")
    assert "S2" in results and "CSS-1" in results and "draft" in results
    evidence = section(html, "grants.evidence_to_verify")
    assert "Minutes: RCM meeting on the semester work plan" in evidence and "awaiting verification" in evidence
    assert "Periods to close" in section(html, "grants.periods_to_close")
    assert "Report for S2" in section(html, "grants.my_deadlines")
    assert "budgets-burn" not in sections(html)


def test_donor_sees_progress_compliance_and_the_published_spreadsheet(loaded_demo):
    html = start_page(loaded_demo.client("donor.gf"))
    assert sections(html) == ["indicators-progress", "grants-compliance", "exports-published"]
    progress = section(html, "indicators.progress")
    assert "RCM-HIV-2026-SW · Latest reported period S2" in progress
    compliance = section(html, "grants.compliance")
    assert "RCM-HIV-2026-SW · S2:" in compliance and "6 requirements" in compliance
    published = section(html, "exports.published")
    assert "RCM-HIV-2026-SW_S1_Semester_progress_update.xlsx" in published
    assert "published 14 Aug 2026" in published
    assert "CNF-CORE-2026" not in visible_text(html)


def test_auditor_sees_recent_changes_in_words(loaded_demo):
    html = start_page(loaded_demo.client("auditor"))
    changes = section(html, "grants.recent_changes")
    assert "added the indicator result" in changes and "from the command line" in changes
    assert "indicator_results" not in changes and "insert" not in changes
    assert re.search(r"\d{1,2} [A-Z][a-z]{2,3} 2026, \d\d:\d\d", changes)


def test_admin_sees_setup_gaps(loaded_demo):
    html = start_page(loaded_demo.client("admin"))
    gaps = section(html, "grants.setup_gaps")
    assert "CNF-CORE-2026 · No requirements yet" in gaps
    assert "E-mail is not configured" in gaps
    # Funders that only lend their indicator codes need no cost categories.
    assert "PEPFAR" not in gaps


def test_every_link_on_every_start_page_can_be_followed(loaded_demo):
    for username in ("admin", "finance", "program", "donor.gf", "auditor"):
        client = loaded_demo.client(username)
        html = start_page(client)
        body = html.split('id="demo-banner"', 1)[1]  # the links of the page, not the menu's
        for href in sorted(set(re.findall(r'href="(/[^"#]*)"', body))):
            if href.startswith(("/static", "/logout")):
                continue
            status = client.get(href.replace("&amp;", "&")).status_code
            assert status == 200, f"{username}: {href} answered {status}"


# ---------------------------------------------------------------- what a donor must never see


def test_donor_start_page_shows_no_confidential_count(loaded_demo):
    """Adding a confidential item (and verifying nothing) changes nothing on the donor's page, not even a count."""
    from core.audit import Actor, acting_as
    from core.extensions import db
    from core.storage import FileStore
    from grants.evidence import services as evidence
    from grants.evidence.models import Sensitivity
    from grants.models import Grant

    donor = loaded_demo.client("donor.gf")
    before = visible_text(start_page(donor))
    assert "confidential" not in before.lower() and "incident" not in before.lower()
    app = loaded_demo.app
    with app.app_context(), acting_as(Actor(None, "test", "system")):
        grant = db.session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        program = app.appbuilder.sm.find_user(username="program")
        evidence.create_evidence(
            db.session,
            FileStore(app.config["STORAGE_ROOT"]),
            grant=grant,
            title="Second incident log (confidential)",
            kind="other",
            evidence_date=date(2026, 11, 20),
            sensitivity=Sensitivity("confidential"),  # the most protected level, whatever its name
            uploaded_by=program,
            url="https://example.org/never-shown",
        )
        db.session.commit()
    after = visible_text(start_page(donor))
    assert after == before
    # The program lead does see it waiting.
    assert "Second incident log" in visible_text(start_page(loaded_demo.client("program")))


# ---------------------------------------------------------------- the small world of the test fixtures


def test_program_lead_is_asked_to_close_an_ended_period(program_client, world):
    html = start_page(program_client)
    close = section(html, "grants.periods_to_close")
    assert "GA-1 · Close S1 and send the report" in close
    assert "ended 30 Jun 2026" in close
    assert f'href="/closing/{world.period_a1}"' in html  # straight to the period's checklist
    assert "GB-1" not in visible_text(html)


def test_auditor_recent_changes_are_limited_to_grants_they_see(auditor_client, world, session):
    from grants import services
    from grants.models import Grant

    services.update_grant(session, session.get(Grant, world.grant_b), title="Grant B renamed (secret)")
    services.update_grant(session, session.get(Grant, world.grant_a), title="Grant A renamed")
    session.commit()
    changes = section(start_page(auditor_client), "grants.recent_changes")
    assert "changed the grant “GA-1”" in changes
    assert "GB-1" not in changes and "secret" not in changes


def test_admin_is_told_what_the_setup_lacks(admin_client, world):
    gaps = section(start_page(admin_client), "grants.setup_gaps")
    assert "GB-1 · No members or requirements yet" in gaps
    assert "GA-1 · No requirements yet" in gaps


@pytest.mark.parametrize("role", ["Donor", "Auditor"])
def test_read_only_roles_get_no_to_do_lists(client_for, role):
    html = start_page(client_for(role))
    assert not {"indicators-results-to-enter", "grants-evidence-to-verify", "grants-periods-to-close"} & set(
        sections(html)
    )


# ---------------------------------------------------------------- friendly 403 and 404 pages, and no link that leads to one


def _inside_the_layout(html: str) -> None:
    assert 'class="navbar' in html, "the app's navigation is on the page"
    assert "Back to the start page" in html
    assert "Werkzeug" not in html and "Forbidden" not in html


def test_a_page_the_role_may_not_open_answers_a_friendly_403_inside_the_layout(donor_client):
    response = donor_client.get("/budget-lines/list/", headers={"Referer": "http://localhost/grants/list/"})
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    _inside_the_layout(html)
    assert "You do not have access to this page" in html
    assert 'href="/grants/list/"' in html  # back to where they were


def test_an_unknown_address_answers_a_friendly_404_inside_the_layout(program_client):
    response = program_client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    _inside_the_layout(html)
    assert "We could not find this page" in html


def test_a_grant_the_user_does_not_see_answers_the_same_404(program_client, world):
    response = program_client.get(f"/grants/show/{world.grant_b}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    _inside_the_layout(html)
    assert "Grant B" not in html


def test_the_api_keeps_answering_json_errors(api_for):
    response = api_for("Donor").get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.is_json


@pytest.mark.parametrize("role", ["Donor", "Auditor"])
def test_read_only_users_see_no_add_evidence_link(client_for, world, role):
    html = client_for(role).get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "Grant A" in html
    assert "/evidence/add" not in html and "Add evidence" not in html


def test_program_lead_keeps_the_add_evidence_link(program_client, world):
    html = program_client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert f"/evidence/add?grant_id={world.grant_a}" in html


def test_saving_a_form_says_what_was_saved_in_a_sentence(finance_client, world):
    response = finance_client.post(
        "/funders/add",
        data={"name": "Plain Fund", "code": "PF", "default_currency": "USD"},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Added Row" not in html
    assert "The new funder was saved." in html
