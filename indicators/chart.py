"""Actual against target over time as a small inline SVG, rendered on the server (no script, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from markupsafe import Markup, escape

from core.formatting import gettext as _
from indicators.models import shown as fmt
from indicators.progress import ProgressRow

WIDTH, HEIGHT = 520, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 34
TARGET_COLOUR, ACTUAL_COLOUR = "#9aa5b1", "#1f6fb2"


def progress_chart(rows: Sequence[ProgressRow], *, cumulative: bool = False) -> Markup:
    """Grouped bars per period: target (grey) and actual (blue), each labelled with its figure.

    ``rows`` are one indicator's rows in period order. With ``cumulative`` the
    bars show the figures to date (according to the indicator's cumulative mode).
    """
    if not rows:
        return Markup("")
    reported = [index for index, r in enumerate(rows) if r.actual is not None]
    last_reported = reported[-1] if reported else -1
    # Cumulative actuals stop at the latest reported period: later bars would only repeat it.
    pairs = [
        (
            r.period_label,
            r.cumulative_target if cumulative else r.target,
            (r.cumulative_actual if index <= last_reported else None) if cumulative else r.actual,
        )
        for index, r in enumerate(rows)
    ]
    top = max([v for _, t, a in pairs for v in (t, a) if v is not None] or [Decimal(1)])
    top = top if top > 0 else Decimal(1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(pairs)
    bar = min(28.0, slot / 3)

    def y(value: Decimal) -> float:
        return TOP + plot_h - float(value / top) * plot_h

    code = rows[0].indicator_code
    aria = _("%(code)s: actual against target by period", code=code)
    heading = (
        _("%(code)s: actual against target to date", code=code)
        if cumulative
        else _("%(code)s: actual against target", code=code)
    )
    words = {"target": _("target"), "actual": _("actual")}
    places = 1 if rows[0].unit == "percentage" else 2
    parts = [
        f'<svg class="indicator-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(aria)}">',
        f"<title>{escape(heading)}</title>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#555"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="10">{escape(fmt(top, places))}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="10">0</text>',
    ]
    for index, (label, target, actual) in enumerate(pairs):
        centre = LEFT + slot * index + slot / 2
        for offset, value, colour, kind in (
            (-bar, target, TARGET_COLOUR, "target"),
            (0.0, actual, ACTUAL_COLOUR, "actual"),
        ):
            x = centre + offset
            if value is None:
                parts.append(
                    f'<text x="{x + bar / 2:.1f}" y="{TOP + plot_h - 3}" text-anchor="middle" font-size="9" fill="#999">–</text>'
                )
                continue
            top_y = y(value)
            parts.append(
                f'<rect class="bar-{kind}" x="{x:.1f}" y="{top_y:.1f}" width="{bar:.1f}" '
                f'height="{TOP + plot_h - top_y:.1f}" fill="{colour}"><title>{escape(label)} {escape(words[kind])}: '
                f"{escape(fmt(value, places))}</title></rect>"
            )
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top_y - 3:.1f}" text-anchor="middle" font-size="9">{escape(fmt(value, places))}</text>'
            )
        parts.append(
            f'<text x="{centre:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle" font-size="10">{escape(label)}</text>'
        )
    legend_y = HEIGHT - 6
    parts.append(f'<rect x="{LEFT}" y="{legend_y - 8}" width="10" height="8" fill="{TARGET_COLOUR}"/>')
    parts.append(f'<text x="{LEFT + 14}" y="{legend_y}" font-size="10">{escape(words["target"])}</text>')
    parts.append(f'<rect x="{LEFT + 60}" y="{legend_y - 8}" width="10" height="8" fill="{ACTUAL_COLOUR}"/>')
    parts.append(f'<text x="{LEFT + 74}" y="{legend_y}" font-size="10">{escape(words["actual"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
