"""Reminder policies: when a grant's people are reminded of a deadline, and who hears when it is late.

A grant's own policy wins, else its funder's, else ``DEFAULT_RULE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import DomainValidationError
from core.formatting import gettext as _
from core.records import validate_record
from grants.deadlines.models import ReminderPolicy
from grants.models import Grant, MemberRole

# Members who hear about a deadline nobody owns, and who are told when one is late.
LEAD_ROLES = (MemberRole.lead, MemberRole.finance, MemberRole.program)


@dataclass(frozen=True)
class ReminderRule:
    """A reminder policy as plain values: what the sweep needs, whether from a row or the default."""

    days_before: tuple[int, ...] = (30, 14, 7, 1)
    on_due_day: bool = True
    overdue_every_days: int = 7
    escalate_after_days: int | None = 14
    escalate_roles: tuple[MemberRole, ...] = LEAD_ROLES
    send_email: bool = True

    @classmethod
    def from_policy(cls, policy: ReminderPolicy) -> ReminderRule:
        return cls(
            days_before=tuple(policy.offsets()),
            on_due_day=bool(policy.on_due_day),
            overdue_every_days=policy.overdue_every_days or 0,
            escalate_after_days=policy.escalate_after_days,
            escalate_roles=tuple(policy.roles()),
            send_email=bool(policy.send_email),
        )


DEFAULT_RULE = ReminderRule()


@dataclass
class RuleBook:
    """Every policy, loaded in one query: the grant's, else its funder's, else the default."""

    by_grant: dict[int, ReminderRule]
    by_funder: dict[int, ReminderRule]
    default: ReminderRule = DEFAULT_RULE

    def rule_for(self, grant_id: int, funder_id: int | None) -> ReminderRule:
        if grant_id in self.by_grant:
            return self.by_grant[grant_id]
        if funder_id is not None and funder_id in self.by_funder:
            return self.by_funder[funder_id]
        return self.default

    def all_rules(self) -> list[ReminderRule]:
        return [self.default, *self.by_grant.values(), *self.by_funder.values()]


def load_rule_book(session: Session) -> RuleBook:
    by_grant: dict[int, ReminderRule] = {}
    by_funder: dict[int, ReminderRule] = {}
    for policy in session.scalars(select(ReminderPolicy)):
        rule = ReminderRule.from_policy(policy)
        if policy.grant_id is not None:
            by_grant[policy.grant_id] = rule
        elif policy.funder_id is not None:
            by_funder[policy.funder_id] = rule
    return RuleBook(by_grant, by_funder)


def rule_for_grant(session: Session, grant: Grant) -> ReminderRule:
    return load_rule_book(session).rule_for(grant.id, grant.funder_id)


def set_reminder_policy(
    session: Session,
    *,
    grant_id: int | None = None,
    funder_id: int | None = None,
    days_before: str | list[int] = "30,14,7,1",
    on_due_day: bool = True,
    overdue_every_days: int = 7,
    escalate_after_days: int | None = 14,
    escalate_roles: str | list[str] = "lead,finance,program",
    send_email: bool = True,
) -> ReminderPolicy:
    """Create or replace the policy of a grant, or the default policy of a funder's grants."""
    if (grant_id is None) == (funder_id is None):
        raise DomainValidationError({"grant": [_("choose either a grant or a funder")]})
    column = ReminderPolicy.grant_id if grant_id is not None else ReminderPolicy.funder_id
    policy = session.scalar(select(ReminderPolicy).where(column == (grant_id or funder_id)))
    if policy is None:
        policy = ReminderPolicy(grant_id=grant_id, funder_id=funder_id)
        session.add(policy)
    policy.days_before = ",".join(str(d) for d in days_before) if isinstance(days_before, list) else days_before
    policy.on_due_day = on_due_day
    policy.overdue_every_days = overdue_every_days
    policy.escalate_after_days = escalate_after_days
    policy.escalate_roles = ",".join(escalate_roles) if isinstance(escalate_roles, list) else escalate_roles
    policy.send_email = send_email
    with session.no_autoflush:
        validate_record(session, policy)
    session.flush()
    return policy
