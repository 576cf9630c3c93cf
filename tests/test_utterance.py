"""read_utterance: one answer read for everything in it (pure; no app, no HTTP)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.understanding import Answer, Context, TimeOfDay
from flows.understanding.utterance import INTENTS, _read, read_utterance
from ivr.config import DEMO_CLINIC
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_DOCTOR_KHAN_ID, DEMO_DOCTOR_SHEIKH_ID

CTX = Context(now=datetime(2026, 11, 23, 10, 0), region="PK", hours=DEMO_CLINIC.hours,
              doctors=DEMO_CLINIC.doctors)
UR = dataclasses.replace(CTX, language="ur")


def read(speech: str, ctx: Context = CTX):
    return read_utterance(Answer(speech=speech, confidence=0.9), ctx)


def test_a_whole_request_gives_every_field():
    r = read("book me with Dr. Khan on Friday at 11 for a sore throat")
    assert (r.intent, r.doctor_id, r.day, r.time, r.reason) == (
        "book", DEMO_DOCTOR_KHAN_ID, date(2026, 11, 27), TimeOfDay(time(11)), "a sore throat")


@pytest.mark.parametrize("speech", [
    "Is Dr. Farooq free on Monday at 10?",
    "I need to see a doctor on the 29th at half past ten for my back pain",
    "an appointment for tomorrow",
])
def test_requests_without_booking_words_are_bookings(speech):
    assert read(speech).intent == "book"


@pytest.mark.parametrize(("speech", "intent"), [
    ("zero", "person"),
    ("When is my next appointment?", "next"),
    ("what are your opening hours", "hours"),
    ("what time do you close on Friday", "hours"),
    ("where is the clinic", "address"),
    ("cancel my appointment", "cancel"),
    ("I want to move my appointment", "move"),
    ("can I reschedule", "move"),
    ("میری اپوائنٹمنٹ منسوخ کر دیں", "cancel"),
    ("کلینک کا پتہ کیا ہے", "address"),
])
def test_what_the_caller_wants(speech, intent):
    assert read(speech).intent == intent


def test_a_self_correction_keeps_the_last_value():
    assert read("Tuesday, no, Wednesday").day == date(2026, 11, 25)
    assert read("with Dr. Farooq, sorry, Dr. Sheikh").doctor_id == DEMO_DOCTOR_SHEIKH_ID
    r = read("Dr. Farooq on Thursday at 10, no, make it 11")
    assert (r.doctor_id, r.day, r.time) == (
        DEMO_DOCTOR_FAROOQ_ID, date(2026, 11, 26), TimeOfDay(time(11)))


def test_a_correction_gives_only_what_it_changes():
    r = read("No, make it 3 p.m.")
    assert (r.time, r.day, r.doctor_id) == (TimeOfDay(time(15)), None, None)
    assert read("No, Dr. Sheikh").doctor_id == DEMO_DOCTOR_SHEIKH_ID


@pytest.mark.parametrize(("speech", "reason"), [
    ("I need to see a doctor on Monday for my back pain", "my back pain"),
    ("book for tomorrow at 10", None),
    ("an appointment for Dr. Khan", None),
    ("ڈاکٹر خان کے ساتھ جمعہ کو 11 بجے کمر کے درد کے لیے", "کمر کے درد"),
])
def test_the_reason_is_what_follows_for_unless_it_is_a_day_time_or_doctor(speech, reason):
    assert read(speech, UR if not speech.isascii() else CTX).reason == reason


def test_plain_answers_give_nothing_and_nothing_raises():
    assert read("yes").intent is None and not read("yes").has_request
    for odd in ("", "   ", "\x00", "for", "for for for", "no, no, no", "٣٣٣"):
        read(odd)


WORDS = ["book", "me", "with", "dr", "khan", "farooq", "on", "friday", "tuesday", "at", "11", "4",
         "for", "a", "sore", "throat", "no", ",", "sorry", "actually", "make", "it", "pm",
         "morning", "cancel", "my", "appointment", "next", "where", "open", "zero", "کل", "بجے",
         "کے", "لیے", "نہیں", "the", "29th", "half", "past", "instead", ""]


@settings(max_examples=300, deadline=None)
@given(speech=st.one_of(st.text(max_size=80), st.lists(st.sampled_from(WORDS), max_size=14)
                        .map(" ".join)),
       now=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
       language=st.sampled_from(["en", "ur"]))
def test_reading_never_raises_and_never_gives_a_past_day(speech, now, language):
    ctx = dataclasses.replace(CTX, now=now, language=language)
    # The unguarded reader: a bug raises here instead of being an empty Reading.
    reading = _read(Answer(speech=speech, confidence=0.9), ctx)
    assert reading.intent in (None, *INTENTS)
    assert reading.day is None or reading.day >= now.date()
    assert reading.reason is None or 0 < len(reading.reason) <= 200


@pytest.mark.parametrize("speech", ["no, make it 3", "No, make it 3.", "nope, sorry, 3",
                                    "No. Make it 3 p.m.", "no make it 3 please"])
def test_a_correction_with_a_bare_hour_is_that_hour_whatever_the_case_and_markers(speech):
    # Typed in the softphone ("no, make it 3") or written by Twilio ("No, make it 3."), two
    # markers in a row are one correction, and the hour that follows is read as a time.
    assert read(speech).time == TimeOfDay(time(15))
