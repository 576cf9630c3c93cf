"""Confirmation texts through Twilio's Messages API (faked with `responses`, never sent)."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs

import responses

from ivr.config import DEMO_CLINIC
from ivr.sandbox.seed import DEMO_PATIENTS
from ivr.sms import TwilioSms
from tests.calls import CLINIC_NUMBER, rig

ACCOUNT = "AC" + "0" * 32
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
BILAL = DEMO_PATIENTS["Bilal Ahmed"].e164


def book_by_keypad(r) -> object:
    call = r.call(BILAL)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    return call


@responses.activate
def test_a_booked_caller_gets_a_text_from_the_clinic_number():
    responses.post(MESSAGES, json={"sid": "SM" + "1" * 32}, status=201)
    clinic = dataclasses.replace(DEMO_CLINIC, sms_confirmation=True)
    with rig(clinic=clinic, twilio_account_sid=ACCOUNT) as r:
        r.runtime.services.sms = TwilioSms(ACCOUNT, "token", background=False)
        call = book_by_keypad(r)
        assert "We'll text you the details" in call.heard
    [sent] = responses.calls
    form = parse_qs(sent.request.body)
    assert form["To"] == [BILAL] and form["From"] == [CLINIC_NUMBER]
    assert "Dr. Farooq" in form["Body"][0] and "Khayaban-e-Ittehad" in form["Body"][0]


@responses.activate
def test_a_failed_text_never_spoils_the_booking():
    responses.post(MESSAGES, json={"message": "down"}, status=500)
    clinic = dataclasses.replace(DEMO_CLINIC, sms_confirmation=True)
    with rig(clinic=clinic, twilio_account_sid=ACCOUNT) as r:
        r.runtime.services.sms = TwilioSms(ACCOUNT, "token", background=False)
        call = book_by_keypad(r)
        assert "You're booked" in call.heard and call.ended


@responses.activate
def test_no_text_and_no_promise_of_one_when_texting_is_off():
    with rig() as r:
        call = book_by_keypad(r)
        assert "text you" not in call.heard
    assert len(responses.calls) == 0
