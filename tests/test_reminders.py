"""Appointment reminders end to end (docs/reminders.md, phase 2): the sandbox Clinicea over
HTTP, the app through the Twilio call simulator (outbound calls, signed webhooks), Twilio's
REST API faked with `responses`. Monday 23 November 2026 10:00; Tuesday's patients are
reminded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, time

import pytest
import responses

from ivr.config import DEMO_CLINIC, ReminderSettings
from ivr.reminders import ReminderRun, reminder_url, replies_for, run_for, status_url
from ivr.twilio_rest import CallPacer
from tests.calls import Rig, rig
from tests.demo import CLINIC_NUMBER
from tests.twilio_api import ACCOUNT, FakeTime, sent

DAY = date(2026, 11, 24)
PUBLIC = "http://testserver"


def clinic(channels: tuple[str, ...] = ("call", "sms")):  # noqa: ANN201
    return dataclasses.replace(DEMO_CLINIC, reminders=ReminderSettings(
        at=time(10), channels=channels, from_number=CLINIC_NUMBER,
        calling_hours=DEMO_CLINIC.hours))




@pytest.fixture
def make(twilio: responses.RequestsMock) -> Iterator:  # noqa: ANN201
    opened = []

    def build(channels: tuple[str, ...] = ("call", "sms")) -> tuple[Rig, ReminderRun, FakeTime]:
        cm = rig(clinic=clinic(channels), twilio_account_sid=ACCOUNT, public_url=PUBLIC)
        r = cm.__enter__()
        opened.append(cm)
        sleeps = FakeTime()
        run = run_for(r.runtime, "w1", pacer=CallPacer(1.0, monotonic=sleeps.monotonic,
                                                       sleep=sleeps.sleep))
        assert run is not None
        return r, run, sleeps

    yield build
    for cm in reversed(opened):
        cm.__exit__(None, None, None)


def test_a_dry_run_lists_who_and_the_text_and_writes_nothing(make, twilio) -> None:
    r, run, _ = make(("sms",))
    plan = run.plan(run.target_day())
    lines = run.describe(plan)
    assert lines[0].startswith("reminders of 2026-11-24: ")
    assert any(line.startswith("  text: Demo") or "Reply 1 to confirm" in line for line in lines)
    assert any("status Cancelled" in line for line in lines)  # Ali Raza's cancelled one
    assert r.runtime.store.reminders(day=DAY) == [] and not twilio.calls


def test_a_run_texts_each_patient_once_and_never_the_cancelled(make, twilio) -> None:
    r, run, _ = make(("sms",))
    report = run.run()
    store = r.runtime.store
    rows = store.reminders(day=DAY)
    assert report.written == len(rows) == report.sent.texts > 0
    texts = sent(twilio, "Messages.json")
    assert len(texts) == len(rows)
    cancelled = [a for a in r.runtime.client.appointments_on(DAY) if a.status == "Cancelled"]
    names = {row.first_name for row in rows}
    assert all(a.patient_name.split()[0] not in names for a in cancelled)
    first = texts[0]
    assert first["From"] == [CLINIC_NUMBER] and "Reply 1 to confirm" in first["Body"][0]
    assert {t["To"][0] for t in texts} == {row.phone_e164 for row in rows}
    # Run again (a second `ivr remind`, a worker after a restart): nobody twice.
    again = run.run()
    assert again.written == 0 and again.sent.texts == 0
    assert len(sent(twilio, "Messages.json")) == len(rows)


def test_a_run_killed_half_way_sends_the_rest_and_nobody_twice(make, twilio) -> None:
    r, run, _ = make(("sms",))
    plan = run.plan(DAY)
    half = dataclasses.replace(plan, reminders=plan.reminders[: len(plan.reminders) // 2])
    r.runtime.store.plan_reminders(half)  # planned half ...
    [one] = r.runtime.store.claim_reminders("sms", r.clock.now(), "dead", 1)
    r.runtime.store.reminder_sent(one.key, "sms", "SMdead")  # ... and texted one, then died
    run.run(DAY)
    numbers = [t["To"][0] for t in sent(twilio, "Messages.json")]
    assert len(numbers) == len(plan.reminders) - 1 == len(set(numbers))
    assert one.phone_e164 not in numbers


def test_calls_are_placed_with_their_webhooks_and_paced(make, twilio) -> None:
    r, run, sleeps = make()
    report = run.run()
    calls = sent(twilio, "Calls.json")
    rows = r.runtime.store.reminders(day=DAY)
    assert report.sent.calls == len(calls) == len(rows) > 1 and not sent(twilio, "Messages.json")
    first = calls[0]
    key = next(row.key for row in rows if row.phone_e164 == first["To"][0])
    assert first["Url"] == [reminder_url(PUBLIC, key)]
    assert first["StatusCallback"] == [status_url(PUBLIC, key)]
    assert first["From"] == [CLINIC_NUMBER] and first["MachineDetection"] == ["DetectMessageEnd"]
    assert sleeps.slept == [1.0] * (len(calls) - 1)  # one call a second
    assert all(row.status == "sent" and row.call_sid for row in rows)


def placed(make, twilio):  # noqa: ANN001, ANN201
    r, run, _ = make()
    run.run()
    row = r.runtime.store.reminders(day=DAY)[0]
    return r, run, row


def test_the_patient_confirms_by_key(make, twilio) -> None:
    r, _, row = placed(make, twilio)
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                            call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key))
    assert f"Hello {row.first_name}" in call.last_heard and "To confirm, press 1" in call.heard
    call.press("1")
    assert "we'll see you then" in call.last_heard and call.ended
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "confirmed"


def test_the_patient_confirms_by_speech(make, twilio) -> None:
    r, _, row = placed(make, twilio)
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                            call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key))
    call.say("yes I will be there")
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "confirmed"


def test_cancel_goes_to_the_desk(make, twilio) -> None:
    r, _, row = placed(make, twilio)
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                            call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key))
    call.press("3")
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "cancel_requested"
    [callback] = r.runtime.store.callbacks()
    assert callback.reason and callback.reason.startswith("cancel appointment")


def test_a_move_books_a_new_held_time(make, twilio) -> None:
    r, _, row = placed(make, twilio)
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                            call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key))
    call.press("2")
    assert "new time" in call.last_heard
    held = r.runtime.store.held_by(call.sid)
    assert held  # the offered times are held for the patient
    call.press("1")
    call.press("1")
    assert call.ended
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "moved"


def test_no_answer_sends_the_text(make, twilio) -> None:
    r, run, row = placed(make, twilio)
    r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164, call_sid=row.call_sid,
                     status_callback=status_url(PUBLIC, row.key), outcome="no-answer")
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and (after.status, after.channel) == ("queued", "sms")
    run.send_pass()
    [text] = sent(twilio, "Messages.json")
    assert text["To"] == [row.phone_e164]
    done = r.runtime.store.get_reminder(row.key)
    assert done is not None and done.status == "sent" and done.sms_sid


def test_metrics_count_reminders_handed_to_twilio_and_calls_by_their_end(make, twilio) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def counts() -> dict[tuple[str, str], float]:
        text = r.app.test_client().get("/metrics").get_data(as_text=True)
        return {(s.name, next(iter(s.labels.values()), "")): s.value
                for f in text_string_to_metric_families(text) for s in f.samples
                if s.name in ("ivr_reminders_sent_total", "ivr_reminder_calls_total")}

    r, run, row = placed(make, twilio)
    calls_placed = len(sent(twilio, "Calls.json"))
    assert counts()[("ivr_reminders_sent_total", "call")] == calls_placed >= 1
    for _ in range(2):  # Twilio may post the same status callback twice: counted once
        r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                         call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key),
                         outcome="no-answer")
    run.send_pass()
    after = counts()
    assert after[("ivr_reminder_calls_total", "no-answer")] == 1
    assert after[("ivr_reminders_sent_total", "sms")] == len(sent(twilio, "Messages.json")) == 1


def test_a_machine_gets_the_short_message_then_the_text(make, twilio) -> None:
    r, run, row = placed(make, twilio)
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=row.phone_e164,
                            call_sid=row.call_sid, status_callback=status_url(PUBLIC, row.key),
                            answered_by="machine_end_beep")
    assert call.ended and "To change it, please call us" in call.heard
    run.send_pass()
    assert [t["To"] for t in sent(twilio, "Messages.json")] == [[row.phone_e164]]


def sms(r: Rig, from_: str, body: str, **extra: str) -> None:
    params = {"From": from_, "To": CLINIC_NUMBER, "Body": body, "MessageSid": "SM" + "1" * 32,
              "AccountSid": ACCOUNT, **extra}
    reply = r.phone.post_raw("/sms/incoming", params)
    assert reply.status_code == 200 and reply.text.strip().endswith("<Response />") or \
        "<Response/>" in reply.text


@pytest.mark.parametrize(("body", "status"), [
    ("1", "confirmed"), ("2", "move_requested"), ("3", "cancel_requested")])
def test_sms_replies(make, twilio, body: str, status: str) -> None:
    r, run, _ = make(("sms",))
    run.run()
    row = r.runtime.store.reminders(day=DAY)[0]
    sms(r, row.phone_e164, body)
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and (after.status, after.reply) == (status, body)


def test_an_unsigned_sms_is_refused(make, twilio) -> None:
    r, _, _ = make(("sms",))
    reply = r.phone.post_raw("/sms/incoming", {"From": "+923216315551", "Body": "STOP"},
                             signature=None)
    assert reply.status_code == 403


def test_stop_and_start_and_a_later_run_honours_the_opt_out(make, twilio) -> None:
    r, run, _ = make(("sms",))
    run.run()
    row = r.runtime.store.reminders(day=DAY)[0]
    store = r.runtime.store
    sms(r, row.phone_e164, "STOP", OptOutType="STOP")
    assert store.opted_out([row.phone_e164]) == {row.phone_e164}
    # Tomorrow's run (Wednesday's patients): the number is not texted.
    r.clock.advance(days=1)
    later = run.run()
    wednesday = store.reminders(day=date(2026, 11, 25))
    mine = [w for w in wednesday if w.phone_e164 == row.phone_e164]
    assert all(w.status == "opted_out" for w in mine)
    assert row.phone_e164 not in [t["To"][0] for t in sent(twilio, "Messages.json")[
        len(sent(twilio, "Messages.json")) - later.sent.texts:]]
    sms(r, row.phone_e164, "START", OptOutType="START")
    assert store.opted_out([row.phone_e164]) == set()


def test_a_text_from_someone_without_a_reminder_becomes_a_callback(make, twilio) -> None:
    r, _, _ = make(("sms",))
    replies_for(r.runtime).sms_reply("+923009998877", "please call me about my results")
    [callback] = r.runtime.store.callbacks()
    assert callback.reason == "SMS from a patient: please call me about my results"
