"""The reminder text and the reading of replies (pure): what the patient reads and what their
answer does, Twilio's own opt-out keywords included."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from flows.clinic_services import ClinicProfile
from flows.domain import ClinicSite, Doctor, WeeklyHours
from flows.lang import catalogue_for
from flows.reminders.status import after_call, after_reply
from flows.reminders.texting import SmsAppointment, read_reply, reminder_sms

TODAY = date(2026, 11, 23)
PROFILE = ClinicProfile(
    name="Harbour Family Clinic",
    sites=(ClinicSite("C1", "Clifton", "7 Khayaban-e-Ittehad", "+922135550100"),),
    doctors=(Doctor("D1", "Dr. Nadia Farooq", "C1"), Doctor("D2", "Dr. Ayesha Khan", "C1")),
    services=(), default_service_id="S1", hours=WeeklyHours({}), agent_hours=WeeklyHours({}),
    slot_minutes=20, booking_days_ahead=30, region="PK", language="en-GB",
    languages_offered=("en-GB",),
)
AT_4 = SmsAppointment(datetime(2026, 11, 24, 16), "D1", "Dr. Nadia Farooq")


def test_the_text_names_day_time_doctor_address_and_how_to_answer():
    body = reminder_sms(catalogue_for("en"), PROFILE, [AT_4], today=TODAY)
    assert body == (
        "Harbour Family Clinic: a reminder of your appointment tomorrow, Tuesday the 24th at "
        "4 p.m. with Dr. Farooq, at 7 Khayaban-e-Ittehad. Reply 1 to confirm, 2 to move, 3 to "
        "cancel, or call us on +922135550100.")


def test_two_appointments_are_one_text_naming_both():
    at_10 = SmsAppointment(datetime(2026, 11, 24, 10), "D2", "Dr. Ayesha Khan")
    body = reminder_sms(catalogue_for("en"), PROFILE, [AT_4, at_10], today=TODAY)
    assert ("your appointments tomorrow, Tuesday the 24th at 10 a.m. with Dr. Khan and at "
            "4 p.m. with Dr. Farooq, at") in body


def test_the_text_in_urdu_keeps_the_digits_to_reply_with():
    body = reminder_sms(catalogue_for("ur-PK"), PROFILE, [AT_4], today=TODAY)
    assert body.startswith("Harbour Family Clinic:") and "Dr. Farooq" in body
    assert all(d in body for d in ("1", "2", "3")) and "7 Khayaban-e-Ittehad" in body


@pytest.mark.parametrize(("body", "intent"), [
    ("1", "confirm"), (" yes please ", "confirm"), ("Ok, see you", "confirm"), ("ہاں", "confirm"),
    ("١", "confirm"), ("2", "move"), ("can I reschedule?", "move"), ("3", "cancel"),
    ("Cancel my appointment", "cancel"), ("3 sorry", "cancel"), ("منسوخ", "cancel"),
    ("who is this", "unknown"), ("", "unknown"), ("HELP", "help"),
])
def test_replies_are_read(body: str, intent: str):
    assert read_reply(body).intent == intent


@pytest.mark.parametrize("word", ["STOP", "stopall", "Unsubscribe", "END", "quit", "OPTOUT"])
def test_twilios_opt_out_keywords_opt_the_number_out(word: str):
    reading = read_reply(f" {word} ")
    assert (reading.intent, reading.opted, reading.keyword) == ("opt_out", "out", True)


def test_cancel_alone_is_an_opt_out_at_twilio_and_a_cancel_request_for_the_desk():
    reading = read_reply("CANCEL")
    assert (reading.intent, reading.opted) == ("cancel", "out")
    assert read_reply("cancel it").opted is None  # not a keyword: the number stays opted in


def test_start_and_yes_opt_back_in_and_yes_confirms():
    assert (read_reply("START").intent, read_reply("START").opted) == ("opt_in", "in")
    assert read_reply("unstop").opted == "in"
    assert (read_reply("Yes").intent, read_reply("Yes").opted) == ("confirm", "in")


def test_a_reply_changes_the_status_unless_it_is_settled():
    assert after_reply("sent", "confirm") == "confirmed"
    assert after_reply("confirmed", "cancel") == "cancel_requested"
    assert after_reply("cancel_requested", "confirm") == "cancel_requested"
    assert after_reply("sent", "opt_out") == "opted_out"
    assert after_reply("confirmed", "opt_out") == "confirmed"  # the opt-out is the number's
    assert after_reply("sent", "unknown") == "sent"
    assert after_call(None, "no-answer") == "no_answer"
