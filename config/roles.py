"""The six roles, defined in configuration (FAB_ROLES) rather than in the database.

``RECORD_ACCESS`` says, per view/API permission name (``class_permission_name``),
what each role may do with that kind of record:

- ``write``: list, show, add, edit, delete (views and API)
- ``edit``: list, show, edit — change existing records, not create or delete them
- ``read``: list, show, download
- ``upload``: list, show, download, add, edit — add and change, never delete (funder templates:
  a program lead uploads and maps the templates of their own grants' funders)
- ``None``: nothing

Row-level rules (which grants a user sees) live in ``grants.services`` and
``grants.access``; these only say *which kinds* of record a role may read or
change. A new domain adds its rows here and its menu names to ``MENUS``.
"""

from __future__ import annotations

# Permissions that only read, and those that read and change.
_LEVELS = {
    "read": r"can_(list|show|get|info|download)",
    "edit": r"can_(list|show|get|info|download|edit|put)",
    "write": r"can_(list|show|get|info|download|add|edit|delete|post|put)",
    "upload": r"can_(list|show|get|info|download|add|edit|post|put)",
}

#                         Finance   Program   Donor    Auditor
RECORD_ACCESS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "Grants": ("write", "edit", "read", "read"),
    "ReportingPeriods": ("write", "write", "read", "read"),
    "GrantMemberships": ("write", "read", None, "read"),
    "Funders": ("write", "read", None, "read"),
    "BudgetLines": ("write", "read", None, "read"),
    "Expenditures": ("write", "read", None, "read"),
    "ExchangeRates": ("write", "read", None, "read"),
    "RatePolicies": ("write", "read", None, "read"),
    "BudgetRevisions": ("write", "read", None, "read"),
    "BudgetVersions": ("read", "read", None, "read"),
    "VarianceRules": ("write", "read", None, "read"),
    "BudgetImports": ("write", None, None, "read"),
    "OdooLinks": ("write", "read", None, "read"),
    "OdooAccountMaps": ("write", "read", None, "read"),
    # A shared cost names every grant it is split over: finance and auditors only (a part is an Expenditure).
    "SharedCosts": ("write", None, None, "read"),
    "AllocationKeys": ("write", None, None, "read"),
    "BudgetReports": ("read", "read", "read", "read"),
    "Indicators": ("read", "write", "read", "read"),
    "IndicatorCodes": ("read", "write", "read", "read"),
    "IndicatorTargets": ("read", "write", "read", "read"),
    "IndicatorResults": ("read", "write", None, "read"),
    "IndicatorProgress": ("read", "read", "read", "read"),
    "Dimensions": ("read", "write", "read", "read"),
    "Deadlines": ("write", "write", None, "read"),
    "MyDeadlines": ("read", "read", None, "read"),
    "Notifications": ("read", "read", "read", "read"),
    "ReminderPolicies": ("write", "read", None, "read"),
    "ReminderOutbox": (None, None, None, "read"),
    "Evidence": ("write", "write", "read", "read"),
    "Consultations": ("write", "write", "read", "read"),
    "CoordinatingBodies": ("write", "write", "read", "read"),
    "Requirements": ("write", "write", "read", "read"),
    "RequirementWaivers": ("write", "write", "read", "read"),
    # Program: only the templates of the funders of their grants (exports.mapper_views scopes the rows).
    "FunderTemplates": ("write", "upload", None, "read"),
    "ExportRecords": ("write", "write", "read", "read"),
    "AuditLog": (None, None, None, "read"),
    "OpenApi": ("read", "read", "read", "read"),
    "SwaggerView": ("read", "read", "read", "read"),
}

# Menu entries (items and categories) each role may see, beyond what Admin sees.
MENUS: dict[str, tuple[str, ...]] = {
    "Finance": (
        "Reports",
        "Export history",
        "Jobs",  # background jobs (app/jobs_views.py)
        "Funder templates",
        "Upload a template",
        "Use a ready mapping",
        "Compliance",
        "Requirements",
        "Waivers",
        "Evidence",
        "Consultations",
        "Coordinating bodies",
        "Budgets",
        "Budget vs actual",
        "Budget lines",
        "Budget grid",
        "Expenditures",
        "Budget revisions",
        "Budget versions",
        "Exchange rates",
        "Rate policies",
        "Variance rules",
        "Odoo links",
        "Odoo account mappings",
        "Shared costs",
        "Allocation keys",
        "Import actuals",
        "Import a budget",
        "Import exchange rates",
        "Grants",
        "Reporting periods",
        "Memberships",
        "Funders",
        "Indicators",
        "Indicator definitions",
        "Indicator targets",
        "Indicator results",
        "Indicator progress",
        "Donor indicator codes",
        "Disaggregations",
        "Disaggregation categories",
        "Deadlines",
        "My deadlines",
        "My notifications",
        "All deadlines",
        "Reminder policies",
    ),
    "Program": (
        "Reports",
        "Export history",
        "Jobs",  # background jobs (app/jobs_views.py)
        "Funder templates",
        "Upload a template",
        "Use a ready mapping",
        "Compliance",
        "Requirements",
        "Waivers",
        "Evidence",
        "Consultations",
        "Coordinating bodies",
        "Budgets",
        "Budget vs actual",
        "Budget lines",
        "Budget grid",
        "Expenditures",
        "Budget revisions",
        "Budget versions",
        "Exchange rates",
        "Rate policies",
        "Variance rules",
        "Odoo links",
        "Odoo account mappings",
        "Grants",
        "Reporting periods",
        "Memberships",
        "Funders",
        "Indicators",
        "Indicator definitions",
        "Indicator targets",
        "Indicator results",
        "Indicator progress",
        "Donor indicator codes",
        "Disaggregations",
        "Disaggregation categories",
        "Deadlines",
        "My deadlines",
        "My notifications",
        "All deadlines",
        "Reminder policies",
    ),
    "Donor": (
        "Reports",
        "Export history",
        "Compliance",
        "Requirements",
        "Waivers",
        "Evidence",
        "Consultations",
        "Coordinating bodies",
        "Budgets",
        "Budget vs actual",
        "Grants",
        "Reporting periods",
        "Indicators",
        "Indicator definitions",
        "Indicator targets",
        "Indicator progress",
        "Deadlines",
        "My notifications",
    ),
    "Auditor": (
        "Reports",
        "Export history",
        "Jobs",  # background jobs (app/jobs_views.py)
        "Funder templates",
        "Compliance",
        "Requirements",
        "Waivers",
        "Evidence",
        "Consultations",
        "Coordinating bodies",
        "Budgets",
        "Budget vs actual",
        "Budget lines",
        "Budget grid",
        "Expenditures",
        "Budget revisions",
        "Budget versions",
        "Exchange rates",
        "Rate policies",
        "Variance rules",
        "Odoo links",
        "Odoo account mappings",
        "Shared costs",
        "Allocation keys",
        "Import actuals",
        "Import a budget",
        "Grants",
        "Reporting periods",
        "Memberships",
        "Funders",
        "Administration",
        "Audit trail",
        "Indicators",
        "Indicator definitions",
        "Indicator targets",
        "Indicator results",
        "Indicator progress",
        "Donor indicator codes",
        "Disaggregations",
        "Disaggregation categories",
        "Deadlines",
        "My deadlines",
        "My notifications",
        "All deadlines",
        "Reminder policies",
        "Reminder outbox",
    ),
}

# Every signed-in user may look at and edit their own profile and password.
SELF_SERVICE = [
    [r"^UserDBModelView$", r"^can_(userinfo|userinfoedit)$"],
    [r"^(ResetMyPasswordView|UserInfoEditView)$", r"^can_this_form_(get|post)$"],
]

# "Org auditor": an auditor of the whole organisation (every grant, the whole audit trail,
# user and role changes); an "Auditor" sees only the grants they are a member of.
ORG_AUDITOR = "Org auditor"
ROLE_NAMES = ("Admin", "Finance", "Program", "Donor", "Auditor", ORG_AUDITOR)
# Roles that see every grant; the others see only grants they are members of.
ALL_GRANTS_ROLES = frozenset({"Admin", "Finance", ORG_AUDITOR})
# Roles that read the whole audit trail (others read the entries of the grants they see).
WHOLE_TRAIL_ROLES = frozenset({"Admin", ORG_AUDITOR})
# Roles that never change anything.
READ_ONLY_ROLES = frozenset({"Donor", "Auditor", ORG_AUDITOR})
# Roles whose second pair of eyes may lower a restricted item's sensitivity (with grant membership).
SENSITIVITY_APPROVER_ROLES = frozenset({"Admin", "Finance", "Program"})


def _rules_for(column: int, role: str) -> list[list[str]]:
    by_level: dict[str, list[str]] = {}
    for view, levels in RECORD_ACCESS.items():
        level = levels[column]
        if level is not None:
            by_level.setdefault(level, []).append(view)
    rules = [[rf"^({'|'.join(sorted(views))})$", rf"^{_LEVELS[level]}$"] for level, views in sorted(by_level.items())]
    menus = MENUS.get(role, ())
    if menus:
        rules.append([rf"^({'|'.join(menus)})$", r"^menu_access$"])
    return rules + SELF_SERVICE


FAB_ROLES: dict[str, list[list[str]]] = {
    "Admin": [[".*", ".*"]],
    **{role: _rules_for(index, role) for index, role in enumerate(("Finance", "Program", "Donor", "Auditor"))},
}
# The organisation-wide auditor reads what an auditor reads (on every grant, row rules permitting).
FAB_ROLES[ORG_AUDITOR] = _rules_for(3, "Auditor")

# Read-only roles must never get a changing permission, whatever the table says.
for _role in READ_ONLY_ROLES - {ORG_AUDITOR}:
    for _view, _levels in RECORD_ACCESS.items():
        assert _levels[("Finance", "Program", "Donor", "Auditor").index(_role)] in (None, "read"), (_role, _view)
