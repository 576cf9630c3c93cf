"""Confirmation texts through Twilio's Messages API (faked with `responses`, never sent).

A text is queued with its booking and sent by the booking worker's pass: one text per booking
across crashes, restarts and retried passes; a refused or lost one is shown to agents.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs

import requests
import responses

from ivr.config import DEMO_CLINIC
from ivr.outbox import OutboxWorker
from ivr.sandbox.seed import DEMO_PATIENTS
from ivr.store import Store
from ivr.texts import TextSender
from tests.agents import api_headers, csrf_of, signed_in
from tests.calls import rig
from tests.demo import CLINIC_NUMBER

ACCOUNT = "AC" + "0" * 32
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
BILAL = DEMO_PATIENTS["Bilal Ahmed"].e164
TEXTING = dataclasses.replace(DEMO_CLINIC, sms_confirmation=True)
SENT = {"sid": "SM" + "1" * 32, "status": "queued"}


def book_by_keypad(r) -> object:
    call = r.call(BILAL)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    return call


def worker(r, **texts_kw) -> OutboxWorker:
    """The booking worker as `ivr worker` builds it, with the texts' send pass."""
    rt = r.runtime
    texts = TextSender(rt.store, rt.services.sms, worker_id="w1", **texts_kw)
    return OutboxWorker(rt.client, rt.store, rt.clock, rt.settings.clinic, worker_id="w1",
                        texts=texts)


def texting_rig(**kw):
    return rig(clinic=TEXTING, twilio_account_sid=ACCOUNT, **kw)


def booking_json(r, key: str) -> dict:
    client = r.app.test_client()
    return client.get(f"/api/bookings/{key}", headers=api_headers(r.app)).get_json()


@responses.activate
def test_a_booked_caller_gets_one_text_from_the_clinic_number():
    responses.post(MESSAGES, json=SENT, status=201)
    with texting_rig() as r:
        call = book_by_keypad(r)
        assert "You're booked" in call.heard and "We'll text you the details" in call.heard
        assert len(responses.calls) == 0  # queued with the booking; the worker sends it
        pass_ = worker(r)
        pass_.run_once()
        pass_.run_once()  # a later pass finds nothing more to send
        worker(r).run_once()  # nor does another worker
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        text = booking_json(r, booking.idempotency_key)["text"]
    [sent] = responses.calls
    form = parse_qs(sent.request.body)
    assert form["To"] == [BILAL] and form["From"] == [CLINIC_NUMBER]
    assert "Dr. Farooq" in form["Body"][0] and "Khayaban-e-Ittehad" in form["Body"][0]
    assert text == {"status": "sent", "attempts": 1, "error": None, "twilio_sid": SENT["sid"]}


@responses.activate
def test_a_crash_between_booking_and_texting_still_sends_exactly_one_text(tmp_path: Path):
    responses.post(MESSAGES, json=SENT, status=201)
    db = f"sqlite:///{tmp_path / 'ivr.db'}"
    with texting_rig(database_url=db) as r:
        call = book_by_keypad(r)
        assert "We'll text you the details" in call.heard
    # The process is gone before any send pass ran; a new one starts on the same database.
    assert len(responses.calls) == 0
    with texting_rig(database_url=db) as r:
        worker(r).run_once()
    with texting_rig(database_url=db) as r:  # and once more: nothing is sent again
        worker(r).run_once()
    assert len(responses.calls) == 1


@responses.activate
def test_a_text_whose_answer_was_lost_is_never_sent_twice_and_agents_see_it():
    responses.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out"))
    with texting_rig() as r:
        book_by_keypad(r)
        for _ in range(3):
            worker(r, backoff_seconds=0).run_once()
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        text = booking_json(r, booking.idempotency_key)["text"]
        outbox = signed_in(r.app).get("/console/outbox").text
    assert len(responses.calls) == 1
    assert text["status"] == "unknown" and "may have been sent" in text["error"]
    assert 'class="text-unknown"' in outbox and "no answer from Twilio in time" in outbox


def test_a_sender_that_stopped_mid_send_is_never_resent(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'ivr.db'}"
    with responses.RequestsMock() as twilio, texting_rig(database_url=db) as r:
        book_by_keypad(r)
        # The pass marked it sending, then the process died before Twilio answered.
        [claimed] = r.runtime.store.claim_due_texts(worker="gone")
        assert claimed.status == "sending"
        later = Store(db, now=lambda: r.runtime.store.now() + timedelta(minutes=5))
        TextSender(later, r.runtime.services.sms, worker_id="w2").run_once()
        TextSender(later, r.runtime.services.sms, worker_id="w2").run_once()
        assert len(twilio.calls) == 0
        text = later.get_text(claimed.booking_key)
        later.dispose()
    assert text is not None and text.status == "unknown"
    assert "may have been sent" in (text.last_error or "")


@responses.activate
def test_twilio_refusing_the_text_is_marked_failed_and_shown_to_agents():
    responses.post(MESSAGES, status=400, json={
        "code": 21211, "message": "The 'To' number is not a valid phone number.",
        "status": 400})
    with texting_rig() as r:
        call = book_by_keypad(r)
        assert "You're booked" in call.heard and call.ended  # the booking stands
        worker(r).run_once()
        worker(r).run_once()
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        text = booking_json(r, booking.idempotency_key)["text"]
        agent = signed_in(r.app)
        outbox = agent.get("/console/outbox").text
        page = agent.get(f"/console/bookings/{booking.idempotency_key}").text
    assert len(responses.calls) == 1
    assert text["status"] == "failed" and "21211" in text["error"]
    assert 'class="text-failed"' in outbox and "not a valid phone number" in outbox
    assert "Confirmation text" in page and "failed" in page


@responses.activate
def test_twilio_unavailable_is_retried_and_sends_one_text():
    responses.post(MESSAGES, status=503, json={"message": "Service Unavailable", "status": 503})
    responses.post(MESSAGES, json=SENT, status=201)
    with texting_rig() as r:
        book_by_keypad(r)
        worker(r, backoff_seconds=0).run_once()
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        assert booking_json(r, booking.idempotency_key)["text"]["status"] == "retrying"
        for _ in range(3):
            worker(r, backoff_seconds=0).run_once()
        text = booking_json(r, booking.idempotency_key)["text"]
    assert len(responses.calls) == 2  # the refused request and the one that was taken
    assert text["status"] == "sent" and text["attempts"] == 2


@responses.activate
def test_twilio_server_error_is_never_retried_on_its_own_and_an_agent_can_send_again():
    responses.post(MESSAGES, status=500, json={"message": "Internal error", "status": 500})
    responses.post(MESSAGES, json=SENT, status=201)
    with texting_rig() as r:
        book_by_keypad(r)
        worker(r, backoff_seconds=0).run_once()
        worker(r, backoff_seconds=0).run_once()
        assert len(responses.calls) == 1  # a 500 may have sent it: not resent on its own
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        key = booking.idempotency_key
        assert booking_json(r, key)["text"]["status"] == "unknown"
        agent = signed_in(r.app)
        outbox = agent.get("/console/outbox")
        sent = agent.post(f"/console/texts/{key}/send-again",
                          data={"csrf_token": csrf_of(outbox.text)})
        assert sent.status_code == 302
        worker(r).run_once()
        assert booking_json(r, key)["text"]["status"] == "sent"
        assert "no-texts" in agent.get("/console/outbox").text
    assert len(responses.calls) == 2


@responses.activate
def test_a_booking_the_worker_finishes_later_is_texted_once_booked():
    responses.post(MESSAGES, json=SENT, status=201)
    with texting_rig() as r:
        call = r.call(BILAL)
        for keys in ("1", "1", "1"):
            call.press(keys)
        call.silence()
        r.sandbox.faults.fail_next(503, times=None, operation="book")
        call.press("1")
        assert "I've taken your request" in call.last_heard
        worker(r).run_once()  # Clinicea still down: no booking, no text
        assert len(responses.calls) == 0
        r.sandbox.faults.clear()
        store = r.runtime.store
        real_now = store.now
        store.now = lambda: real_now() + timedelta(hours=1)  # past the booking's retry time
        worker(r).run_once()
        worker(r).run_once()
        assert len(store.bookings(statuses=("booked",))) == 1
    assert len(responses.calls) == 1


@responses.activate
def test_no_text_and_no_promise_of_one_when_texting_is_off():
    with rig() as r:
        call = book_by_keypad(r)
        assert "text you" not in call.heard
        [booking] = r.runtime.store.bookings(statuses=("booked",))
        assert booking_json(r, booking.idempotency_key)["text"] is None
    assert len(responses.calls) == 0
