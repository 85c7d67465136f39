"""Every Flask-AppBuilder add form: a save the domain refuses comes back as typed, the message next to its field.

One mechanism (``grants.form_input.KeepsTypedInput``, part of ``ValidatedViewMixin``) for every view: the page
re-renders (200, not a redirect to an empty form), each typed value is still in its input, the rule's message sits
after the field it is about, and nothing is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select


@dataclass
class Ids:
    grant_a: int
    grant_b: int
    period_a1: int
    period_b1: int
    program: int
    line_a: int
    line_a2: int
    revision_a: int
    indicator_a: int
    dimension: int
    funder: int
    body: int
    requirement_a: int


@dataclass
class Case:
    url: str
    data: Callable[[Ids], dict[str, str]]
    field: str  # the input the message must follow
    message: str
    typed: str  # a value typed into the form that must still be there
    model: str  # "package.module:Class", counted before and after
    by_form: bool = False  # refused by the form's own validators (uniqueness, required) before any domain rule


def _model(path: str) -> Any:
    module, name = path.split(":")
    return getattr(__import__(module, fromlist=[name]), name)


CASES = [
    Case(
        "/funders/add",
        lambda i: {
            "name": "Test Fund",
            "code": "TF-2",
            "default_currency": "USD",
            "notes": "Typed note about the fund",
        },
        "name",
        "Already exists.",
        "Typed note about the fund",
        "grants.models:Funder",
        by_form=True,
    ),
    Case(
        "/grants/add",
        lambda i: {
            "funder": str(i.funder),
            "reference": "GC-9",
            "title": "Typed grant title",
            "recipient": "Coalition",
            "currency": "USD",
            "amount": "100",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "status": "active",
            "indirect_rate": "12.5",
            "indirect_base": "total_direct",
        },
        "indirect_rate",
        "12.5% is above Test Fund",  # a % in a message is shown as written (FAB's template %-formats errors)
        "Typed grant title",
        "grants.models:Grant",
    ),
    Case(
        "/periods/add",
        lambda i: {
            "grant": str(i.grant_a),
            "label": "Typed P9",
            "start_date": "2027-01-01",
            "end_date": "2027-02-01",
            "report_due": "2027-03-01",
            "status": "open",
        },
        "start_date",
        "the period must lie within the grant",
        "Typed P9",
        "grants.models:ReportingPeriod",
    ),
    Case(
        "/memberships/add",
        lambda i: {"grant": str(i.grant_a), "user": str(i.program), "role": "program"},
        "user",
        "is already a member of this grant",
        'selected value="program"',
        "grants.models:GrantMembership",
    ),
    Case(
        "/coordinating-bodies/add",
        lambda i: {"code": "RCM", "name": "Typed body name"},
        "code",
        "Already exists.",
        "Typed body name",
        "grants.evidence.models:CoordinatingBody",
        by_form=True,
    ),
    Case(
        "/waivers/add",
        lambda i: {
            "requirement": str(i.requirement_a),
            "period": str(i.period_b1),
            "justification": "Typed: the donor agreed",
        },
        "period",
        "belongs to another grant than the requirement",
        "Typed: the donor agreed",
        "grants.compliance.models:RequirementWaiver",
    ),
    Case(
        "/deadlines/add",
        lambda i: {
            "grant": str(i.grant_b),
            "kind": "other",
            "title": "Typed deadline",
            "due_date": "2026-05-01",
            "owner": str(i.program),
        },
        "owner",
        "must be a user who can see this grant",
        "Typed deadline",
        "grants.deadlines.models:Deadline",
    ),
    Case(
        "/reminder-policies/add",
        lambda i: {
            "grant": str(i.grant_a),
            "days_before": "30,7",
            "overdue_every_days": "7",
            "escalate_roles": "bosses",
        },
        "escalate_roles",
        "unknown member roles: bosses",
        'value="30,7"',
        "grants.deadlines.models:ReminderPolicy",
    ),
    Case(
        "/budget-lines/add",
        lambda i: {
            "grant": str(i.grant_a),
            "code": "L-1",
            "description": "Typed duplicate line",
            "cost_category": "STAFF",
        },
        "code",
        "already",
        "Typed duplicate line",
        "budgets.models:BudgetLine",
    ),
    Case(
        "/expenditures/add",
        lambda i: {
            "line": str(i.line_a),
            "spent_on": "2027-03-04",
            "amount": "123.45",
            "currency": "USD",
            "description": "Typed ferry to Bequia",
        },
        "spent_on",
        "is outside grant GA-1",
        "Typed ferry to Bequia",
        "budgets.models:Expenditure",
    ),
    Case(
        "/exchange-rates/add",
        lambda i: {"rate_date": "2026-01-31", "from_currency": "USD", "to_currency": "USD", "rate": "2.7"},
        "to_currency",
        "must differ from the currency converted from",
        'value="2.7"',
        "budgets.models:ExchangeRate",
    ),
    Case(
        "/rate-policies/add",
        lambda i: {"grant": str(i.grant_a), "method": "fixed", "fixed_currency": "XCD", "notes": "Typed policy note"},
        "fixed_rate",
        "a fixed rate above zero is required",
        "Typed policy note",
        "budgets.models:RatePolicy",
    ),
    Case(
        "/variance-rules/add",
        lambda i: {
            "funder": str(i.funder),
            "basis": "total_budget",
            "direction": "over",
            "threshold_percent": "2000",
            "description": "Typed rule",
        },
        "threshold_percent",
        "must be more than 0 and at most 1000",
        "Typed rule",
        "budgets.models:VarianceRule",
    ),
    Case(
        "/budget-revisions/add",
        lambda i: {"grant": str(i.grant_a), "title": "Typed revision title", "justification": ""},
        "justification",
        "This field is required.",
        "Typed revision title",
        "budgets.models:BudgetRevision",
        by_form=True,
    ),
    Case(
        "/budget-allocations/add",
        lambda i: {"line": str(i.line_a), "period": str(i.period_b1), "amount": "77.70"},
        "period",
        "is a period of another grant",
        'value="77.70"',
        "budgets.models:BudgetAllocation",
    ),
    Case(
        "/budget-revision-items/add",
        lambda i: {
            "revision": str(i.revision_a),
            "period": str(i.period_a1),
            "from_line": str(i.line_a),
            "to_line": str(i.line_a),
            "amount": "12.34",
        },
        "to_line",
        "must differ from the line the money comes from",
        'value="12.34"',
        "budgets.models:BudgetRevisionItem",
    ),
    Case(
        "/indicators/add",
        lambda i: {
            "grant": str(i.grant_a),
            "code": "IND-9",
            "name": "Typed indicator name",
            "unit": "number",
            "direction": "increase",
            "cumulative_mode": "sum",
            "baseline_value": "3",
            "baseline_date": "2030-01-01",
            "sort_order": "0",
        },
        "baseline_date",
        "is after the end of the grant",
        "Typed indicator name",
        "indicators.models:Indicator",
    ),
    Case(
        "/indicator-codes/add",
        lambda i: {
            "indicator": str(i.indicator_a),
            "funder": str(i.funder),
            "code": "DUP-2",
            "name": "Typed code name",
        },
        "funder",
        "already has a code for Test Fund",
        "Typed code name",
        "indicators.models:IndicatorCode",
    ),
    Case(
        "/dimensions/add",
        lambda i: {"code": "sex", "name": "Typed dimension", "description": "Typed description"},
        "code",
        "Already exists.",
        "Typed dimension",
        "indicators.models:Dimension",
        by_form=True,
    ),
    Case(
        "/dimension-categories/add",
        lambda i: {"dimension": str(i.dimension), "code": "f", "name": "Typed category", "sort_order": "0"},
        "code",
        "is already a category of",
        "Typed category",
        "indicators.models:Category",
    ),
]

# Views whose add page is not FAB's form (their own page keeps typed input and is tested with it), or that add nothing.
OWN_ADD_PAGES = {
    "/evidence": "upload page (tests/grants/evidence)",
    "/requirements": "requirement builder (tests/grants/compliance)",
    "/budget-imports": "import wizard",
    "/budget-file-imports": "import wizard",
    "/consultations": "consultation with its minutes file (tests/grants/evidence)",
    "/odoo-links": "Odoo settings (rules are checked by the same mechanism; see tests/budgets/odoo)",
    "/odoo-account-maps": "Odoo settings (same mechanism)",
    "/funder-templates": "template upload comes first (tests/exports)",
    "/indicator-targets": "targets grid (tests/indicators)",
    "/indicator-results": "results entry (tests/indicators)",
}


@pytest.fixture
def ids(app, world) -> Ids:
    from budgets import services as budgets
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import services as grants
    from grants.compliance.models import Requirement
    from grants.evidence.models import CoordinatingBody
    from grants.models import Funder, Grant
    from indicators.models import Category, Dimension, Indicator, IndicatorCode

    with app.app_context(), acting_as(Actor(None, "fixture", "system")):
        funder = db.session.get(Funder, world.funder_id)
        funder.cost_categories = [dict(c) for c in grants.GENERIC_COST_CATEGORIES]
        funder.indirect_cap_percent = 10
        grant_a = db.session.get(Grant, world.grant_a)
        line = budgets.create_line(db.session, grant_a, code="L-1", description="Coordinator", cost_category="STAFF")
        line2 = budgets.create_line(db.session, grant_a, code="L-2", description="Travel", cost_category="TRAVEL")
        revision = budgets.create_revision(db.session, grant_a, title="Move", justification="Because")
        indicator = Indicator(grant=grant_a, code="IND-1", name="People reached")
        db.session.add(indicator)
        db.session.add(IndicatorCode(indicator=indicator, funder=funder, code="DUP-1", name="First"))
        dimension = Dimension(code="sex", name="Sex")
        db.session.add(dimension)
        db.session.add(Category(dimension=dimension, code="f", name="Female"))
        body = CoordinatingBody(code="RCM", name="Regional mechanism")
        db.session.add(body)
        requirement = Requirement(grant=grant_a, code="R1", title="Annual report")
        db.session.add(requirement)
        db.session.commit()
        return Ids(
            grant_a=world.grant_a,
            grant_b=world.grant_b,
            period_a1=world.period_a1,
            period_b1=world.period_b1,
            program=world.users["Program"],
            line_a=line.id,
            line_a2=line2.id,
            revision_a=revision.id,
            indicator_a=indicator.id,
            dimension=dimension.id,
            funder=funder.id,
            body=body.id,
            requirement_a=requirement.id,
        )


def _messages(html: str) -> list[str]:
    """What the page says in error blocks and flashes (for a failing assertion's message)."""
    return re.findall(r'class="(?:help-block|alert[^"]*|text-danger|invalid-feedback)[^"]*"[^>]*>\s*([^<]+)', html)


def _csrf(client: Any, url: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True))
    return found.group(1) if found else ""


@pytest.mark.parametrize("case", CASES, ids=[c.url.split("/")[1] for c in CASES])
def test_a_refused_add_form_comes_back_as_typed_with_the_message_next_to_the_field(app, admin_client, ids, case):
    from core.extensions import db

    model = _model(case.model)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(model))
    response = admin_client.post(case.url, data={"csrf_token": _csrf(admin_client, case.url), **case.data(ids)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200, f"{case.url} answered {response.status_code}, not the form again"
    assert case.typed in html, f"{case.url} lost what was typed ({case.typed!r})"
    assert case.by_form or "Not saved: correct the fields marked below." in html, _messages(html)
    field_at = html.find(f'name="{case.field}"')
    message_at = html.find(case.message, field_at)
    assert field_at > 0 and message_at > field_at, f"{case.url}: no {case.message!r} after the {case.field} field"
    following = [m.start() for m in re.finditer(r'<(?:input|select|textarea)[^>]*name="(?!csrf_token)', html)]
    next_field = min((at for at in following if at > field_at + 10), default=len(html))
    assert message_at < next_field, f"{case.url}: the message is not next to the {case.field} field"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(model)) == before


def test_a_refused_edit_form_keeps_the_typed_values_too(app, admin_client, ids):
    from core.extensions import db
    from grants.models import ReportingPeriod

    url = f"/periods/edit/{ids.period_a1}"
    response = admin_client.post(
        url,
        data={
            "csrf_token": _csrf(admin_client, url),
            "grant": str(ids.grant_a),
            "label": "Typed new label",
            "start_date": "2025-06-01",
            "end_date": "2026-06-30",
            "status": "open",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Typed new label" in html and "the period must lie within the grant" in html
    with app.app_context():
        assert db.session.get(ReportingPeriod, ids.period_a1).label == "S1"


def test_every_add_form_of_the_app_is_covered(app):
    from flask_appbuilder import ModelView

    from grants.access import ValidatedViewMixin
    from grants.form_input import KeepsTypedInput

    covered = {case.url.rsplit("/add", 1)[0] for case in CASES}
    missing = []
    for view in app.appbuilder.baseviews:
        if not isinstance(view, ModelView) or "can_add" not in (view.base_permissions or ["can_add"]):
            continue
        if type(view).__module__.startswith("flask_appbuilder") or not getattr(view, "add_columns", None):
            continue
        assert isinstance(view, ValidatedViewMixin) and isinstance(view, KeepsTypedInput), type(view).__name__
        if view.route_base not in covered and view.route_base not in OWN_ADD_PAGES:
            missing.append(view.route_base)
    assert not missing, f"add forms without a refused-input case: {missing}"


def test_a_refusal_quoting_what_was_typed_is_shown_as_text_not_markup(app, admin_client, ids):
    """FAB's ``{{ _(error) }}`` marked messages safe: a typed currency came back as live markup."""
    from core.extensions import db
    from grants.models import Grant

    url = "/grants/add"
    typed = "<b>X</b>"
    response = admin_client.post(
        url,
        data={
            "csrf_token": _csrf(admin_client, url),
            "funder": str(ids.funder),
            "reference": "GC-10",
            "title": "Grant with a strange currency",
            "recipient": "Coalition",
            "currency": typed,
            "amount": "100",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "status": "active",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # The field reads codes in capitals: the message quotes "<B>X</B>", as text.
    assert "&#39;&lt;B&gt;X&lt;/B&gt;&#39; is not an ISO 4217 currency code" in html, _messages(html)
    assert "<B>X</B>" not in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Grant).where(Grant.reference == "GC-10")) == 0
