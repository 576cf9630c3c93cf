"""The console's History page: calls per clinic-local day by outcome, containment, the
funnel and the busiest hours (figures from `ivr.insights`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import jsonify, render_template

from ivr import insights
from ivr.console.views import bp, clinic_zone, current_runtime, login_required

HISTORY_DAYS = 14
HISTORY_OUTCOMES = (
    ("booked", "Booked by phone"),
    ("transferred", "Transferred"),
    ("callback", "Callback"),
    ("answered", "Question answered"),
    ("abandoned", "Abandoned"),
    ("failed", "Failed"),
    (None, "In progress"),
)


def _insights() -> insights.Insights:
    rt = current_runtime()
    zone = clinic_zone()
    today = insights.local_today(rt.store.now(), zone)
    facts = rt.store.call_facts(insights.window_start(zone, today, HISTORY_DAYS))
    return insights.compute(facts, zone, today, HISTORY_DAYS)


@bp.get("/history")
@login_required
def history() -> Any:
    """Calls per clinic-local day by outcome over 14 days (a table and an SVG chart), the
    containment rate; the funnel and busiest hours are drawn in the browser from the JSON."""
    figures = _insights()
    days = list(figures.days)
    table = {d: {key: 0 for key, _ in HISTORY_OUTCOMES} for d in days}
    for d in days:
        for outcome, n in figures.outcomes_by_day[d].items():
            key = outcome if outcome in table[d] else None
            table[d][key] += n
    totals = {key: sum(table[d][key] for d in days) for key, _ in HISTORY_OUTCOMES}
    return render_template(
        "console/history.html", days=days, table=table, outcomes=HISTORY_OUTCOMES,
        totals=totals, all_calls=figures.calls, containment=figures.containment,
        figures=figures, zone=clinic_zone().key, chart=_chart(days, table),
    )


@bp.get("/history.json")
@login_required
def history_json() -> Any:
    """The History page's figures (funnel, busiest hours, containment) as JSON."""
    return jsonify(_insights().to_json())


def _chart(days: list[date], table: dict[date, dict[Any, int]]) -> dict[str, Any]:
    """Stacked bars (one per day) as plain numbers for the template's inline SVG."""
    width, height, pad = 700, 200, 20
    bar_w = (width - 2 * pad) / len(days)
    peak = max([sum(table[d].values()) for d in days] + [1])
    bars = []
    for i, d in enumerate(days):
        y: float = height - pad
        for key, label in HISTORY_OUTCOMES:
            n = table[d][key]
            if not n:
                continue
            h = (height - 2 * pad) * n / peak
            y -= h
            bars.append({
                "x": round(pad + i * bar_w + 2, 1), "y": round(y, 1),
                "w": round(bar_w - 4, 1), "h": round(h, 1),
                "cls": f"bar-{key or 'open'}", "title": f"{d:%d %b}: {n} {label.lower()}",
            })
    labels = [{"x": round(pad + i * bar_w + bar_w / 2, 1), "text": f"{d:%d}"}
              for i, d in enumerate(days)]
    return {"width": width, "height": height, "bars": bars, "labels": labels, "peak": peak,
            "base": height - pad}
