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

from grants.compliance.models import FREQUENCY_LABELS, Frequency, Requirement, RequirementCategory
from grants.compliance.rules import REPRESENTATIVE, RULES, fmt_day
from grants.evidence.models import ATTENDANCE, KEY_POPULATIONS, KIND_LABELS, CoordinatingBody, EvidenceKind
from grants.evidence.targets import TARGETS
from grants.models import Grant

MAX_RULES = 5  # rule rows a form offers; a requirement rarely needs more than two

CATEGORY_LABELS = {
    RequirementCategory.community_inclusion: "Community inclusion",
    RequirementCategory.governance: "Governance",
    RequirementCategory.reporting: "Reporting",
    RequirementCategory.financial: "Financial",
    RequirementCategory.programmatic: "Programmatic",
    RequirementCategory.audit: "Audit",
    RequirementCategory.safeguarding: "Safeguarding",
}
# The window drop-down, in the order people think of them.
WINDOW_CHOICES = [
    (Frequency.per_period, "Each reporting period"),
    (Frequency.month, "Each month"),
    (Frequency.quarter, "Each quarter"),
    (Frequency.semester, "Each semester (six months)"),
    (Frequency.annual, "Each grant year"),
    (Frequency.grant, "The whole grant"),
    (Frequency.custom, "Between two dates"),
    (Frequency.once, "Once, by a due date"),
]
PARAM_LABELS = {
    "kind": "Evidence kind",
    "min_count": "At least (people / items)",
    "linked_only": "Only items linked to this requirement",
    "grace_days": "Days of grace after the due date",
    "warn_days": "Warn this many days before",
    "body": "Coordinating body",
    "population": "Constituency",
    "shortfall_status": "A short meeting makes it",
    "min_meetings": "At least (meetings)",
    "indicator_id": "Indicator",
    "min_percent": "At least (% of target)",
    "at_risk_percent": "At risk below (% of target)",
    "cost_categories": "Cost categories (none: all)",
}
SHORTFALL_LABELS = {"at_risk": "at risk", "not_met": "not met"}


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
        labels = ATTENDANCE
    elif name == "shortfall_status":
        labels = SHORTFALL_LABELS
    return [(value, labels.get(value, value.replace("_", " "))) for value in values]


def _param_field(session: Session, grant: Grant, name: str, schema_field: mfields.Field) -> ParamField:
    label = PARAM_LABELS.get(name, name.replace("_", " ").capitalize())
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


def _people(population: str, count: int) -> str:
    who = REPRESENTATIVE.get(population, population.replace("_", " "))
    return f"{count} {who} representative" + ("" if count == 1 else "s")


def _items(count: int, kind: str) -> str:
    label = KIND_LABELS.get(EvidenceKind(kind), kind) if kind in EvidenceKind.__members__ else kind
    if count == 1:
        return f"verified {label}"
    return f"at least {count} verified {label} items"


def describe_rule(session: Session, entry: Any) -> str:
    """One rule in words; an unreadable rule is named as such, never shown as JSON."""
    if not isinstance(entry, dict) or entry.get("rule") not in RULES:
        return "a rule that is no longer known"
    name = entry["rule"]
    rule = RULES[name]
    try:
        params = rule.schema().load(entry.get("params") or {})
    except Exception:  # stored before a rule changed: say so
        return f"{rule.label.lower()} (its settings need checking)"
    if name == "meeting_count":
        meetings = "meeting" if params["min_meetings"] == 1 else "meetings"
        return (
            f"at least {params['min_meetings']} {params['body']} {meetings} "
            f"with at least {_people(params['population'], params['min_count'])}"
        )
    if name == "consultation_representation":
        return f"at least {_people(params['population'], params['min_count'])} at every {params['body']} meeting"
    if name == "evidence_verified":
        text = _items(params["min_count"], params["kind"])
        return text + (" linked to this requirement" if params.get("linked_only") else "")
    if name == "report_submitted":
        grace = params.get("grace_days") or 0
        return "the report submitted by its due date" + (f" (or within {grace} days)" if grace else "")
    if name == "indicator_achievement":
        target = TARGETS.get("indicator")
        indicator = session.get(target.model, params["indicator_id"]) if target else None
        code = getattr(indicator, "code", None) or f"indicator #{params['indicator_id']}"
        return f"{code} at or above {params['min_percent'].normalize():f}% of its target"
    if name == "budget_variance":
        wanted = params.get("cost_categories") or []
        where = f" in cost categories {', '.join(wanted)}" if wanted else ""
        return f"spending within the funder's variance rules{where}"
    return rule.label[0].lower() + rule.label[1:]


def describe_window(requirement: Requirement) -> str:
    frequency = requirement.frequency
    if frequency == Frequency.custom and requirement.window_start and requirement.window_end:
        return f"between {fmt_day(requirement.window_start)} and {fmt_day(requirement.window_end)}"
    if frequency == Frequency.once:
        return f"by {fmt_day(requirement.due_date)}" if requirement.due_date else "once"
    return FREQUENCY_LABELS.get(frequency, "per reporting period") if frequency else "per reporting period"


def describe_requirement(session: Session, requirement: Requirement) -> str:
    """What the requirement asks, as one sentence: its rules, its window and its due rule."""
    entries = list(requirement.rules or []) or [
        {"rule": "evidence_verified", "params": {"kind": kind}} for kind in requirement.expected_kinds
    ]
    if not entries:
        return "No rule is set yet: choose one so the requirement can be judged."
    parts = [describe_rule(session, entry) for entry in entries]
    sentence = " and ".join(parts) + " " + describe_window(requirement)
    if requirement.due_days and requirement.frequency != Frequency.once:
        sentence += f", due {requirement.due_days} days after each window ends"
    return sentence[0].upper() + sentence[1:] + "."


def population_choices() -> list[tuple[str, str]]:
    return [(key, ATTENDANCE[key]) for key in KEY_POPULATIONS]
