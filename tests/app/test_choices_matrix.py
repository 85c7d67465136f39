"""The choices matrix: every list, search filter, add and edit form, show page and API ``_info``, as every
role that is limited to some grants, offers nothing of a grant the user cannot see.

Grant A is visible to the program, donor and auditor users; grant B (and grant C, with a funder of its
own) is not. Every related record a drop-down could offer exists in both grants, grant B's named so it
can be recognised anywhere in a response. A donor also never meets grant A's staff-only or restricted
evidence, not even as a title in a drop-down.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import PASSWORD

# Words only grant B, grant C, their funder and their only member carry.
HIDDEN = ("GB-1", "Grant B (secret)", "SECRETB", "Hiddenperson", "Secretfund", "GC-9")
# What a donor of grant A must not meet either: evidence not shared with donors.
NOT_FOR_DONORS = ("STAFFONLY-A", "RESTRICTED-A")
# Routes that change something or leave the session: never walked.
SKIPPED = ("logout", "delete", "/lang/", "static", "/action", "swagger", "requeue", "/login", "register")


def _populate(app: Any, world: Any) -> dict[str, Any]:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from app.users import create_user
    from budgets import services as budgets
    from core.audit import Actor, acting_as
    from core.extensions import db
    from core.storage import store_for
    from grants import services as grants
    from grants.compliance import services as compliance
    from grants.deadlines import services as deadlines
    from grants.evidence import consultations
    from grants.evidence import services as evidence
    from grants.models import Grant, MemberRole, ReportingPeriod
    from indicators import services as indicators

    ids: dict[str, Any] = {}
    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        session = db.session
        store = store_for(app.config)
        create_user(app, "bsecret", "b@test.example.org", "Program", PASSWORD, "Zebulon", "Hiddenperson")
        hidden_user = app.appbuilder.sm.find_user(username="bsecret")
        grant_a, grant_b = session.get(Grant, world.grant_a), session.get(Grant, world.grant_b)
        grants.add_member(session, grant_b, hidden_user, MemberRole.program)
        funder_c = grants.create_funder(session, name="Secretfund Trust", code="SFT", default_currency="USD")
        grant_c = grants.create_grant(
            session,
            funder=funder_c,
            reference="GC-9",
            title="Grant C",
            recipient="Other org",
            currency="USD",
            amount=Decimal("100.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        grants.generate_periods(session, grant_c, "semester", 30)
        indicators.ensure_standard_dimensions(session)
        body = consultations.create_body(session, code="RCM", name="Regional Coordinating Mechanism")
        uploader = session.get(User, world.users["Program"])
        for grant, tag in ((grant_a, "A"), (grant_b, "SECRETB")):
            period = session.scalars(
                select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
            ).first()
            line = budgets.create_line(
                session, grant, code=f"L-{tag}", description=f"Outreach {tag}", cost_category="personnel"
            )
            budgets.create_revision(session, grant, title=f"Revision {tag}", justification="moves")
            indicator = indicators.create_indicator(
                session, grant, code=f"I-{tag}", name=f"People reached {tag}", unit="number", cumulative_mode="sum"
            )
            indicators.set_target(session, indicator, period, value=Decimal(10))
            requirement = compliance.create_requirement(
                session,
                grant,
                code=f"R-{tag}",
                title=f"Minutes {tag}",
                category="community_inclusion",
                rules=[{"rule": "evidence_verified", "params": {"kind": "minutes"}}],
            )
            deadlines.create_deadline(session, grant_id=grant.id, title=f"Audit {tag}", due_date=date(2026, 9, 1))
            meeting = consultations.record_consultation(
                session, grant=grant, body=body, held_on=date(2026, 2, 1), title=f"Meeting {tag}"
            )
            levels = ("shared_with_donors", "staff_only", "restricted") if tag == "A" else ("staff_only",)
            for level in levels:
                title = {"staff_only": "STAFFONLY", "restricted": "RESTRICTED"}.get(level, "Shared minutes")
                item = evidence.create_evidence(
                    session,
                    store,
                    grant=grant,
                    title=f"{title}-{tag}" if tag == "A" else f"Evidence {tag}",
                    kind="minutes",
                    evidence_date=date(2026, 2, 1),
                    sensitivity=level,
                    uploaded_by=uploader if tag == "A" else hidden_user,
                    url=f"https://example.org/{tag}/{level}",
                )
                evidence.link_evidence(session, item, "requirement", requirement.id)
                evidence.link_evidence(session, item, "consultation", meeting.id)
            ids[tag] = {"line": line.id, "requirement": requirement.id, "indicator": indicator.id}
        session.commit()
    return ids


@pytest.fixture
def hidden_world(app, world):
    return _populate(app, world)


def _pk_in_grant_a(app: Any, model: Any, grant_a: int) -> Any:
    from sqlalchemy import select

    from core.extensions import db

    with app.app_context():
        table = model.__table__
        query = select(model)
        if "grant_id" in table.c:
            query = query.where(table.c.grant_id == grant_a)
        elif table.name == "grants":
            query = query.where(table.c.id == grant_a)
        elif table.name != "funders":
            return None
        row = db.session.scalars(query.limit(1)).first()
        pk = None if row is None else row.id
        db.session.remove()
        return pk


def _leaks(text: str, markers: tuple[str, ...]) -> list[str]:
    return [marker for marker in markers if marker in text]


def _web_urls(app: Any, world: Any) -> list[str]:
    from flask_appbuilder.baseviews import BaseCRUDView

    urls: list[str] = []
    for view in app.appbuilder.baseviews:
        if not isinstance(view, BaseCRUDView):
            continue
        base = view.route_base
        urls += [f"{base}/list/", f"{base}/add"]
        pk = _pk_in_grant_a(app, view.datamodel.obj, world.grant_a)
        if pk is not None:
            urls += [f"{base}/edit/{pk}", f"{base}/show/{pk}"]
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and not rule.rule.startswith("/api/"):
            urls.append(rule.rule)
        elif "GET" in rule.methods and set(rule.arguments) == {"grant_id"} and not rule.rule.startswith("/api/"):
            urls.append(
                rule.rule.replace("<int:grant_id>", str(world.grant_a)).replace("<grant_id>", str(world.grant_a))
            )
    return sorted({url for url in urls if not any(part in url for part in SKIPPED)})


def _api_resources(app: Any) -> list[str]:
    from flask_appbuilder.api import ModelRestApi

    return sorted(api.resource_name for api in app.appbuilder.baseviews if isinstance(api, ModelRestApi))


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_no_page_form_or_filter_offers_anything_of_a_grant_the_user_cannot_see(
    app, world, hidden_world, client_for, role
):
    client = client_for(role)
    markers = HIDDEN + (NOT_FOR_DONORS if role == "Donor" else ())
    walked, found = 0, []
    for url in _web_urls(app, world):
        response = client.get(url)
        assert response.status_code < 500, f"{role} GET {url} answered {response.status_code}"
        if response.status_code == 200:
            walked += 1
            leaked = _leaks(response.get_data(as_text=True), markers)
            if leaked:
                found.append(f"{url}: {', '.join(leaked)}")
    assert walked > 25, f"only {walked} pages answered {role}"
    assert not found, f"{role} was offered what they may not see:\n" + "\n".join(found)


@pytest.mark.parametrize("role", ["Program", "Donor", "Auditor"])
def test_no_api_info_or_list_names_anything_of_a_grant_the_user_cannot_see(app, world, hidden_world, api_for, role):
    api = api_for(role)
    markers = HIDDEN + (NOT_FOR_DONORS if role == "Donor" else ())
    walked, found = 0, []
    for resource in _api_resources(app):
        for url in (f"/api/v1/{resource}/_info", f"/api/v1/{resource}/?q=(page_size:100)"):
            response = api.get(url)
            assert response.status_code < 500, f"{role} GET {url} answered {response.status_code}"
            if response.status_code == 200:
                walked += 1
                leaked = _leaks(response.get_data(as_text=True), markers)
                if leaked:
                    found.append(f"{url}: {', '.join(leaked)}")
    assert walked > 20, f"only {walked} API answers for {role}"
    assert not found, f"{role} was offered what they may not see:\n" + "\n".join(found)


def test_the_hidden_records_are_there_for_someone_who_sees_every_grant(app, world, hidden_world, client_for, api_for):
    """The walk would find the markers if they leaked: Finance sees them in the same drop-downs."""
    finance = client_for("Finance")
    page = finance.get("/waivers/list/").get_data(as_text=True)
    assert "R-SECRETB" in page and "GB-1" in page
    info = api_for("Finance").get("/api/v1/evidence/_info").get_data(as_text=True)
    assert "Hiddenperson" in info or "SECRETB" in info or "GB-1" in info


def test_every_rest_api_declares_what_it_adds_edits_and_searches(app):
    from flask_appbuilder.api import ModelRestApi

    missing = []
    for api in app.appbuilder.baseviews:
        if not isinstance(api, ModelRestApi):
            continue
        declared = {
            name
            for name in ("add_columns", "edit_columns", "search_columns")
            if any(name in vars(cls) for cls in type(api).__mro__ if cls is not ModelRestApi and cls is not object)
        }
        if len(declared) < 3:
            missing.append(
                f"{type(api).__name__}: {sorted({'add_columns', 'edit_columns', 'search_columns'} - declared)}"
            )
    assert not missing, "APIs that leave FAB to pick every column:\n" + "\n".join(missing)
