"""Getting a budget in: spreading totals, budget files (CSV/XLSX) and the planning grid, applied in one way.

A budget file goes through the same three steps as a file of actuals
(``budgets.imports``): ``stage`` parses it once and keeps its rows as text with a
guessed column mapping; ``run`` checks every row with the mapping the user
confirmed and imports all of it or none, keeping a row-by-row error list; and
``error_report_csv`` writes that list. Funders lay budgets out two ways, both read:
one row per line with a column per period ("wide"), or one row per line and period
("long"). A line with only a total is spread over the grant's periods by ``spread``.

Whatever wrote the plan (a file or the grid), ``apply_plan`` saves it: straight into
the planned amounts while the budget was never approved, and as a draft budget
revision (moves of money between lines) once it was, so an approved budget changes
only through approval.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budgets.bulk import Progress, collector_paused, insert_plain
from budgets.imports import (
    RowProblem,
    _cell_text,
    _header,
    _inert,
    _parse_amount,
    _said,
    problem_text,
    read_rows,
    sniff,
)
from budgets.models import (
    BudgetAllocation,
    BudgetLine,
    BudgetPlanImport,
    BudgetRevision,
    BudgetRevisionItem,
    BudgetVersion,
    ImportStatus,
    RevisionStatus,
    retired_codes,
)
from budgets.services import create_revision, save_revision_item
from core.audit import record_inserts
from core.errors import DomainValidationError, ErrorCollector
from core.formatting import N_
from core.formatting import gettext as _
from core.money import DECIMAL_MARKS, AmountError, ambiguous_separator, guess_decimal_mark
from grants.models import Funder, Grant, ReportingPeriod

PROFILES = {
    "even": N_("Evenly over the periods"),
    "front": N_("Front-loaded (more in the first periods)"),
    "back": N_("Back-loaded (more in the last periods)"),
}
LAYOUTS = {
    "wide": N_("One row per budget line, with a column per period (or only a total)"),
    "long": N_("One row per budget line and period"),
}
FIELDS = {
    "code": N_("Line code"),
    "name": N_("Line name"),
    "category": N_("Cost category"),
    "total": N_("Line total"),
    "module": N_("Module"),
    "intervention": N_("Intervention"),
    "period": N_("Period (one row per line and period)"),
    "amount": N_("Amount of the period (one row per line and period)"),
}
_GUESSES = {
    "code": ("code", "line code", "budget code", "budget line code", "item code", "line", "budget line", "ref"),
    "name": ("name", "line name", "description", "budget line description", "activity", "item", "budget line"),
    "category": ("cost category", "category", "cost grouping", "cost input group", "cost group", "cost type"),
    "total": ("total", "line total", "total budget", "total amount", "budget", "amount total"),
    "module": ("module", "programme area", "program area"),
    "intervention": ("intervention", "activity group"),
    "period": ("period", "quarter", "semester", "month", "reporting period"),
    "amount": ("amount", "planned", "planned amount", "value"),
}
PERIOD_PREFIX = "p:"
MAX_CODE, MAX_NAME = 40, 300
_PLAIN_AMOUNT = re.compile(r"\s*(\d{1,15})(?:\.(\d{1,2}))?\s*$")
_PLAIN_COMMA_AMOUNT = re.compile(r"\s*(\d{1,15})(?:,(\d{1,2}))?\s*$")


# ---------------------------------------------------------------- spreading


def spread(total_cents: int, count: int, profile: str = "even") -> list[int]:
    """``total_cents`` split over ``count`` periods in whole cents; the last period takes the remainder.

    Even: equal parts. Front-loaded: weights count, count-1, ..., 1. Back-loaded:
    1, 2, ..., count. The parts are never negative and always add up to the total.
    """
    if count <= 0:
        raise ValueError("there are no periods to spread over")
    if total_cents < 0:
        raise ValueError("a negative total cannot be spread")
    if profile == "even":
        weights = [1] * count
    elif profile == "front":
        weights = list(range(count, 0, -1))
    elif profile == "back":
        weights = list(range(1, count + 1))
    else:
        raise ValueError(
            _(
                "'%(profile)s' is not a spreading profile; choose one of %(profiles)s",
                profile=profile,
                profiles=", ".join(PROFILES),
            )
        )
    whole = sum(weights)
    parts = [total_cents * weight // whole for weight in weights[:-1]]
    parts.append(total_cents - sum(parts))
    return parts


def cents_text(cents: int) -> str:
    """12345 -> '123.45', for messages and the grid's inputs."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def money_text(cents: int, currency: str) -> str:
    return f"{Decimal(cents) / 100:,.2f} {currency}"


class CellProblem(RowProblem):
    """A cell's problem: stored with its message id and values; as text, in the reader's language."""

    def __str__(self) -> str:
        return _(self.message, **self.values)


def _to_cents(amount: Decimal) -> int:
    exact = amount * 100
    whole = exact.to_integral_value()
    # Spreadsheet formulas leave binary noise (1234.5600000000001): that is a cent amount; 1.234 is not.
    if abs(exact - whole) > Decimal("0.000001"):
        raise CellProblem(N_("'%(amount)s' has more than two decimals"), amount=str(amount))
    return int(whole)


def parse_money_cents(text: Any, decimal_mark: str = ".") -> int | None:
    """A typed or imported amount in cents, read with ``decimal_mark``; None when empty. ValueError saying what is wrong."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    plain = (
        (_PLAIN_AMOUNT if decimal_mark == "." else _PLAIN_COMMA_AMOUNT).match(text) if isinstance(text, str) else None
    )
    if plain:  # the common case, "1234.5" (or "1234,5"): whole cents without a Decimal
        return int(plain.group(1)) * 100 + int((plain.group(2) or "").ljust(2, "0"))
    try:
        value = _parse_amount(text, decimal_mark)
    except AmountError as exc:
        # core.money says it in the reader's language without its message id; the usual case keeps its id.
        if str(exc) == _("'%(text)s' is not a number", text=text):
            raise CellProblem(N_("'%(text)s' is not a number"), text=str(text)) from None
        raise
    if not value.is_finite():
        raise CellProblem(N_("'%(text)s' is not a number"), text=str(text))
    cents = _to_cents(value)
    if cents < 0:
        raise CellProblem(N_("'%(text)s' is negative; a planned amount is zero or more"), text=str(text))
    return cents


# ---------------------------------------------------------------- categories


def categories_of(session: Session, grant: Grant) -> list[dict[str, Any]]:
    funder = session.get(Funder, grant.funder_id)
    return [dict(c) for c in (funder.cost_categories if funder else None) or []]


def resolve_category(categories: list[dict[str, Any]], raw: str) -> str | None:
    """A funder's category code from what a budget file says: its code, its name, or the abbreviation in brackets."""
    text = (raw or "").strip()
    if not text:
        return None
    lowered = text.lower()
    for category in categories:
        if str(category.get("code")).lower() == lowered:
            return str(category.get("code"))
    for category in categories:
        name = str(category.get("name") or "")
        short = re.search(r"\(([^)]+)\)\s*$", name)
        if name.lower() == lowered or (short and short.group(1).lower() == lowered):
            return str(category.get("code"))
        if re.sub(r"\s*\([^)]*\)\s*$", "", name).lower() == lowered:
            return str(category.get("code"))
    return None


# ---------------------------------------------------------------- a plan and how it is saved


@dataclass
class LinePlan:
    """What a file row (or a grid row) says one budget line should be; amounts in cents per period id."""

    code: str
    description: str
    category: str
    total_cents: int | None
    cells: dict[int, int]
    module: str | None = None
    intervention: str | None = None
    row: int = 0  # the file row (header = 1) or grid row it came from


@dataclass
class PlanOutcome:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    revision: BudgetRevision | None = None
    warnings: list[str] = field(default_factory=list)


def is_approved(session: Session, grant_id: int) -> bool:
    """An approved budget is one with a recorded version: agreed with the funder or changed by approved revision."""
    return session.scalar(select(BudgetVersion.id).where(BudgetVersion.grant_id == grant_id).limit(1)) is not None


def apply_plan(session: Session, grant: Grant, plans: list[LinePlan], *, title: str, justification: str) -> PlanOutcome:
    """Save a checked plan: lines added or changed, planned amounts set; as a draft revision once approved.

    Lines the plan does not name stay as they are. Raises DomainValidationError
    (nothing saved) for what an approved budget cannot take by revision: a
    period whose total would change, or a line moving to another cost category.
    The caller commits.
    """
    outcome = PlanOutcome()
    lines = {line.code: line for line in session.scalars(select(BudgetLine).where(BudgetLine.grant_id == grant.id))}
    current: dict[int, dict[int, int]] = defaultdict(dict)
    for line_id, period_id, cents in session.execute(
        select(BudgetAllocation.line_id, BudgetAllocation.period_id, BudgetAllocation.amount_cents).where(
            BudgetAllocation.grant_id == grant.id
        )
    ):
        current[line_id][period_id] = int(cents)
    approved = is_approved(session, grant.id)
    new: list[LinePlan] = []
    changed_meta: list[tuple[BudgetLine, LinePlan]] = []
    changed_cells: dict[tuple[str, int], tuple[int, int]] = {}  # (code, period) -> (before, after)
    for plan in plans:
        line = lines.get(plan.code)
        if line is None:
            new.append(plan)
            for period_id, cents in plan.cells.items():
                if cents:
                    changed_cells[(plan.code, period_id)] = (0, cents)
            continue
        meta_differs = (
            line.description != plan.description
            or line.cost_category != plan.category
            or (plan.module is not None and line.module != plan.module)
            or (plan.intervention is not None and line.intervention != plan.intervention)
            or (plan.total_cents is not None and _line_total_cents(line) != plan.total_cents)
        )
        cells_differ = False
        for period_id, cents in plan.cells.items():
            before = current[line.id].get(period_id, 0)
            if before != cents:
                changed_cells[(plan.code, period_id)] = (before, cents)
                cells_differ = True
        if meta_differs or cells_differ:
            changed_meta.append((line, plan))
        else:
            outcome.unchanged += 1
    if not new and not changed_meta:
        return outcome
    if approved:
        return _as_revision(session, grant, lines, new, changed_meta, changed_cells, title, justification, outcome)
    _write_new_lines(session, grant, new)
    periods = {p.id: p for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id))}
    existing = {
        (a.line_id, a.period_id): a
        for a in session.scalars(
            select(BudgetAllocation).where(
                BudgetAllocation.line_id.in_([line.id for line, _plan in changed_meta] or [0])
            )
        )
    }
    for line, plan in changed_meta:
        line.description = plan.description
        line.cost_category = plan.category
        if plan.module is not None:
            line.module = plan.module
        if plan.intervention is not None:
            line.intervention = plan.intervention
        line.total = Decimal(plan.total_cents) / 100 if plan.total_cents is not None else line.total
        for period_id, cents in plan.cells.items():
            allocation = existing.get((line.id, period_id))
            amount = Decimal(cents) / 100
            if allocation is None:
                if cents:
                    session.add(
                        BudgetAllocation(
                            line=line,
                            period=periods[period_id],
                            grant_id=grant.id,
                            amount=amount,
                            amount_cents=cents,
                        )
                    )
            elif int(allocation.amount_cents) != cents:
                allocation.amount = amount
                allocation.amount_cents = cents
    session.flush()
    outcome.added = len(new)
    outcome.changed = len(changed_meta)
    return outcome


def _line_total_cents(line: BudgetLine) -> int | None:
    return None if line.total is None else int(Decimal(line.total) * 100)


def _write_new_lines(session: Session, grant: Grant, new: list[LinePlan]) -> None:
    """Bulk inserts for new lines and their planned amounts (thousands at a time), audited like any insert."""
    if not new:
        return
    grant_id = grant.id  # read once, not once per planned amount
    # The checks BudgetLine.validate would make at a flush were made on the plan (``check_plan``).
    rows = [
        {
            "grant_id": grant_id,
            "code": plan.code,
            "description": plan.description,
            "cost_category": plan.category,
            "module": plan.module,
            "intervention": plan.intervention,
            "total": Decimal(plan.total_cents) / 100 if plan.total_cents is not None else None,
        }
        for plan in new
    ]
    insert_plain(session, BudgetLine.__table__, rows)
    ids: dict[str, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(BudgetLine.code, BudgetLine.id).where(BudgetLine.grant_id == grant_id)
        ).all()
    )
    cells = [
        {
            "line_id": ids[plan.code],
            "period_id": period_id,
            "grant_id": grant_id,
            "amount": Decimal(cents) / 100,
            "amount_cents": cents,
        }
        for plan in new
        for period_id, cents in plan.cells.items()
    ]
    insert_plain(session, BudgetAllocation.__table__, cells)
    # One audit entry per new line, carrying its planned amounts: thousands of lines stay thousands of
    # entries, not one per line and period, and each amount is still on the trail with who and when.
    labels = {
        p.id: p.label for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == grant_id))
    }
    record_inserts(
        session,
        "budget_lines",
        [
            (
                ids[plan.code],
                grant_id,
                f"{plan.code} {plan.description}",
                {
                    "id": ids[plan.code],
                    "grant_id": grant_id,
                    "code": plan.code,
                    "description": plan.description,
                    "cost_category": plan.category,
                    "module": plan.module,
                    "intervention": plan.intervention,
                    "total": cents_text(plan.total_cents) if plan.total_cents is not None else None,
                    "planned": {labels[pid]: cents_text(c) for pid, c in plan.cells.items()},
                },
            )
            for plan in new
        ],
    )


def _as_revision(
    session: Session,
    grant: Grant,
    lines: dict[str, BudgetLine],
    new: list[LinePlan],
    changed_meta: list[tuple[BudgetLine, LinePlan]],
    changed_cells: dict[tuple[str, int], tuple[int, int]],
    title: str,
    justification: str,
    outcome: PlanOutcome,
) -> PlanOutcome:
    periods = {p.id: p for p in session.scalars(select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id))}
    errors = ErrorCollector()
    for line, plan in changed_meta:
        if line.cost_category != plan.category:
            errors.add(
                f"row {plan.row}" if plan.row else line.code,
                f"line {line.code} would move from cost category {line.cost_category} to {plan.category}; "
                "the budget is approved, so a line keeps its category (add a new line instead)",
            )
    net: dict[int, int] = defaultdict(int)
    for (_code, period_id), (before, after) in changed_cells.items():
        net[period_id] += after - before
    for period_id, change in sorted(net.items(), key=lambda kv: periods[kv[0]].start_date):
        if change:
            errors.add(
                periods[period_id].label,
                f"{periods[period_id].label}: the plan changes the period's total by "
                f"{'+' if change > 0 else ''}{money_text(change, grant.currency)}. The budget is approved: it "
                "changes by revision, which moves money between lines within a period, so each period's "
                "total must stay as approved",
            )
    errors.raise_if_any()
    # New lines start with nothing planned (total 0): the revision's moves bring their money on approval.
    for plan in new:
        line = BudgetLine(
            grant=grant,
            code=plan.code,
            description=plan.description,
            cost_category=plan.category,
            module=plan.module,
            intervention=plan.intervention,
            total=Decimal("0.00") if plan.total_cents is not None else None,
        )
        session.add(line)
        lines[plan.code] = line
    for line, plan in changed_meta:
        line.description = plan.description
        if plan.module is not None:
            line.module = plan.module
        if plan.intervention is not None:
            line.intervention = plan.intervention
    session.flush()
    moves: list[tuple[BudgetLine, BudgetLine, int, int]] = []
    by_period: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for (code, period_id), (before, after) in sorted(changed_cells.items()):
        by_period[period_id].append((code, after - before))
    for period_id, changes in by_period.items():
        give = [(code, -delta) for code, delta in changes if delta < 0]
        take = [(code, delta) for code, delta in changes if delta > 0]
        left_give = [amount for _code, amount in give]
        left_take = [amount for _code, amount in take]
        i = j = 0
        while i < len(give) and j < len(take):
            amount = min(left_give[i], left_take[j])
            moves.append((lines[give[i][0]], lines[take[j][0]], period_id, amount))
            left_give[i] -= amount
            left_take[j] -= amount
            if left_give[i] == 0:
                i += 1
            if left_take[j] == 0:
                j += 1
    outcome.added = len(new)
    outcome.changed = len(changed_meta)
    if not moves:
        return outcome
    revision = create_revision(session, grant, title=title[:200], justification=justification)
    for from_line, to_line, period_id, cents in moves:
        save_revision_item(
            session,
            BudgetRevisionItem(
                revision=revision,
                from_line=from_line,
                to_line=to_line,
                period=periods[period_id],
                amount=Decimal(cents) / 100,
            ),
        )
    outcome.revision = revision
    return outcome


# ---------------------------------------------------------------- budget files


def guess_mapping(columns: list[str], periods: list[ReportingPeriod]) -> dict[str, str]:
    """Field → column by the usual header names, and ``p:<label>`` → column for each period found."""
    normalised = {c: re.sub(r"[\s_]+", " ", c.strip().lower()) for c in columns}
    mapping: dict[str, str] = {}
    for name, guesses in _GUESSES.items():
        for guess in guesses:
            match = next((c for c, n in normalised.items() if n == guess and c not in mapping.values()), None)
            if match:
                mapping[name] = match
                break
    for index, period in enumerate(periods, start=1):
        wanted = {period.label.lower(), f"period {index}", f"p{index}", f"{period.label.lower()} amount"}
        match = next((c for c, n in normalised.items() if n in wanted and c not in mapping.values()), None)
        if match:
            mapping[PERIOD_PREFIX + period.label] = match
    if "period" in mapping and "amount" not in mapping and "total" in mapping:
        mapping["amount"] = mapping.pop("total")
    mapping["_layout"] = "long" if "period" in mapping else "wide"
    return mapping


def stage(session: Session, grant: Grant, filename: str, content: bytes, *, by: str | None = None) -> BudgetPlanImport:
    """Read an uploaded budget file once, keep its rows as text and a guessed mapping; nothing is imported yet."""
    file_type = sniff(content)
    rows = read_rows(content, file_type)
    if len(rows) < 2:
        raise DomainValidationError({"file": [_("the file has no data rows under a header row")]})
    columns = _header(rows)
    width = len(columns)
    body = [[_cell_text(cell) for cell in row[:width]] + [""] * (width - len(row)) for row in rows[1:]]
    periods = _periods(session, grant)
    staged = BudgetPlanImport(
        grant_id=grant.id,
        filename=(filename or "budget")[:255],
        file_type=file_type,
        sha256=hashlib.sha256(content).hexdigest(),
        status=ImportStatus.previewed,
        columns=columns,
        rows=body,
        mapping={**guess_mapping(columns, periods), "_decimal_mark": guess_decimal_mark(_amount_cells(body))},
        row_count=len(body),
        errors=[],
        created_by=by,
    )
    session.add(staged)
    session.flush()
    return staged


def _amount_cells(rows: list[list[str]]) -> list[str]:
    """Cells that look like amounts (a digit, no letter), for guessing the file's decimal mark."""
    return [
        c
        for row in rows[:2000]
        for c in row
        if c and any(ch.isdigit() for ch in c) and not any(ch.isalpha() for ch in c)
    ]


def decimal_mark_of(staged: BudgetPlanImport, mapping: dict[str, Any] | None = None) -> str:
    """The decimal mark the file's amounts are read with: the one chosen on the preview, else the guessed one."""
    for source in (mapping or {}, staged.mapping or {}):
        mark = source.get("_decimal_mark")
        if mark in DECIMAL_MARKS:
            return str(mark)
    return "."


def amounts_preview(
    staged: BudgetPlanImport, mapping: dict[str, Any], decimal_mark: str, limit: int = 10
) -> list[tuple[str, str, str]]:
    """How the first amounts of the file are read with ``decimal_mark``: (column, as written, as read or the problem)."""
    columns = [
        c for name, c in mapping.items() if (name in ("total", "amount") or name.startswith(PERIOD_PREFIX)) and c
    ]
    index = {name: i for i, name in enumerate(staged.columns)}
    shown: list[tuple[str, str, str]] = []
    for row in staged.rows or []:
        for column in columns:
            position = index.get(column)
            text = row[position] if position is not None and position < len(row) else ""
            if not text.strip():
                continue
            try:
                cents = parse_money_cents(text, decimal_mark)
                shown.append((column, text, cents_text(cents or 0)))
            except ValueError as exc:
                shown.append((column, text, str(exc)))
            if len(shown) >= limit:
                return shown
    return shown


def _periods(session: Session, grant: Grant) -> list[ReportingPeriod]:
    return list(
        session.scalars(
            select(ReportingPeriod).where(ReportingPeriod.grant_id == grant.id).order_by(ReportingPeriod.start_date)
        )
    )


def category_values(staged: BudgetPlanImport, column: str | None) -> list[str]:
    """The distinct values of the category column, for the user to match to the funder's categories."""
    if not column or column not in staged.columns:
        return []
    index = staged.columns.index(column)
    seen: dict[str, None] = {}
    for row in staged.rows or []:
        value = row[index].strip() if index < len(row) else ""
        if value:
            seen.setdefault(value, None)
    return list(seen)[:200]


@dataclass
class BudgetImportResult:
    status: ImportStatus
    outcome: PlanOutcome | None
    errors: list[dict[str, Any]]


def check_plan(
    session: Session,
    staged: BudgetPlanImport,
    mapping: dict[str, str],
    *,
    profile: str = "even",
    category_choices: dict[str, str] | None = None,
    default_category: str | None = None,
) -> tuple[list[LinePlan], list[dict[str, Any]]]:
    """Every row checked against the mapping: the lines the file plans, and its problems [{row, column, problem}]."""
    grant = session.get(Grant, staged.grant_id)
    assert grant is not None
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    layout = mapping.get("_layout", "wide")
    problems = ErrorCollector()
    if layout not in LAYOUTS:
        problems.add("_layout", _("choose one of: %(choices)s", choices=", ".join(_(v) for v in LAYOUTS.values())))
    if profile not in PROFILES:
        problems.add("profile", _("choose one of: %(choices)s", choices=", ".join(_(v) for v in PROFILES.values())))
    if "code" not in mapping:
        problems.add("code", _("choose the column holding the line code"))
    for name, column in mapping.items():
        if not name.startswith("_") and column not in staged.columns:
            problems.add(name, _("'%(column)s' is not a column of the file", column=column))
    periods = _periods(session, grant)
    if not periods:
        problems.add(
            "period",
            _(
                "%(grant)s has no reporting periods yet; create them on the grant's page first",
                grant=grant.reference,
            ),
        )
    period_columns = {p.id: mapping[PERIOD_PREFIX + p.label] for p in periods if PERIOD_PREFIX + p.label in mapping}
    if layout == "long":
        for name in ("period", "amount"):
            if name not in mapping:
                problems.add(
                    name,
                    _("choose the column holding the period")
                    if name == "period"
                    else _("choose the column holding the amount of the period"),
                )
    elif "total" not in mapping and not period_columns:
        problems.add("total", _("choose the column holding the line total, or the columns of the periods"))
    categories = categories_of(session, grant)
    codes = {str(c.get("code")) for c in categories}
    if default_category and default_category not in codes:
        problems.add(
            "default_category",
            _("'%(category)s' is not one of the funder's cost categories", category=default_category),
        )
    choices = {k: v for k, v in (category_choices or {}).items() if v}
    for raw, code in choices.items():
        if code not in codes:
            problems.add(
                "category",
                _("'%(code)s' (chosen for '%(raw)s') is not one of the funder's cost categories", code=code, raw=raw),
            )
    problems.raise_if_any()

    index = {name: i for i, name in enumerate(staged.columns)}
    errors: list[dict[str, Any]] = []
    retired = retired_codes(categories)
    existing = {line.code: line for line in session.scalars(select(BudgetLine).where(BudgetLine.grant_id == grant.id))}
    by_label = {p.label.lower(): p for p in periods}

    def cell(row: list[str], name: str) -> str:
        column = mapping.get(name)
        if column is None:
            return ""
        position = index[column]
        return row[position].strip() if position < len(row) else ""

    mark = decimal_mark_of(staged, mapping)
    amount_positions = [
        index[c]
        for name, c in mapping.items()
        if (name in ("total", "amount") or name.startswith(PERIOD_PREFIX)) and c in index
    ]
    # "1.000" and "1,000" in one file: one of them is a thousand and the other one, whatever the mark.
    separators = {
        ambiguous_separator(row[p]) for row in staged.rows or [] for p in amount_positions if p < len(row) and row[p]
    }
    mixed = {".", ","} <= separators

    def money(text: str) -> int | None:
        if mixed and ambiguous_separator(text):
            raise CellProblem(
                N_(
                    "'%(text)s' could be read as a thousand or as one: this file writes amounts both as 1.000 "
                    "and as 1,000; write every amount the same way and upload it again"
                ),
                text=text,
            )
        return parse_money_cents(text, mark)

    plans: dict[str, LinePlan] = {}
    first_row: dict[str, int] = {}
    stated_total: dict[str, int | None] = {}
    for number, row in enumerate(staged.rows or [], start=2):
        row_errors: list[dict[str, Any]] = []

        def problem(
            name: str,
            message: str,
            values: dict[str, Any] | None = None,
            row_errors: list[dict[str, Any]] = row_errors,
            number: int = number,
        ) -> None:
            row_errors.append(_found(number, mapping.get(name, FIELDS.get(name, name)), message, values))

        code = cell(row, "code")
        if not code:
            problem("code", N_("is empty; every budget line needs its code"))
        elif len(code) > MAX_CODE:
            problem(
                "code",
                N_("'%(code)s…' is longer than %(count)s characters"),
                {"code": code[:50], "count": MAX_CODE},
            )
        name = cell(row, "name") or (existing[code].description if code in existing else "")
        if not name:
            problem("name", N_("is empty; a new budget line needs its name"))
        elif len(name) > MAX_NAME:
            name = name[:MAX_NAME]
        raw_category = cell(row, "category")
        category = (
            choices.get(raw_category)
            or resolve_category(categories, raw_category)
            or (None if raw_category else default_category)
            or (existing[code].cost_category if code in existing and not raw_category else None)
        )
        if category is None:
            if raw_category:
                problem(
                    "category",
                    N_("'%(category)s' is not one of the funder's cost categories; choose the one it means"),
                    {"category": raw_category},
                )
            else:
                problem("category", N_("is empty; choose a cost category for the line or a default one"))
        elif category in retired and (code not in existing or existing[code].cost_category != category):
            problem(
                "category",
                N_("category %(category)s is retired; choose a category still in use"),
                {"category": category},
            )
        total: int | None = None
        try:
            total = money(cell(row, "total"))
        except ValueError as exc:
            problem("total", *_said(exc))
        cells: dict[int, int] = {}
        if layout == "long":
            raw_period = cell(row, "period")
            period = by_label.get(raw_period.lower())
            if period is None and raw_period.isdigit() and 1 <= int(raw_period) <= len(periods):
                period = periods[int(raw_period) - 1]
            if period is None:
                known = ", ".join(p.label for p in periods)
                if raw_period:
                    problem(
                        "period",
                        N_("'%(period)s' is not a period of %(grant)s (%(known)s)"),
                        {"period": raw_period, "grant": grant.reference, "known": known},
                    )
                else:
                    problem("period", N_("is empty"))
            try:
                amount = money(cell(row, "amount"))
            except ValueError as exc:
                problem("amount", *_said(exc))
                amount = None
            if period is not None:
                cells[period.id] = amount or 0
        else:
            for period_id, column in period_columns.items():
                try:
                    value = money(row[index[column]] if index[column] < len(row) else "")
                except ValueError as exc:
                    row_errors.append(_found(number, column, *_said(exc)))
                    continue
                if value is not None:
                    cells[period_id] = value
        if row_errors:
            errors.extend(row_errors)
            continue
        module = cell(row, "module")[:120] or None if "module" in mapping else None
        intervention = cell(row, "intervention")[:120] or None if "intervention" in mapping else None
        plan = plans.get(code)
        if plan is None:
            plans[code] = LinePlan(code, name, category or "", None, cells, module, intervention, number)  # type: ignore[arg-type]
            first_row[code] = number
            stated_total[code] = total
            continue
        if layout == "wide":
            problem("code", N_("repeats line %(code)s of row %(row)s"), {"code": code, "row": first_row[code]})
        else:
            if plan.category != category or plan.description != name:
                problem(
                    "category",
                    N_("says another name or category for line %(code)s than row %(row)s"),
                    {"code": code, "row": first_row[code]},
                )
            clash = next((pid for pid in cells if pid in plan.cells), None)
            if clash is not None:
                label = next(p.label for p in periods if p.id == clash)
                problem(
                    "period",
                    N_("repeats %(period)s of line %(code)s (row %(row)s)"),
                    {"period": label, "code": code, "row": first_row[code]},
                )
            if total is not None:
                if stated_total[code] not in (None, total):
                    problem(
                        "total",
                        N_("says another total for line %(code)s than row %(row)s"),
                        {"code": code, "row": first_row[code]},
                    )
                stated_total[code] = total
            plan.cells.update(cells)
        errors.extend(row_errors)

    for code, plan in plans.items():
        total = stated_total[code]
        if plan.cells and any(plan.cells.values()) or (plan.cells and total is None):
            plan.cells = {p.id: plan.cells.get(p.id, 0) for p in periods}
            summed = sum(plan.cells.values())
            if total is not None and total != summed:
                errors.append(
                    _found(
                        plan.row,
                        mapping.get("total", FIELDS["total"]),
                        N_("line %(code)s: the periods add up to %(summed)s but the total says %(total)s"),
                        {
                            "code": code,
                            "summed": money_text(summed, grant.currency),
                            "total": money_text(total, grant.currency),
                        },
                    )
                )
            plan.total_cents = total if total is not None else summed
        elif total is not None:
            plan.cells = dict(zip([p.id for p in periods], spread(total, len(periods), profile)))
            plan.total_cents = total
        else:
            errors.append(
                _found(
                    plan.row,
                    mapping.get("total", FIELDS["total"]),
                    N_("line %(code)s has neither a total nor an amount in any period"),
                    {"code": code},
                )
            )
    if not errors:
        planned = sum(p.total_cents or 0 for p in plans.values())
        others = sum(int(cents) for line_code, cents in _line_sums(session, grant.id).items() if line_code not in plans)
        budget = planned + others
        award = int(Decimal(grant.amount) * 100)
        if budget > award:
            errors.append(
                _found(
                    "",
                    mapping.get("total", FIELDS["total"]),
                    N_("the budget would add up to %(budget)s, more than the grant's amount of %(award)s"),
                    {"budget": money_text(budget, grant.currency), "award": money_text(award, grant.currency)},
                )
            )
    errors.sort(key=lambda e: e["row"] if isinstance(e["row"], int) else 0)
    return list(plans.values()), errors


def _found(row: Any, column: str, message: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A row problem as stored: its English text, and its message id and values to show it in the reader's language."""
    return {
        "row": row,
        "column": column,
        "problem": message % values if values else message,
        "message": message,
        "values": values or {},
    }


def _line_sums(session: Session, grant_id: int) -> dict[str, int]:
    return dict(
        session.execute(  # type: ignore[arg-type]
            select(BudgetLine.code, func.sum(BudgetAllocation.amount_cents))
            .join(BudgetAllocation, BudgetAllocation.line_id == BudgetLine.id)
            .where(BudgetLine.grant_id == grant_id)
            .group_by(BudgetLine.code)
        ).all()
    )


@collector_paused()
def run(
    session: Session,
    staged: BudgetPlanImport,
    mapping: dict[str, str],
    *,
    profile: str = "even",
    category_choices: dict[str, str] | None = None,
    default_category: str | None = None,
    progress: Progress | None = None,
) -> BudgetImportResult:
    """Check every row with the confirmed mapping, then import all of it or nothing. The caller commits.

    Amounts are read with the decimal mark chosen on the preview (``mapping["_decimal_mark"]``,
    else the one kept on the staged file); ``progress(stage, done, total)`` hears how far it is.
    """
    if staged.status == ImportStatus.imported:
        raise DomainValidationError({"import": [_("this file was imported already")]})
    if staged.rows is None:
        raise DomainValidationError({"import": [_("the uploaded file is no longer held; upload it again")]})
    if progress is not None:
        progress("checking", 0, staged.row_count)
    plans, errors = check_plan(
        session,
        staged,
        mapping,
        profile=profile,
        category_choices=category_choices,
        default_category=default_category,
    )
    staged.mapping = {
        **{k: v for k, v in mapping.items() if v},
        "_decimal_mark": decimal_mark_of(staged, mapping),
        "_profile": profile,
        "_default_category": default_category or "",
        "_categories": {k: v for k, v in (category_choices or {}).items() if v},
    }
    grant = session.get(Grant, staged.grant_id)
    assert grant is not None
    if not errors:
        waiting = session.scalar(
            select(BudgetRevision).where(
                BudgetRevision.grant_id == grant.id,
                BudgetRevision.status.in_([RevisionStatus.draft, RevisionStatus.submitted]),
                BudgetRevision.justification.contains(staged.sha256),
            )
        )
        if waiting is not None:
            errors.append(
                _found(
                    "",
                    "",
                    N_(
                        "this file is already waiting for approval as revision %(number)s (%(title)s); decide that revision first"
                    ),
                    {"number": waiting.id, "title": waiting.title},
                )
            )
    if errors:
        staged.status = ImportStatus.rejected
        staged.errors = errors
        session.flush()
        return BudgetImportResult(ImportStatus.rejected, None, errors)
    try:
        outcome = apply_plan(
            session,
            grant,
            plans,
            title=f"Budget file {staged.filename}",
            justification=f"Imported from the budget file {staged.filename} (SHA-256 {staged.sha256}) "
            f"by {staged.created_by or 'an unknown user'}.",
        )
    except DomainValidationError as exc:
        errors = [
            {"row": key.removeprefix("row ") if key.startswith("row ") else "", "column": "", "problem": message}
            for key, messages in exc.errors.items()
            for message in messages
        ]
        staged.status = ImportStatus.rejected
        staged.errors = errors
        session.flush()
        return BudgetImportResult(ImportStatus.rejected, None, errors)
    if progress is not None:
        progress("saving", staged.row_count, staged.row_count)
    staged.status = ImportStatus.imported
    staged.errors = []
    staged.lines_added = outcome.added
    staged.lines_changed = outcome.changed
    staged.lines_unchanged = outcome.unchanged
    staged.revision_id = outcome.revision.id if outcome.revision else None
    staged.rows = None
    session.flush()
    return BudgetImportResult(ImportStatus.imported, outcome, [])


def error_report_csv(staged: BudgetPlanImport) -> str:
    """The rejected budget file's problems, one per line: row, column, problem."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "column", "problem"])
    for error in staged.errors or []:
        writer.writerow([error.get("row"), _inert(error.get("column")), _inert(problem_text(error))])
    return out.getvalue()
