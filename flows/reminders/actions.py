"""What the reminder call's rows do: who answered, the patient's choice, and recording it.

Confirm and cancel are recorded in the call's frame (`ReminderFrame.answer`, which the edge
turns into the reminder's status: `flows.reminders.status.after_call`); a cancel is also put to
the desk as the booking call's cancellation requests are (`conversation.request_cancellation`:
no public Clinicea call cancels). A move goes on into the booking rows with the doctor and the
appointment already known.
"""

from __future__ import annotations

from flows.booking import conversation as c
from flows.booking.facts import common_facts
from flows.engine import Turn
from flows.reminders.frame import reminder_of
from flows.reminders.plan import MACHINE_ANSWERS
from flows.reminders.texting import say_appointments
from flows.understanding import Answer, Understood, parse_choice, parse_yes_no
from flows.understanding.utterance import read_utterance

_CHOICES = {"1": ["confirm", "yes", "coming", "ok"], "2": ["move", "change", "reschedule"],
            "3": ["cancel"]}
_LABELS = {"1": "confirm", "2": "move", "3": "cancel"}
MENU_HINTS = ("yes", "confirm", "move", "change", "reschedule", "cancel", "tomorrow", "Monday",
              "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def who_answered(turn: Turn) -> str:
    """A machine gets a short message; a person (or "unknown": not sure) the reminder of "one"
    appointment (which a move books anew) or of "many"."""
    frame = reminder_of(turn)
    if (frame.answered_by or "") in MACHINE_ANSWERS:
        return "machine"
    return "one" if len(frame.appointments) <= 1 else "many"


def choose(answer: Answer, turn: Turn) -> str | None:
    """1 or "yes" confirms, 2 or "move it to Friday" moves, 3 or "cancel" cancels."""
    if answer.keyed:
        return _LABELS.get(answer.keyed)
    reading = read_utterance(answer, turn.context())
    if reading.intent == "cancel":
        return _sure(turn, answer, reading.sure, "cancel")
    if reading.intent == "move" or reading.has_request:
        c.remember(turn, reading)  # "can I come on Friday at 11 instead" books Friday at 11
        return _sure(turn, answer, reading.sure, "move")
    result = parse_yes_no(answer, turn.context())
    if isinstance(result, Understood):
        return _sure(turn, answer, result.sure, "confirm") if result.value else None
    choice = parse_choice(answer, turn.context(), _CHOICES)
    if isinstance(choice, Understood):
        return _sure(turn, answer, choice.sure, _LABELS[choice.value])
    return None


def _sure(turn: Turn, answer: Answer, sure: bool, label: str) -> str:
    if not sure:
        turn.unsure = answer.speech or ""
    return label


def confirm(turn: Turn) -> str:
    """Record the confirmation."""
    reminder_of(turn).answer = "confirmed"
    return "done"


def cancel(turn: Turn) -> str:
    """Ask the desk to cancel every appointment the reminder named: one request naming them all
    (the store keeps one callback request per call), worded as the booking call's are
    ("cancel appointment ...", how the console tells cancellations apart)."""
    frame = reminder_of(turn)
    frame.answer = "cancel_requested"
    if len(frame.appointments) <= 1:
        c.request_cancellation(turn)
        return "one"
    named = " and ".join(f"{a.id} on {a.start.isoformat()[:16]}" for a in frame.appointments)
    turn.services.request_callback(
        turn.call.call_sid, frame.keyed_number or turn.call.caller,
        f"{c.CANCEL_REASON} {named} (asked on the reminder call)",
    )
    return "many"


def start_move(turn: Turn) -> str:
    """On into the booking rows: the new time is booked first, then the desk cancels the old."""
    frame = reminder_of(turn)
    frame.moving = True
    frame.answer = "move_requested"
    old = frame.next_appointment
    if frame.notes is None and old is not None:
        # The new appointment's notes say where it came from (and the reason is not asked).
        frame.notes = f"moved from {old.start.isoformat(sep=' ')[:16]} (reminder call)"
    return "ok"


def no_time_said(turn: Turn) -> bool:
    """ "Let's find you a new time" only when the patient did not say one already."""
    return reminder_of(turn).request is None


def move_for_desk(turn: Turn) -> str:
    """Several appointments to move: which one, and to when, is for a person to settle."""
    frame = reminder_of(turn)
    named = ", ".join(f"{a.id} on {a.start.isoformat()[:16]}" for a in frame.appointments)
    turn.services.request_callback(
        turn.call.call_sid, frame.keyed_number or turn.call.caller,
        f"move appointments {named} (asked on the reminder call)",
    )
    frame.answer = "move_requested"
    return "done"


def reminder_facts(turn: Turn) -> dict[str, object]:
    """The booking's facts plus the reminder's: the appointments as said, their address and the
    first one's time (all a machine hears)."""
    facts = common_facts(turn)
    frame = reminder_of(turn)
    if frame.appointments:
        today = turn.today
        first = frame.appointments[0]
        facts["appointments"] = say_appointments(
            turn.lang, [(a.start, a.doctor_name) for a in frame.appointments], today)
        facts["reminder_address"] = first.address
        facts["first_when"] = turn.lang.say_when(first.start, today)
    return facts
