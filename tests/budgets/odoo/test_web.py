"""Odoo links and account mappings in the web UI and the REST API: who may sync, map and see what."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import func, select

from tests.budgets.odoo.conftest import SECRET, odoo_env


def _set_odoo_env(app, monkeypatch, env: dict[str, str]) -> None:
    """The app reads GRANTKEEPER_ODOO_* once, at start, into its settings: start it with these."""
    settings = dataclasses.replace(app.config["GK_SETTINGS"], odoo_env=env)
    monkeypatch.setitem(app.config, "GK_SETTINGS", settings)


@pytest.fixture
def configured(app, monkeypatch, odoo):
    """The server's settings point at the fake Odoo."""
    _set_odoo_env(app, monkeypatch, odoo_env(odoo))
    return odoo


@pytest.fixture
def not_configured(app, monkeypatch):
    _set_odoo_env(app, monkeypatch, {})


def _count(app, model) -> int:
    from core.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count(model.id)))


def _link_b(app, world, linked) -> int:
    from budgets import odoo_sync
    from budgets.models import BudgetLine
    from core.extensions import db
    from grants.models import Grant

    with app.app_context():
        grant_b = db.session.get(Grant, world.grant_b)
        link = odoo_sync.link_grant(
            db.session,
            grant_b,
            analytic_account_id=77,
            company_currency="XCD",
            analytic_account_name="Hidden grant account",
        )
        odoo_sync.map_account(
            db.session,
            grant_b,
            odoo_account_id=901,
            line=db.session.get(BudgetLine, linked.line_b),
            label="9010 Hidden account",
        )
        db.session.commit()
        return link.id


# ---------------------------------------------------------------- Sync now


def test_finance_presses_sync_now_and_sees_the_result(app, client_for, linked, configured):
    from budgets.models import Expenditure

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    configured.add_line(2, "2026-02-04", -100.00, account=41, general=(620, "6300 Rent"))
    client = client_for("Finance")

    page = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)

    assert "GA-1: full sync (first sync), 2 Odoo lines read: 1 created" in page
    assert "6300 Rent (Odoo account 620): 1 line, 100.00 XCD" in page
    assert _count(app, Expenditure) == 1
    assert SECRET not in page
    shown = client.get(f"/odoo-links/show/{linked.link_a}").get_data(as_text=True)
    assert 'id="odoo-unmapped"' in shown and "6300 Rent" in shown and SECRET not in shown


def test_a_refused_sync_shows_the_odoo_line_and_saves_nothing(app, client_for, linked, configured):
    from budgets.models import Expenditure

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    configured.add_line(2, "2025-11-30", -54.00, account=41)
    page = (
        client_for("Finance")
        .post(f"/odoo-links/{linked.link_a}/sync", data={"full": "1"}, follow_redirects=True)
        .get_data(as_text=True)
    )
    assert "Odoo sync refused, nothing saved" in page and "Odoo line 2" in page and "outside grant GA-1" in page
    assert _count(app, Expenditure) == 0


def test_a_wrong_key_shows_a_clear_error_and_never_the_key(app, client_for, world, linked, configured, monkeypatch):
    _set_odoo_env(app, monkeypatch, odoo_env(configured, api_key="wrong-key-789"))
    client = client_for("Finance")
    page = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)
    assert "Odoo sync failed, nothing saved" in page and "check the login and the API key" in page
    assert "wrong-key-789" not in page and SECRET not in page
    panel = client.get(f"/grants/show/{world.grant_a}", follow_redirects=True).get_data(as_text=True)
    assert "wrong-key-789" not in panel


def test_program_user_cannot_sync(app, client_for, linked, configured):
    from budgets.models import Expenditure, OdooLink
    from core.extensions import db

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    client = client_for("Program")
    assert "Sync now" not in client.get(f"/odoo-links/show/{linked.link_a}").get_data(as_text=True)
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    assert _count(app, Expenditure) == 0
    with app.app_context():
        assert db.session.get(OdooLink, linked.link_a).last_status.value == "never"


def test_auditor_reads_links_but_cannot_sync(app, client_for, linked, configured):
    from budgets.models import Expenditure

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    client = client_for("Auditor")
    assert client.get(f"/odoo-links/show/{linked.link_a}").status_code == 200
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    assert _count(app, Expenditure) == 0


def test_without_settings_the_page_says_not_configured_and_nothing_is_contacted(
    app, client_for, linked, not_configured, odoo
):
    client = client_for("Finance")
    page = client.get(f"/odoo-links/show/{linked.link_a}").get_data(as_text=True)
    assert "Connection not configured." in page and "GRANTKEEPER_ODOO_HOST" in page
    flashed = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)
    assert "Odoo is not configured: set GRANTKEEPER_ODOO_HOST" in flashed
    assert odoo.calls == []


def test_the_grant_page_shows_the_last_sync(app, client_for, world, linked, configured):
    configured.add_line(1, "2026-02-03", -270.00, account=41)
    client = client_for("Finance")
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    page = client_for("Program").get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert 'data-panel="Odoo"' in page and "1 created" in page


def test_donor_sees_no_odoo_panel_or_links(client_for, world, linked):
    client = client_for("Donor")
    assert 'data-panel="Odoo"' not in client.get(f"/grants/show/{world.grant_a}").get_data(as_text=True)
    assert "GA-1 grant account" not in client.get("/odoo-links/list/", follow_redirects=True).get_data(as_text=True)
    assert "GA-1 grant account" not in client.get(f"/odoo-links/show/{linked.link_a}", follow_redirects=True).get_data(
        as_text=True
    )


# ---------------------------------------------------------------- row-level rules


def test_program_user_cannot_see_another_grants_link_or_mappings(app, client_for, world, linked):
    link_b = _link_b(app, world, linked)
    client = client_for("Program")
    listing = client.get("/odoo-links/list/").get_data(as_text=True)
    assert "GA-1 grant account" in listing and "Hidden grant account" not in listing
    assert "Hidden grant account" not in client.get(f"/odoo-links/show/{link_b}", follow_redirects=True).get_data(
        as_text=True
    )
    maps = client.get("/odoo-account-maps/list/").get_data(as_text=True)
    assert "6100 Salaries" in maps and "9010 Hidden account" not in maps


def test_finance_links_a_grant_and_maps_an_account_through_the_forms(app, client_for, world, linked):
    from budgets.models import OdooAccountMap, OdooLink
    from core.extensions import db

    client = client_for("Finance")
    response = client.post(
        "/odoo-links/add",
        data={
            "grant": str(world.grant_b),
            "analytic_account_id": "77",
            "analytic_account_name": "GB account",
            "analytic_plan": "",
            "company_currency": "xcd",
            "enabled": "y",
        },
    )
    assert response.status_code == 302
    response = client.post(
        "/odoo-account-maps/add",
        data={
            "grant": str(world.grant_b),
            "odoo_account_id": "901",
            "odoo_account_label": "9010 Activities",
            "line": str(linked.line_b),
        },
    )
    assert response.status_code == 302
    with app.app_context():
        link = db.session.scalar(select(OdooLink).where(OdooLink.grant_id == world.grant_b))
        assert (link.company_currency, link.analytic_plan, link.enabled) == ("XCD", None, True)
        assert (
            db.session.scalar(select(OdooAccountMap).where(OdooAccountMap.odoo_account_id == 901)).line_id
            == linked.line_b
        )


def test_mapping_form_refuses_a_line_of_another_grant(app, client_for, world, linked):
    from budgets.models import OdooAccountMap

    page = (
        client_for("Finance")
        .post(
            "/odoo-account-maps/add",
            data={
                "grant": str(world.grant_a),
                "odoo_account_id": "901",
                "odoo_account_label": "9010",
                "line": str(linked.line_b),
            },
            follow_redirects=True,
        )
        .get_data(as_text=True)
    )
    assert "budget line B-1 belongs to grant GB-1, not GA-1" in page
    assert _count(app, OdooAccountMap) == 2


def test_program_user_cannot_link_a_grant_or_map_accounts(app, client_for, world, linked):
    from budgets.models import OdooAccountMap, OdooLink

    client = client_for("Program")
    client.post(
        "/odoo-links/add", data={"grant": str(world.grant_b), "analytic_account_id": "77", "company_currency": "XCD"}
    )
    client.post(
        "/odoo-account-maps/add",
        data={"grant": str(world.grant_a), "odoo_account_id": "5", "line": str(linked.line_hr)},
    )
    client.post(f"/odoo-links/{linked.link_a}/map", data={"odoo_account_id": "5", "line_id": str(linked.line_hr)})
    assert (_count(app, OdooLink), _count(app, OdooAccountMap)) == (1, 2)


def test_finance_maps_an_unmapped_account_from_the_link_page(app, client_for, linked, configured):
    from budgets.models import Expenditure

    configured.add_line(1, "2026-02-04", -100.00, account=41, general=(620, "6300 Rent"))
    client = client_for("Finance")
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    assert _count(app, Expenditure) == 0
    page = client.post(
        f"/odoo-links/{linked.link_a}/map",
        data={
            "odoo_account_id": "620",
            "label": "6300 Rent",
            "line_id": str(linked.line_travel),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Mapped Odoo account 620 to TR-1" in page
    page = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)
    assert "mappings changed since the last sync" in page and "1 created" in page
    assert _count(app, Expenditure) == 1


# ---------------------------------------------------------------- REST API


def test_api_program_user_lists_only_their_grants_links(app, api_for, world, linked):
    link_b = _link_b(app, world, linked)
    api = api_for("Program")
    listed = api.get("/api/v1/odoo_links/").json["result"]
    assert [row["grant"]["reference"] for row in listed] == ["GA-1"]
    assert api.get(f"/api/v1/odoo_links/{link_b}").status_code == 404
    assert (
        api.post(
            "/api/v1/odoo_links/", json={"grant": world.grant_b, "analytic_account_id": 5, "company_currency": "XCD"}
        ).status_code
        == 403
    )


def test_api_finance_cannot_map_an_account_to_another_grants_line(app, api_for, world, linked):
    response = api_for("Finance").post(
        "/api/v1/odoo_account_maps/",
        json={
            "grant": world.grant_a,
            "odoo_account_id": 700,
            "odoo_account_label": "x",
            "line": linked.line_b,
        },
    )
    assert response.status_code == 422
    assert "belongs to grant GB-1" in str(response.json["message"])


def test_api_never_returns_the_key(app, api_for, linked, configured):
    body = api_for("Finance").get(f"/api/v1/odoo_links/{linked.link_a}").get_data(as_text=True)
    assert '"analytic_account_id": 41' in body or '"analytic_account_id":41' in body
    assert SECRET not in body


def test_finance_switches_a_link_off_through_the_edit_form(app, client_for, linked):
    from budgets.models import OdooLink
    from core.extensions import db

    client = client_for("Finance")
    form = client.get(f"/odoo-links/edit/{linked.link_a}").get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="enabled"[^>]*>', form).group(0)
    assert "required" not in checkbox  # a required checkbox could never be unticked
    response = client.post(
        f"/odoo-links/edit/{linked.link_a}",
        data={
            "analytic_account_id": "41",
            "analytic_account_name": "GA-1 grant account",
            "analytic_plan": "Grants",
            "company_currency": "XCD",
        },
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(OdooLink, linked.link_a).enabled is False


# ---------------------------------------------------------------- links checked against Odoo, removals confirmed


def test_a_link_to_an_account_odoo_does_not_have_is_refused_when_saved(app, client_for, world, linked, configured):
    from budgets.models import OdooLink

    page = (
        client_for("Finance")
        .post(
            "/odoo-links/add",
            data={
                "grant": str(world.grant_b),
                "analytic_account_id": "4242",
                "analytic_plan": "Grants",
                "company_currency": "XCD",
                "enabled": "y",
            },
            follow_redirects=True,
        )
        .get_data(as_text=True)
    )
    assert "Odoo has no analytic account 4242" in page
    assert _count(app, OdooLink) == 1


def test_a_link_in_another_plan_is_refused_and_a_good_one_is_confirmed(app, client_for, world, linked, configured):
    from budgets.models import OdooLink
    from core.extensions import db

    configured.plans["x_plan3_id"] = "Donors"
    configured.add_account(43, "Donor account", plan="x_plan3_id")
    client = client_for("Finance")
    form = {"grant": str(world.grant_b), "analytic_plan": "Grants", "company_currency": "XCD", "enabled": "y"}
    refused = client.post("/odoo-links/add", data={**form, "analytic_account_id": "43"}, follow_redirects=True)
    assert "is in the plan &#39;Donors&#39;, not &#39;Grants&#39;" in refused.get_data(as_text=True)
    assert _count(app, OdooLink) == 1

    saved = client.post("/odoo-links/add", data={**form, "analytic_account_id": "77"}, follow_redirects=True)
    assert "Odoo confirms analytic account 77 (GB-1 grant account) in the plan" in saved.get_data(as_text=True)
    with app.app_context():
        link = db.session.scalar(select(OdooLink).where(OdooLink.grant_id == world.grant_b))
        assert (link.analytic_account_name, link.plan_column, link.removal_limit_percent) == (
            "GB-1 grant account",
            "x_plan2_id",
            25,
        )


def test_removing_most_spending_needs_the_confirmation_box(app, client_for, linked, configured):
    from budgets.models import Expenditure

    configured.add_line(1, "2026-02-03", -270.00, account=41)
    configured.add_line(2, "2026-02-04", -540.00, account=41)
    client = client_for("Finance")
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    configured.cancel(2)

    page = client.post(f"/odoo-links/{linked.link_a}/sync", data={}, follow_redirects=True).get_data(as_text=True)
    assert "Odoo sync stopped, nothing saved" in page and "confirm the removals" in page
    assert _count(app, Expenditure) == 2

    page = client.post(
        f"/odoo-links/{linked.link_a}/sync", data={"confirm_removals": "1"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "1 removed" in page and _count(app, Expenditure) == 1


def test_finance_dismisses_an_unmapped_account_and_lists_it_again(app, client_for, linked, configured):
    configured.add_line(1, "2026-02-03", -100.00, account=41, general=(620, "6300 Rent"))
    client = client_for("Finance")
    client.post(f"/odoo-links/{linked.link_a}/sync", data={})
    page = client.post(
        f"/odoo-links/{linked.link_a}/dismiss", data={"odoo_account_id": "620"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Odoo account 620 is no longer listed" in page and 'id="odoo-unmapped"' not in page
    assert 'id="odoo-dismissed"' in page
    page = client.post(
        f"/odoo-links/{linked.link_a}/dismiss", data={"odoo_account_id": "620", "restore": "1"}, follow_redirects=True
    ).get_data(as_text=True)
    assert 'id="odoo-unmapped"' in page and "6300 Rent" in page


def test_program_user_cannot_dismiss_unmapped_accounts(app, client_for, linked, configured):
    from budgets.models import OdooLink
    from core.extensions import db

    configured.add_line(1, "2026-02-03", -100.00, account=41, general=(620, "6300 Rent"))
    client_for("Finance").post(f"/odoo-links/{linked.link_a}/sync", data={})
    client_for("Program").post(f"/odoo-links/{linked.link_a}/dismiss", data={"odoo_account_id": "620"})
    with app.app_context():
        assert not db.session.get(OdooLink, linked.link_a).dismissed_accounts
