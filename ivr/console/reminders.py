"""The console's Reminders page: a day's appointment reminders and the patients' answers,
the desk's to act on first (docs/reminders.md). The rules it shows are `ivr.desk`'s."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, request, session, url_for

from ivr import desk
from ivr.console.views import bp, current_runtime, local_time, login_required

log = logging.getLogger(__name__)

REMINDER_LABELS = {
    "queued": "Waiting to be sent",
    "sending": "Being sent",
    "sent": "Sent, no answer yet",
    "confirmed": "Confirmed",
    "move_requested": "Wants to move",
    "moved": "Moved",
    "cancel_requested": "Wants to cancel",
    "no_answer": "Not reached",
    "opted_out": "Opted out of texts",
    "failed": "Failed",
}


@bp.get("/reminders")
@login_required
def reminders() -> Any:
    """A day's appointment reminders (`?day=YYYY-MM-DD`, default: the day today's run
    reminds), the answers the desk acts on first, each with "Done"; counts per status."""
    rt = current_runtime()
    settings = rt.settings.clinic.reminders
    default_day = desk.reminder_day(rt.clock.now(), settings.days_ahead if settings else 1)
    error = None
    try:
        day = desk.parse_day(request.args.get("day")) if request.args.get("day") else default_day
    except desk.DeskError as exc:
        error, day = exc.message, default_day
    found = desk.desk_reminders(rt.store, day)
    rows = [_reminder_view(r) for r in found.reminders]
    return render_template(
        "console/reminders.html", day=day, rows=rows, counts=found.counts, error=error,
        labels=REMINDER_LABELS, enabled=settings is not None,
        previous=day - timedelta(days=1), following=day + timedelta(days=1),
    ), 400 if error else 200


def _reminder_view(item: desk.DeskReminder) -> dict[str, Any]:
    record = item.record
    return {
        "record": record,
        "times": [f"{a.start:%H:%M}" for a in item.appointments],
        "doctors": sorted({a.doctor_name for a in item.appointments if a.doctor_name}),
        "for_the_desk": item.for_the_desk,
        "label": REMINDER_LABELS.get(record.status, record.status),
        "handled_at": local_time(record.handled_at),
    }


@bp.post("/reminders/<path:key>/handled", merge_slashes=False)
@login_required
def reminder_handled(key: str) -> Any:
    """The desk acted on a reminder's answer (called the patient, moved or cancelled)."""
    rt = current_runtime()
    day = request.form.get("day", "")
    if rt.store.mark_reminder_handled(key, session.get("agent", "?")):
        log.info("reminder %s marked done by agent %s", key, session.get("agent"))
        flash("Marked done.", "info")
    else:
        flash("That reminder is already done (or no longer exists).", "error")
    try:
        back = desk.parse_day(day).isoformat() if day else None
    except desk.DeskError:
        back = None
    return redirect(url_for("console.reminders", day=back))


