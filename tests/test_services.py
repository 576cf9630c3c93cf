"""CliniceaServices against the real sandbox over HTTP and a real SQLite store.

The `Rig` here (sandbox + client + store + services on fixed clocks) is shared with
tests/test_outbox.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.clinic_services import BookingRequest, ServiceUnavailable
from flows.domain import ClinicSite, Doctor, Service
from flows.slots import overlaps_booked
from ivr.clinicea import CliniceaClient, Credentials
from ivr.clinicea_services import CliniceaServices, profile_from_config
from ivr.clock import FixedClock
from ivr.config import DEMO_CLINIC, ClinicConfig
from ivr.outbox import OutboxWorker
from ivr.sandbox import (
    DEMO_PATIENTS,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    EmbeddedSandbox,
    SandboxState,
)
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_CLINICS,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_DOCTOR_QURESHI_ID,
    DEMO_DOCTOR_SHEIKH_ID,
    DEMO_SERVICE_CONSULTATION_ID,
    DEMO_SERVICES,
    DEMO_STAFF,
)
from ivr.store import Store
from tests.demo import BILAL, HIRA

NOW = datetime(2025, 3, 10, 10, 0)  # a Monday, clinic-local (Asia/Karachi, UTC+5)
NOW_UTC = datetime(2025, 3, 10, 5, 0)
TOMORROW = date(2025, 3, 11)  # the seed's "partly booked" day; opens 09:00
T = datetime(2025, 3, 11, 9, 0)
BOOK_OPS = ("book", "register_and_book")


def seed_config(**changes: Any) -> ClinicConfig:
    """The demo clinic config with the sandbox seed's clinics, doctors and services."""
    return replace(
        DEMO_CLINIC,
        clinics=tuple(
            ClinicSite(c.id, c.name, f"{c.address1}, {c.address2}, {c.city}", c.phone)
            for c in DEMO_CLINICS
        ),
        doctors=tuple(Doctor(s.id, s.name, s.clinic_id) for s in DEMO_STAFF),
        services=tuple(Service(s.id, s.name, s.minutes) for s in DEMO_SERVICES),
        default_service_id=DEMO_SERVICE_CONSULTATION_ID,
        booking_max_attempts=3,
        **changes,
    )


class Ticker:
    """A monotonic clock tests move by hand (cache TTLs)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    """The sandbox Clinicea, a client, a store on a temp SQLite file and the services."""

    clock: FixedClock
    utc: FixedClock
    state: SandboxState
    url: str
    store: Store
    config: ClinicConfig
    client: CliniceaClient
    ticker: Ticker
    services: CliniceaServices
    clients: list[CliniceaClient] = field(default_factory=list)

    def new_client(self, *, timeout: float = 5.0, budget: float = 5.0) -> CliniceaClient:
        """Another client on the sandbox (e.g. with a short timeout)."""
        client = CliniceaClient(
            httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=2.0)),
            Credentials(SANDBOX_API_KEY, SANDBOX_USERNAME, SANDBOX_PASSWORD),
            budget=budget,
        )
        self.clients.append(client)
        return client

    def new_services(self, client: CliniceaClient | None = None, **kw: Any) -> CliniceaServices:
        """Services on the same store and sandbox."""
        kw.setdefault("budget_seconds", None)
        return CliniceaServices(
            client or self.client,
            self.store,
            self.clock,
            self.config,
            monotonic=self.ticker,
            **kw,
        )

    def worker(self, client: CliniceaClient | None = None, **kw: Any) -> OutboxWorker:
        """An outbox worker on the same store and sandbox."""
        kw.setdefault("worker_id", "worker-1")
        return OutboxWorker(client or self.client, self.store, self.clock, self.config, **kw)

    def advance(self, **delta: float) -> None:
        """Move clinic-local and UTC time together."""
        self.clock.advance(**delta)
        self.utc.advance(**delta)

    def active_at(self, start: datetime, doctor_id: str) -> list[dict[str, Any]]:
        """Active sandbox calendar rows of that doctor starting at `start`."""
        return [
            row
            for row in self.state.calendar(start.date())
            if row["StartDateTime"] == start.isoformat(timespec="seconds")
            and row["StaffID"] == doctor_id
            and row["AppointmentStatus"] not in ("Cancelled", "No Show")
        ]

    def booking_posts(self) -> int:
        """Booking POSTs the sandbox answered (any status)."""
        return sum(1 for r in self.state.requests() if r.operation in BOOK_OPS)

    def wait_for_posts(self, n: int, timeout: float = 10.0) -> None:
        """Wait until the sandbox has logged `n` booking POSTs (hung answers log late)."""
        deadline = time.monotonic() + timeout
        while self.booking_posts() < n and time.monotonic() < deadline:
            time.sleep(0.05)


_SHARED: dict[str, Any] = {}


def _shared_sandbox(clock: FixedClock) -> tuple[SandboxState, str]:
    """One sandbox server per test process (starting and stopping one costs 0.5 s), reset to
    the seed on `clock` for every rig."""
    if "state" not in _SHARED:
        state = SandboxState(clock)
        _SHARED["state"] = state
        _SHARED["url"] = EmbeddedSandbox(state).start()  # daemon thread, ends with the process
    state = _SHARED["state"]
    state.clock = clock
    state.reset()
    return state, _SHARED["url"]


def open_services(tmp_path: Path) -> Iterator[Rig]:
    """Build a Rig; yields it and tears everything down."""
    clock = FixedClock(NOW)
    utc = FixedClock(NOW_UTC)
    state, url = _shared_sandbox(clock)
    store = Store(f"sqlite:///{tmp_path / 'ivr.db'}", now=utc.now)
    store.migrate()
    config = seed_config()
    ticker = Ticker()
    rig = Rig(clock, utc, state, url, store, config, None, ticker, None)  # type: ignore[arg-type]
    rig.client = rig.new_client()
    rig.services = rig.new_services()
    try:
        yield rig
    finally:
        for client in rig.clients:
            client.close()
        store.dispose()
        state.faults.clear()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield from open_services(tmp_path)


def request(key: str = "CA1:book", **kw: Any) -> BookingRequest:
    """A confirmed booking for Bilal with Dr. Farooq tomorrow at 09:40 (free in the seed)."""
    values: dict[str, Any] = {
        "idempotency_key": key,
        "doctor_id": DEMO_DOCTOR_FAROOQ_ID,
        "start": T + timedelta(minutes=40),
        "patient_id": BILAL.id,
        "call_sid": "CA1",
        "notes": "cough",
    }
    values.update(kw)
    return BookingRequest(**values)


# --- profile, patients, last visit --------------------------------------------------------------


def test_profile_from_config_mirrors_the_clinic() -> None:
    cfg = seed_config()
    profile = profile_from_config(cfg)
    assert profile.name == cfg.name
    assert profile.doctor(DEMO_DOCTOR_KHAN_ID).name == "Dr. Ayesha Khan"
    assert profile.site(DEMO_CLINIC_CLIFTON_ID).name == "Harbour Family Clinic Clifton"
    assert profile.region == "PK" and profile.slot_minutes == 20
    assert profile.booking_days_ahead == cfg.booking_days_ahead
    assert profile.default_service_id == DEMO_SERVICE_CONSULTATION_ID


def test_find_family_number_gives_three_patients(rig: Rig) -> None:
    refs = rig.services.find_patients("+923001234567")
    assert sorted(r.first_name for r in refs) == ["Kamran", "Sana", "Zoya"]
    assert {r.last_name for r in refs} == {"Ahmed"}
    assert all(r.id for r in refs)


def test_find_patients_unknown_and_unusable_numbers(rig: Rig) -> None:
    assert rig.services.find_patients("+923009999999") == []
    assert rig.services.find_patients("anonymous") == []


def test_normalise_phone(rig: Rig) -> None:
    assert rig.services.normalise_phone("03216315551#") == "+923216315551"
    assert rig.services.normalise_phone("12") is None


def test_find_patients_when_clinicea_is_down(rig: Rig) -> None:
    rig.state.faults.fail_next(500, times=None, operation="search")
    with pytest.raises(ServiceUnavailable):
        rig.services.find_patients(BILAL.e164)


def test_last_visit_skips_cancelled_row(rig: Rig) -> None:
    visit = rig.services.last_visit(BILAL.id)
    assert visit is not None
    assert visit.start.date() == (NOW - timedelta(days=14)).date()
    assert visit.doctor_id == DEMO_DOCTOR_FAROOQ_ID
    assert visit.doctor_name == "Dr. Nadia Farooq"
    assert visit.clinic is not None and visit.clinic.name == "Harbour Family Clinic Clifton"
    assert "Clifton" in visit.clinic.address
    assert visit.service_name is None  # read_last_visit_service is off


def test_last_visit_skips_no_show_row(rig: Rig) -> None:
    zoya = DEMO_PATIENTS["Zoya Ahmed"]
    visit = rig.services.last_visit(zoya.id)
    assert visit is not None and visit.doctor_id == DEMO_DOCTOR_KHAN_ID
    assert visit.start.date() == (NOW - timedelta(days=45)).date()


def test_last_visit_none_and_service_when_enabled(rig: Rig) -> None:
    assert rig.services.last_visit(HIRA.id) is None
    assert rig.services.last_visit(DEMO_PATIENTS["Mariam Hussain"].id) is None
    rig.config = seed_config(read_last_visit_service=True)
    services = rig.new_services()
    visit = services.last_visit(DEMO_PATIENTS["Ayesha Siddiqui"].id)
    assert visit is not None and visit.service_name == "Consultation"
    assert visit.doctor_id == DEMO_DOCTOR_QURESHI_ID


def test_last_visit_falls_back_to_config_clinic(rig: Rig) -> None:
    from ivr.clinicea.models import Visit

    bare = Visit(
        id="v",
        start=NOW - timedelta(days=3),
        end=None,
        status="Check Out",
        doctor_id=DEMO_DOCTOR_SHEIKH_ID,
        doctor_name=None,
        service_id=None,
        service_name=None,
        clinic=None,
    )
    visit = rig.services._last_visit(bare)
    assert visit.doctor_name == "Dr. Omar Sheikh"
    assert visit.clinic is not None and visit.clinic.id == DEMO_CLINIC_CLIFTON_ID
    assert visit.clinic.address


# --- free slots -----------------------------------------------------------------------------------


def test_free_slots_skip_seed_bookings(rig: Rig) -> None:
    slots = rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW, limit=5)
    # Farooq: 09:00 and 09:20 taken, 09:40 cancelled (free), 10:00 taken.
    assert [s.start.strftime("%H:%M") for s in slots] == [
        "09:40",
        "10:20",
        "10:40",
        "11:00",
        "11:20",
    ]
    busy = [
        (datetime.fromisoformat(r["StartDateTime"]), datetime.fromisoformat(r["EndDateTime"]))
        for r in rig.state.calendar(TOMORROW)
        if r["StaffID"] == DEMO_DOCTOR_FAROOQ_ID and r["AppointmentStatus"] != "Cancelled"
    ]
    assert busy
    for slot in slots:
        assert slot.doctor_id == DEMO_DOCTOR_FAROOQ_ID and slot.minutes == 20
        assert not overlaps_booked(slot.start, slot.minutes, busy)
    khan = rig.services.free_slots(DEMO_DOCTOR_KHAN_ID, day=TOMORROW, limit=3)
    assert [s.start.strftime("%H:%M") for s in khan] == ["09:20", "10:00", "10:40"]


def test_free_slots_from_now_are_in_the_future(rig: Rig) -> None:
    slots = rig.services.free_slots(DEMO_DOCTOR_SHEIKH_ID)
    assert [s.start for s in slots] == [
        datetime(2025, 3, 10, 10, 20),
        datetime(2025, 3, 10, 10, 40),
        datetime(2025, 3, 10, 11, 0),
    ]
    after = rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, after=T, limit=2)
    assert [s.start.strftime("%H:%M") for s in after] == ["09:40", "10:20"]
    assert rig.services.free_slots("no-such-doctor") == []


def test_free_slots_are_cached_per_day(rig: Rig) -> None:
    counters = rig.client.counters
    rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)
    fetched = counters["appointments_by_date"]
    assert fetched >= 1
    rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)
    rig.services.free_slots(DEMO_DOCTOR_KHAN_ID, day=TOMORROW)  # same day, another doctor
    assert counters["appointments_by_date"] == fetched
    rig.ticker.t += 120  # past the TTL
    rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)
    assert counters["appointments_by_date"] == fetched + 1


def test_free_slots_when_clinicea_is_down(rig: Rig) -> None:
    rig.state.faults.fail_next(500, times=None, operation="appointments_by_date")
    with pytest.raises(ServiceUnavailable):
        rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)


# --- booking ----------------------------------------------------------------------------------


def test_book_known_patient(rig: Rig) -> None:
    req = request()
    rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)  # fills the cache
    outcome = rig.services.book(req)
    assert outcome.status == "booked" and outcome.appointment_id
    assert outcome.patient_id == BILAL.id
    rows = rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)
    assert len(rows) == 1 and rows[0]["ID"] == outcome.appointment_id
    assert rows[0]["PatientID"] == BILAL.id
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked"
    assert record.appointment_id == outcome.appointment_id
    assert record.payload is not None and record.payload.doctor_id == DEMO_DOCTOR_FAROOQ_ID
    # the booking dropped the cached day: the slot is no longer offered
    after = rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW)
    assert req.start not in [s.start for s in after]


def test_same_booking_twice_books_once(rig: Rig) -> None:
    first = rig.services.book(request())
    second = rig.services.book(request())
    other_process = rig.new_services().book(request())
    assert first.status == second.status == other_process.status == "booked"
    assert first.appointment_id == second.appointment_id == other_process.appointment_id
    assert len(rig.active_at(request().start, DEMO_DOCTOR_FAROOQ_ID)) == 1
    assert rig.booking_posts() == 1


def test_book_new_patient(rig: Rig) -> None:
    req = request(
        "CA2:book",
        patient_id=None,
        first_name="Ali",
        last_name="Hassan",
        phone_e164="+923215559999",
        call_sid="CA2",
    )
    outcome = rig.services.book(req)
    assert outcome.status == "booked" and outcome.patient_id
    rows = rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)
    assert len(rows) == 1 and rows[0]["PatientName"] == "Ali Hassan"
    assert [r.first_name for r in rig.services.find_patients("+923215559999")] == ["Ali"]


def test_booking_503_is_recorded_then_worker_books_once(rig: Rig) -> None:
    rig.state.faults.fail_next(503, operation="book")
    req = request()
    outcome = rig.services.book(req)
    assert outcome.status == "recorded"
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "retrying" and "503" in record.last_error
    assert rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID) == []
    worker = rig.worker()
    assert worker.run_once() == 0  # not due yet (backoff)
    rig.advance(seconds=10)
    assert worker.run_once() == 1
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "booked" and record.attempts == 2
    assert len(rig.active_at(req.start, DEMO_DOCTOR_FAROOQ_ID)) == 1
    assert rig.services.book(req).status == "booked"  # a retried webhook hears "booked"
    assert worker.run_once() == 0


@pytest.mark.parametrize("calendar_age", ["cached", "expired"])
def test_slot_taken_between_offer_and_booking(rig: Rig, calendar_age: str) -> None:
    offered = rig.services.free_slots(DEMO_DOCTOR_FAROOQ_ID, day=TOMORROW, limit=1)[0]
    if calendar_age == "expired":
        rig.ticker.t += 60  # past the 45 s calendar cache: the booking reads the day afresh
    # someone else books that time at the desk
    rig.state.book(
        HIRA.id,
        offered.start,
        DEMO_DOCTOR_FAROOQ_ID,
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_SERVICE_CONSULTATION_ID,
    )
    req = request(start=offered.start)
    outcome = rig.services.book(req)
    assert outcome.status == "slot_taken"
    record = rig.store.get_booking(req.idempotency_key)
    assert record is not None and record.status == "failed"
    assert record.failure_reason.startswith("slot taken")
    # A fresh calendar catches it before sending; with the calendar the times were just
    # offered from, Clinicea refuses the POST and that refusal is the same "slot taken".
    assert rig.booking_posts() == (0 if calendar_age == "expired" else 1)
    assert rig.services.book(req).status == "slot_taken"  # same answer on a retried webhook


def test_clinicea_says_slot_not_available(rig: Rig) -> None:
    rig.state.faults.fail_next(400, operation="book", body="The selected slot is not available")
    outcome = rig.services.book(request())
    assert outcome.status == "slot_taken"
    record = rig.store.get_booking(request().idempotency_key)
    assert record is not None and record.status == "failed"
    assert "no longer free" in record.failure_reason


def test_other_rejection_is_failed_for_agents(rig: Rig) -> None:
    rig.state.faults.fail_next(400, operation="book", body="Invalid serviceID")
    outcome = rig.services.book(request())
    assert outcome.status == "recorded"
    record = rig.store.get_booking(request().idempotency_key)
    assert record is not None and record.status == "failed"
    assert "Invalid serviceID" in record.failure_reason


def test_book_past_time_is_slot_taken(rig: Rig) -> None:
    outcome = rig.services.book(request(start=NOW - timedelta(minutes=20)))
    assert outcome.status == "slot_taken"


def test_booking_budget_answers_recorded_and_finishes_alone(rig: Rig) -> None:
    services = rig.new_services(budget_seconds=0.2)
    rig.state.faults.hang_next(1.0, operation="book")
    started = time.monotonic()
    outcome = services.book(request())
    assert outcome.status == "recorded"
    assert time.monotonic() - started < 0.9
    deadline = time.monotonic() + 10
    record = rig.store.get_booking(request().idempotency_key)
    while record is not None and record.status != "booked" and time.monotonic() < deadline:
        time.sleep(0.05)
        record = rig.store.get_booking(request().idempotency_key)
    assert record is not None and record.status == "booked"
    assert len(rig.active_at(request().start, DEMO_DOCTOR_FAROOQ_ID)) == 1


def test_request_callback_stores_masked_phone(rig: Rig) -> None:
    rig.services.request_callback("CA9", "+923216315551", "outside agent hours")
    (callback,) = rig.store.callbacks()
    assert callback.phone_e164 == "+923216315551"
    assert callback.phone_masked == "+92*******551"
    assert callback.reason == "outside agent hours" and callback.call_sid == "CA9"
    rig.services.request_callback("CA10", None, "withheld number")
    assert len(rig.store.callbacks()) == 2


def test_logs_never_carry_phone_numbers_or_names(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    rig.services.find_patients(BILAL.e164)
    rig.services.last_visit(BILAL.id)
    rig.state.faults.fail_next(503, operation="register_and_book")
    rig.services.book(
        request(
            "CA3:book",
            patient_id=None,
            first_name="Ali",
            last_name="Hassan",
            phone_e164="+923215559999",
        )
    )
    rig.services.request_callback("CA3", "+923215559999", "later")
    # Our loggers only: httpx logs request URLs at INFO; the app's logging setup quiets it.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ivr"))
    assert "booking CA3:book" in text
    for secret in ("3216315551", "3215559999", "Hassan", "Bilal"):
        assert secret not in text
