"""Progress: achievement per period and cumulative, the on-track band, the Global Fund rating, the IPTT rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import event

from core.errors import DomainValidationError
from grants.models import Grant, ReportingPeriod
from indicators import progress, services
from indicators.models import Indicator

D = Decimal


@pytest.fixture
def s(app, ind):
    from core.extensions import db

    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def figures(s, world, ind):
    """GA-1's S1 and S2: targets and results that beat some targets and miss others."""
    program = s.get(User, world.users["Program"])
    s1, s2 = s.get(ReportingPeriod, world.period_a1), s.get(ReportingPeriod, ind.period_a2)
    coverage, trained, groups = (s.get(Indicator, i) for i in (ind.coverage, ind.trained, ind.groups))
    services.set_target(
        s, coverage, s1, numerator=50, denominator=100, disaggregation={"country=LC": (30, 60), "country=GD": (20, 40)}
    )
    services.set_target(s, coverage, s2, numerator=60, denominator=100)
    services.record_result(
        s,
        coverage,
        s1,
        user=program,
        numerator=55,
        denominator=100,
        status="submitted",
        disaggregation={"country=LC": (40, 60), "country=GD": (15, 40)},
    )
    services.record_result(s, coverage, s2, user=program, numerator=40, denominator=100)  # a draft
    services.set_target(s, trained, s1, value=40, disaggregation={"country=LC": 25, "country=GD": 15})
    services.set_target(s, trained, s2, value=60)
    services.record_result(
        s,
        trained,
        s1,
        user=program,
        value=46,
        status="submitted",
        disaggregation={"country=LC": 30, "country=GD": 16, "gender=F": 40, "gender=M": 6},
    )
    services.record_result(s, trained, s2, user=program, value=27, status="submitted")
    services.set_target(s, groups, s1, value=1)
    services.set_target(s, groups, s2, value=2)
    services.record_result(s, groups, s1, user=program, value=2, status="submitted")
    services.record_result(s, groups, s2, user=program, value=1, status="submitted")
    s.commit()


def rows_by(rows):
    return {(r.indicator_code, r.period_label): r for r in rows}


@pytest.mark.parametrize(
    ("pct", "expected"),
    [
        ("130", "A1"),
        ("100.01", "A1"),
        ("100", "A2"),
        ("90", "A2"),
        ("89.99", "B1"),
        ("60", "B1"),
        ("59.99", "B2"),
        ("30", "B2"),
        ("29.99", "C"),
        ("0", "C"),
    ],
)
def test_global_fund_rating_scale(pct, expected):
    assert progress.rating(D(pct)) == expected


def test_no_rating_without_figures():
    assert progress.rating(None) is None
    assert progress.achievement(None, D(3)) is None and progress.achievement(D(3), None) is None


@pytest.mark.parametrize(
    ("pct", "band", "on_track"),
    [("84.99", "behind", False), ("85", "on_track", True), ("115", "on_track", True), ("115.01", "ahead", True)],
)
def test_on_track_band_is_fifteen_percent_either_side_and_ahead_is_not_off_track(pct, band, on_track):
    assert progress.band(D(pct)) == band
    assert (D(pct) >= progress.ON_TRACK_FLOOR) is on_track


def test_decrease_is_good_inverts_the_achievement_ratio():
    # Target: at most 10 incidents. 8 happened: better than target.
    assert progress.achievement(D(10), D(8), "decrease") == D("125.00")
    assert progress.achievement(D(10), D(20), "decrease") == D("50.00")
    assert progress.achievement(D(10), D(8), "increase") == D("80.00")
    assert progress.achievement(D(0), D(0), "decrease") == D("100.00")
    assert progress.achievement(D(10), D(0), "decrease") is None  # no meaningful ratio


def test_period_achievement_rating_and_band(s, world, figures):
    rows = rows_by(progress.indicator_progress(s, world.grant_a))
    coverage_s1 = rows[("KP-1c", "S1")]
    assert (coverage_s1.target, coverage_s1.actual) == (D(50), D(55))
    assert coverage_s1.achievement_pct == D("110.00") and coverage_s1.rating == "A1"
    assert coverage_s1.on_track is True and coverage_s1.band == "on_track"
    trained_s2 = rows[("T-1", "S2")]
    assert trained_s2.achievement_pct == D("45.00") and trained_s2.rating == "B2"
    assert trained_s2.on_track is False and trained_s2.band == "behind"


def test_cumulative_sum_mode_adds_periods_up(s, world, figures):
    trained_s2 = rows_by(progress.indicator_progress(s, world.grant_a))[("T-1", "S2")]
    assert trained_s2.cumulative_target == D(100) and trained_s2.cumulative_actual == D(73)
    assert trained_s2.cumulative_achievement_pct == D("73.00") and trained_s2.cumulative_rating == "B1"
    # Life-of-grant target 100: 73 reached so far.
    assert trained_s2.lop_achievement_pct == D("73.00")


def test_cumulative_percentage_is_summed_numerators_over_summed_denominators(s, world, figures):
    coverage_s2 = rows_by(progress.indicator_progress(s, world.grant_a))[("KP-1c", "S2")]
    # (55 + 40) / (100 + 100) = 47.5%; targets (50 + 60) / 200 = 55%.
    assert coverage_s2.cumulative_actual == D("47.5") and coverage_s2.cumulative_target == D(55)
    assert coverage_s2.cumulative_achievement_pct == D("86.36")


def test_cumulative_maximum_mode_keeps_the_highest_level(s, world, figures):
    groups_s2 = rows_by(progress.indicator_progress(s, world.grant_a))[("G-1", "S2")]
    assert groups_s2.actual == D(1) and groups_s2.cumulative_actual == D(2)
    assert groups_s2.cumulative_target == D(2) and groups_s2.cumulative_achievement_pct == D("100.00")
    assert groups_s2.lop_achievement_pct == D("50.00")  # 2 of the 4 groups of the life of the grant


def test_cumulative_latest_mode_takes_the_most_recent_period(s, world, ind):
    program = s.get(User, world.users["Program"])
    grant = s.get(Grant, world.grant_a)
    members = services.create_indicator(s, grant, code="M-1", name="Active members", cumulative_mode="latest")
    s1, s2 = s.get(ReportingPeriod, world.period_a1), s.get(ReportingPeriod, ind.period_a2)
    services.set_target(s, members, s1, value=50)
    services.set_target(s, members, s2, value=60)
    services.record_result(s, members, s1, user=program, value=70)
    services.record_result(s, members, s2, user=program, value=54)
    row = rows_by(progress.indicator_progress(s, world.grant_a))[("M-1", "S2")]
    assert (row.cumulative_target, row.cumulative_actual, row.cumulative_achievement_pct) == (D(60), D(54), D("90.00"))


def test_donor_view_leaves_drafts_out(s, world, figures):
    everything = rows_by(progress.indicator_progress(s, world.grant_a))
    submitted_only = rows_by(progress.indicator_progress(s, world.grant_a, include_drafts=False))
    assert everything[("KP-1c", "S2")].actual == D(40) and everything[("KP-1c", "S2")].result_status == "draft"
    assert submitted_only[("KP-1c", "S2")].actual is None


def test_progress_filtered_by_one_country(s, world, figures):
    rows = rows_by(progress.indicator_progress(s, world.grant_a, disaggregation="country=GD"))
    coverage = rows[("KP-1c", "S1")]
    assert coverage.disaggregation == "country=GD"
    assert (coverage.target, coverage.actual, coverage.achievement_pct) == (D(50), D("37.5"), D("75.00"))
    trained = rows[("T-1", "S1")]
    assert (trained.target, trained.actual) == (D(15), D(16))
    # T-1's life-of-grant target (100) is the total's: GD's share is not measured against it.
    assert trained.lop_target == D(100) and trained.lop_achievement_pct is None
    groups = rows[("G-1", "S1")]
    assert groups.applicable is False and groups.actual is None


def test_one_period_only_keeps_cumulative_figures_from_the_start(s, world, ind, figures):
    rows = progress.indicator_progress(s, world.grant_a, period_id=ind.period_a2)
    assert {r.period_label for r in rows} == {"S2"}
    assert rows_by(rows)[("T-1", "S2")].cumulative_actual == D(73)


def test_period_of_another_grant_and_unknown_category_are_refused(s, world, figures):
    with pytest.raises(DomainValidationError) as caught:
        progress.indicator_progress(s, world.grant_a, period_id=world.period_b1)
    assert "is not a period of GA-1" in caught.value.errors["period"][0]
    with pytest.raises(DomainValidationError):
        progress.indicator_progress(s, world.grant_a, disaggregation="country=ZZ")


def test_indicator_achievement_per_period_and_to_date(s, world, ind, figures):
    assert progress.indicator_achievement(s, ind.trained, world.period_a1) == D("115.00")
    # To date against the life-of-grant target of 100: 73 reached.
    assert progress.indicator_achievement(s, ind.trained) == D("73.00")
    # KP-1c has no life-of-grant target: cumulative against cumulative target.
    assert progress.indicator_achievement(s, ind.coverage) == D("86.36")


def test_indicator_achievement_is_none_without_results(s, world, ind):
    assert progress.indicator_achievement(s, ind.groups) is None


def test_rating_summary_counts_the_latest_reported_period(s, world, figures):
    rows = progress.indicator_progress(s, world.grant_a)
    assert progress.latest_reported_period(rows)[1] == "S2"
    # S2: KP-1c 66.67% B1, T-1 45% B2, G-1 50% B2.
    assert progress.rating_summary(rows) == {"A1": 0, "A2": 0, "B1": 1, "B2": 2, "C": 0, "not rated": 0}


def test_progress_runs_a_fixed_number_of_queries_whatever_the_number_of_indicators(s, world, ind, figures):
    def queries_for_progress() -> int:
        statements: list[str] = []
        engine = s.get_bind()

        def count(*args, **kwargs):
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            s.expunge_all()  # a fresh identity map each time: count what a new request would run
            progress.indicator_progress(s, world.grant_a)
            progress.indicator_progress(s, world.grant_a, disaggregation="country=LC")
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    before = queries_for_progress()
    grant = s.get(Grant, world.grant_a)
    program = s.get(User, world.users["Program"])
    for index in range(6):
        extra = services.create_indicator(s, grant, code=f"X-{index}", name=f"Extra {index}", dimensions=["country"])
        services.set_target(
            s, extra, s.get(ReportingPeriod, world.period_a1), value=10, disaggregation={"country=LC": 10}
        )
        services.record_result(
            s, extra, s.get(ReportingPeriod, world.period_a1), user=program, value=8, disaggregation={"country=LC": 8}
        )
    s.commit()
    assert queries_for_progress() == before


def test_a_result_for_a_period_still_to_come_does_not_make_it_the_latest_reported(s, world, figures):
    from datetime import timedelta

    rows = progress.indicator_progress(s, world.grant_a)
    s2_start = next(row.period_start for row in rows if row.period_label == "S2")
    assert progress.latest_reported_period(rows, today=s2_start - timedelta(days=1))[1] == "S1"
    assert progress.latest_reported_period(rows, today=s2_start)[1] == "S2"
    before = progress.rating_summary(rows, today=s2_start - timedelta(days=1))
    assert sum(before.values()) == 3 and before != progress.rating_summary(rows, today=s2_start)


def test_the_to_date_rating_agrees_with_the_to_date_percentage_shown_beside_it(s, world, ind, figures):
    table = progress.iptt_table(progress.indicator_progress(s, world.grant_a))
    trained = table[ind.trained]
    assert trained["to_date_pct"] == D("73.00")  # against the life-of-grant target of 100
    assert trained["to_date_rating"] == "B1"
    for entry in table.values():
        assert entry["to_date_rating"] == progress.rating(entry["to_date_pct"])


def test_the_legend_is_written_from_the_rating_table():
    assert progress.rating_legend() == "A1 above 100%, A2 90–100%, B1 60–89%, B2 30–59%, C below 30%"
    assert [progress.rating(D(p)) for p in ("100.01", "100", "90", "89.99", "60", "59.9", "30", "29.99")] == [
        "A1",
        "A2",
        "A2",
        "B1",
        "B1",
        "B2",
        "B2",
        "C",
    ]
