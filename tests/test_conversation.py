"""A conversation, not a phone tree (issue 10): whole calls through the simulator on the sandbox.

The clock is fixed at Monday 23 November 2026, 10:00 in Karachi. The demo clinic is open
09:00-17:00 Monday to Thursday, 09:00-13:00 on Friday, 10:00-14:00 on Saturday.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, time

from flows.domain import WeeklyHours
from ivr.config import DEMO_CLINIC
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_DOCTOR_SHEIKH_ID,
    DEMO_SERVICE_CONSULTATION_ID,
)
from ivr.simulator import Pressed, Said, Silence
from tests.agents import api_headers, signed_in
from tests.calls import rig
from tests.demo import BILAL, NEW_CALLER

URDU = dataclasses.replace(DEMO_CLINIC, languages_offered=("en-GB", "ur-PK"))
OPEN_8_TO_8 = dataclasses.replace(
    DEMO_CLINIC, hours=WeeklyHours({d: ((time(8), time(20)),) for d in range(7)})
)


def booked(r):
    """Appointments the calls created (doctor, start, notes)."""
    return [(a["StaffID"], a["StartDateTime"], a["Notes"]) for a in r.appointments()
            if a["ID"] not in r.seeded and a["AppointmentStatus"] == "Scheduled"]


def questions(call) -> int:
    """How many questions the caller answered (a key, words or silence, one per question)."""
    return sum(1 for event in call.transcript if isinstance(event, (Pressed, Said, Silence)))


def test_a_whole_request_in_one_breath_books_after_the_read_back_only(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("book me with Dr. Khan on Friday at 11 for a sore throat")
    assert call.last_heard.startswith("Friday the 27th of November at 11 a.m. with Dr. Khan")
    call.say("yes")
    assert "You're booked" in call.last_heard and call.ended
    assert questions(call) == 2  # the request, the read-back
    assert booked(r) == [(DEMO_DOCTOR_KHAN_ID, "2026-11-27T11:00:00", "a sore throat")]


def test_a_returning_caller_may_speak_over_the_greeting_and_the_last_visit(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    # Greeting, last visit and menu are one gather: speech stops them (Twilio's barge-in).
    assert call.gather is not None and call.gather["bargeIn"] == "true"
    greeting, *rest = call.prompts
    assert greeting == "Hello Bilal, welcome back to Harbour Family Clinic." and rest
    call.say("book me with Dr. Khan on Friday at 11 for a sore throat",
             barge_in=len(greeting.split()))
    assert "Your last visit" not in call.heard and "press 1 or say book" not in call.heard
    assert call.last_heard.startswith("Friday the 27th of November at 11 a.m. with Dr. Khan")
    [read_back] = call.prompts
    call.say("yes", barge_in=len(read_back.split("Press")[0].split()))
    assert "You're booked" in call.last_heard and questions(call) == 2
    assert booked(r) == [(DEMO_DOCTOR_KHAN_ID, "2026-11-27T11:00:00", "a sore throat")]


def test_a_caller_who_presses_over_the_greeting_still_books_by_keypad(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1", barge_in=3)
    assert "Dr. Farooq again" in call.last_heard and "Your last visit" not in call.heard


def test_requests_without_the_word_book_are_bookings(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("Is Dr. Farooq free on Thursday at 10?")
    assert "visit for" in call.last_heard  # the only thing not said yet
    call.say("for my back pain")
    assert "Thursday the 26th of November at 10 a.m. with Dr. Farooq" in call.last_heard
    call.press("1")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-26T10:00:00", "for my back pain")]


def test_the_reason_said_in_the_request_is_not_asked_again(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("I need to see a doctor on Wednesday at 10 for my back pain")
    assert "Would you like Dr. Farooq again?" in call.last_heard
    call.say("yes")
    assert "Wednesday the 25th of November at 10 a.m. with Dr. Farooq" in call.last_heard
    call.say("yes")
    assert "visit for" not in call.heard
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-25T10:00:00", "my back pain")]


def test_tomorrow_at_4_is_4_pm_when_the_clinic_is_shut_at_4_am(make_rig):
    r = make_rig(clinic=OPEN_8_TO_8)
    call = r.call(BILAL.e164)
    call.say("I want to book with doctor Farooq tomorrow at 4")
    call.say("a check up")
    assert "Tomorrow, Tuesday the 24th at 4 p.m. with Dr. Farooq" in call.last_heard
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-24T16:00:00", "a check up")]


def test_a_part_of_the_day_offers_a_time_in_that_part(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("Thursday afternoon with Dr. Khan")
    assert "the afternoon is free from" in call.last_heard
    call.say("yes")
    call.silence()
    call.press("1")
    [(doctor, start, _notes)] = booked(r)
    assert doctor == DEMO_DOCTOR_KHAN_ID and start.startswith("2026-11-26")
    assert 12 <= int(start[11:13]) < 17


def test_no_dr_sheikh_to_the_same_doctor_question_picks_dr_sheikh(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("book an appointment")
    assert "Dr. Farooq again" in call.last_heard
    call.say("No, Dr. Sheikh")
    assert "Dr. Sheikh's next free times" in call.last_heard
    call.press("1")
    call.silence()
    call.press("1")
    [(doctor, _start, _notes)] = booked(r)
    assert doctor == DEMO_DOCTOR_SHEIKH_ID


def test_zero_said_at_the_menu_reaches_a_person(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("zero")
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def _request_thursday_11(call) -> None:
    call.say("book with Dr. Farooq on Thursday at 11 for a check up")
    assert "Thursday the 26th of November at 11 a.m. with Dr. Farooq" in call.last_heard


def test_a_new_time_at_the_read_back_changes_only_the_time(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    _request_thursday_11(call)
    call.say("No, make it 3 p.m.")
    assert "Thursday the 26th of November at 3 p.m. with Dr. Farooq" in call.last_heard
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-26T15:00:00", "a check up")]


def test_a_new_day_at_the_read_back_keeps_the_time_and_doctor(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    _request_thursday_11(call)
    call.say("Wednesday instead")
    assert "Wednesday the 25th of November at 11 a.m. with Dr. Farooq" in call.last_heard
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-25T11:00:00", "a check up")]


def test_another_doctor_at_the_read_back_keeps_the_day_and_time(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    _request_thursday_11(call)
    call.say("Actually with Dr. Sheikh")
    assert "Thursday the 26th of November at 11 a.m. with Dr. Sheikh" in call.last_heard
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_SHEIKH_ID, "2026-11-26T11:00:00", "a check up")]


def test_tuesday_no_wednesday_books_wednesday(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("book with Dr. Farooq on Tuesday, no, Wednesday at 11 for a check up")
    assert "Wednesday the 25th of November at 11 a.m." in call.last_heard
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-25T11:00:00", "a check up")]


def test_a_taken_time_offers_the_nearest_free_times_that_day(make_rig):
    r = make_rig()
    r.sandbox.book(BILAL.id, datetime(2026, 11, 26, 11, 0), DEMO_DOCTOR_FAROOQ_ID,
                   DEMO_CLINIC_CLIFTON_ID, DEMO_SERVICE_CONSULTATION_ID)
    r.seeded = r.seeded | {a["ID"] for a in r.appointments()}
    call = r.call(BILAL.e164)
    call.say("book with Dr. Farooq on Thursday at 11 for a check up")
    heard = call.last_heard
    assert "Thursday the 26th of November at 11 a.m. is not free" in heard
    offered = re.findall(r"([0-9:]+ [ap]\.m\.|noon), press", heard)
    # Not the day's first times (9 a.m. ...): the ones closest to 11.
    assert len(offered) == 3 and "11:20 a.m." in offered
    assert all(t.startswith(("10:", "11:", "noon")) for t in offered)
    call.press(str(offered.index("11:20 a.m.") + 1))
    assert "at 11:20 a.m. with Dr. Farooq" in call.last_heard
    call.press("1")
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-26T11:20:00", "a check up")]


def _upcoming(r, *starts: datetime) -> list[str]:
    ids = []
    for start in starts:
        appt_id, _ = r.sandbox.book(BILAL.id, start, DEMO_DOCTOR_SHEIKH_ID,
                                    DEMO_CLINIC_CLIFTON_ID, DEMO_SERVICE_CONSULTATION_ID)
        ids.append(appt_id)
    r.seeded = r.seeded | set(ids)
    return ids


def test_next_appointment_is_read_and_the_call_goes_on():
    with rig() as r:
        cancelled, kept = _upcoming(r, datetime(2026, 11, 25, 9, 0), datetime(2026, 12, 2, 14, 0))
        r.sandbox.set_status(cancelled, "Cancelled")
        call = r.call(BILAL.e164)
        call.say("When is my next appointment?")
        heard = call.last_heard
        assert "Your next appointment is Wednesday the 2nd of December at 2 p.m. with " \
               "Dr. Omar Sheikh" in heard
        assert "anything else" in heard and not call.ended
        call.say("no thanks")
        assert "Goodbye" in call.last_heard and call.ended
        assert any(q.operation == "patient_appointments" for q in r.sandbox.requests())


def test_opening_hours_and_address_are_answered_then_a_booking(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("what are your opening hours?")
    heard = call.last_heard
    assert "Monday to Thursday, 9 a.m. to 5 p.m." in heard
    assert "Friday, 9 a.m. to 1 p.m." in heard and "Closed on Sunday" in heard
    assert "anything else" in heard
    call.say("and where is the clinic?")
    assert "7 Khayaban-e-Ittehad" in call.last_heard
    assert "12 Main Boulevard" in call.last_heard
    call.say("book me with Dr. Khan on Friday at 11 for a sore throat")
    call.say("yes")
    assert booked(r) == [(DEMO_DOCTOR_KHAN_ID, "2026-11-27T11:00:00", "a sore throat")]


def test_a_new_caller_who_gives_doctor_and_time_with_their_name_is_not_asked_again(make_rig):
    r = make_rig()
    call = r.call(NEW_CALLER)
    call.say("yes please")
    call.say("my name is Ayaan Khan, I'd like Dr. Sheikh tomorrow at 11")
    assert "Ayaan Khan. Is that right?" in call.last_heard
    call.press("1")
    call.say("a check up")
    assert "Tomorrow, Tuesday the 24th at 11 a.m. with Dr. Sheikh" in call.last_heard
    call.press("1")
    assert "You're booked" in call.last_heard
    assert "Which doctor" not in call.heard and "next free times" not in call.heard
    assert booked(r) == [(DEMO_DOCTOR_SHEIKH_ID, "2026-11-24T11:00:00", "a check up")]


def test_cancel_names_the_appointment_and_records_the_request_for_the_desk(make_rig):
    r = make_rig()
    [appt] = _upcoming(r, datetime(2026, 11, 25, 9, 0))
    call = r.call(BILAL.e164)
    call.say("I need to cancel my appointment")
    assert "Wednesday the 25th of November at 9 a.m. with Dr. Omar Sheikh" in call.last_heard
    call.press("1")
    assert "asked the reception team to cancel" in call.last_heard
    [request] = r.runtime.store.callbacks()
    assert appt in request.reason and request.phone_e164 == BILAL.e164
    # The desk sees it beside callback requests, in the console and the API.
    page = signed_in(r.app).get("/console/outbox").text
    assert "cancellation requests" in page and appt in page
    listed = r.app.test_client().get("/api/requests", headers=api_headers(r.app)).json
    assert [(q["kind"], q["phone"]) for q in listed["requests"]] == [("cancel", BILAL.e164)]


def test_move_books_the_new_time_first_then_asks_the_desk_to_cancel_the_old(make_rig):
    r = make_rig()
    [appt] = _upcoming(r, datetime(2026, 11, 25, 9, 0))
    call = r.call(BILAL.e164)
    call.say("can I move my appointment")
    assert "To move it" in call.last_heard
    call.say("Thursday at 11 with Dr. Sheikh please")
    call.say("the same as before")
    assert "Thursday the 26th of November at 11 a.m. with Dr. Sheikh" in call.last_heard
    call.press("1")
    assert "You're booked" in call.last_heard
    assert "asked the reception team to cancel" in call.last_heard
    assert (DEMO_DOCTOR_SHEIKH_ID, "2026-11-26T11:00:00", "the same as before") in booked(r)
    [request] = r.runtime.store.callbacks()
    assert appt in request.reason and "moved" in request.reason


def test_a_one_breath_request_in_urdu(make_rig):
    r = make_rig(clinic=URDU)
    call = r.call(BILAL.e164)
    call.press("2")
    call.say("ڈاکٹر خان کے ساتھ جمعہ کو 11 بجے گلے کی خرابی کے لیے")
    assert "جمعہ، 27 نومبر" in call.last_heard and "Dr. Khan" in call.last_heard
    call.say("ہاں")
    assert booked(r) == [(DEMO_DOCTOR_KHAN_ID, "2026-11-27T11:00:00", "گلے کی خرابی")]


def test_an_hour_open_both_ways_is_asked_once(make_rig):
    late = dataclasses.replace(
        DEMO_CLINIC, hours=WeeklyHours({d: ((time(8), time(22)),) for d in range(7)})
    )
    r = make_rig(clinic=late)
    call = r.call(BILAL.e164)
    call.say("book with Dr. Farooq tomorrow at 9 for a check up")
    assert "9 in the morning, or in the evening?" in call.last_heard
    call.say("in the evening")
    assert "Tomorrow, Tuesday the 24th at 9 p.m. with Dr. Farooq" in call.last_heard
    call.say("yes")
    assert call.heard.count("in the morning, or in the evening") == 1
    assert booked(r) == [(DEMO_DOCTOR_FAROOQ_ID, "2026-11-24T21:00:00", "a check up")]


def test_one_breath_calls_are_short_for_the_caller():
    """Caller seconds as the benchmark counts them (speech at 150 words a minute, 1 s a key,
    the gather's timeout per silence), without the webhooks' waits. The greeting, last visit
    and menu (about 17 s) come before the caller says anything."""
    from bench.run import caller_seconds

    with rig() as r:
        call = r.call(BILAL.e164)
        for keys in ("1", "1", "1"):
            call.press(keys)
        call.silence()
        call.press("1")
        keypad = caller_seconds(call.transcript, [])
    with rig() as r:
        call = r.call(BILAL.e164)
        call.say("book me with Dr. Khan on Friday at 11 for a sore throat")
        call.press("1")
        returning = caller_seconds(call.transcript, [])
        asked = questions(call)
    with rig() as r:
        call = r.call(NEW_CALLER)
        call.press("1")
        call.say("Ayaan Khan, I'd like Dr. Sheikh tomorrow at 11 for a check up")
        call.press("1")
        call.press("1")
        new = caller_seconds(call.transcript, [])
        assert "You're booked" in call.heard and "Which doctor" not in call.heard
    print(f"caller seconds: keypad {keypad}, one breath {returning} in {asked} questions, "
          f"new patient one breath {new}")
    assert keypad is not None and returning is not None and new is not None
    assert asked <= 3 and returning < keypad - 15
    assert new < 60


def test_yes_to_the_list_of_times_takes_the_first(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    first = re.findall(r"at ([0-9:]+ [ap]\.m\.|noon), press 1", call.last_heard)
    call.say("yes, that's fine")
    call.silence()
    assert first and f"at {first[0]} with Dr. Farooq" in call.last_heard


def test_a_self_correction_at_the_offered_times_keeps_the_last_day(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    assert "next free times" in call.last_heard
    call.say("Tuesday at 3 pm, no, Wednesday")
    call.silence()
    assert "Wednesday the 25th of November at 3 p.m. with Dr. Farooq" in call.last_heard
    call.press("1")
    [(_doctor, start, _notes)] = booked(r)
    assert start == "2026-11-25T15:00:00"


def test_a_move_whose_new_booking_is_recorded_still_asks_the_desk_to_cancel(make_rig):
    r = make_rig()
    [appt] = _upcoming(r, datetime(2026, 11, 25, 9, 0))
    call = r.call(BILAL.e164)
    call.say("I'd like to reschedule my appointment")
    call.say("Thursday at 11 with Dr. Sheikh")
    call.silence()
    r.sandbox.faults.fail_next(503, times=None, operation="book")
    call.press("1")
    assert "I've taken your request" in call.last_heard and call.ended
    [request] = r.runtime.store.callbacks()
    assert appt in request.reason and "not yet confirmed" in request.reason


def test_opening_hours_in_urdu(make_rig):
    r = make_rig(clinic=URDU)
    call = r.call(BILAL.e164)
    call.press("2")
    call.say("کلینک کے اوقات کیا ہیں")
    heard = call.last_heard
    assert "ہمارے اوقات" in heard and "پیر سے جمعرات" in heard and "اتوار بند" in heard
    assert "کیا کچھ اور" in heard and not call.ended


def test_a_self_correction_at_the_doctor_question_keeps_the_last_doctor(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("2")
    assert "Which doctor?" in call.last_heard
    call.say("Dr. Farooq, no, Dr. Sheikh tomorrow at 11")
    call.silence()
    assert "Tomorrow, Tuesday the 24th at 11 a.m. with Dr. Sheikh" in call.last_heard


def test_a_time_on_a_day_with_nothing_free_says_so_once_and_offers_the_next_days(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("Dr. Farooq on Sunday at 10 for my back pain")  # the clinic is shut on Sundays
    assert "I heard" in call.last_heard  # 10 a.m. or p.m. is a guess on a shut day
    call.press("1")
    heard = call.last_heard
    assert "Dr. Farooq has no free time on Sunday the 29th of November" in heard
    assert "is not free" not in heard and "Monday the 30th of November" in heard
