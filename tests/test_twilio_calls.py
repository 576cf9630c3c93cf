"""Outbound reminder calls through Twilio's REST API (faked with `responses`, never placed)
and the pacer that keeps them under the account's calls-per-second limit."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import requests
import responses

from ivr.twilio_rest import (
    CallNotPlaced,
    CallOutcomeUnknown,
    CallPacer,
    CallRefused,
    OutboundCall,
    TwilioCalls,
)
from tests.twilio_api import FakeTime

ACCOUNT = "AC" + "0" * 32
CALLS = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
CALL = OutboundCall(
    to="+923216315551", from_="+922135550199",
    url="https://ivr.example.com/voice/reminder/42",
    status_callback="https://ivr.example.com/voice/reminder/42/status",
)
PLACED = {"sid": "CA" + "1" * 32, "status": "queued"}


@responses.activate
def test_a_call_is_placed_with_its_webhook_status_events_and_machine_detection():
    responses.post(CALLS, json=PLACED, status=201)
    sid = TwilioCalls(ACCOUNT, "token").create(CALL)
    assert sid == PLACED["sid"]
    [sent] = responses.calls
    form = parse_qs(sent.request.body)
    assert form["To"] == ["+923216315551"] and form["From"] == ["+922135550199"]
    assert form["Url"] == ["https://ivr.example.com/voice/reminder/42"]
    assert form["Method"] == ["POST"] and form["StatusCallbackMethod"] == ["POST"]
    assert form["StatusCallback"] == ["https://ivr.example.com/voice/reminder/42/status"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == ["DetectMessageEnd"] and form["Timeout"] == ["30"]


@responses.activate
def test_a_refused_number_is_refused_and_not_retried():
    responses.post(CALLS, status=400, json={"code": 21217, "message": "Phone number is not "
                                            "a valid phone number", "status": 400})
    with pytest.raises(CallRefused, match="21217"):
        TwilioCalls(ACCOUNT, "token").create(CALL)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [429, 503])
@responses.activate
def test_a_busy_twilio_did_not_place_the_call(status: int):
    responses.post(CALLS, status=status, json={"code": 20429, "message": "Too Many Requests",
                                               "status": status})
    with pytest.raises(CallNotPlaced):
        TwilioCalls(ACCOUNT, "token").create(CALL)


@responses.activate
def test_a_lost_answer_may_have_rung_the_patient():
    responses.post(CALLS, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(CallOutcomeUnknown, match="no answer from Twilio"):
        TwilioCalls(ACCOUNT, "token").create(CALL)
    responses.replace(responses.POST, CALLS, status=500, json={"message": "oops", "status": 500})
    with pytest.raises(CallOutcomeUnknown, match="500"):
        TwilioCalls(ACCOUNT, "token").create(CALL)




def test_calls_are_paced_to_one_a_second_without_real_sleeping():
    clock = FakeTime()
    pacer = CallPacer(monotonic=clock.monotonic, sleep=clock.sleep)
    started = []
    for _ in range(4):
        pacer.wait()
        started.append(clock.now)
        clock.now += 0.2  # placing the call takes a little time
    assert started == [1000.0, 1001.0, 1002.0, 1003.0]
    assert all(b - a >= 1.0 for a, b in zip(started, started[1:], strict=False))


def test_a_slow_run_is_not_slowed_further_and_a_higher_limit_is_kept():
    clock = FakeTime()
    pacer = CallPacer(per_second=5, monotonic=clock.monotonic, sleep=clock.sleep)
    pacer.wait()
    clock.now += 3  # a slow request: the next call may go at once
    pacer.wait()
    assert clock.slept == []
    pacer.wait()
    assert clock.slept == [pytest.approx(0.2)]
    with pytest.raises(ValueError):
        CallPacer(per_second=0)
