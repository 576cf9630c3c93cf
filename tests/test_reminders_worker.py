"""The booking worker's own reminder pass (`ivr.worker.build_worker(rt).run_once()`), as
`ivr worker` runs it: a clinic file with `[reminders]`, the sandbox Clinicea, a fixed clock,
Twilio's REST API faked with `responses`. Monday 23 November 2026; Tuesday's patients are
reminded once the clinic's `at` (10:00) has passed, each once, however many workers run."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses

from ivr.config import (
    DEMO_CLINIC_GULSHAN_ID,
    DEMO_CLINIC_TOML,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_SERVICE_CONSULTATION_ID,
    ClinicConfig,
    parse_clinic_config,
)
from ivr.reminders import TOO_LATE, reminder_url, status_url
from ivr.sandbox.seed import DEMO_PATIENTS
from ivr.worker import build_worker
from tests.calls import Rig
from tests.demo import CLINIC_NUMBER
from tests.twilio_api import ACCOUNT, API, sent

DAY = date(2026, 11, 24)
PUBLIC = "http://testserver"


def clinic(channels: str, calling_hours: str = "") -> ClinicConfig:
    """The demo clinic file with a `[reminders]` table, read by the clinic file's loader."""
    return parse_clinic_config(DEMO_CLINIC_TOML + f"""
[reminders]
at = "10:00"
days_ahead = 1
channels = {channels}
calls_per_second = 50  # the pacing itself is tested on a fake clock (test_twilio_calls.py)
from_number = "{CLINIC_NUMBER}"
{calling_hours}
""", "clinic.toml")


def tuesdays_patients(r: Rig) -> set[str]:
    """The numbers of Tuesday's Scheduled and Confirmed patients (the sandbox's calendar)."""
    rows = r.runtime.client.appointments_on(DAY)
    assert {a.status for a in rows} >= {"Scheduled", "Confirmed", "Cancelled"}
    return {DEMO_PATIENTS[a.patient_name or ""].e164 for a in rows
            if a.status in ("Scheduled", "Confirmed")}


def test_before_at_nothing_then_the_day_is_planned_once_and_texted_once(
        make_rig, twilio: responses.RequestsMock) -> None:
    r = make_rig(datetime(2026, 11, 23, 9, 30), clinic=clinic('["sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    store, worker = r.runtime.store, build_worker(r.runtime)
    worker.run_once()  # 09:30: before the clinic's `at`
    assert not store.reminder_day_planned(DAY) and store.reminders(day=DAY) == []
    assert not twilio.calls
    r.clock.advance(minutes=30)  # 10:00
    worker.run_once()
    rows = store.reminders(day=DAY)
    texts = sent(twilio, "Messages.json")
    patients = tuesdays_patients(r)
    assert len(patients) > 2
    assert sorted(t["To"][0] for t in texts) == sorted(patients)  # each once, the cancelled not
    assert {row.phone_e164 for row in rows} == patients
    assert all(row.status == "sent" and row.sms_sid for row in rows)
    assert all(t["From"] == [CLINIC_NUMBER] and "Reply 1 to confirm" in t["Body"][0]
               for t in texts)
    # Later passes of this worker, and a second worker on the same store: nothing more.
    r.clock.advance(hours=2)
    worker.run_once()
    build_worker(r.runtime).run_once()
    assert len(sent(twilio, "Messages.json")) == len(patients)
    assert len(store.reminders(day=DAY)) == len(rows)
    assert not sent(twilio, "Calls.json")


def test_a_second_worker_process_on_the_same_database_sends_nothing_twice(
        make_rig, twilio: responses.RequestsMock, tmp_path: Path) -> None:
    shared = {"clinic": clinic('["sms"]'), "twilio_account_sid": ACCOUNT, "public_url": PUBLIC,
              "database_url": f"sqlite:///{tmp_path / 'ivr.db'}"}
    one = make_rig(datetime(2026, 11, 23, 10, 5), **shared)
    two = make_rig(datetime(2026, 11, 23, 10, 5), **shared)  # its own runtime and sandbox
    build_worker(one.runtime).run_once()
    first = len(sent(twilio, "Messages.json"))
    assert first == len(tuesdays_patients(one))
    build_worker(two.runtime).run_once()
    two.clock.advance(minutes=10)
    build_worker(two.runtime).run_once()
    assert len(sent(twilio, "Messages.json")) == first
    assert len(two.runtime.store.reminders(day=DAY)) == first


def test_calls_are_placed_only_inside_calling_hours_and_once_each(
        make_rig, twilio: responses.RequestsMock) -> None:
    hours = '[reminders.calling_hours]\nmon = "12:00-13:00"\ntue = "12:00-13:00"'
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call"]', hours),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    store, worker = r.runtime.store, build_worker(r.runtime)
    worker.run_once()  # 10:00: planned, but calling hours start at noon
    rows = store.reminders(day=DAY)
    assert {row.phone_e164 for row in rows} == tuesdays_patients(r)
    assert all((row.status, row.channel) == ("queued", "call") for row in rows)
    assert not twilio.calls
    r.clock.advance(hours=1, minutes=59)  # 11:59
    worker.run_once()
    assert not twilio.calls
    r.clock.advance(minutes=1)  # 12:00
    worker.run_once()
    calls = sent(twilio, "Calls.json")
    assert sorted(c["To"][0] for c in calls) == sorted(row.phone_e164 for row in rows)
    by_phone = {row.phone_e164: row.key for row in rows}
    assert all(c["Url"] == [reminder_url(PUBLIC, by_phone[c["To"][0]])] for c in calls)
    r.clock.advance(minutes=5)
    worker.run_once()
    build_worker(r.runtime).run_once()
    assert len(sent(twilio, "Calls.json")) == len(rows)  # never two calls for one reminder
    assert not sent(twilio, "Messages.json")


def test_a_worker_started_after_calling_hours_places_no_call_and_tells_the_desk(
        make_rig, twilio: responses.RequestsMock) -> None:
    """Planned after today's calling hours, calls only: nothing rings in the evening."""
    hours = '[reminders.calling_hours]\nmon = "09:00-10:30"'
    r = make_rig(datetime(2026, 11, 23, 18, 0), clinic=clinic('["call"]', hours),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    worker = build_worker(r.runtime)
    worker.run_once()
    rows = r.runtime.store.reminders(day=DAY)
    assert rows and not twilio.calls
    assert {(row.status, row.last_error) for row in rows} == {
        ("failed", "outside calling hours")}
    r.clock.advance(hours=3)  # 21:00
    worker.run_once()
    assert not twilio.calls


class Killed(BaseException):
    """The worker process dies (kill -9) while Twilio is being asked for a call."""


def test_a_worker_killed_mid_call_run_leaves_nobody_out_and_calls_nobody_twice(
        make_rig) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    store = r.runtime.store
    rung: list[str] = []  # every number Twilio was asked to ring, the one in flight included
    texted: list[str] = []

    def place(req):  # noqa: ANN001, ANN202
        to = parse_qs(req.body)["To"][0]
        rung.append(to)
        if len(rung) == 3:
            raise Killed  # the request may have reached Twilio: that patient may be ringing
        return 201, {}, f'{{"sid": "CA{len(rung):032x}", "status": "queued"}}'

    def text(req):  # noqa: ANN001, ANN202
        texted.append(parse_qs(req.body)["To"][0])
        return 201, {}, f'{{"sid": "SM{len(texted):032d}", "status": "queued"}}'

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, f"{API}/Calls.json", callback=place)
        mock.add_callback(responses.POST, f"{API}/Messages.json", callback=text)
        with pytest.raises(Killed):
            build_worker(r.runtime).run_once()
        patients = tuesdays_patients(r)
        assert len(rung) == 3 < len(patients)
        r.clock.advance(seconds=5)
        build_worker(r.runtime).run_once()  # the restarted worker
        assert sorted(rung) == sorted(patients)  # everyone rung, nobody twice
        assert texted == []
        # Two minutes on (the store's sweep, run here at once): the call in doubt is given up,
        # and the patient gets the text instead, never a second call.
        assert store.expire_sending_reminders(timedelta(0)) == 1
        build_worker(r.runtime).run_once()
        assert texted == [rung[2]] and sorted(rung) == sorted(patients)
    in_doubt = next(row for row in store.reminders(day=DAY) if row.phone_e164 == rung[2])
    assert (in_doubt.status, in_doubt.channel) == ("sent", "sms")


NIDA = DEMO_PATIENTS["Nida Aslam"]  # Tuesday 09:00 with Dr. Farooq (the sandbox's seed)


def book_nida_again(r: Rig) -> None:
    """A second appointment for Nida on Tuesday, 14:00 with Dr. Khan."""
    r.sandbox.book(NIDA.id, datetime(2026, 11, 24, 14, 0), DEMO_DOCTOR_KHAN_ID,
                   DEMO_CLINIC_GULSHAN_ID, DEMO_SERVICE_CONSULTATION_ID)


def test_two_appointments_of_one_patient_are_one_text_naming_both(
        make_rig, twilio: responses.RequestsMock) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    book_nida_again(r)
    build_worker(r.runtime).run_once()
    [text] = [t for t in sent(twilio, "Messages.json") if t["To"] == [NIDA.e164]]
    assert ("your appointments tomorrow, Tuesday the 24th at 9 a.m. with Dr. Farooq and at "
            "2 p.m. with Dr. Khan") in text["Body"][0]
    [row] = [row for row in r.runtime.store.reminders(day=DAY) if row.phone_e164 == NIDA.e164]
    assert len(r.runtime.store.reminder_items(row.key)) == 2


def test_two_appointments_of_one_patient_are_one_call_naming_both(
        make_rig, twilio: responses.RequestsMock) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    book_nida_again(r)
    build_worker(r.runtime).run_once()
    assert [c["To"] for c in sent(twilio, "Calls.json")].count([NIDA.e164]) == 1
    [row] = [row for row in r.runtime.store.reminders(day=DAY) if row.phone_e164 == NIDA.e164]
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=NIDA.e164, call_sid=row.call_sid,
                            status_callback=status_url(PUBLIC, row.key))
    assert ("Hello Nida" in call.last_heard and "your appointments tomorrow, Tuesday the 24th "
            "at 9 a.m. with Dr. Farooq and at 2 p.m. with Dr. Khan" in call.last_heard)
    call.press("1")
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "confirmed"


@pytest.mark.parametrize("status", ["No Show", "Arrived", "Check Out", "Cancelled"])
def test_only_scheduled_and_confirmed_appointments_are_reminded(
        make_rig, twilio: responses.RequestsMock, status: str) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    [nidas] = [a for a in r.runtime.client.appointments_on(DAY) if a.patient_id == NIDA.id]
    r.sandbox.set_status(nidas.id, status)
    build_worker(r.runtime).run_once()
    numbers = [t["To"][0] for t in sent(twilio, "Messages.json")]
    assert numbers and NIDA.e164 not in numbers
    assert NIDA.e164 not in {row.phone_e164 for row in r.runtime.store.reminders(day=DAY)}


def test_a_number_opted_out_after_the_plan_is_not_called(
        make_rig, twilio: responses.RequestsMock) -> None:
    hours = '[reminders.calling_hours]\nmon = "12:00-13:00"'
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]', hours),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    worker = build_worker(r.runtime)
    worker.run_once()  # planned at 10:00, calls from noon
    assert r.runtime.store.opt_out(NIDA.e164, "desk")  # the desk, at 11:00
    r.clock.advance(hours=2)
    worker.run_once()
    numbers = [c["To"][0] for c in sent(twilio, "Calls.json")]
    assert numbers and NIDA.e164 not in numbers and not sent(twilio, "Messages.json")
    [row] = [row for row in r.runtime.store.reminders(day=DAY) if row.phone_e164 == NIDA.e164]
    assert row.status == "opted_out"


def test_a_reminder_whose_appointment_has_started_is_not_sent(
        make_rig, twilio: responses.RequestsMock) -> None:
    """Planned on Monday for calls from noon; the worker was down until Tuesday noon, after
    Tuesday's morning appointments began: nobody is called about a past appointment."""
    hours = '[reminders.calling_hours]\nmon = "12:00-13:00"\ntue = "12:00-13:00"'
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]', hours),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    build_worker(r.runtime).run_once()
    r.clock.advance(days=1, hours=2)  # Tuesday 12:00
    build_worker(r.runtime).run_once()
    assert not twilio.calls
    rows = r.runtime.store.reminders(day=DAY)
    assert rows and {(row.status, row.last_error) for row in rows} == {("failed", TOO_LATE)}


def reply(r: Rig, from_: str, body: str, **extra: str) -> None:
    """An SMS from a patient, as Twilio posts it to `/sms/incoming` (signed)."""
    params = {"From": from_, "To": CLINIC_NUMBER, "Body": body, "MessageSid": "SM" + "7" * 32,
              "AccountSid": ACCOUNT, **extra}
    assert r.phone.post_raw("/sms/incoming", params).status_code == 200


def test_stop_is_honoured_by_every_later_run_until_start(
        make_rig, twilio: responses.RequestsMock) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    for day in (25, 26, 27):  # Nida is booked Wednesday, Thursday and Friday too
        r.sandbox.book(NIDA.id, datetime(2026, 11, day, 11, 0), DEMO_DOCTOR_KHAN_ID,
                       DEMO_CLINIC_GULSHAN_ID, DEMO_SERVICE_CONSULTATION_ID)
    store, worker = r.runtime.store, build_worker(r.runtime)

    def reached() -> int:  # calls and texts to Nida so far
        return sum(1 for what in ("Calls.json", "Messages.json")
                   for p in sent(twilio, what) if p["To"] == [NIDA.e164])

    worker.run_once()  # Monday: Tuesday's reminders
    assert reached() == 1
    reply(r, NIDA.e164, "STOP", OptOutType="STOP")
    for _ in ("Wednesday", "Thursday"):  # the runs of Tuesday and Wednesday
        r.clock.advance(days=1)
        worker.run_once()
        assert reached() == 1
    planned = [row for row in store.reminders() if row.phone_e164 == NIDA.e164]
    assert [row.status for row in planned[1:]] == ["opted_out", "opted_out"]
    reply(r, NIDA.e164, "START", OptOutType="START")
    r.clock.advance(days=1)  # Thursday's run: Friday's reminders
    worker.run_once()
    assert reached() == 2


def test_a_move_on_the_call_books_the_new_time_and_asks_the_desk_to_cancel_the_old(
        make_rig, twilio: responses.RequestsMock) -> None:
    r = make_rig(datetime(2026, 11, 23, 10, 0), clinic=clinic('["call", "sms"]'),
                 twilio_account_sid=ACCOUNT, public_url=PUBLIC)
    build_worker(r.runtime).run_once()
    [row] = [row for row in r.runtime.store.reminders(day=DAY) if row.phone_e164 == NIDA.e164]
    [old] = [a for a in r.runtime.client.appointments_on(DAY) if a.patient_id == NIDA.id]
    call = r.phone.outbound(reminder_url(PUBLIC, row.key), to=NIDA.e164, call_sid=row.call_sid,
                            status_callback=status_url(PUBLIC, row.key))
    call.press("2")
    call.press("1")
    call.press("1")
    assert "You're booked" in call.heard and call.ended
    new = [a for a in r.appointments() if a["PatientID"] == NIDA.id and a["ID"] not in r.seeded]
    assert len(new) == 1 and "moved from 2026-11-24 09:00" in (new[0].get("Notes") or "")
    [callback] = r.runtime.store.callbacks()
    assert callback.reason and callback.reason.startswith(f"cancel appointment {old.id} on "
                                                          "2026-11-24T09:00 (moved to a new time")
    after = r.runtime.store.get_reminder(row.key)
    assert after is not None and after.status == "moved"
