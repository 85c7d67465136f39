"""The budgets part of the demo (DEMO.md): grant 1 by Global Fund cost grouping in USD with XCD spending, grant 2 in EUR, grant 1's Odoo link (off)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from budgets import rates, services
from budgets.models import ExpenditureSource, RateMethod

# (code, description, cost grouping, module, planned per semester S1..S4 in USD)
HIV_LINES = [
    ("HR-01", "Programme coordinator (50%)", "1", "KP: sex workers", ["9000", "9000", "9000", "9000"]),
    ("HR-02", "Peer outreach workers' stipends", "1", "KP: sex workers", ["7500", "7500", "7500", "7500"]),
    (
        "TRC-01",
        "Inter-island travel for group formation and RCM meetings",
        "2",
        "KP: sex workers",
        ["5000", "5000", "5000", "5000"],
    ),
    ("TRC-02", "Local transport for outreach", "2", "KP: sex workers", ["2500", "2500", "2500", "2500"]),
    ("EPS-01", "Human rights and HIV trainers (external)", "3", "KP: sex workers", ["6000", "6000", "6000", "6000"]),
    (
        "CMP-01",
        "Know-your-rights booklets and outreach materials",
        "10",
        "KP: sex workers",
        ["5000", "5000", "5000", "5000"],
    ),
    (
        "IOC-01",
        "Indirect costs (coalition secretariat)",
        "11",
        "Programme management",
        ["2500", "2500", "2500", "2500"],
    ),
]

# (date, line, XCD amount, description). Travel in S1 runs well over plan: cost grouping 2 is flagged.
HIV_SPENDING = [
    (date(2026, 3, 31), "HR-01", "12150.00", "Coordinator salary Jan–Mar"),
    (date(2026, 6, 30), "HR-01", "12150.00", "Coordinator salary Apr–Jun"),
    (date(2026, 3, 31), "HR-02", "9720.00", "Outreach stipends Q1 (12 peer workers)"),
    (date(2026, 6, 30), "HR-02", "10260.00", "Outreach stipends Q2 (12 peer workers)"),
    (date(2026, 2, 12), "TRC-01", "8910.00", "Flights Castries–St George's, group formation visit"),
    (date(2026, 3, 20), "TRC-01", "7560.00", "RCM meeting travel, two representatives"),
    (date(2026, 5, 14), "TRC-01", "9180.00", "Grenada training: flights and lodging for 8 participants"),
    (date(2026, 6, 18), "TRC-02", "6750.00", "Local transport for outreach, Jan–Jun"),
    (date(2026, 4, 22), "EPS-01", "13500.00", "Human rights trainer fees, Saint Lucia workshop"),
    (date(2026, 5, 25), "CMP-01", "11070.00", "Printing 3,000 know-your-rights booklets"),
    (date(2026, 6, 30), "IOC-01", "6750.00", "Secretariat share S1"),
    (date(2026, 7, 31), "HR-01", "4050.00", "Coordinator salary July"),
    (date(2026, 8, 31), "HR-01", "4050.00", "Coordinator salary August"),
    (date(2026, 9, 30), "HR-01", "4050.00", "Coordinator salary September"),
    (date(2026, 9, 30), "HR-02", "10530.00", "Outreach stipends Q3"),
    (date(2026, 8, 6), "TRC-01", "7020.00", "Group formation visit, Grenada"),
    (date(2026, 9, 10), "TRC-02", "3240.00", "Local transport for outreach, Jul–Sep"),
    (date(2026, 10, 15), "CMP-01", "4050.00", "Outreach materials reprint"),
    (date(2026, 10, 20), "TRC-01", "16200.00", "Regional RCM meeting travel, three representatives"),
    (date(2026, 10, 29), "EPS-01", "5400.00", "Local trainer, Grenada workshop"),
]

CORE_LINES = [
    ("STAFF-01", "Advocacy coordinator (part time)", "STAFF", "18000"),
    ("ACT-01", "Meetings with officials and policy submissions", "ACT", "10000"),
    ("TRAVEL-01", "Travel to regional advocacy meetings", "TRAVEL", "6000"),
    ("OVH-01", "Office and overheads", "OVH", "6000"),
]
CORE_SPENDING = [
    (date(2026, 3, 31), "STAFF-01", "4500.00", "EUR", "Coordinator Q1"),
    (date(2026, 6, 30), "STAFF-01", "4500.00", "EUR", "Coordinator Q2"),
    (date(2026, 9, 30), "STAFF-01", "4500.00", "EUR", "Coordinator Q3"),
    (date(2026, 4, 16), "ACT-01", "2430.00", "XCD", "Venue and refreshments, meeting with Ministry of Health"),
    (date(2026, 7, 9), "ACT-01", "1890.00", "XCD", "Policy submission printing and delivery"),
    (date(2026, 5, 6), "TRAVEL-01", "1250.00", "EUR", "Regional advocacy meeting, Port of Spain"),
    (date(2026, 6, 30), "OVH-01", "3000.00", "EUR", "Office costs H1"),
]
# EUR per XCD on the days the XCD spending of grant 2 happened (transaction-date policy).
CORE_RATES = [(date(2026, 4, 16), "XCD", "EUR", "0.3398"), (date(2026, 7, 9), "XCD", "EUR", "0.3165")]


def load(session: Session, ctx: Any) -> None:
    hiv = ctx.grants["RCM-HIV-2026-SW"]
    core = ctx.grants["CNF-CORE-2026"]
    labels = ["S1", "S2", "S3", "S4"]

    rates.set_rate_policy(
        session,
        hiv,
        RateMethod.fixed,
        fixed_currency="XCD",
        notes="The finance officer books in XCD; the funder accepts the ECCB peg of 2.70 per USD.",
    )
    for code, description, grouping, module, planned in HIV_LINES:
        services.create_line(
            session,
            hiv,
            code=code,
            description=description,
            cost_category=grouping,
            module=module,
            intervention="Community empowerment",
            planned=dict(zip(labels, planned)),
        )
    services.snapshot_budget(session, hiv, "Budget agreed with the funder (grant agreement, Annex 2)", by="finance")
    services.add_variance_rule(
        session,
        ctx.funders["RHF"],
        threshold_percent="15",
        description="Reallocation above 15% of a cost grouping needs the funder's approval",
    )
    for index, (day, line, amount, description) in enumerate(HIV_SPENDING, start=1):
        if day <= ctx.today:
            services.record_expenditure(
                session,
                hiv,
                line=line,
                spent_on=day,
                amount=amount,
                currency="XCD",
                description=description,
                source=ExpenditureSource.odoo,
                external_ref=f"demo-odoo-{index}",
            )
    revision = services.create_revision(
        session,
        hiv,
        title="Second training moved to Grenada",
        justification="The S2 training moved to Grenada where a local trainer was hired: external trainer "
        "fees fall and inter-island travel rises.",
        moves=[{"from": "EPS-01", "to": "TRC-01", "period": "S2", "amount": "2500.00"}],
    )
    services.submit_revision(session, revision)
    services.approve_revision(session, revision, by="finance", note="Approved by the funder's portfolio manager (demo)")

    rates.set_rate_policy(session, core, RateMethod.transaction_date)
    for code, description, category, amount in CORE_LINES:
        services.create_line(
            session, core, code=code, description=description, cost_category=category, planned={"Y1": amount}
        )
    services.snapshot_budget(session, core, "Budget agreed with the funder", by="finance")
    services.add_variance_rule(
        session,
        ctx.funders["CNF"],
        threshold_percent="10",
        basis="total_budget",
        description="Changes above 10% of the total budget need the funder's approval",
    )
    for day, from_ccy, to_ccy, rate in CORE_RATES:
        rates.record_rate(session, day, from_ccy, to_ccy, Decimal(rate), source="ECB reference via EUR/USD (demo)")
    for day, line, amount, currency, description in CORE_SPENDING:
        if day <= ctx.today:
            services.record_expenditure(
                session,
                core,
                line=line,
                spent_on=day,
                amount=amount,
                currency=currency,
                description=description,
                source=ExpenditureSource.manual,
            )
    ctx.extra["budget_revision"] = revision
    load_odoo_link(session, hiv)


# Ids and labels of the demo company's expense accounts in Odoo (fictional), mapped to grant 1's lines.
DEMO_ODOO_ACCOUNTS = [
    (611, "611000 Salaries and wages", "HR-01"),
    (612, "612000 Peer worker stipends", "HR-02"),
    (621, "621000 Air travel", "TRC-01"),
    (622, "622000 Local transport", "TRC-02"),
    (631, "631000 Trainers and consultants", "EPS-01"),
    (641, "641000 Printing and publications", "CMP-01"),
    (651, "651000 Shared secretariat costs", "IOC-01"),
]


def load_odoo_link(session: Session, hiv: Any) -> None:
    """Grant 1's Odoo link, switched off: the demo connects to nothing until someone configures Odoo."""
    from budgets import odoo_sync

    link = odoo_sync.link_grant(
        session,
        hiv,
        analytic_account_id=12,
        analytic_account_name="RCM-HIV-2026-SW Sex worker-led HIV response",
        analytic_plan="Grants",
        company_currency="XCD",
        enabled=False,
    )
    link.last_message = (
        "Demo: not connected to any Odoo. Set the GRANTKEEPER_ODOO_* variables and enable this link to sync "
        "(the demo's spending was entered as if it came from Odoo)."
    )
    for account_id, label, line in DEMO_ODOO_ACCOUNTS:
        odoo_sync.map_account(session, hiv, odoo_account_id=account_id, line=line, label=label)
