"""A reminder's status, and what a call's end or a reply makes of it (pure, for the store).

Statuses, in the `reminders` table and the console:

    queued -> sending -> sent -> confirmed | move_requested -> moved | cancel_requested
                              -> no_answer (the call was not answered and no text followed)
                     -> failed (Twilio refused the call and the text)
    opted_out (planned for a number that said STOP; nothing is sent)

`sent` means delivered to Twilio and not answered yet (a text, a call answered without a
choice, or a message left on a machine).
"""

from __future__ import annotations

from flows.reminders.frame import ReminderFrame

STATUSES = ("queued", "sending", "sent", "confirmed", "move_requested", "moved",
            "cancel_requested", "no_answer", "opted_out", "failed")
#: Statuses the desk acts on (listed like callback requests).
FOR_THE_DESK = ("move_requested", "cancel_requested", "failed")
#: Statuses a later answer no longer changes (a text "1" after a call's cancel stays a cancel).
SETTLED = ("moved", "cancel_requested", "opted_out")


def after_call(frame: ReminderFrame | None, call_status: str) -> str:
    """The status a reminder call leaves: what the patient chose, else sent or no answer.

    `frame` is the call's data when it was answered (None when it never was); `call_status`
    Twilio's final CallStatus."""
    if frame is None or call_status in ("busy", "no-answer", "canceled", "failed"):
        return "no_answer"
    if frame.answer == "move_requested":
        booked = frame.booking is not None and frame.booking.status in ("booked", "recorded")
        return "moved" if booked else "move_requested"
    return frame.answer or "sent"


def after_reply(current: str, intent: str) -> str:
    """The status an SMS reply leaves (`flows.reminders.texting.read_reply`'s intent)."""
    if current in SETTLED:
        return current
    if intent == "opt_out":  # the number's opt-out is kept apart; an answer already given stays
        return "opted_out" if current in ("queued", "sending", "sent", "no_answer") else current
    return {"confirm": "confirmed", "move": "move_requested",
            "cancel": "cancel_requested"}.get(intent, current)
