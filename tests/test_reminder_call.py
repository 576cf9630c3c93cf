"""The outbound reminder call on the engine, with a fake ClinicServices (no Flask, no HTTP).

Bilal has an appointment tomorrow (Tuesday 24 November 2026) at 4 p.m. with Dr. Farooq; the
clinic calls him the day before at 10:00.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from flows.clinic_services import BookingOutcome, BookingRequest, ClinicProfile
from flows.domain import ClinicSite, Doctor, Slot, WeeklyHours
from flows.engine import CallState, Engine, Reply
from flows.lang import CATALOGUES
from flows.reminders import FLOW
from flows.reminders.frame import ReminderFrame, start_frame
from flows.reminders.plan import DayAppointment, Reminder
from flows.reminders.status import after_call
from flows.understanding import Answer

NOW = datetime(2026, 11, 23, 10, 0)
DAY = date(2026, 11, 24)
BILAL = "+923216315551"
CLINIC_NUMBER = "+922135550199"
OPEN = WeeklyHours({d: ((time(9), time(17)),) for d in range(6)})
PROFILE = ClinicProfile(
    name="Harbour Family Clinic",
    sites=(ClinicSite("C1", "Clifton", "7 Khayaban-e-Ittehad", "+922135550100"),),
    doctors=(Doctor("D1", "Dr. Nadia Farooq", "C1", ("Farooq",)),
             Doctor("D2", "Dr. Ayesha Khan", "C1", ("Khan",))),
    services=(), default_service_id="S1", hours=OPEN, agent_hours=OPEN, slot_minutes=20,
    booking_days_ahead=30, region="PK", language="en-GB", languages_offered=("en-GB",),
)
AT_4 = DayAppointment("A1", datetime.combine(DAY, time(16)), "Scheduled", "P1", "Bilal Ahmed",
                      BILAL, doctor_id="D1", doctor_name="Dr. Nadia Farooq")
AT_10 = replace(AT_4, id="A2", start=datetime.combine(DAY, time(10)), doctor_id="D2",
                doctor_name="Dr. Ayesha Khan")


class FakeClinic:
    """The clinic services the reminder and booking rows use, answered from memory."""

    profile = PROFILE

    def __init__(self) -> None:
        self.booked: list[BookingRequest] = []
        self.callbacks: list[tuple[str | None, str]] = []

    def now(self) -> datetime:
        return NOW

    def normalise_phone(self, raw: str) -> str | None:
        return raw

    def find_patients(self, phone_e164: str):
        return []

    def last_visit(self, patient_id: str):
        return None

    def next_appointment(self, patient_id: str):
        return None

    def free_slots(self, doctor_id, *, day=None, after=None, limit=3):
        first = datetime.combine(day or date(2026, 11, 25), time(9))
        days = [first + timedelta(minutes=20 * i) for i in range(24)]
        return [Slot(doctor_id, t, 20) for t in days if t.time() < time(17)][:limit]

    def book(self, request: BookingRequest) -> BookingOutcome:
        self.booked.append(request)
        return BookingOutcome("booked", "A-NEW", request.patient_id)

    def request_callback(self, call_sid: str, phone_e164: str | None, reason: str) -> None:
        self.callbacks.append((phone_e164, reason))


def reminder(*appointments: DayAppointment) -> Reminder:
    return Reminder(key="2026-11-24/p:P1", day=DAY, patient_id="P1", first_name="Bilal",
                    mobile=BILAL, appointments=appointments or (AT_4,), channels=("call", "sms"))


def answered(*appointments: DayAppointment, by: str = "human"):
    clinic = FakeClinic()
    engine = Engine(FLOW, clinic, transfer_number="+922135550100")  # type: ignore[arg-type]
    call = CallState("CA1", caller=BILAL, data=start_frame(
        reminder(*appointments), PROFILE, clinic_number=CLINIC_NUMBER, answered_by=by))
    reply, _ = engine.start(call)
    return engine, clinic, call, reply


def press(engine: Engine, call: CallState, digits: str) -> Reply:
    reply, _ = engine.on_answer(call, call.step, Answer(digits=digits))
    while reply.redirect:
        reply, _ = engine.on_redirect(call, reply.redirect)
    return reply


def say(engine: Engine, call: CallState, speech: str) -> Reply:
    reply, _ = engine.on_answer(call, call.step, Answer(speech=speech, confidence=0.9))
    while reply.redirect:
        reply, _ = engine.on_redirect(call, reply.redirect)
    return reply


def test_the_patient_hears_the_reminder_and_its_choices_in_one_breath():
    _, _, call, reply = answered()
    assert reply.text == (
        "Hello Bilal, this is Harbour Family Clinic with a reminder of your appointment "
        "tomorrow, Tuesday the 24th at 4 p.m. with Dr. Farooq, at 7 Khayaban-e-Ittehad. "
        "To confirm, press 1 or say yes. To move it, press 2. To cancel, press 3. "
        "For reception, press 0.")
    assert reply.gather is not None and reply.gather.num_digits == 1


def test_one_confirms_and_the_confirmation_is_recorded():
    engine, clinic, call, _ = answered()
    reply = press(engine, call, "1")
    assert reply.text == "Thank you, we'll see you then. Goodbye." and reply.hangup
    assert after_call(call.data, "completed") == "confirmed" and not clinic.callbacks


def test_saying_yes_confirms_too():
    engine, _, call, _ = answered()
    assert say(engine, call, "yes I'll be there").hangup
    assert after_call(call.data, "completed") == "confirmed"


def test_three_asks_the_desk_to_cancel():
    engine, clinic, call, _ = answered()
    reply = press(engine, call, "3")
    assert "asked the reception team to cancel your appointment" in reply.text and reply.hangup
    assert clinic.callbacks == [
        (BILAL, "cancel appointment A1 on 2026-11-24T16:00 (asked by the caller)")]
    assert after_call(call.data, "completed") == "cancel_requested"


def test_two_moves_it_through_the_booking_conversation_then_the_old_one_is_cancelled():
    engine, clinic, call, _ = answered()
    reply = press(engine, call, "2")
    assert reply.text.startswith("Let's find you a new time. Dr. Farooq's next free times:")
    reply = press(engine, call, "1")
    assert "with Dr. Farooq. Press 1 to book it" in reply.text  # no reason asked: it is a move
    reply = press(engine, call, "1")
    assert "You're booked" in reply.text and reply.hangup
    [booking] = clinic.booked
    assert (booking.doctor_id, booking.start, booking.patient_id) == (
        "D1", datetime(2026, 11, 25, 9), "P1")
    assert clinic.callbacks == [(BILAL, "cancel appointment A1 on 2026-11-24T16:00 (moved to a "
                                        "new time: asked by the caller)")]
    assert after_call(call.data, "completed") == "moved"


def test_a_spoken_new_time_goes_straight_to_the_read_back():
    engine, _, call, _ = answered()
    reply = say(engine, call, "can I move it to Friday at 11")
    assert reply.text.startswith("Friday the 27th of November at 11 a.m. with Dr. Farooq")


def test_hanging_up_in_the_middle_of_a_move_leaves_a_move_request_for_the_desk():
    engine, _, call, _ = answered()
    press(engine, call, "2")
    assert after_call(call.data, "completed") == "move_requested"


def test_an_answering_machine_gets_a_short_message():
    _, clinic, call, reply = answered(by="machine_end_beep")
    assert reply.hangup and reply.gather is None
    assert reply.text == ("This is Harbour Family Clinic with a reminder for Bilal of an "
                          "appointment tomorrow, Tuesday the 24th at 4 p.m. To change it, please "
                          "call us. Goodbye.")
    assert "Farooq" not in reply.text  # a machine may be heard by anyone
    assert call.outcome == "reminder_machine" and after_call(call.data, "completed") == "sent"


def test_two_appointments_are_named_in_one_call_and_cancelled_together():
    engine, clinic, call, reply = answered(AT_10, AT_4)
    assert ("your appointments tomorrow, Tuesday the 24th at 10 a.m. with Dr. Khan and at "
            "4 p.m. with Dr. Farooq") in reply.text
    press(engine, call, "3")
    # one request naming both: the store keeps one callback request per call
    assert clinic.callbacks == [(BILAL, "cancel appointment A2 on 2026-11-24T10:00 and A1 on "
                                        "2026-11-24T16:00 (asked on the reminder call)")]


def test_moving_one_of_two_appointments_is_left_to_the_desk():
    engine, clinic, call, _ = answered(AT_10, AT_4)
    reply = press(engine, call, "2")
    assert "call you to find new times" in reply.text and reply.hangup
    [(_, reason)] = clinic.callbacks
    assert reason.startswith("move appointments A2 on 2026-11-24T10:00, A1 on")
    assert after_call(call.data, "completed") == "move_requested"


def test_zero_puts_the_patient_through_to_reception():
    engine, _, call, _ = answered()
    reply = press(engine, call, "0")
    assert reply.dial is not None and call.transferred


def test_the_call_survives_being_stored_between_turns():
    engine, clinic, call, _ = answered()
    raw = call.to_dict()
    assert raw["data"]["reminder"]["key"] == "2026-11-24/p:P1"
    again = CallState.from_dict(raw, frame=FLOW.frame)
    assert isinstance(again.data, ReminderFrame) and again.data.dump() == call.data.dump()
    press(engine, again, "1")
    assert after_call(again.data, "completed") == "confirmed"


def test_every_prompt_of_the_reminder_call_is_in_every_catalogue():
    for lang in CATALOGUES.values():
        assert FLOW.prompt_keys() <= set(lang.prompts)
