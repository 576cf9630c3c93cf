"""Whole calls through the Twilio call simulator against the app on the sandbox Clinicea.

The clock is fixed at Monday 23 November 2026, 10:00 in Karachi (booking and agent hours).
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import pytest

from flows.steps import Ask, Flow, FlowDefinitionError, Hangup, Say
from ivr.config import DEMO_CLINIC
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_PATIENTS
from tests.calls import rig
from tests.demo import BILAL, FAMILY, HIRA, NEW_CALLER, SATURDAY_EVENING, USMAN


def bookings(r, *, patient_id=None, statuses=("Scheduled",)):
    """Appointments the app created in the sandbox (seeded rows have other creators)."""
    rows = [a for a in r.appointments() if a["AppointmentStatus"] in statuses]
    if patient_id is not None:
        rows = [a for a in rows if a["PatientID"] == patient_id]
    return [a for a in rows if a["ID"] not in r.seeded]


def book_posts(r) -> int:
    return sum(1 for q in r.sandbox.requests() if q.operation in ("book", "register_and_book"))


def test_returning_patient_books_by_keypad_only(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    assert "Hello Bilal" in call.heard
    assert "Dr. Nadia Farooq" in call.heard
    assert "7 Khayaban-e-Ittehad" in call.heard
    call.press("1")
    assert "Dr. Farooq again" in call.last_heard
    call.press("1")
    offered = call.last_heard
    call.press("1")
    call.silence()
    assert "Press 1 to book it" in call.last_heard
    call.press("1")
    assert "You're booked" in call.last_heard and call.ended
    [appt] = bookings(r, patient_id=BILAL.id)
    assert appt["StaffID"] == DEMO_DOCTOR_FAROOQ_ID
    hour = int(appt["StartDateTime"][11:13])
    assert f"{hour % 12 or 12}" in offered


def test_returning_patient_books_by_speech(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("book an appointment")
    call.say("yes")
    call.say("next tuesday at 4 pm")
    call.say("just a check up")
    assert "Tuesday the 1st of December at 4 p.m." in call.last_heard
    call.say("yes please")
    assert "You're booked" in call.last_heard
    [appt] = bookings(r, patient_id=BILAL.id)
    assert appt["StartDateTime"] == "2026-12-01T16:00:00"
    assert appt["Notes"] == "just a check up"


def test_caller_picks_the_second_offered_slot(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    menu = call.last_heard
    second = re.findall(r"(?:At )?([0-9:]+ [ap]\.m\.|noon), press 2", menu)
    call.press("2")
    call.silence()
    assert second and second[0] in call.last_heard
    call.press("1")
    assert len(bookings(r, patient_id=BILAL.id)) == 1


def test_new_caller_registers_with_consent_and_books_in_one_request(make_rig):
    r = make_rig()
    call = r.call(NEW_CALLER)
    assert "This number isn't in our records" in call.heard
    call.press("1")
    call.say("my name is ayaan khan")
    assert "Ayaan Khan. Is that right?" in call.last_heard
    call.press("1")
    call.press("3")  # Dr. Ayesha Khan
    call.press("1")
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard
    registered = [q for q in r.sandbox.requests() if q.operation == "register_and_book"]
    assert len(registered) == 1 and book_posts(r) == 1
    patients = [p for p in r.sandbox.patients() if p["FirstName"] == "Ayaan"]
    assert len(patients) == 1 and patients[0]["LastName"] == "Khan"


def test_new_caller_who_declines_registration_is_put_through(make_rig):
    r = make_rig()
    call = r.call(NEW_CALLER)
    call.press("2")
    assert call.dialed == [DEMO_CLINIC.transfer_number]
    assert book_posts(r) == 0
    assert not [p for p in r.sandbox.patients() if p["Mobile"].endswith("9998877")]


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687", "Restricted"])
def test_withheld_caller_keys_their_number_and_is_recognised(withheld, make_rig):
    r = make_rig()
    call = r.call(withheld)
    assert "Your number is hidden" in call.heard
    call.press("03216315551#")
    assert "Hello Bilal" in call.last_heard


def test_family_number_chooses_the_second_person(make_rig):
    r = make_rig()
    call = r.call(FAMILY)
    assert "Who is calling?" in call.heard
    assert "For Kamran, press 1" in call.heard and "For Sana, press 2" in call.heard
    call.press("2")
    assert "Hello Sana" in call.last_heard
    call.press("1")
    call.press("1")
    call.press("1")
    call.silence()
    call.press("1")
    [appt] = bookings(r)
    assert appt["PatientID"] == DEMO_PATIENTS["Sana Ahmed"].id


def test_patient_without_a_completed_visit_hears_no_read_back_and_still_books(make_rig):
    r = make_rig()
    call = r.call(HIRA.e164)
    assert "Hello Hira" in call.heard and "last visit" not in call.heard
    call.press("1")
    assert "Which doctor" in call.last_heard
    call.press("2")
    call.press("1")
    call.silence()
    call.press("1")
    assert len(bookings(r, patient_id=HIRA.id)) == 1


def test_cancelled_and_no_show_visits_are_never_read_back(make_rig):
    r = make_rig()
    bilal = r.call(BILAL.e164)  # newer Cancelled row with Dr. Khan
    assert "Dr. Nadia Farooq" in bilal.heard and "Ayesha Khan" not in bilal.heard
    usman = r.call(USMAN.e164)  # newest row is a No Show 3 days ago
    assert "Dr. Omar Sheikh" in usman.heard
    assert "Friday the 20th" not in usman.heard  # the no-show's date


def test_three_silences_put_the_caller_through(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.silence()
    assert "Press 1 to book" in call.last_heard
    call.silence()
    call.silence()
    assert "Let me get someone to help you" in call.heard
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_zero_during_agent_hours_dials_with_an_action(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("0")
    assert call.dialed == [DEMO_CLINIC.transfer_number]
    [(method, url, params)] = [q for q in call.requests if "DialCallStatus" in q[2]]
    assert params["DialCallStatus"] == "completed" and "k=dial" in url
    assert r.runtime.store.load_call(call.sid).outcome == "transferred"


def test_saying_reception_at_any_prompt_reaches_a_person(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.say("can I talk to reception please")
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_nobody_answers_then_self_booking_is_offered(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164, dial_outcome="no-answer")
    call.press("0")
    assert "everyone is busy" in call.last_heard
    call.press("1")
    assert "Dr. Farooq again" in call.last_heard


def test_nobody_answers_then_a_callback_is_recorded(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164, dial_outcome="busy")
    call.press("0")
    call.press("2")
    assert "call you back" in call.last_heard and call.ended
    [callback] = r.runtime.store.callbacks()
    assert callback.phone_e164 == BILAL.e164


def test_after_hours_no_one_is_rung(make_rig):
    r = make_rig(now=SATURDAY_EVENING)
    call = r.call(BILAL.e164)
    call.press("0")
    assert call.dialed == []
    assert "reception is closed now" in call.last_heard
    call.press("2")
    assert len(r.runtime.store.callbacks()) == 1


def test_clinicea_down_at_lookup_apologises_and_transfers(make_rig):
    r = make_rig()
    r.sandbox.faults.fail_next(503, times=None)
    call = r.call(BILAL.e164)
    assert "can't reach our records" in call.heard
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_slot_taken_between_offer_and_booking_offers_another_and_books_once(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    call.press("1")
    call.silence()
    chosen = r.runtime.store.load_call(call.sid).state["data"]["start"]
    clinic = DEMO_CLINIC.doctor_by_id(DEMO_DOCTOR_FAROOQ_ID).clinic_id
    r.sandbox.book(DEMO_PATIENTS["Hamza Iqbal"].id, datetime.fromisoformat(chosen),
                   DEMO_DOCTOR_FAROOQ_ID, clinic, DEMO_CLINIC.default_service_id)
    call.press("1")
    assert "that time was just taken" in call.last_heard
    assert "next free times" in call.last_heard
    call.press("1")
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard
    mine = bookings(r, patient_id=BILAL.id)
    assert len(mine) == 1 and mine[0]["StartDateTime"] != chosen
    at_chosen = [a for a in r.appointments() if a["StartDateTime"] == chosen
                 and a["StaffID"] == DEMO_DOCTOR_FAROOQ_ID
                 and a["AppointmentStatus"] == "Scheduled"]
    assert len(at_chosen) == 1


def test_the_same_webhook_twice_gives_the_same_twiml_and_one_booking(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard
    [(method, url, params)] = [q for q in call.requests if "/step/confirm" in q[1]]
    assert params.get("Digits") == "1"
    path = url.replace("http://testserver", "")
    first = r.phone.post_raw(path, params)
    second = r.phone.post_raw(path, params)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    assert book_posts(r) == 1 and len(bookings(r, patient_id=BILAL.id)) == 1


def test_unknown_callsid_mid_flow_starts_over_politely(make_rig):
    r = make_rig()
    params = r.phone.webhook_params(from_=BILAL.e164, call_sid="CA" + "ab" * 16)
    reply = r.phone.post_raw("/voice/step/confirm?t=7&k=answer", {**params, "Digits": "1"})
    assert reply.status_code == 200
    assert "start again" in reply.text and "Hello Bilal" in reply.text
    assert book_posts(r) == 0


def test_bad_or_missing_signature_is_refused(make_rig):
    r = make_rig()
    params = r.phone.webhook_params(from_=BILAL.e164)
    assert r.phone.post_raw("/voice/incoming", params, signature=None).status_code == 403
    assert r.phone.post_raw("/voice/incoming", params, signature="bm90IGl0").status_code == 403
    assert r.phone.post_raw("/voice/incoming", params).status_code == 200


def test_signed_for_https_behind_a_proxy_is_accepted_with_a_public_url():
    with rig(public_url="https://clinic.example") as r:
        r.phone.signing_base_url = "https://clinic.example/"
        call = r.call(BILAL.e164)
        assert "Hello Bilal" in call.heard
    with rig() as r:
        r.phone.signing_base_url = "https://clinic.example/"
        params = r.phone.webhook_params(from_=BILAL.e164)
        assert r.phone.post_raw("/voice/incoming", params).status_code == 403


def test_low_confidence_speech_is_read_back_before_it_is_used(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("2")
    call.say("doctor sheikh", confidence=0.3)
    assert "I heard Dr. Omar Sheikh. Is that right?" in call.last_heard
    call.press("1")
    assert "Dr. Sheikh's next free times" in call.last_heard


def test_clinicea_down_at_booking_records_the_request_truthfully(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    r.sandbox.faults.fail_next(503, times=None, operation="book")
    call.press("1")
    assert "I've taken your request" in call.last_heard and call.ended
    assert bookings(r, patient_id=BILAL.id) == []
    [row] = r.runtime.store.bookings(statuses=("retrying",))
    assert row.call_sid == call.sid


def test_a_flow_with_an_unknown_target_or_unreachable_step_fails_when_built():
    def handle(answer, turn):
        return "ok"

    with pytest.raises(FlowDefinitionError, match="unknown step 'nowhere'"):
        Flow("t", [Ask("a", "menu", handle, next="nowhere"), Hangup("b", "goodbye", "booked")])
    with pytest.raises(FlowDefinitionError, match="unreachable step"):
        Flow("t", [Say("a", "welcome", next="c"), Hangup("b", "goodbye", "booked"),
                   Hangup("c", "goodbye", "booked")])


def test_keypad_booking_caller_time_is_under_a_minute(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    words = len(call.heard.split())
    presses = 4
    seconds = words / 150 * 60 + presses + 3  # + the silence that skips the reason
    print(f"keypad booking: {words} words, {presses} keys, {seconds:.0f} s of caller time")
    assert seconds < 60


def test_a_new_callers_registration_and_booking_stays_short(make_rig):
    """Consent, name, read-back, doctor, time, confirm: about a minute of the caller's time up to
    "You're booked" (the benchmark adds the webhooks' real waits); keeps the wording tight."""
    r = make_rig()
    call = r.call("+923009876543")
    call.press("1")
    call.say("ayaan khan")
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    assert "You're booked" in call.heard
    heard = call.heard[:call.heard.index("You're booked")] + "You're booked"
    seconds = (len(heard.split()) + 2) / 150 * 60 + 5 + 3  # said 2 words, 5 keys, 3 s quiet
    print(f"new patient: {len(heard.split())} words heard, {seconds:.0f} s of caller time")
    assert seconds < 62


def test_the_call_in_urdu_books_by_keypad_and_speech(make_rig):
    clinic = dataclasses.replace(DEMO_CLINIC, languages_offered=("en-GB", "ur-PK"))
    r = make_rig(clinic=clinic)
    call = r.call(BILAL.e164)
    assert "For English, press 1." in call.heard and "اردو کے لیے 2 دبائیں" in call.heard
    call.press("2")
    assert "بلال" in call.last_heard or "Bilal" in call.last_heard
    assert "ur-PK" in str(call.gather)
    call.press("1")
    call.say("ہاں")
    call.say("کل صبح")
    call.say("جی ہاں")
    call.silence()
    call.press("1")
    assert "بک ہو گئی ہے" in call.last_heard
    assert len(bookings(r, patient_id=BILAL.id)) == 1


def _broken_number(r, **kw):
    """A simulator whose voice URL fails (404), so every call goes to /voice/fallback."""
    from ivr.simulator import TwilioSimulator

    return TwilioSimulator("http://testserver", r.runtime.settings.twilio_auth_token,
                           http=r.phone.http, voice_url="/voice/broken", **kw)


def test_fallback_after_hours_records_a_callback_for_a_known_caller_id(make_rig):
    r = make_rig(now=SATURDAY_EVENING)
    call = _broken_number(r).call(from_=BILAL.e164)
    assert "went wrong" in call.heard and "call you back" in call.heard
    assert "without your number" not in call.heard and call.ended
    [callback] = r.runtime.store.callbacks()
    assert callback.phone_e164 == BILAL.e164 and callback.call_sid == call.sid


def test_fallback_after_hours_without_a_caller_id_records_nothing(make_rig):
    r = make_rig(now=SATURDAY_EVENING)
    call = _broken_number(r).call(from_="anonymous")
    assert "without your number" in call.heard and call.ended
    assert r.runtime.store.callbacks() == []


@pytest.mark.parametrize("outcome", ["no-answer", "busy", "failed"])
def test_fallback_transfer_nobody_answers_records_a_callback(outcome, make_rig):
    r = make_rig()
    call = _broken_number(r).call(from_=BILAL.e164, dial_outcome=outcome)
    assert call.dialed == [DEMO_CLINIC.transfer_number]
    assert "call you back" in call.last_heard and call.ended
    [callback] = r.runtime.store.callbacks()
    assert callback.phone_e164 == BILAL.e164 and outcome in (callback.reason or "")


def test_fallback_transfer_answered_records_no_callback(make_rig):
    r = make_rig()
    call = _broken_number(r).call(from_=BILAL.e164)
    assert call.dialed == [DEMO_CLINIC.transfer_number] and call.ended
    assert r.runtime.store.callbacks() == []


def test_an_error_inside_a_turn_after_hours_records_a_callback(make_rig):
    import sqlalchemy as sa

    r = make_rig(now=SATURDAY_EVENING)
    with r.runtime.store.engine.begin() as conn:  # the calls table is gone: every turn fails
        conn.execute(sa.text("DROP TABLE calls"))
    call = r.call(BILAL.e164)
    assert "went wrong" in call.heard and "call you back" in call.heard and call.ended
    [callback] = r.runtime.store.callbacks()
    assert callback.phone_e164 == BILAL.e164
