"""The reminder call's per-call data: the booking frame plus what the reminder is about.

A reminder call may turn into the booking conversation ("press 2 to move it"), whose rows read
and write a `BookingFrame` (`frame_of` checks for one). So `ReminderFrame` *is* a
`BookingFrame`, pre-filled by `start_frame`: the patient (no lookup by number: we called them),
the doctor of the appointment (the move offers that doctor's times), the appointment as the
booking's `next_appointment` (a move books the new time, then asks the desk to cancel it, as
the booking call's own move does) and the clinic's number (From of a confirmation text).

Its own part is stored under one JSON key, "reminder", beside the booking's flat keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from flows.booking.frame import Appointment, BookingFrame, Patient
from flows.clinic_services import ClinicProfile
from flows.reminders.plan import Reminder
from flows.reminders.texting import doctor_words, site_of

if TYPE_CHECKING:
    from flows.engine import Turn

#: What the patient answered (`ReminderFrame.answer`).
ANSWERS = ("confirmed", "cancel_requested", "move_requested")


@dataclass
class ReminderFrame(BookingFrame):
    """The booking frame of a reminder call, with the reminder's own fields."""

    reminder_key: str | None = None
    day: date | None = None
    appointments: list[Appointment] = field(default_factory=list)  # time order
    answered_by: str | None = None  # Twilio's AnsweredBy on the first webhook
    answer: str | None = None  # one of ANSWERS, once the patient chose

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> ReminderFrame:
        """From the stored JSON (never raises, like `BookingFrame.load`)."""
        frame = super().load(raw)
        assert isinstance(frame, ReminderFrame)
        own = frame.extra.pop("reminder", None)
        own = own if isinstance(own, Mapping) else {}
        key, day, by, answer = (own.get(k) for k in ("key", "day", "answered_by", "answer"))
        frame.reminder_key = key if isinstance(key, str) else None
        try:
            frame.day = date.fromisoformat(day) if isinstance(day, str) else None
        except ValueError:
            frame.day = None
        items = own.get("appointments")
        frame.appointments = [a for a in (Appointment.load(x) for x in (
            items if isinstance(items, list) else [])) if a is not None]
        frame.answered_by = by if isinstance(by, str) else None
        frame.answer = answer if answer in ANSWERS else None
        return frame

    def dump(self) -> dict[str, Any]:
        """The booking's JSON plus "reminder"."""
        out = super().dump()
        out["reminder"] = {
            "key": self.reminder_key, "day": self.day.isoformat() if self.day else None,
            "appointments": [a.dump() for a in self.appointments],
            "answered_by": self.answered_by, "answer": self.answer,
        }
        return out


def start_frame(
    reminder: Reminder, profile: ClinicProfile, *, clinic_number: str | None,
    answered_by: str | None = None,
) -> ReminderFrame:
    """The frame a reminder call starts with (see the module docstring)."""
    items = []
    for appt in reminder.appointments:
        site = site_of(profile, appt.doctor_id, appt.clinic_id)
        items.append(Appointment(
            id=appt.id, start=appt.start,
            doctor_name=doctor_words(profile, appt.doctor_id, appt.doctor_name),
            address=site.address if site else "",
        ))
    first = reminder.first
    patient = Patient(first.patient_id, reminder.first_name) if first.patient_id else None
    return ReminderFrame(
        clinic_number=clinic_number,
        patients=[patient] if patient else None,
        patient=patient,
        doctor_id=first.doctor_id,
        next_appointment=items[0],
        reminder_key=reminder.key,
        day=reminder.day,
        appointments=items,
        answered_by=answered_by,
    )


def reminder_of(turn: Turn) -> ReminderFrame:
    """The reminder frame of the turn's call."""
    data = turn.data
    if not isinstance(data, ReminderFrame):  # the reminder flow wired without its frame: a bug
        raise TypeError(f"the reminder flow needs a ReminderFrame, not {type(data).__name__}")
    return data
