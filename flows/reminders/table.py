"""The reminder call: its own rows, then the booking call's rows a move goes on into.

"Hello Bilal, this is Harbour Family Clinic with a reminder of your appointment tomorrow at
4 p.m. with Dr. Farooq, at 7 Khayaban-e-Ittehad. To confirm, press 1 or say yes. To move it,
press 2. To cancel, press 3. For reception, press 0."

How the two tables join: `FLOW` is the reminder rows followed by the booking rows reachable from
them (`booking_rows_from`), in the booking table's order, so each keeps its fall-through ("the
row below") and the engine's checks (every target known, every row reachable, every prompt in
every catalogue) hold for the whole. A move enters at `slots_find` with the doctor, patient and
appointment pre-filled (`frame.start_frame`); "0" and a give-up go to the booking's `person`.
Answering machines (Twilio's AnsweredBy) hear a short message and the call ends.
"""

from __future__ import annotations

from flows.booking import FLOW as BOOKING
from flows.lang import CATALOGUES
from flows.reminders import actions as r
from flows.reminders.frame import ReminderFrame
from flows.steps import Ask, Do, Flow, Hangup, Say, Step

#: Where the reminder rows enter the booking table.
ENTRIES = ("slots_find", "person", "records_down")

REMINDER_ROWS: list[Step] = [
    Do("reminder_start", r.who_answered,
       next={"machine": "reminder_machine", "one": "reminder_greet",
             "many": "reminder_greet_many"}),
    Hangup("reminder_machine", "reminder_voicemail", outcome="reminder_machine"),
    Say("reminder_greet", "reminder_greet", next="reminder_menu"),
    Say("reminder_greet_many", "reminder_greet_many", next="reminder_menu_many"),
    Ask("reminder_menu", "reminder_menu", r.choose, digits=1, hints=r.MENU_HINTS,
        next={"confirm": "reminder_confirm", "move": "reminder_move",
              "cancel": "reminder_cancel"}),
    Ask("reminder_menu_many", "reminder_menu_many", r.choose, digits=1, hints=r.MENU_HINTS,
        next={"confirm": "reminder_confirm", "move": "reminder_move_desk",
              "cancel": "reminder_cancel"}),
    Do("reminder_confirm", r.confirm, next="reminder_confirmed"),
    Hangup("reminder_confirmed", "reminder_confirmed", outcome="reminder_confirmed"),
    Do("reminder_cancel", r.cancel,
       next={"one": "reminder_cancelled", "many": "reminder_cancelled_many"}),
    Hangup("reminder_cancelled", "reminder_cancel_requested", outcome="reminder_cancelled"),
    Hangup("reminder_cancelled_many", "reminder_cancel_requested_many",
           outcome="reminder_cancelled"),
    Do("reminder_move", r.start_move, next="reminder_move_start"),
    Say("reminder_move_start", "reminder_move_start", next="slots_find", when=r.no_time_said),
    Do("reminder_move_desk", r.move_for_desk, next="reminder_move_desk_done"),
    Hangup("reminder_move_desk_done", "reminder_move_requested", outcome="reminder_move"),
]


def booking_rows_from(booking: Flow, entries: tuple[str, ...]) -> list[Step]:
    """The booking rows reachable from `entries`, in the booking table's order.

    Leaving out only unreachable rows keeps every fall-through: a row that falls through
    reaches the row below it, so that row is kept, and stays the next one kept."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(booking.targets(booking[key]))
    return [row for row in booking.rows if row.key in seen]


FLOW = Flow(
    "reminder",
    [*REMINDER_ROWS, *booking_rows_from(BOOKING, ENTRIES)],
    person=BOOKING.person, unavailable=BOOKING.unavailable, facts=r.reminder_facts,
    catalogues=[lang.prompts for lang in CATALOGUES.values()],
    frame=ReminderFrame.load,
)
