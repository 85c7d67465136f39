"""Ready mappings shipped with Grantkeeper fill the funders' own cells of real templates, end to end.

Each test gives a funder a ready mapping in one call (what the "Use a ready mapping"
button does), generates the report for a grant, and reads the file back: the
funder's own cells hold our figures, and every other part of the package is byte
for byte what the funder sent.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.conftest import _empty_database
from tests.exports.helpers import TEMPLATES

# Parts a fill may rewrite: the filled sheets, workbook.xml (recalculate on open), styles.xml (a date style).
ALWAYS_REWRITTEN = {"xl/workbook.xml", "xl/styles.xml"}


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def changed_parts(before: bytes, after: bytes) -> set[str]:
    old, new = parts(before), parts(after)
    assert set(old) <= set(new), f"parts lost: {set(old) - set(new)}"
    return {name for name in old if old[name] != new[name]} | (set(new) - set(old))


def workbook(data: bytes):
    return load_workbook(io.BytesIO(data))


def test_shipped_templates_are_the_funders_files_unchanged():
    from exports.ready import READY

    assert READY["dfid_logframe"].template_bytes() == (TEMPLATES / "real" / "DFID_Template.xlsx").read_bytes()
    assert READY["pepfar_psnuxim"].template_bytes() == (TEMPLATES / "real" / "COP25_PSNUxIM_Template.xlsx").read_bytes()


def test_every_ready_mapping_passes_the_one_check_on_its_template(app):
    from exports.datasets import catalogue
    from exports.mapping import check_mapping, parse_mapping
    from exports.ready import ready_mappings
    from exports.xlsx.inspector import inspect_template

    for ready in ready_mappings():
        spec = parse_mapping(ready.mapping_text(), catalogue())
        assert check_mapping(spec, inspect_template(ready.template_bytes())) == [], ready.key


# ---------------------------------------------------------------- UK aid logframe


@pytest.fixture
def fcdo_grant(app, world, session):
    """A grant funded by FCDO whose indicators carry FCDO's codes FCDO-1 and FCDO-OC-1."""
    from grants import services as grants
    from indicators import services as indicators

    fcdo = grants.create_funder(session, name="FCDO", code="FCDO", default_currency="GBP")
    grant = grants.create_grant(
        session,
        funder=fcdo,
        reference="UK-2026-01",
        title="Safer communities programme",
        recipient="Coalition",
        currency="GBP",
        amount=Decimal("250000.00"),
        start_date=dt.date(2026, 1, 1),
        end_date=dt.date(2027, 12, 31),
        countries="LC",
    )
    periods = grants.generate_periods(session, grant, "semester", 45)
    trained = indicators.create_indicator(
        session,
        grant,
        code="OUT-1",
        name="Number of peer educators trained",
        unit="number",
        baseline_value=Decimal("0"),
        lop_target=Decimal("120"),
        means_of_verification="Training attendance sheets (counts only)",
    )
    reached = indicators.create_indicator(
        session,
        grant,
        code="OC-1",
        name="Number of people reached with prevention services",
        unit="number",
        baseline_value=Decimal("400"),
        lop_target=Decimal("2000"),
        means_of_verification="Outreach registers",
    )
    indicators.set_indicator_code(session, trained, fcdo, "FCDO-1", "Output 1.1")
    indicators.set_indicator_code(session, reached, fcdo, "FCDO-OC-1", "Outcome 1")
    for period, (t1, t2) in zip(periods, ((30, 300), (45, 450))):
        indicators.set_target(session, trained, period, value=t1)
        indicators.set_target(session, reached, period, value=t2)
    session.commit()
    return grant.id, fcdo.id, periods[0].id


def test_dfid_logframe_fills_the_funders_results_framework(app, session, store, fcdo_grant):
    from exports import mapper, services
    from grants.models import Funder, Grant, ReportingPeriod

    grant_id, funder_id, period_id = fcdo_grant
    grant, funder = session.get(Grant, grant_id), session.get(Funder, funder_id)
    version = mapper.use_ready_mapping(session, store, funder=funder, key="dfid_logframe", user="program")
    record = services.run_export(
        session,
        store,
        grant=grant,
        period=session.get(ReportingPeriod, period_id),
        user="program",
        template=version.template,
    )
    session.commit()
    original = services.template_bytes(store, version)
    filled = services.export_bytes(store, record)

    sheet = workbook(filled)["RESULTS FRAMEWORK"]
    assert sheet["B1"].value == "Safer communities programme"
    # FCDO-1, the first output row: name, baseline, milestones = targets of periods 1 and 2, target = life of grant.
    assert sheet["B19"].value == "Number of peer educators trained"
    assert (sheet["C19"].value, sheet["D19"].value, sheet["E19"].value, sheet["F19"].value) == (0, 30, 45, 120)
    assert sheet["C21"].value == "Training attendance sheets (counts only)"
    assert (sheet["B7"].value, sheet["D7"].value, sheet["E7"].value, sheet["F7"].value) == (
        "Number of people reached with prevention services",
        300,
        450,
        2000,
    )
    # Rows whose FCDO code the grant does not use keep the funder's own labels and blanks.
    original_sheet = workbook(original)["RESULTS FRAMEWORK"]
    for ref in ("B3", "D3", "B11", "D11", "B23", "F23", "C25", "A22", "B22", "C20", "D18", "A19"):
        assert sheet[ref].value == original_sheet[ref].value, ref
    assert changed_parts(original, filled) <= {"xl/worksheets/sheet1.xml"} | ALWAYS_REWRITTEN


# ---------------------------------------------------------------- PEPFAR PSNUxIM


@pytest.fixture
def pepfar_grant(app, world, session):
    """A PEPFAR-funded grant in Lesotho with one indicator split by country and by sex."""
    from grants import services as grants
    from indicators import services as indicators

    dims = indicators.ensure_standard_dimensions(session)
    indicators.add_category(session, dims["country"], "LS", "Lesotho")
    pepfar = grants.create_funder(session, name="PEPFAR", code="PEPFAR", default_currency="USD")
    grant = grants.create_grant(
        session,
        funder=pepfar,
        reference="PEPFAR-LS-26",
        title="Key population prevention",
        recipient="Coalition",
        currency="USD",
        amount=Decimal("90000.00"),
        start_date=dt.date(2025, 10, 1),
        end_date=dt.date(2026, 9, 30),
        countries="LS",
    )
    year = grants.generate_periods(session, grant, "year", 60)[0]
    prev = indicators.create_indicator(
        session, grant, code="KP-1", name="Key populations reached", dimensions=["country", "gender"]
    )
    tested = indicators.create_indicator(session, grant, code="T-1", name="People tested", dimensions=["country"])
    indicators.set_indicator_code(session, prev, pepfar, "KP_PREV", "KP_PREV")
    indicators.set_indicator_code(session, tested, pepfar, "HTS_TST", "HTS_TST")
    indicators.set_target(
        session,
        prev,
        year,
        value=100,
        disaggregation={"country=LS": 100, "gender=F": 70, "gender=M": 30},
    )
    indicators.set_target(session, tested, year, value=250, disaggregation={"country=LS": 250})
    session.commit()
    return grant.id, pepfar.id, year.id


def test_pepfar_psnuxim_fills_the_funders_rows_and_keeps_its_formulas(app, session, store, pepfar_grant):
    from exports import mapper, services
    from grants.models import Funder, Grant, ReportingPeriod

    grant_id, funder_id, period_id = pepfar_grant
    grant, funder = session.get(Grant, grant_id), session.get(Funder, funder_id)
    version = mapper.use_ready_mapping(session, store, funder=funder, key="pepfar_psnuxim", user="program")
    record = services.run_export(
        session,
        store,
        grant=grant,
        period=session.get(ReportingPeriod, period_id),
        user="program",
        template=version.template,
    )
    session.commit()
    original = services.template_bytes(store, version)
    filled = services.export_bytes(store, record)

    book = workbook(filled)
    assert book["Home"]["B20"].value == "Lesotho"
    sheet = book["PSNUxIM"]
    rows = [[sheet.cell(row=r, column=c).value for c in (1, 2, 3, 4, 5, 7)] for r in range(15, 19)]
    assert rows == [
        ["Lesotho", "HTS_TST", None, None, None, 250],
        ["Lesotho", "KP_PREV", None, None, None, 100],
        [None, "KP_PREV", None, "Female", None, 70],
        [None, "KP_PREV", None, "Male", None, 30],
    ]
    # The funder's ID and Rollup formulas in row 15 are untouched.
    assert str(sheet["F15"].value).startswith("=$A15&") and sheet["H15"].value == "=SUM($CJ15,$CW15)"
    sheet_parts = {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"}
    assert changed_parts(original, filled) <= sheet_parts | ALWAYS_REWRITTEN | {
        "xl/calcChain.xml",
        "xl/_rels/workbook.xml.rels",
        "[Content_Types].xml",
    }


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_a_filled_logframe(app, session, store, fcdo_grant):
    from exports import mapper, services
    from exports.xlsx.recompute import recompute_caches
    from grants.models import Funder, Grant, ReportingPeriod

    grant_id, funder_id, period_id = fcdo_grant
    funder = session.get(Funder, funder_id)
    version = mapper.use_ready_mapping(session, store, funder=funder, key="dfid_logframe", user="program")
    record = services.run_export(
        session,
        store,
        grant=session.get(Grant, grant_id),
        period=session.get(ReportingPeriod, period_id),
        user="program",
        template=version.template,
    )
    converted = recompute_caches(services.export_bytes(store, record))
    assert workbook(converted)["RESULTS FRAMEWORK"]["D19"].value == 30


# ---------------------------------------------------------------- Global Fund-style progress update on the demo
# (last in the file: the tests above empty the database that the demo fills once for this module)


@pytest.fixture(scope="module")
def demo_app(app):
    from app.demo import load_demo
    from core.audit import Actor, acting_as

    _empty_database(app)
    with app.app_context(), acting_as(Actor(None, "cli", "cli")):
        load_demo(app)
    yield app
    _empty_database(app)


def test_global_fund_progress_update_is_filled_from_the_demo(demo_app):
    from budgets.report import budget_vs_actual
    from core.extensions import db
    from core.storage import store_for
    from exports import mapper, services
    from grants.compliance.services import requirement_status
    from grants.models import Funder, Grant
    from indicators.services import indicator_progress

    with demo_app.app_context():
        session = db.session
        store = store_for(demo_app.config)
        grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        funder = session.scalar(select(Funder).where(Funder.code == "RHF"))
        s1 = sorted(grant.periods, key=lambda p: p.start_date)[0]
        version = mapper.use_ready_mapping(session, store, funder=funder, key="gf_progress_update", user="finance")
        record = services.run_export(session, store, grant=grant, period=s1, user="finance", template=version.template)
        filled = services.export_bytes(store, record)
        original = services.template_bytes(store, version)
        progress = {r.indicator_code: r for r in indicator_progress(session, grant.id, s1.id, include_drafts=False)}
        categories = budget_vs_actual(session, grant.id, s1.id, by="category")
        requirements = requirement_status(session, grant.id, s1.id)
        session.rollback()

    book = workbook(filled)
    cover = book["Cover"]
    assert (cover["B3"].value, cover["B7"].value) == ("RCM-HIV-2026-SW", "S1")
    assert cover["B8"].value == dt.datetime(2026, 1, 1) and cover["B9"].value == dt.datetime(2026, 6, 30)
    programmatic = book["Programmatic"]
    for row, code in enumerate(("KP-1c", "HR-1", "CSS-1", "GOV-1"), start=4):
        expected = progress[code]
        assert programmatic[f"A{row}"].value == code  # the funder's own label, untouched
        assert programmatic[f"B{row}"].value == expected.indicator_name
        assert Decimal(str(programmatic[f"D{row}"].value)) == expected.target
        assert Decimal(str(programmatic[f"E{row}"].value)) == expected.actual
        assert programmatic[f"G{row}"].value == expected.rating
        assert programmatic[f"J{row}"].value.startswith("=IF(")  # the funder's formula stays
    financial = book["Financial"]
    assert Decimal(str(financial["B2"].value)) == categories.total.budget
    codes = [financial.cell(row=5 + i, column=1).value for i in range(len(categories.rows) + 1)]
    assert codes == [r.key for r in categories.rows] + ["TOTAL"]
    compliance = book["Compliance"]
    assert [compliance.cell(row=4 + i, column=1).value for i in range(len(requirements))] == [
        r.requirement_code for r in requirements
    ]
    disaggregation = book["Disaggregation"]
    codes = [disaggregation.cell(row=r, column=1).value for r in range(4, 44)]
    listed = [c for c in codes if c]
    assert listed == sorted(listed, key=str.lower) and {"CSS-1", "HR-1", "KP-1c"} <= set(listed)
    assert disaggregation["B4"].value == "Country" and disaggregation["C4"].value == "Saint Lucia"
    filled_sheets = {f"xl/worksheets/sheet{n}.xml" for n in range(1, 6)}
    assert changed_parts(original, filled) <= filled_sheets | ALWAYS_REWRITTEN


def test_single_figures_are_the_services_figures(demo_app):
    """One cell can hold any figure: a budget line over three scopes, a category's result, a crosswalk code."""
    from budgets.report import budget_vs_actual
    from core.extensions import db
    from exports import services
    from exports.datasets import catalogue
    from exports.mapping import parse_mapping
    from grants.compliance.services import requirement_status
    from grants.models import Grant
    from indicators.services import indicator_progress

    with demo_app.app_context():
        session = db.session
        grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        s1 = sorted(grant.periods, key=lambda p: p.start_date)[0]
        line = budget_vs_actual(session, grant.id, s1.id, by="line").rows[0]
        whole = budget_vs_actual(session, grant.id, None, by="line").rows[0]
        requirement = requirement_status(session, grant.id, s1.id)[-1]
        lc = {
            r.indicator_code: r
            for r in indicator_progress(session, grant.id, s1.id, "country=LC", include_drafts=False)
        }
        spec = parse_mapping(
            f"""
cells:
  - {{target: "S!A1", figure: budget_line, item: "{line.key}", measure: actual}}
  - {{target: "S!A2", figure: budget_line, item: "{line.key}", measure: planned, scope: cumulative}}
  - {{target: "S!A3", figure: budget_line, item: "{line.key}", measure: actual, scope: grant}}
  - {{target: "S!A4", figure: requirement, item: "{requirement.requirement_code}", measure: status}}
  - {{target: "S!A5", figure: indicator, item: HR-1, measure: result, category: country=LC}}
  - {{target: "S!A6", figure: indicator, item: "KP_PREV (FSW)", measure: code}}
  - {{target: "S!A7", source: period.label, period: 2}}
  - {{target: "S!A8", figure: indicator, item: KP-1c, measure: target, period: S2}}
""",
            catalogue(),
        )
        got = services.collect(session, spec, grant, s1).figures
        s2_target = indicator_progress(session, grant.id, sorted(grant.periods, key=lambda p: p.start_date)[1].id)
        session.rollback()

    assert got[0] == line.actual and got[1] == line.cumulative_planned and got[2] == whole.actual
    assert got[3] == requirement.status_label
    assert got[4] == lc["HR-1"].actual and got[4] is not None
    assert got[5] == "KP-1c"  # PEPFAR's crosswalk code finds the grant's own indicator
    assert got[6] == "S2"
    assert got[7] == next(r.target for r in s2_target if r.indicator_code == "KP-1c")


def test_an_unknown_item_is_named_and_nothing_is_generated(demo_app):
    from core.errors import DomainValidationError
    from core.extensions import db
    from exports import services
    from exports.datasets import catalogue
    from exports.mapping import parse_mapping
    from grants.models import Grant

    with demo_app.app_context():
        session = db.session
        grant = session.scalar(select(Grant).where(Grant.reference == "RCM-HIV-2026-SW"))
        spec = parse_mapping(
            'cells: [{target: "S!A1", figure: indicator, item: FCDO-9, measure: target},'
            ' {target: "S!A2", source: grant.title, period: 9}]',
            catalogue(),
        )
        with pytest.raises(DomainValidationError) as refused:
            services.collect(session, spec, grant, None)
        session.rollback()
    message = refused.value.errors["template"][0]
    assert "cell S!A2: the mapping asks for period 9 but RCM-HIV-2026-SW has 4 periods" in message
    assert "RCM-HIV-2026-SW has no indicator code 'FCDO-9'" in message
