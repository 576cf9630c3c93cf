"""The bookings outbox (ivr.outbox) against the real sandbox over HTTP and a SQLite store."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from ivr.clinicea import CliniceaClient, Credentials
from ivr.clinicea.models import Appointment
from ivr.outbox import (
    OUTCOME_UNKNOWN,
    Backoff,
    BookingPayload,
    find_booked,
    says_slot_taken,
)
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_SERVICE_CONSULTATION_ID,
)
from tests.test_services import HIRA, NOW, Rig, T, open_services, request


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from open_services(tmp_path)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `predicate` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


# --- pure helpers -----------------------------------------------------------------------------


def test_backoff_doubles_up_to_five_minutes() -> None:
    backoff = Backoff()
    assert [backoff.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff.delay(7).total_seconds() == 300
    assert backoff.delay(1000).total_seconds() == 300


def test_backoff_with_jitter_spreads_retries_within_half_the_delay() -> None:
    """Bookings that one outage failed together must not all come back at one instant."""
    rng = random.Random(1)
    delays = [Backoff().delay(3, rng).total_seconds() for _ in range(200)]
    assert all(10 <= d <= 20 for d in delays)
    assert len({round(d, 3) for d in delays}) > 150  # spread, not lockstep
    assert Backoff(jitter=0).delay(3, rng).total_seconds() == 20


def test_payload_round_trips() -> None:
    payload = BookingPayload(
        DEMO_DOCTOR_FAROOQ_ID,
        T,
        None,
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_SERVICE_CONSULTATION_ID,
        "Ali",
        "Hassan",
        "+923215559999",
        "cough",
        "CA1",
    )
    assert BookingPayload.from_json(payload.to_json()) == payload


@pytest.mark.parametrize(
    ("message", "taken"),
    [
        ("The selected slot is not available", True),
        ("Slot already booked", True),
        ("Invalid serviceID: x", False),
        ("", False),
    ],
)
def test_says_slot_taken(message: str, taken: bool) -> None:
    assert says_slot_taken(message) is taken


def test_find_booked_matches_new_patient_by_mobile_and_name() -> None:
    payload = BookingPayload(
        DEMO_DOCTOR_FAROOQ_ID,
        T,
        None,
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_SERVICE_CONSULTATION_ID,
        "Ali",
        "Hassan",
        "+923215559999",
    )

    def row(
        name: str,
        mobile: str,
        doctor: str | None = DEMO_DOCTOR_FAROOQ_ID,
        status: str = "Scheduled",
    ) -> Appointment:
        return Appointment(
            "a-" + name,
            T,
            T + timedelta(minutes=20),
            status,
            doctor,
            "Dr. Nadia Farooq",
            "p",
            name,
            mobile,
        )

    assert (
        find_booked([row("Ali Hassan", "0321 5559999")], payload, doctor_name=None, region="PK")
        is not None
    )
    # a family member on the same number is not this booking
    assert (
        find_booked([row("Sana Hassan", "03215559999")], payload, doctor_name=None, region="PK")
        is None
    )
    assert (
        find_booked(
            [row("Ali Hassan", "03215559999", status="Cancelled")],
            payload,
            doctor_name=None,
            region="PK",
        )
        is None
    )
    # a row without StaffID is matched by the doctor's name
    assert (
        find_booked(
            [row("Ali Hassan", "+923215559999", doctor=None)],
            payload,
            doctor_name="Dr. Nadia Farooq",
            region="PK",
        )
        is not None
    )


# --- against the sandbox ------------------------------------------------------------------------


def test_lost_response_is_found_by_lookup_not_booked_twice(rig: Rig) -> None:
    short = rig.new_client(timeout=0.3, budget=0.4)
    services = rig.new_services(short)
    rig.state.faults.store_then_hang(1.5, "book")
    req = request()
    outcome = services.book(req)
    assert outcome.status == "recorded"
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "retrying"
    assert record.last_error == OUTCOME_UNKNOWN
    rig.wait_for_posts(1)  # the hung answer is logged once the sandbox lets it go
    stored = rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)
    assert len(stored) == 1  # Clinicea did store it

    rig.advance(seconds=10)
    worker = rig.worker()
    assert worker.run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked"
    assert record.appointment_id == stored[0]["ID"]
    assert len(rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)) == 1
    assert rig.booking_posts() == 1  # looked up, not sent again
    assert services.book(req).status == "booked"


def test_lost_response_for_new_patient_is_found_by_mobile_and_name(rig: Rig) -> None:
    short = rig.new_client(timeout=0.3, budget=0.4)
    services = rig.new_services(short)
    rig.state.faults.store_then_hang(1.5, "register_and_book")
    req = request(
        "CA2:book",
        patient_id=None,
        first_name="Ali",
        last_name="Hassan",
        phone_e164="+923215559999",
        call_sid="CA2",
    )
    assert services.book(req).status == "recorded"
    rig.wait_for_posts(1)
    rig.advance(seconds=10)
    assert rig.worker().run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked" and record.patient_id
    assert len(rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)) == 1
    assert rig.booking_posts() == 1
    assert len(rig.services.find_patients("+923215559999")) == 1


def test_worker_finds_slot_taken_while_retrying(rig: Rig) -> None:
    rig.state.faults.fail_next(503, operation="book")
    req = request()
    assert rig.services.book(req).status == "recorded"
    rig.state.book(
        HIRA.id,
        req.start,
        DEMO_DOCTOR_FAROOQ_ID,
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_SERVICE_CONSULTATION_ID,
    )
    rig.advance(seconds=10)
    assert rig.worker().run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "failed"
    assert record.failure_reason == "slot taken: 2025-03-11 09:40 is no longer free"
    assert rig.booking_posts() == 1  # only the 503'd one


def test_permanent_failure_after_max_attempts(rig: Rig) -> None:
    rig.state.faults.fail_next(503, times=None, operation="book")
    req = request()
    assert rig.services.book(req).status == "recorded"
    worker = rig.worker()  # config.booking_max_attempts is 3
    first = rig.store.get_booking(req.idempotency_key)
    # Jittered: within [half, all] of the nominal 5 s.
    assert first is not None and first.next_attempt_at is not None
    assert timedelta(seconds=2.5) <= first.next_attempt_at - rig.utc.now() <= timedelta(seconds=5)

    rig.advance(seconds=5)
    assert worker.run_once() == 1
    second = rig.store.get_booking(req.idempotency_key)
    assert second is not None and second.status == "retrying" and second.attempts == 2
    assert second.next_attempt_at is not None
    assert timedelta(seconds=5) <= second.next_attempt_at - rig.utc.now() <= timedelta(seconds=10)

    rig.advance(seconds=10)
    assert worker.run_once() == 1
    final = rig.store.get_booking(req.idempotency_key)
    assert final is not None and final.status == "failed" and final.attempts == 3
    assert "503" in final.failure_reason and "3 attempts" in final.failure_reason
    rig.advance(minutes=10)
    assert worker.run_once() == 0
    assert rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID) == []


def test_worker_picks_up_a_row_whose_process_died_before_sending(rig: Rig) -> None:
    req = request()
    rig.store.enqueue_booking(
        req.idempotency_key, call_sid="CA1", payload=rig.services._payload(req)
    )
    assert (
        rig.store.claim_booking(req.idempotency_key, worker="web-dead", lease=timedelta(seconds=30))
        is not None
    )
    worker = rig.worker()
    assert worker.run_once() == 0  # still leased to the dead process
    rig.advance(seconds=31)
    assert worker.run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked" and record.attempts == 2
    assert rig.booking_posts() == 1


def test_worker_does_not_resend_what_a_dead_process_sent(rig: Rig) -> None:
    req = request()
    payload = rig.services._payload(req)
    rig.store.enqueue_booking(req.idempotency_key, call_sid="CA1", payload=payload)
    rig.store.claim_booking(req.idempotency_key, worker="web-dead", lease=timedelta(seconds=30))
    # it sent the POST, then died before recording the answer
    from ivr.clinicea import AppointmentRequest

    sent = rig.client.book_for_patient(
        AppointmentRequest(
            payload.patient_id,
            payload.start,
            payload.doctor_id,
            payload.clinic_id,
            payload.service_id,
            payload.notes,
        )
    )
    rig.advance(seconds=31)
    assert rig.worker().run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked"
    assert record.appointment_id == sent.appointment_id
    assert rig.booking_posts() == 1


def test_refused_credentials_retry_and_log_error(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    bad = CliniceaClient(
        httpx.Client(base_url=rig.url, timeout=2.0),
        Credentials("wrong", "wrong", "wrong"),
    )
    rig.clients.append(bad)
    caplog.set_level("INFO", logger="ivr")
    req = request()
    assert rig.new_services(bad).book(req).status == "recorded"
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "retrying"
    assert record.last_error.startswith("credentials refused")
    assert any(r.levelname == "ERROR" and r.name == "ivr.outbox" for r in caplog.records)
    rig.advance(seconds=10)
    assert rig.worker().run_once() == 1  # the worker's client has good credentials
    assert rig.store.get_booking(req.idempotency_key).status == "booked"


def test_unreadable_payload_fails_for_agents(rig: Rig) -> None:
    rig.store.enqueue_booking("junk", call_sid=None, payload=rig.services._payload(request()))
    with rig.store.engine.begin() as conn:  # a row written by other code, or edited by hand
        conn.execute(sa.text("UPDATE bookings SET payload = '{\"nothing\": \"here\"}'"))
    assert rig.worker().run_once() == 1
    record = rig.store.get_booking("junk")
    assert record is not None and record.status == "failed"
    assert record.failure_reason == "unreadable booking payload"


def test_purge_keeps_bookings(rig: Rig) -> None:
    rig.store.add_event("CA1", "heard", "greeting", "Welcome")
    assert rig.services.book(request()).status == "booked"
    rig.store.enqueue_booking(
        "CA7:book", call_sid="CA7", payload=rig.services._payload(request("CA7:book"))
    )
    rig.advance(days=31)
    rig.store.add_event("CA2", "heard", "greeting", "Welcome")
    assert rig.worker().purge() == 1
    assert [e.call_sid for e in rig.store.events("CA2")] == ["CA2"]
    assert rig.store.events("CA1") == []
    assert rig.store.get_booking("CA1:book").status == "booked"
    assert rig.store.get_booking("CA7:book") is not None


def test_run_forever_processes_and_purges_until_stopped(rig: Rig) -> None:
    rig.store.add_event("CA1", "heard", "greeting", "Welcome")
    rig.utc.advance(days=40)
    req = request()
    rig.store.enqueue_booking(
        req.idempotency_key, call_sid="CA1", payload=rig.services._payload(req)
    )
    stop = threading.Event()
    worker = rig.worker()
    thread = threading.Thread(target=worker.run_forever, args=(stop, 0.05), daemon=True)
    thread.start()
    try:
        wait_for(lambda: rig.store.get_booking(req.idempotency_key).status == "booked")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert rig.store.get_booking(req.idempotency_key).status == "booked"
    assert rig.store.events("CA1") == []
    assert len(rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)) == 1


def test_many_workers_book_once(rig: Rig) -> None:
    req = request()
    rig.store.enqueue_booking(
        req.idempotency_key, call_sid="CA1", payload=rig.services._payload(req)
    )
    workers = [rig.worker(worker_id=f"w{i}") for i in range(4)]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda w=w: counts.append(w.run_once())) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sum(counts) == 1
    assert rig.booking_posts() == 1
    assert len(rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)) == 1


def test_past_slot_is_never_sent(rig: Rig) -> None:
    req = request(start=NOW + timedelta(minutes=20))
    rig.store.enqueue_booking(
        req.idempotency_key, call_sid="CA1", payload=rig.services._payload(req)
    )
    rig.advance(hours=2)
    assert rig.worker().run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "failed"
    assert "passed" in record.failure_reason
    assert rig.booking_posts() == 0

