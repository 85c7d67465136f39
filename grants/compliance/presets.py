"""Requirement presets a grant can start from: the Global Fund's six CCM eligibility requirements.

Applying a preset copies these into ordinary requirements that the
organisation then edits (owner, due rule, rules). The evidence rules use
``linked_only`` so that a requirement is met by the documents someone linked
to it, not by any minutes that happen to exist.
"""

from __future__ import annotations

from typing import Any

from core.formatting import lazy_gettext


def _evidence(kind: str, linked_only: bool = True) -> dict[str, Any]:
    return {"rule": "evidence_verified", "params": {"kind": kind, "linked_only": linked_only}}


GLOBAL_FUND_CCM_ELIGIBILITY: list[dict[str, Any]] = [
    {
        "code": "ER1",
        "title": "Transparent and inclusive funding request development process",
        "category": "community_inclusion",
        "clause": "CCM Eligibility Requirement 1: the funding request is developed through a transparent, "
        "documented and inclusive process engaging a broad range of stakeholders, including key populations.",
        "frequency": "once",
        "expected_evidence": "minutes,attendance_summary",
        "rules": [_evidence("minutes"), _evidence("attendance_summary")],
    },
    {
        "code": "ER2",
        "title": "Open and transparent Principal Recipient selection",
        "category": "governance",
        "clause": "CCM Eligibility Requirement 2: Principal Recipients are nominated through a transparent, "
        "documented process with clear criteria; conflicts of interest are managed.",
        "frequency": "once",
        "expected_evidence": "minutes,report",
        "rules": [_evidence("minutes"), _evidence("report")],
    },
    {
        "code": "ER3",
        "title": "Oversight plan for all financing, implemented",
        "category": "governance",
        "clause": "CCM Eligibility Requirement 3: an oversight plan for all Global Fund financing, with "
        "oversight activities, constituencies engaged and use of findings.",
        "frequency": "annual",
        "expected_evidence": "report,minutes",
        "rules": [_evidence("report")],
    },
    {
        "code": "ER4",
        "title": "Representation of affected communities, key populations and people living with the diseases",
        "category": "community_inclusion",
        "clause": "CCM Eligibility Requirement 4: members include people living with and affected by the "
        "diseases and key populations, elected by their own sectors.",
        "frequency": "annual",
        "expected_evidence": "minutes,attendance_summary",
        "rules": [_evidence("minutes"), _evidence("attendance_summary")],
    },
    {
        "code": "ER5",
        "title": "Non-government members selected through documented, transparent processes",
        "category": "governance",
        "clause": "CCM Eligibility Requirement 5: non-government members are selected by their own "
        "constituencies through documented, transparent processes.",
        "frequency": "annual",
        "expected_evidence": "minutes",
        "rules": [_evidence("minutes")],
    },
    {
        "code": "ER6",
        "title": "Conflict of interest policy applied to all members",
        "category": "governance",
        "clause": "CCM Eligibility Requirement 6: a conflict of interest policy applies to all members; "
        "declarations are collected and conflicts managed and documented.",
        "frequency": "annual",
        "expected_evidence": "policy,other",
        "rules": [_evidence("policy")],
    },
]

PRESETS: dict[str, dict[str, Any]] = {
    "gf_ccm_eligibility": {
        "label": lazy_gettext("Global Fund CCM eligibility requirements (ER1–ER6)"),
        "requirements": GLOBAL_FUND_CCM_ELIGIBILITY,
    },
}
