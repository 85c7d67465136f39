"""Building the app loads every domain's contributions: grants offers what budgets and indicators give it."""

from __future__ import annotations


def test_budgets_and_indicators_contribute_rules_targets_missing_checks_and_datasets_when_the_app_is_built(app):
    from core.datasets import DATASETS
    from grants.compliance.rules import RULES
    from grants.deadlines.missing import MISSING_WORK
    from grants.evidence.targets import TARGETS

    # The order people know, whatever order the domains loaded in.
    assert RULES.keys() == [
        "evidence_verified",
        "indicator_achievement",
        "budget_variance",
        "report_submitted",
        "consultation_representation",
        "meeting_count",
    ]
    assert TARGETS.keys() == [
        "consultation",
        "indicator",
        "indicator_result",
        "budget_line",
        "expenditure",
        "requirement",
    ]
    assert MISSING_WORK.keys()[:3] == [
        "indicators_without_results",
        "budget_lines_over_threshold",
        "evidence_awaiting_verification",
    ]
    assert DATASETS.keys() == [
        "reporting_periods",
        "indicator_progress",
        "indicator_progress_by_category",
        "budget_vs_actual",
        "budget_vs_actual_categories",
        "expenditure_ledger",
        "variance_flags",
        "evidence_register",
        "requirement_status",
    ]
    from core.datasets import FIGURES

    assert FIGURES.keys() == ["indicator", "budget_line", "cost_category", "requirement"]
    assert RULES["budget_variance"].evaluate.__module__ == "budgets.contributions"
    assert RULES["indicator_achievement"].evaluate.__module__ == "indicators.contributions"
    assert TARGETS["budget_line"].model.__module__ == "budgets.models"
    assert TARGETS["indicator_result"].model.__module__ == "indicators.models"


def test_exports_lists_the_datasets_the_domains_contributed(app):
    from exports.datasets import all_datasets, catalogue

    assert list(all_datasets()) == list(catalogue().datasets)
    assert catalogue().datasets["variance_flags"][:3] == ["level", "code", "name"]


def test_the_grant_page_shows_panels_from_every_domain(app):
    from grants.page import PANELS

    modules = {provider.__module__ for provider in PANELS.values()}
    assert {"budgets.views", "indicators.views", "grants.deadlines.views", "exports.views"} <= modules
