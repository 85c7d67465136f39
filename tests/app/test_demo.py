"""The demo organisation tells the story of docs/demo.md, end to end, in plain language."""

from __future__ import annotations

import enum
import hashlib
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.app.demo_world import DEMO_USERS, visible_text


@pytest.fixture
def session(loaded_demo):
    from core.extensions import db

    with loaded_demo.app.app_context():
        yield db.session
        db.session.rollback()


def test_demo_users_have_the_five_roles_and_generated_passwords(loaded_demo, session):
    from flask_appbuilder.security.sqla.models import User

    roles = {u.username: [r.name for r in u.roles] for u in session.scalars(select(User))}
    assert roles == {
        "admin": ["Admin"],
        "finance": ["Finance"],
        "program": ["Program"],
        "donor.gf": ["Donor"],
        "auditor": ["Auditor"],
    }
    passwords = list(loaded_demo.passwords.values())
    assert len(set(passwords)) == 5 and all(len(p) >= 12 for p in passwords)


def test_grant_one_is_the_regional_hiv_grant_in_four_semesters(session):
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
    assert grant.amount == Decimal("150000.00") and grant.currency == "USD"
    assert (grant.start_date, grant.end_date) == (date(2026, 1, 1), date(2027, 12, 31))
    assert grant.country_codes == ["LC", "GD"]
    assert [p.label for p in grant.periods] == ["S1", "S2", "S3", "S4"]
    assert grant.periods[0].report_due == date(2026, 8, 14)
    assert grant.is_demo and "(demo)" in grant.recipient


def test_grant_two_is_the_annual_core_grant(session):
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "CNF-CORE-2026"))
    assert grant.currency == "EUR" and grant.amount == Decimal("40000.00")
    assert [(p.label, p.report_due) for p in grant.periods] == [("Y1", date(2027, 3, 31))]


def test_donor_is_member_of_grant_one_only(session):
    from flask_appbuilder.security.sqla.models import User

    from grants.services import visible_grants

    donor = session.scalar(select(User).where(User.username == "donor.gf"))
    program = session.scalar(select(User).where(User.username == "program"))
    assert [g.reference for g in visible_grants(session, donor)] == ["RCM-HIV-2026-SW"]
    assert {g.reference for g in visible_grants(session, program)} == {"RCM-HIV-2026-SW", "CNF-CORE-2026"}


def test_demo_is_marked_in_the_ui(loaded_demo):
    html = loaded_demo.client("program").get("/").get_data(as_text=True)
    assert "Demo data." in html
    assert "RCM-HIV-2026-SW" in html


# ---------------------------------------------------------------- the whole cycle: templates, a report sent to the donor


def test_s1_update_was_generated_from_the_funders_template_and_published_when_it_was_sent(session):
    from exports.models import ExportRecord
    from grants.models import PeriodStatus

    record = session.scalar(select(ExportRecord))
    assert record.period.label == "S1" and record.grant.reference == "RCM-HIV-2026-SW"
    assert record.template_version.template.name == "Semester progress update"
    assert record.published and record.published_by == "program"
    assert record.published_at.date() == date(2026, 8, 14)
    assert record.period.status == PeriodStatus.accepted  # reported on time and accepted by the donor


def test_demo_donor_downloads_the_published_spreadsheet_from_the_start_page(loaded_demo, session):
    from openpyxl import load_workbook

    from exports.models import ExportRecord

    record = session.scalar(select(ExportRecord))
    donor = loaded_demo.client("donor.gf")
    html = donor.get("/").get_data(as_text=True)
    link = re.search(r'<a href="(/exports/file/\d+)">RCM-HIV-2026-SW_S1_Semester_progress_update\.xlsx</a>', html)
    assert link, "the start page links the published file"
    response = donor.get(link.group(1))
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_data()
    assert hashlib.sha256(data).hexdigest() == record.sha256

    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Cover", "Indicators", "Budget"]
    cover = wb["Cover"]
    assert cover["C4"].value == "Regional HIV Fund (demo)"
    assert cover["C5"].value == "RCM-HIV-2026-SW"
    assert cover["C8"].value == "S1"
    assert cover["C9"].value.date() == date(2026, 1, 1) and cover["C10"].value.date() == date(2026, 6, 30)
    assert cover["C12"].value.date() == date(2026, 8, 14)
    codes = [wb["Indicators"].cell(row, 1).value for row in range(4, 24)]
    assert {"KP-1c", "HR-1", "CSS-1", "GOV-1"} <= set(codes)
    budget = wb["Budget"]
    groupings = [budget.cell(row, 1).value for row in range(4, 20) if budget.cell(row, 1).value]
    assert "2" in groupings  # travel, the cost grouping over plan in S1
    assert all(isinstance(budget.cell(row, 4).value, (int, float)) for row in range(4, 4 + len(groupings)))


def test_grant_two_has_its_funders_template_with_a_mapping_ready_to_fill(loaded_demo, session):
    from openpyxl import load_workbook

    from core.storage import FileStore
    from exports import services
    from exports.models import FunderTemplate
    from grants.models import Grant

    grant = session.scalar(select(Grant).where(Grant.reference == "CNF-CORE-2026"))
    template = session.scalar(select(FunderTemplate).where(FunderTemplate.funder_id == grant.funder_id))
    assert template.name == "Annual report" and template.latest.mapping_text
    store = FileStore(loaded_demo.app.config["STORAGE_ROOT"])
    record = services.run_export(
        session, store, grant=grant, period=grant.periods[0], user="finance", template=template
    )
    wb = load_workbook(io.BytesIO(services.export_bytes(store, record)))
    assert wb["Summary"]["C5"].value == "CNF-CORE-2026" and wb["Summary"]["C7"].value == "Y1"
    assert wb["Results"]["A4"].value in {"ADV-1", "ADV-2", "ORG-1"}
    session.rollback()


def test_demo_templates_are_made_by_the_package_not_read_from_tests():
    from pathlib import Path

    import exports.demo

    source = Path(exports.demo.__file__).read_text()
    assert "tests/" not in source and "fixtures" not in source


# ---------------------------------------------------------------- every page in plain language

RAW_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?")


def _enum_values_with_underscores() -> set[str]:
    """Every stored enum value people must not read, e.g. period_average, attendance_summary."""
    from core.extensions import db

    values: set[str] = set()
    for mapper in db.Model.registry.mappers:
        for column in mapper.columns:
            enum_class = getattr(column.type, "enum_class", None)
            if enum_class is not None and issubclass(enum_class, enum.Enum):
                values |= {str(member.value) for member in enum_class if "_" in str(member.value)}
    return values


def _list_endpoints(app) -> list[str]:
    from flask_appbuilder.baseviews import BaseCRUDView

    return sorted(
        f"{view.endpoint}.list"
        for view in app.appbuilder.baseviews
        if isinstance(view, BaseCRUDView)
        and "can_list" in view.base_permissions
        # FAB's own user and role administration (Admin only) renders with widgets of its own.
        and not type(view).__module__.startswith("flask_appbuilder.")
    )


def _problems(text: str, raw_enums: set[str]) -> list[str]:
    found = []
    if re.search(r"\bNone\b", text):
        found.append("None")
    if RAW_TIMESTAMP.search(text):
        found.append(f"timestamp {RAW_TIMESTAMP.search(text).group(0)}")
    if "[]" in text:
        found.append("[]")
    for value in raw_enums:
        if re.search(rf"(?<![\w./-]){re.escape(value)}(?![\w.-])", text):
            found.append(value)
    return found


@pytest.mark.parametrize("username", DEMO_USERS)
def test_every_list_and_show_page_of_the_demo_reads_in_plain_language(loaded_demo, username):
    from flask import url_for

    app = loaded_demo.app
    client = loaded_demo.client(username)
    with app.app_context():
        raw_enums = _enum_values_with_underscores()
    with app.test_request_context():
        lists = [url_for(endpoint) for endpoint in _list_endpoints(app)]
    failures: dict[str, list[str]] = {}
    visited = 0
    for url in lists:
        response = client.get(url)
        if response.status_code in (302, 403, 404):
            continue  # not for this role
        assert response.status_code == 200, f"{url}: {response.status_code}"
        html = response.get_data(as_text=True)
        pages = [(url, html)]
        base = url.rsplit("/list", 1)[0]
        for show in list(dict.fromkeys(re.findall(rf'href="({re.escape(base)}/show/\d+)"', html)))[:3]:
            shown = client.get(show)
            if shown.status_code == 200:
                pages.append((show, shown.get_data(as_text=True)))
        for where, page in pages:
            visited += 1
            problems = _problems(visible_text(page), raw_enums)
            if problems:
                failures[where] = problems
    assert visited > 5
    assert not failures, f"{username} reads raw values: {failures}"
