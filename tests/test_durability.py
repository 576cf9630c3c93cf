"""Never lose a booking: Clinicea down, restarts, two processes, concurrency.

Whole calls through the simulator; the sandbox Clinicea is the calendar of record, and every
test ends by counting appointments there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ivr.app import runtime_of
from ivr.clinicea_services import SLOT_SEARCH_SECONDS, WEBHOOK_SECONDS
from ivr.clock import FixedClock, SystemClock
from ivr.config import DEMO_CLINIC, Settings
from ivr.outbox import OutboxWorker
from ivr.sandbox import EmbeddedSandbox, SandboxState
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID
from ivr.sandbox.state import SandboxError
from ivr.simulator import TwilioSimulator
from tests.calls import app_for
from tests.demo import BILAL, HAMZA, MONDAY_10AM
from tests.pg import fresh_schema_url


def scheduled_for(sandbox: SandboxState, patient_id: str) -> list[dict]:
    return [a for a in sandbox.calendar() if a["PatientID"] == patient_id
            and a["AppointmentStatus"] == "Scheduled"]


def to_confirmation(call) -> None:
    """A returning patient's keypad path up to the read-back."""
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    assert "Press 1 to book it" in call.last_heard


def test_clinicea_down_at_booking_then_the_worker_books_it_exactly_once(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    to_confirmation(call)
    r.sandbox.faults.fail_next(503, times=None, operation="book")
    call.press("1")
    assert "I've taken your request" in call.last_heard and call.ended
    assert scheduled_for(r.sandbox, BILAL.id) == []
    rt = r.runtime
    worker = OutboxWorker(rt.client, rt.store, rt.clock, rt.settings.clinic, worker_id="w1")
    worker.run_once()  # still down: stays retrying
    assert scheduled_for(r.sandbox, BILAL.id) == []
    r.sandbox.faults.clear()
    real_now = rt.store.now
    rt.store.now = lambda: real_now() + timedelta(hours=1)  # past the retry's due time
    worker.run_once()
    worker.run_once()
    assert len(scheduled_for(r.sandbox, BILAL.id)) == 1
    [row] = rt.store.bookings(statuses=("booked",))
    assert row.call_sid == call.sid and row.appointment_id


def test_server_restarted_mid_call_continues_where_it_was(tmp_path: Path):
    clock = FixedClock(MONDAY_10AM)
    sandbox = SandboxState(clock)
    settings = Settings.for_tests(database_url=f"sqlite:///{tmp_path / 'ivr.db'}")
    first = app_for(settings, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=httpx.WSGITransport(app=first), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", settings.twilio_auth_token, http=http)
    call = phone.call(from_=BILAL.e164)
    call.press("1")
    call.press("1")
    runtime_of(first).close()  # the process dies between two webhooks
    second = app_for(settings, clock=clock, sandbox_state=sandbox)
    phone.http = httpx.Client(transport=httpx.WSGITransport(app=second),
                              base_url="http://testserver")
    call.press("1")
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard
    assert len(scheduled_for(sandbox, BILAL.id)) == 1
    runtime_of(second).close()


class Alternating(httpx.BaseTransport):
    """A load balancer sending each request to the next app in turn."""

    def __init__(self, *apps) -> None:
        self.transports = [httpx.WSGITransport(app=a) for a in apps]
        self.n = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.n += 1
        return self.transports[self.n % len(self.transports)].handle_request(request)


def test_two_processes_serving_one_call_alternately_share_its_state(tmp_path: Path):
    clock = FixedClock(MONDAY_10AM)
    sandbox = SandboxState(clock)
    settings = Settings.for_tests(database_url=f"sqlite:///{tmp_path / 'ivr.db'}")
    a = app_for(settings, clock=clock, sandbox_state=sandbox)
    b = app_for(settings, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=Alternating(a, b), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", settings.twilio_auth_token, http=http)
    call = phone.call(from_=BILAL.e164)
    to_confirmation(call)
    call.press("1")
    assert "You're booked" in call.last_heard
    assert len(scheduled_for(sandbox, BILAL.id)) == 1
    runtime_of(a).close()
    runtime_of(b).close()


def test_fifty_calls_at_once_all_book_without_a_duplicate(tmp_path: Path, make_rig):
    # 50 threads writing at once on a busy 2-core machine can wait past the production lock
    # bound (3 s, its own test in test_limits.py); here only duplicates are under test.
    r = make_rig(database_url=f"sqlite:///{tmp_path / 'ivr.db'}", database_lock_seconds=30)
    numbers = [f"+9230099{n:05d}" for n in range(50)]

    def one_call(i: int) -> str:
        call = r.call(numbers[i])
        call.press("1")  # register
        call.say(f"caller number{chr(97 + i % 26)} test")
        call.press("1")
        call.press(str(1 + i % 4))  # spread over the four doctors
        for _ in range(20):  # callers racing for the same times: take another when beaten
            call.press(str(1 + (i // 4) % 3))
            call.silence()
            call.press("1")
            if call.ended:
                break
            assert "just taken" in call.last_heard, call.transcript_text()
        assert "You're booked" in call.heard, call.transcript_text()
        return call.sid

    with ThreadPoolExecutor(max_workers=16) as pool:
        sids = list(pool.map(one_call, range(50)))
    assert len(set(sids)) == 50
    created = [a for a in r.appointments() if a["ID"] not in r.seeded]
    assert len(created) == 50
    taken = [(a["StaffID"], a["StartDateTime"]) for a in created]
    assert len(set(taken)) == 50  # nobody shares a doctor's slot
    posts = [q for q in r.sandbox.requests() if q.operation == "register_and_book"
             and q.status == 200]
    assert len(posts) == 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(env: dict[str, str]):
    port = _free_port()
    code = ("import sys; from werkzeug.serving import run_simple; from ivr.app import create_app;"
            # the launcher's part (ivr migrate): the app factory does not migrate
            "from ivr.config import Settings; from ivr.store import Store;"
            "Store(Settings.from_env().database_url).migrate();"
            f"run_simple('127.0.0.1', {port}, create_app(), threaded=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/voice/status", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.postgres
@pytest.mark.slow
def test_ten_identical_confirmations_across_two_processes_on_postgres_book_once(
    pg_database,
):
    clock = SystemClock("Asia/Karachi")
    with EmbeddedSandbox(SandboxState(clock)) as sandbox_server:
        state = sandbox_server.state
        env = {**os.environ, "CLINICEA_BASE_URL": sandbox_server.base_url, "IVR_DEMO": "1",
               "IVR_DATABASE_URL": fresh_schema_url(pg_database),
               "TWILIO_AUTH_TOKEN": "test-token", "IVR_SECRET_KEY": "test-secret",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        with _server(env) as a, _server(env) as b:
            phone = TwilioSimulator(a, "test-token", http=httpx.Client(base_url=a, timeout=15))
            call = phone.call(from_=BILAL.e164)
            for keys in ("1", "1", "1"):
                call.press(keys)
            call.silence()
            [(_, url, params)] = [q for q in call.requests if "/step/reason" in q[1]]
            turn = int(url.split("t=")[1].split("&")[0]) + 1
            confirm = {**params, "Digits": "1"}
            confirm.pop("SpeechResult", None)

            def post(i: int, path: str) -> httpx.Response:
                sim = TwilioSimulator(a if i % 2 else b, "test-token",
                                      http=httpx.Client(base_url=a if i % 2 else b, timeout=15))
                return sim.post_raw(path, confirm)

            with ThreadPoolExecutor(max_workers=10) as pool:
                replies = list(pool.map(lambda i: post(i, f"/voice/step/confirm?t={turn}"
                                                       "&k=answer"), range(10)))
                assert {r.status_code for r in replies} == {200}
                resume = f"/voice/step/book?t={turn + 1}&k=resume"
                replies = list(pool.map(lambda i: post(i, resume), range(10)))
            assert {r.status_code for r in replies} == {200}
            assert any("booked" in r.text for r in replies), [r.text[:300] for r in replies]
            books = [q for q in state.requests() if q.operation == "book"]
            assert len(books) == 1
            assert len(scheduled_for(state, BILAL.id)) == 1


def test_purge_removes_old_events_and_keeps_calls_and_bookings(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    to_confirmation(call)
    call.press("1")
    store = r.runtime.store
    assert store.events(call.sid)
    real_now = store.now
    store.now = lambda: real_now() + timedelta(days=31)
    removed = store.purge_events(timedelta(days=30))
    assert removed > 0 and store.events(call.sid) == []
    assert store.load_call(call.sid) is not None
    assert store.bookings(statuses=("booked",))


# --- time limits: Twilio gives up on a webhook after 15 s -----------------------------------

def fill_calendar(r, doctor_id: str, days: int, *, keep: datetime | None = None) -> None:
    """Book every slot of `doctor_id` for `days` days from today (except `keep`)."""
    clinic = r.runtime.settings.clinic
    doctor = clinic.doctor_by_id(doctor_id)
    step = timedelta(minutes=clinic.slot_minutes)
    for n in range(days):
        day = MONDAY_10AM.date() + timedelta(days=n)
        for opens, closes in clinic.hours.on(day):
            start, end = datetime.combine(day, opens), datetime.combine(day, closes)
            while start + step <= end:
                if start > MONDAY_10AM and start != keep:
                    with suppress(SandboxError):  # taken already (seeded)
                        r.sandbox.book(HAMZA.id, start, doctor_id, doctor.clinic_id,
                                       clinic.default_service_id)
                start += step


def test_doctor_fully_booked_for_two_weeks_on_a_slow_clinicea_answers_within_the_budget(make_rig):
    r = make_rig()
    fill_calendar(r, DEMO_DOCTOR_FAROOQ_ID, 14)
    call = r.call(BILAL.e164)
    call.press("1")
    assert "Dr. Farooq again" in call.last_heard
    r.sandbox.faults.latency(1000)
    started = time.monotonic()
    call.press("1")  # the doctor: the search walks the calendar day by day
    took = time.monotonic() - started
    assert took < SLOT_SEARCH_SECONDS + 3, took  # was 13 s (one 1 s fetch per open day)
    assert "can't reach our records" in call.last_heard
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_slow_slot_search_offers_what_it_found_before_the_budget_ran_out(make_rig):
    last_today = datetime(2026, 11, 23, 16, 40)
    r = make_rig()
    fill_calendar(r, DEMO_DOCTOR_FAROOQ_ID, 14, keep=last_today)
    call = r.call(BILAL.e164)
    call.press("1")
    r.sandbox.faults.latency(1000)
    started = time.monotonic()
    call.press("1")
    took = time.monotonic() - started
    assert took < SLOT_SEARCH_SECONDS + 3, took
    assert "4:40 p.m." in call.last_heard, call.last_heard
    r.sandbox.faults.clear()
    call.press("1")
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard
    [mine] = scheduled_for(r.sandbox, BILAL.id)
    assert mine["StartDateTime"] == last_today.isoformat()


def test_incoming_search_and_past_visits_share_one_webhook_budget(make_rig):
    r = make_rig()
    r.call(BILAL.e164).hang_up()  # logged in: the token is not part of the measurement
    r.sandbox.faults.latency(4600)
    started = time.monotonic()
    call = r.call(BILAL.e164)
    took = time.monotonic() - started
    assert took < WEBHOOK_SECONDS + 0.8, took  # was 9.2 s: 4.6 s + 4.6 s
    assert "Hello Bilal" in call.heard
    assert "Dr. Nadia Farooq" not in call.heard  # no time left for the last visit
    r.sandbox.faults.clear()
    call.press("1")
    assert "Which doctor?" in call.last_heard
