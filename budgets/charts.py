"""Server-rendered inline SVG charts for the budget pages: no JavaScript, no CDN, fine under the CSP."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from markupsafe import Markup, escape

from budgets.report import BudgetReport
from core.formatting import day, number, pct
from core.formatting import gettext as _

PLANNED = "#9ecae1"
ACTUAL = "#3182bd"
OVER = "#d9534f"


def _fmt(value: Decimal) -> str:
    """A whole amount the reader's way: 1,235 / 1.235 / 1 235."""
    return number(value, 0)


def category_bars(report: BudgetReport, cumulative: bool = True) -> Markup:
    """Planned vs actual per cost category as paired horizontal bars; overspent bars in red."""
    rows = report.rows
    if not rows:
        return Markup('<p class="text-muted">%s</p>') % _("No budget lines yet.")
    values = [(r.cumulative_planned, r.cumulative_actual) if cumulative else (r.planned, r.actual) for r in rows]
    top = max([max(p, a) for p, a in values] + [Decimal(1)])
    # Translated outside the f-strings: the catalogue extractor does not read inside them.
    aria = escape(_("Planned and actual spending by cost category"))
    planned_word = escape(_("planned"))
    actual_word = escape(_("actual (%(currency)s)", currency=report.currency))
    over_word = escape(_("over plan"))
    label_w, bar_w, row_h = 230, 420, 38
    height = row_h * len(rows) + 40
    parts = [
        f'<svg class="budget-chart" role="img" width="100%" viewBox="0 0 {label_w + bar_w + 150} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{aria}">'
    ]
    for i, (row, (planned, actual)) in enumerate(zip(rows, values)):
        y = 10 + i * row_h
        name = f"{row.key} {row.name}"
        short = name if len(name) <= 34 else name[:33] + "…"
        pw = float(planned / top) * bar_w
        aw = float(actual / top) * bar_w
        colour = OVER if actual > planned else ACTUAL
        planned_title = escape(_("planned %(amount)s", amount=_fmt(planned)))
        actual_title = escape(_("actual %(amount)s", amount=_fmt(actual)))
        parts.append(f'<text x="0" y="{y + 16}" font-size="12"><title>{escape(name)}</title>{escape(short)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{pw:.1f}" height="13" fill="{PLANNED}"><title>{planned_title}</title></rect>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 15}" width="{aw:.1f}" height="13" fill="{colour}"><title>{actual_title}</title></rect>'
        )
        parts.append(f'<text x="{label_w + max(pw, aw) + 6:.1f}" y="{y + 12}" font-size="11">{_fmt(planned)}</text>')
        parts.append(
            f'<text x="{label_w + max(pw, aw) + 6:.1f}" y="{y + 27}" font-size="11" fill="{colour}">{_fmt(actual)}</text>'
        )
    legend_y = height - 12
    parts.append(
        f'<rect x="{label_w}" y="{legend_y - 9}" width="12" height="10" fill="{PLANNED}"/>'
        f'<text x="{label_w + 16}" y="{legend_y}" font-size="11">{planned_word}</text>'
        f'<rect x="{label_w + 80}" y="{legend_y - 9}" width="12" height="10" fill="{ACTUAL}"/>'
        f'<text x="{label_w + 96}" y="{legend_y}" font-size="11">{actual_word}</text>'
        f'<rect x="{label_w + 200}" y="{legend_y - 9}" width="12" height="10" fill="{OVER}"/>'
        f'<text x="{label_w + 216}" y="{legend_y}" font-size="11">{over_word}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def burn_line(
    start: date,
    end: date,
    planned_points: list[tuple[date, Decimal]],
    actual_points: list[tuple[date, Decimal]],
    currency: str,
    today: date | None = None,
) -> Markup:
    """Cumulative planned (dashed, by period end) and cumulative actual (solid, by month) against time."""
    if not planned_points and not actual_points:
        return Markup('<p class="text-muted">%s</p>') % _("Nothing planned or spent yet.")
    aria = escape(_("Cumulative spending against the plan over time"))
    planned_title = escape(_("cumulative planned"))
    actual_title = escape(_("cumulative actual"))
    today_word = escape(_("today"))
    legend = escape(_("dashed: planned · solid: actual (%(currency)s)", currency=currency))
    width, height, left, bottom = 640, 260, 70, 30
    plot_w, plot_h = width - left - 20, height - bottom - 20
    span = max((end - start).days, 1)
    top = max([v for _, v in planned_points + actual_points] + [Decimal(1)])

    def xy(day: date, value: Decimal) -> str:
        x = left + plot_w * min(max((day - start).days, 0), span) / span
        y = 10 + plot_h - float(value / top) * plot_h
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg class="budget-chart" role="img" width="100%" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{aria}">',
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}" stroke="#999"/>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}" stroke="#999"/>',
    ]
    for fraction in (Decimal("0.5"), Decimal(1)):
        y = 10 + plot_h - float(fraction) * plot_h
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(top * fraction)}</text>'
        )
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="10">{escape(day(start))}</text>')
    parts.append(
        f'<text x="{left + plot_w}" y="{height - 8}" font-size="10" text-anchor="end">{escape(day(end))}</text>'
    )
    if planned_points:
        points = " ".join([xy(start, Decimal(0))] + [xy(d, v) for d, v in planned_points])
        parts.append(
            f'<polyline fill="none" stroke="{PLANNED}" stroke-width="2.5" stroke-dasharray="6 4" points="{points}"><title>{planned_title}</title></polyline>'
        )
    if actual_points:
        points = " ".join([xy(start, Decimal(0))] + [xy(d, v) for d, v in actual_points])
        parts.append(
            f'<polyline fill="none" stroke="{ACTUAL}" stroke-width="2.5" points="{points}"><title>{actual_title}</title></polyline>'
        )
        last_day, last_value = actual_points[-1]
        dot_x, dot_y = xy(last_day, last_value).split(",")
        parts.append(
            f'<circle cx="{dot_x}" cy="{dot_y}" r="3.5" fill="{ACTUAL}"/><text x="{float(dot_x) + 6:.1f}" y="{float(dot_y) - 6:.1f}" font-size="11">{_fmt(last_value)} {escape(currency)}</text>'
        )
    if today is not None and start <= today <= end:
        x = xy(today, Decimal(0)).split(",")[0]
        parts.append(
            f'<line x1="{x}" y1="10" x2="{x}" y2="{10 + plot_h}" stroke="#aaa" stroke-dasharray="2 3"/><text x="{x}" y="20" font-size="10">{today_word}</text>'
        )
    parts.append(f'<text x="{left + 10}" y="24" font-size="11" fill="#555">{legend}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def mini_bar(spent: Decimal, budget: Decimal) -> Markup:
    """A one-line burn bar for the grant page panel."""
    share = float(spent / budget) if budget else 0.0
    width = min(share, 1.0) * 300
    colour = OVER if share > 1 else ACTUAL
    aria = escape(_("%(share)s of the budget spent", share=pct(share * 100, 0)))
    return Markup(
        f'<svg width="100%" viewBox="0 0 300 14" role="img" aria-label="{aria}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="300" height="14" fill="#eee"/><rect x="0" y="0" width="{width:.1f}" height="14" fill="{colour}"/></svg>'
    )
