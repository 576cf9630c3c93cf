"""Every limit holds against a slow, strange or hostile world (issue 9).

A Clinicea that drips its answer or sends megabytes, a database another process has locked, a
store that cannot write, characters XML cannot hold, SQL parameters in logs, a booking answer
nested past any parser: each is played against the app for real (sandbox over HTTP, real
databases) and what a caller or an agent would notice is asserted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.app import runtime_of
from ivr.booking_payload import BookingPayload
from ivr.clinicea import CliniceaClient, CliniceaUnavailable
from ivr.clinicea.auth import Credentials
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.logs import JsonFormatter
from ivr.phone import parse_phone
from ivr.sandbox import EmbeddedSandbox, SandboxState
from ivr.sandbox.faults import parse_faults_spec
from ivr.sandbox.seed import DEMO_DOCTOR_KHAN_ID, Seed, demo_seed
from ivr.simulator import TwilioSimulator
from ivr.store import Store
from tests.agents import api_headers, signed_in
from tests.calls import app_for
from tests.demo import BILAL, CLINIC_NUMBER, MONDAY_10AM
from tests.pg import fresh_schema_url
from tests.test_services import Rig, open_services, request

BILAL_PHONE = parse_phone(BILAL.e164, "PK")


# --- 1. a slow-sending or huge-answering Clinicea ----------------------------------------------


@pytest.fixture
def sandbox():
    state = SandboxState(FixedClock(MONDAY_10AM))
    with EmbeddedSandbox(state) as embedded:
        yield embedded


def _client(sandbox: EmbeddedSandbox, **kw) -> CliniceaClient:
    from ivr.sandbox.state import Credentials as SandboxCredentials

    creds = SandboxCredentials()
    http = httpx.Client(base_url=sandbox.base_url, timeout=httpx.Timeout(5.0, connect=2.0))
    return CliniceaClient(http, Credentials(creds.api_key, creds.username, creds.password), **kw)


def test_a_dripped_answer_is_cut_off_at_the_call_budget(sandbox: EmbeddedSandbox) -> None:
    # 10 bytes a second: each read comes well inside httpx's 5 s read timeout, so only a
    # total deadline stops it (the search answer would take about half a minute).
    with _client(sandbox, budget=1.0, max_retries=0) as client:
        client.search_patients(BILAL_PHONE)  # logged in; the next answer is the dripped one
        sandbox.state.faults.drip_next(10, operation="search")
        with pytest.raises(CliniceaUnavailable, match="too slowly"):
            client.search_patients(BILAL_PHONE)
        assert client.search_patients(BILAL_PHONE)[0].id == BILAL.id  # and it recovers


def test_a_huge_answer_is_not_read(sandbox: EmbeddedSandbox) -> None:
    with _client(sandbox) as client:
        sandbox.state.faults.huge_next(5_000_000, operation="search")
        with pytest.raises(CliniceaUnavailable, match="larger than"):
            client.search_patients(BILAL_PHONE)


def test_a_dripped_search_still_answers_the_caller_within_the_webhook_budget(make_rig) -> None:
    r = make_rig()
    r.runtime.services.webhook_seconds = 1.0
    r.sandbox.faults.drip_next(10, operation="search")
    call = r.call(BILAL.e164)
    # The apology and a person, not a webhook held until Twilio gives up.
    assert "can't reach our records" in call.heard
    assert call.dialed


def test_healthz_is_not_held_by_a_dripping_login(make_rig) -> None:
    r = make_rig()
    r.sandbox.faults.drip_next(1, operation="login")
    http = httpx.Client(transport=httpx.WSGITransport(app=r.app), base_url="http://t")
    answer = http.get("/healthz").json()
    assert answer["clinicea"] == "unreachable"


def test_body_faults_by_spec_and_json() -> None:
    from ivr.sandbox.faults import Faults

    faults = Faults()
    faults.apply_spec("drip=1:search,huge=5000000,nested")
    faults.apply_json({"nested_next": {"operation": "book"}})
    assert faults.snapshot()["body_faults"] == [
        {"kind": "drip", "value": 1, "operation": "search"},
        {"kind": "huge", "value": 5_000_000, "operation": None},
        {"kind": "nested", "value": 100_000, "operation": None},
        {"kind": "nested", "value": 100_000, "operation": "book"},
    ]
    assert faults.take_body("book").kind == "huge"  # the first that matches, once
    for bad in ("drip=0", "drip", "huge=x", "nested=5:nope"):
        with pytest.raises(ValueError):
            parse_faults_spec(bad)
    with pytest.raises(ValueError):
        faults.apply_json({"drip_next": {}})
    faults.clear()
    assert faults.snapshot()["body_faults"] == []


# --- 7. a booking answer nested past any parser --------------------------------------------------


@pytest.fixture
def svc(tmp_path: Path):
    yield from open_services(tmp_path)


def test_nested_json_at_booking_books_once_and_does_not_stay_booking(svc: Rig) -> None:
    svc.state.faults.nested_next(100_000, operation="book")
    req = request()
    outcome = svc.services.book(req)
    assert outcome.status == "booked"
    record = svc.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked" and record.appointment_id
    assert len(svc.active_at(req.start, req.doctor_id)) == 1
    assert svc.worker().run_once() == 0  # nothing left to post again


def test_an_unexpected_error_counts_toward_the_attempt_limit(svc: Rig) -> None:
    svc.state.faults.fail_next(503, times=None, operation="book")
    req = request()
    assert svc.services.book(req).status == "recorded"  # attempt 1 of 3

    def broken(request: httpx.Request) -> httpx.Response:
        raise RecursionError("maximum recursion depth exceeded")

    from ivr.sandbox.state import Credentials as SandboxCredentials

    creds = SandboxCredentials()
    client = CliniceaClient(httpx.Client(transport=httpx.MockTransport(broken),
                                         base_url="http://clinicea.test"),
                            Credentials(creds.api_key, creds.username, creds.password))
    worker = svc.worker(client)
    svc.advance(seconds=5)
    assert worker.run_once() == 1
    second = svc.store.get_booking(req.idempotency_key)
    assert second is not None and second.status == "retrying" and second.attempts == 2
    svc.advance(seconds=10)
    assert worker.run_once() == 1
    final = svc.store.get_booking(req.idempotency_key)
    assert final is not None and final.status == "failed" and final.attempts == 3
    assert "RecursionError" in final.failure_reason
    assert "check the Clinicea calendar" in final.failure_reason
    svc.advance(minutes=10)
    assert worker.run_once() == 0


def test_nested_json_from_clinicea_is_not_a_500_on_the_console_or_the_api(make_rig) -> None:
    r = make_rig()
    console = signed_in(r.app)
    r.sandbox.faults.nested_next(100_000, operation="search")
    page = console.get("/console/caller?mobile=03216315551")
    assert page.status_code == 503 and "Clinicea is not answering" in page.text
    r.sandbox.faults.nested_next(100_000, operation="search")
    api = r.app.test_client().get("/api/caller?mobile=03216315551",
                                  headers=api_headers(r.app))
    assert api.status_code == 503 and api.is_json


# --- 4. characters XML cannot hold, from Clinicea or from callers ----------------------------

HOSTILE = "\x0b\x00\x07\ud800\x1b"


def _hostile(seed: Seed) -> Seed:
    """Bilal, every doctor and every clinic carry control characters and a lone surrogate, as
    a careless import into Clinicea might leave them."""
    return dataclasses.replace(
        seed,
        patients=tuple(dataclasses.replace(p, first_name=f"Bi{HOSTILE}lal",
                                           last_name=f"Ah{HOSTILE}med")
                       if p.id == BILAL.id else p for p in seed.patients),
        clinics=tuple(dataclasses.replace(c, address1=f"7 Khayaban{HOSTILE}-e-Ittehad",
                                          name=f"Harbour{HOSTILE} Clinic")
                      for c in seed.clinics),
        staff=tuple(dataclasses.replace(s, last_name=f"Far{HOSTILE}ooq", id=f"x-{s.id}")
                    for s in seed.staff),  # unknown ids: the name comes from Clinicea's row
        appointments=tuple(dataclasses.replace(a, staff_id=f"x-{a.staff_id}")
                           for a in seed.appointments),
    )


@contextmanager
def seeded_rig(change: Callable[[Seed], Seed], **settings: Any) -> Iterator[Rig4]:
    """The app on a sandbox whose demo seed went through `change`."""
    clock = FixedClock(MONDAY_10AM)
    sandbox = SandboxState(clock, seed=change(demo_seed(MONDAY_10AM.date())))
    cfg = Settings.for_tests(**settings)
    app = app_for(cfg, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", cfg.twilio_auth_token, http=http,
                            to=CLINIC_NUMBER, seed=7)
    try:
        yield Rig4(app, phone)
    finally:
        http.close()
        runtime_of(app).close()


@dataclass
class Rig4:
    app: Flask
    phone: TwilioSimulator


def test_hostile_names_and_addresses_from_clinicea_keep_twiml_and_console_working() -> None:
    with seeded_rig(_hostile) as r:
        call = r.phone.call(from_=BILAL.e164)  # the simulator parses every answer as XML
        assert "Hello Bilal" in call.heard
        assert "7 Khayaban-e-Ittehad" in call.heard
        console = signed_in(r.app)
        page = console.get("/console/caller?mobile=03216315551")
        assert page.status_code == 200
        assert "Bilal Ahmed" in page.text and "\x0b" not in page.text


def test_hostile_characters_from_callers_and_agents_are_removed(make_rig) -> None:
    r = make_rig()
    call = r.call(BILAL.e164)
    # A form body is UTF-8 on the wire: no lone surrogate can come from Twilio.
    call.say("book\x0b\x00\x07 an appointment")
    assert "Dr. Farooq again" in call.last_heard
    api = r.app.test_client().post("/api/bookings", headers=api_headers(r.app), json={
        "doctor_id": DEMO_DOCTOR_KHAN_ID, "start": "2026-11-24T14:00",
        "new_patient": {"first_name": f"Al{HOSTILE}i", "last_name": f"Ha{HOSTILE}ssan",
                        "mobile": "0300 9998877", "consent": True}})
    assert api.status_code == 201
    [created] = [a for a in r.appointments() if a["ID"] not in r.seeded]
    assert created["PatientName"] == "Ali Hassan"
    console = signed_in(r.app)
    page = console.get("/console/caller?mobile=03009998877")
    assert page.status_code == 200 and "Ali Hassan" in page.text


# --- 2. a database another process has locked ----------------------------------------------


class _Locker:
    """Holds a database lock from another connection until told to let go (or 30 s)."""

    def __init__(self, take: Callable[[], Callable[[], None]]) -> None:
        self._take = take
        self._held = threading.Event()
        self._done = threading.Event()
        self.let_go_by_itself = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        release = self._take()
        self._held.set()
        self.let_go_by_itself = not self._done.wait(30)
        release()

    def __enter__(self) -> _Locker:
        self._thread.start()
        assert self._held.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(35)


def _sqlite_write_lock(path: Path) -> Callable[[], Callable[[], None]]:
    def take() -> Callable[[], None]:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")

        def release() -> None:
            conn.execute("ROLLBACK")
            conn.close()
        return release
    return take


def _pg_table_lock(url: str, table: str) -> Callable[[], Callable[[], None]]:
    def take() -> Callable[[], None]:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        conn = engine.connect()
        tx = conn.begin()
        conn.execute(sa.text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))

        def release() -> None:
            tx.rollback()
            conn.close()
            engine.dispose()
        return release
    return take


def _assert_apology_while_locked(call, locker: _Locker) -> None:
    # The caller hears a person offered, said while the lock was still held (the webhook did
    # not wait for it to go away).
    assert "something went wrong on our side" in call.heard
    assert call.dialed
    assert not locker.let_go_by_itself


def test_a_locked_sqlite_database_still_gets_a_spoken_answer(tmp_path: Path, make_rig) -> None:
    db = tmp_path / "ivr.db"
    r = make_rig(database_url=f"sqlite:///{db}", database_lock_seconds=0.2)
    with _Locker(_sqlite_write_lock(db)) as locker:
        call = r.call(BILAL.e164)
        _assert_apology_while_locked(call, locker)
    assert "Hello Bilal" in r.call(BILAL.e164).heard  # and it recovers


def test_a_locked_postgresql_table_still_gets_a_spoken_answer(
        pg_database: str, make_rig,
) -> None:
    url = fresh_schema_url(pg_database)
    r = make_rig(database_url=url, database_lock_seconds=0.2)
    with _Locker(_pg_table_lock(url, "calls")) as locker:
        call = r.call(BILAL.e164)
        _assert_apology_while_locked(call, locker)
    assert "Hello Bilal" in r.call(BILAL.e164).heard


# --- 3. a store that cannot write (a full disk) ----------------------------------------------

_FULL_DISK = r'''
import json, resource, signal, sys
from datetime import datetime

import httpx

from ivr.sandbox.seed import DEMO_PATIENTS
from tests.calls import rig

SATURDAY_EVENING = datetime(2026, 11, 28, 19, 0)  # reception closed: no transfer to hide behind
with rig(now=SATURDAY_EVENING, database_url=f"sqlite:///{sys.argv[1]}") as r:
    http = httpx.Client(transport=httpx.WSGITransport(app=r.app), base_url="http://t")
    before = http.get("/healthz").json()["store"]
    # The disk is full: no file of this process may grow past 1 kB (the database already has).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE,
                       (1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    call = r.call(DEMO_PATIENTS["Bilal Ahmed"].e164)
    health = http.get("/healthz")
    print(json.dumps({"before": before, "heard": call.heard, "health": health.status_code,
                      "store": health.json()["store"], "metrics": http.get("/metrics").text}))
'''


def test_a_full_disk_is_noticed_counted_and_told_truthfully(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(tmp_path / "ivr.db")],
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == "ok"
    # The caller's number was known: what they hear is that nothing could be recorded.
    assert "couldn't record your request" in seen["heard"]
    assert "without your number" not in seen["heard"]
    assert seen["health"] == 503 and seen["store"] == "cannot_write"
    metrics = seen["metrics"]
    assert "ivr_store_writable 0" in metrics
    assert 'ivr_apologies_total{reason="error"} 1' in metrics
    assert 'ivr_apologies_total{reason="callback_not_recorded"} 1' in metrics


def test_the_new_apology_is_in_every_catalogue() -> None:
    from flows.lang import catalogue_for, text

    english = text(catalogue_for("en-GB"), "callback_not_recorded", {})
    urdu = text(catalogue_for("ur-PK"), "callback_not_recorded", {})
    assert "couldn't record" in english and urdu != english and "درخواست" in urdu


# --- 6. patient data in logs through SQL parameters ------------------------------------------

LONG_NAME = "Bilal" + "a" * 145  # 150 characters; calls.patient_first_name is varchar(100)


def _long_first_name(seed: Seed) -> Seed:
    return dataclasses.replace(seed, patients=tuple(
        dataclasses.replace(p, first_name=LONG_NAME) if p.id == BILAL.id else p
        for p in seed.patients))


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    fmt = JsonFormatter()
    return "\n".join(fmt.format(r) + r.getMessage() for r in caplog.records)


def _number_forms(e164: str) -> list[str]:
    national = e164[3:]
    return [e164, e164[1:], national, "0" + national]


def test_a_150_character_name_on_postgresql_works_and_logs_no_number(
        pg_database: str, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = fresh_schema_url(pg_database)
    with seeded_rig(_long_first_name, database_url=url) as r:
        call = r.phone.call(from_=BILAL.e164)
        assert f"Hello {LONG_NAME}" in call.heard
        call.press("1")
        assert "Dr. Farooq again" in call.last_heard  # the next turn works too
        stored = runtime_of(r.app).store.load_call(call.sid)
        assert stored is not None and stored.patient_first_name == LONG_NAME[:100]
    logged = _logged(caplog)
    assert "webhook failed" not in logged
    assert not [n for n in _number_forms(BILAL.e164) if n in logged]


def test_a_database_error_never_logs_its_parameters(pg_database: str) -> None:
    store = Store(fresh_schema_url(pg_database))
    store.migrate()
    try:
        with pytest.raises(sa.exc.DBAPIError) as failed:
            # A key longer than its column is refused (keys are never cut: they must not clash).
            store.enqueue_booking("k" * 300, call_sid=None, payload=BookingPayload(
                "D1", datetime(2026, 3, 3, 10), None, "C1", "S1", phone_e164=BILAL.e164))
        assert BILAL.e164 not in str(failed.value)
        assert "k" * 300 not in str(failed.value)
    finally:
        store.dispose()
