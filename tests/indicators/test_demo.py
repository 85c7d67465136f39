"""The demo organisation's indicators (DEMO.md): results that beat some targets and miss others, by country and gender."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import User

from grants.models import PeriodStatus

D = Decimal


@pytest.fixture
def demo(app, world):
    from app.demo import DemoContext
    from core.audit import Actor, acting_as
    from core.extensions import db
    from grants import demo as grants_demo
    from indicators import demo as indicators_demo

    with app.app_context(), acting_as(Actor(None, "demo", "system")):
        session = db.session
        users = {
            name: session.get(User, world.users[role])
            for name, role in (
                ("admin", "Admin"),
                ("finance", "Finance"),
                ("program", "Program"),
                ("donor.gf", "Donor"),
                ("auditor", "Auditor"),
            )
        }
        ctx = DemoContext(users=users, today=dt.date(2026, 11, 29))
        grants_demo.load(session, ctx)
        indicators_demo.load(session, ctx)
        session.commit()
        yield ctx, session


def test_demo_grant_one_has_four_indicators_that_beat_some_targets_and_miss_others(demo):
    from indicators import progress

    ctx, session = demo
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    rows = progress.indicator_progress(session, hiv.id)
    assert {r.indicator_code for r in rows} == {"KP-1c", "HR-1", "CSS-1", "GOV-1"}
    ratings = {r.rating for r in rows if r.actual is not None}
    assert "A1" in ratings and ({"B1", "B2", "C"} & ratings)
    assert any(r.on_track for r in rows) and any(r.on_track is False for r in rows)
    s1 = {r.indicator_code: r for r in rows if r.period_label == "S1"}
    assert s1["KP-1c"].result_status == "verified" and s1["KP-1c"].period_status == "accepted"
    assert ctx.extra["indicators"]["CSS-1"].lop_target == D(4)


def test_demo_kp1c_has_its_donor_codes_and_country_split(demo):
    from indicators import progress

    ctx, session = demo
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    row = progress.indicator_progress(session, hiv.id, disaggregation="country=GD")[0]
    assert row.indicator_code == "KP-1c" and row.actual == D(45)
    assert row.donor_codes["PEPFAR"] == "KP_PREV (FSW)" and "GAM" in row.donor_codes
    trained = progress.indicator_progress(session, hiv.id, disaggregation="gender=F")
    assert any(r.indicator_code == "HR-1" and r.actual == D(38) for r in trained)


def test_demo_has_verified_and_submitted_results_and_grant_two_advocacy(demo):
    from indicators import progress
    from indicators.models import Result, ResultStatus

    ctx, session = demo
    statuses = {r.status for r in session.query(Result)}
    assert {ResultStatus.verified, ResultStatus.submitted, ResultStatus.draft} <= statuses
    assert all(r.verified_by_id != r.entered_by_id for r in session.query(Result) if r.status == ResultStatus.verified)
    core = ctx.grants["CNF-CORE-2026"]
    codes = {r.indicator_code for r in progress.indicator_progress(session, core.id)}
    assert codes == {"ADV-1", "ADV-2", "ORG-1"}


def test_demo_leaves_the_accepted_semester_accepted(demo):
    ctx, _ = demo
    periods = sorted(ctx.grants["RCM-HIV-2026-SW"].periods, key=lambda p: p.start_date)
    assert periods[0].status == PeriodStatus.accepted
