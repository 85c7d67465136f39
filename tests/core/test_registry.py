"""The one registration mechanism: named contributions, listed in a stable, chosen order."""

from __future__ import annotations

import pytest

from core.registry import Registry


def test_contributions_are_listed_in_the_order_they_were_added():
    panels: Registry[str] = Registry("panel")
    panels.add("budget", "B")
    panels.add("evidence", "E")
    assert panels.keys() == ["budget", "evidence"]
    assert panels.values() == ["B", "E"]
    assert panels.items() == [("budget", "B"), ("evidence", "E")]
    assert len(panels) == 2 and list(panels) == ["budget", "evidence"]


def test_order_places_a_late_contribution_where_readers_expect_it():
    datasets: Registry[str] = Registry("dataset")
    datasets.add("requirement_status", "R", order=50)
    datasets.add("budget_vs_actual", "B", order=30)
    datasets.add("indicator_progress", "I", order=20)
    datasets.add("budget_vs_actual_categories", "C", order=30)  # same order: kept in the order added
    assert datasets.keys() == [
        "indicator_progress",
        "budget_vs_actual",
        "budget_vs_actual_categories",
        "requirement_status",
    ]


def test_adding_a_name_again_replaces_it_in_place():
    rules: Registry[int] = Registry("rule")
    rules.add("a", 1)
    rules.add("b", 2)
    rules.add("a", 3)  # a module loaded a second time
    assert rules.items() == [("a", 3), ("b", 2)]


def test_an_unknown_name_is_none_with_get_and_a_clear_error_with_brackets():
    rules: Registry[int] = Registry("requirement rule")
    rules.add("evidence_verified", 1)
    assert rules.get("nope") is None
    assert "evidence_verified" in rules and "nope" not in rules
    with pytest.raises(KeyError, match="no requirement rule named 'nope'"):
        rules["nope"]


def test_a_contribution_can_be_removed():
    checks: Registry[str] = Registry("check")
    checks.add("test", "T")
    assert checks.remove("test") == "T"
    assert checks.remove("test") is None
    assert not checks


def test_replaced_holds_only_the_given_items_then_restores_everything():
    checks: Registry[str] = Registry("check")
    checks.add("indicators", "I", order=10)
    checks.add("budgets", "B", order=20)
    with checks.replaced({"only": "O"}) as inside:
        assert inside.items() == [("only", "O")]
        inside.add("extra", "X")
    assert checks.items() == [("indicators", "I"), ("budgets", "B")]
    with checks.replaced():
        assert len(checks) == 0
    assert checks.keys() == ["indicators", "budgets"]
