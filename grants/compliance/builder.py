"""The requirement builder: rules chosen from drop-downs, read back as one sentence. No JSON typed.

Plain functions (no Flask). ``rule_fields`` lists, for a grant, each rule's
parameters with the choices a person picks from (coordinating bodies,
constituencies, the grant's indicators, evidence kinds, cost categories,
counts); ``rules_from_form`` turns the submitted fields back into the rules the
API takes as JSON, validated by the same ``rule_errors``; ``describe_requirement``
says what a requirement asks in words ("at least 2 RCM meetings with at least
1 sex worker representative per semester").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import fields as mfields
from marshmallow import validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.formatting import gettext as _
from core.formatting import lazy_gettext, ngettext, pct
from grants.compliance.models import FREQUENCY_LABELS, Frequency, Requirement, RequirementCategory
from grants.compliance.rules import RULES, fmt_day, representatives
from grants.evidence.models import ATTENDANCE, KEY_POPULATIONS, KIND_LABELS, CoordinatingBody, EvidenceKind
from grants.evidence.targets import TARGETS
from grants.models import Grant

MAX_RULES = 5  # rule rows a form offers; a requirement rarely needs more than two

CATEGORY_LABELS = {
    RequirementCategory.community_inclusion: lazy_gettext("Community inclusion"),
    RequirementCategory.governance: lazy_gettext("Governance"),
    RequirementCategory.reporting: lazy_gettext("Reporting"),
    RequirementCategory.financial: lazy_gettext("Financial"),
    RequirementCategory.programmatic: lazy_gettext("Programmatic"),
    RequirementCategory.audit: lazy_gettext("Audit"),
    RequirementCategory.safeguarding: lazy_gettext("Safeguarding"),
}
# The window drop-down, in the order people think of them.
WINDOW_CHOICES = [
    (Frequency.per_period, lazy_gettext("Each reporting period")),
    (Frequency.month, lazy_gettext("Each month")),
    (Frequency.quarter, lazy_gettext("Each quarter")),
    (Frequency.semester, lazy_gettext("Each semester (six months)")),
    (Frequency.annual, lazy_gettext("Each grant year")),
    (Frequency.grant, lazy_gettext("The whole grant")),
    (Frequency.custom, lazy_gettext("Between two dates")),
    (Frequency.once, lazy_gettext("Once, by a due date")),
]
PARAM_LABELS = {
    "kind": lazy_gettext("Evidence kind"),
    "min_count": lazy_gettext("At least (people / items)"),
    "linked_only": lazy_gettext("Only items linked to this requirement"),
    "grace_days": lazy_gettext("Days of grace after the due date"),
    "warn_days": lazy_gettext("Warn this many days before"),
    "body": lazy_gettext("Coordinating body"),
    "population": lazy_gettext("Constituency"),
    "shortfall_status": lazy_gettext("A short meeting makes it"),
    "min_meetings": lazy_gettext("At least (meetings)"),
    "indicator_id": lazy_gettext("Indicator"),
    "min_percent": lazy_gettext("At least (percent of target)"),
    "at_risk_percent": lazy_gettext("At risk below (percent of target)"),
    "cost_categories": lazy_gettext("Cost categories (none: all)"),
}
SHORTFALL_LABELS = {"at_risk": lazy_gettext("at risk"), "not_met": lazy_gettext("not met")}


@dataclass
class ParamField:
    """One parameter of a rule as a form shows it."""

    name: str
    label: str
    widget: str  # "select", "multiselect", "number", "checkbox"
    choices: list[tuple[str, str]] = field(default_factory=list)
    default: Any = None
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    step: str = "1"


@dataclass
class RuleChoice:
    name: str
    label: str
    params: list[ParamField]


def _range(schema_field: mfields.Field) -> tuple[int | None, int | None]:
    for validator in schema_field.validators:
        if isinstance(validator, validate.Range):
            low = int(validator.min) if validator.min is not None else None
            high = int(validator.max) if validator.max is not None else None
            return low, high
    return None, None


def _one_of(schema_field: mfields.Field) -> list[str]:
    for validator in schema_field.validators:
        if isinstance(validator, validate.OneOf):
            return [str(choice) for choice in validator.choices]
    return []


def _grant_records(session: Session, kind: str, grant_id: int) -> list[tuple[str, str]]:
    target = TARGETS.get(kind)
    if target is None:
        return []
    model = target.model
    rows = session.scalars(select(model).where(model.grant_id == grant_id).order_by(model.id))
    return [(str(row.id), str(row)) for row in rows]


def _choice_labels(name: str, values: list[str]) -> list[tuple[str, str]]:
    labels: Mapping[str, str] = {}
    if name == "kind":
        labels = {kind.value: label for kind, label in KIND_LABELS.items()}
    elif name == "population":
        labels = {key: _(label) for key, label in ATTENDANCE.items()}
    elif name == "shortfall_status":
        labels = SHORTFALL_LABELS
    return [(value, str(labels.get(value, value.replace("_", " ")))) for value in values]


def _param_field(session: Session, grant: Grant, name: str, schema_field: mfields.Field) -> ParamField:
    label = str(PARAM_LABELS.get(name, name.replace("_", " ").capitalize()))
    required = bool(schema_field.required)
    default = schema_field.load_default if not callable(schema_field.load_default) else None
    if name == "body":
        bodies = session.scalars(select(CoordinatingBody).order_by(CoordinatingBody.code))
        choices = [(body.code, f"{body.code} — {body.name}") for body in bodies]
        return ParamField(name, label, "select", choices, required=True)
    if name == "indicator_id":
        return ParamField(name, label, "select", _grant_records(session, "indicator", grant.id), required=True)
    if name == "cost_categories":
        categories = [
            (str(c.get("code")), f"{c.get('code')} {c.get('name')}")
            for c in (grant.funder.cost_categories if grant.funder else None) or []
            if isinstance(c, dict) and c.get("code")
        ]
        return ParamField(name, label, "multiselect", categories)
    allowed = _one_of(schema_field)
    if allowed:
        return ParamField(name, label, "select", _choice_labels(name, allowed), default=default, required=required)
    if isinstance(schema_field, mfields.Boolean):
        return ParamField(name, label, "checkbox", default=bool(default))
    low, high = _range(schema_field)
    if isinstance(schema_field, mfields.Integer):
        return ParamField(name, label, "number", default=default, required=required, minimum=low, maximum=high)
    if isinstance(schema_field, mfields.Decimal):
        shown = None if default is None else f"{default.normalize():f}"
        return ParamField(name, label, "number", default=shown, minimum=low, maximum=high, step="0.1")
    return ParamField(name, label, "select", [], default=default, required=required)


def rule_fields(session: Session, grant: Grant) -> list[RuleChoice]:
    """Every rule type with its parameters as drop-downs and counts, for this grant."""
    return [
        RuleChoice(
            rule.name,
            rule.label,
            [_param_field(session, grant, name, f) for name, f in rule.schema().fields.items()],
        )
        for rule in RULES.values()
    ]


def rules_from_form(choices: list[RuleChoice], get: Callable[[str], str | None], getlist: Any) -> list[dict[str, Any]]:
    """The rules picked in the form (rows ``rule-N-rule`` with ``rule-N-<param>``), as the API's JSON.

    Empty boxes fall back to the rule's defaults; the result is checked by
    ``rule_errors`` when the requirement is saved, exactly as the API's JSON is.
    """
    by_name = {choice.name: choice for choice in choices}
    rules = []
    for index in range(MAX_RULES):
        name = (get(f"rule-{index}-rule") or "").strip()
        if not name:
            continue
        choice = by_name.get(name)
        if choice is None:
            rules.append({"rule": name, "params": {}})  # refused by rule_errors, in words
            continue
        params: dict[str, Any] = {}
        for param in choice.params:
            key = f"rule-{index}-{name}-{param.name}"
            if param.widget == "checkbox":
                params[param.name] = get(key) in ("y", "on", "true", "1")
            elif param.widget == "multiselect":
                values = [v for v in getlist(key) if v]
                if values:
                    params[param.name] = values
            else:
                raw = (get(key) or "").strip()
                if not raw:
                    continue
                if param.widget == "number" and param.step == "1" or param.name == "indicator_id":
                    params[param.name] = int(raw) if raw.lstrip("-").isdigit() else raw
                else:
                    params[param.name] = raw
        rules.append({"rule": name, "params": params})
    return rules


# ---------------------------------------------------------------- the requirement in words


def _items(count: int, kind: str) -> str:
    label = KIND_LABELS.get(EvidenceKind(kind), kind) if kind in EvidenceKind.__members__ else kind
    if count == 1:
        return _("verified %(kind)s", kind=label)
    return _("at least %(count)s verified %(kind)s items", count=count, kind=label)


def describe_rule(session: Session, entry: Any) -> str:
    """One rule in words; an unreadable rule is named as such, never shown as JSON."""
    if not isinstance(entry, dict) or entry.get("rule") not in RULES:
        return _("a rule that is no longer known")
    name = entry["rule"]
    rule = RULES[name]
    try:
        params = rule.schema().load(entry.get("params") or {})
    except Exception:  # stored before a rule changed: say so
        return _("%(rule)s (its settings need checking)", rule=str(rule.label).lower())
    if name == "meeting_count":
        return ngettext(
            "at least %(num)d %(body)s meeting with at least %(who)s",
            "at least %(num)d %(body)s meetings with at least %(who)s",
            params["min_meetings"],
            body=params["body"],
            who=representatives(params["population"], params["min_count"]),
        )
    if name == "consultation_representation":
        return _(
            "at least %(who)s at every %(body)s meeting",
            who=representatives(params["population"], params["min_count"]),
            body=params["body"],
        )
    if name == "evidence_verified":
        text = _items(params["min_count"], params["kind"])
        return _("%(items)s linked to this requirement", items=text) if params.get("linked_only") else text
    if name == "report_submitted":
        grace = params.get("grace_days") or 0
        if grace:
            return ngettext(
                "the report submitted by its due date (or within %(num)d day)",
                "the report submitted by its due date (or within %(num)d days)",
                grace,
            )
        return _("the report submitted by its due date")
    if name == "indicator_achievement":
        target = TARGETS.get("indicator")
        indicator = session.get(target.model, params["indicator_id"]) if target else None
        code = getattr(indicator, "code", None) or _("indicator #%(id)s", id=params["indicator_id"])
        return _(
            "%(indicator)s at or above %(percent)s of its target",
            indicator=code,
            percent=pct(params["min_percent"], 2),
        )
    if name == "budget_variance":
        wanted = params.get("cost_categories") or []
        if wanted:
            return _(
                "spending within the funder's variance rules in cost categories %(codes)s", codes=", ".join(wanted)
            )
        return _("spending within the funder's variance rules")
    label = str(rule.label)
    return label[0].lower() + label[1:]


def describe_window(requirement: Requirement) -> str:
    frequency = requirement.frequency
    if frequency == Frequency.custom and requirement.window_start and requirement.window_end:
        return _(
            "between %(start)s and %(end)s",
            start=fmt_day(requirement.window_start),
            end=fmt_day(requirement.window_end),
        )
    if frequency == Frequency.once:
        return _("by %(date)s", date=fmt_day(requirement.due_date)) if requirement.due_date else _("once")
    return str(FREQUENCY_LABELS.get(frequency, FREQUENCY_LABELS[Frequency.per_period]))


def describe_requirement(session: Session, requirement: Requirement) -> str:
    """What the requirement asks, as one sentence: its rules, its window and its due rule."""
    entries = list(requirement.rules or []) or [
        {"rule": "evidence_verified", "params": {"kind": kind}} for kind in requirement.expected_kinds
    ]
    if not entries:
        return _("No rule is set yet: choose one so the requirement can be judged.")
    parts = [describe_rule(session, entry) for entry in entries]
    rules = parts[0]
    for part in parts[1:]:
        rules = _("%(first)s and %(then)s", first=rules, then=part)
    sentence = _("%(rules)s %(window)s", rules=rules, window=describe_window(requirement))
    if requirement.due_days and requirement.frequency != Frequency.once:
        sentence = ngettext(
            "%(sentence)s, due %(num)d day after each window ends",
            "%(sentence)s, due %(num)d days after each window ends",
            requirement.due_days,
            sentence=sentence,
        )
    return sentence[0].upper() + sentence[1:] + "."


def population_choices() -> list[tuple[str, str]]:
    return [(key, _(ATTENDANCE[key])) for key in KEY_POPULATIONS]
