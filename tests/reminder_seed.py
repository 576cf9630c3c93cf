"""A planned day of appointment reminders with the desk's answers in it, for the console, API
and metrics tests: Tuesday 24 November 2026 (the day after the rig's Monday 10:00)."""

from __future__ import annotations

from datetime import date, datetime

from flows.reminders.plan import DayAppointment, plan_day, reminder_key
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_DOCTOR_KHAN_ID
from ivr.sandbox.seed import DEMO_PATIENTS as P
from ivr.store import Store
from tests.demo import MONDAY_10AM

DAY = date(2026, 11, 24)


def _appt(id_: str, hour: int, minute: int, who: str, doctor: str, name: str) -> DayAppointment:
    p = P[who]
    return DayAppointment(id=id_, start=datetime(2026, 11, 24, hour, minute), status="Scheduled",
                          patient_id=p.id, patient_name=p.name, mobile=p.e164,
                          doctor_id=doctor, doctor_name=name)


ROWS = (
    _appt("A-bilal", 16, 0, "Bilal Ahmed", DEMO_DOCTOR_FAROOQ_ID, "Dr. Nadia Farooq"),
    _appt("A-ayesha", 10, 0, "Ayesha Siddiqui", DEMO_DOCTOR_KHAN_ID, "Dr. Ayesha Khan"),
    _appt("A-usman", 11, 0, "Usman Tariq", DEMO_DOCTOR_KHAN_ID, "Dr. Ayesha Khan"),
    _appt("A-usman2", 11, 40, "Usman Tariq", DEMO_DOCTOR_FAROOQ_ID, "Dr. Nadia Farooq"),
    _appt("A-hira", 12, 0, "Hira Malik", DEMO_DOCTOR_FAROOQ_ID, "Dr. Nadia Farooq"),
)


def key_of(who: str) -> str:
    """The reminder key of a demo patient on DAY."""
    p = P[who]
    return reminder_key(DAY, p.id, p.e164)


def seed_reminders(store: Store) -> None:
    """Plan DAY and give the answers: Bilal confirmed on the call, Ayesha texted 3 (cancel),
    Hira texted 2 (move), Usman's reminder (two appointments) still waits to be sent."""
    store.plan_reminders(plan_day(DAY, ROWS, channels=("call", "sms"), now=MONDAY_10AM))
    assert store.set_reminder_status(key_of("Bilal Ahmed"), "confirmed", channel="call",
                                     answered_by="human")
    assert store.set_reminder_status(key_of("Ayesha Siddiqui"), "cancel_requested",
                                     channel="sms", reply="3")
    assert store.set_reminder_status(key_of("Hira Malik"), "move_requested", channel="sms",
                                     reply="can I come on Friday instead?")
