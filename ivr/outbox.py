"""The bookings outbox: send a stored booking to Clinicea once, retry it, never lose it.

A confirmed booking is written to the store (`enqueue_booking`) BEFORE Clinicea is called.
Whoever claims the row (the web request that took the call, or the `ivr worker` loop) calls
`attempt_booking`, the one function that sends a booking and records what happened:

- booked: Clinicea gave an appointment ID (or a lookup found the appointment) -> `mark_booked`;
- slot taken: another appointment holds that doctor's time, Clinicea said the slot is not
  available, or the time has passed -> `mark_failed("slot taken: ...")`; agents call back;
- Clinicea unavailable, credentials refused, or the outcome of a sent POST unknown ->
  `mark_retry` with exponential backoff; after `max_attempts` -> `mark_failed(last error)`;
- any other rejection -> `mark_failed("rejected by Clinicea: ...")`.

Before sending a booking that was claimed before (a previous attempt may have reached
Clinicea, e.g. a POST whose answer was lost), the day's calendar is searched for it: if it is
there, the row is marked booked with that appointment's ID and nothing is sent again.

Logs name the idempotency key, the doctor ID and the time; never a phone number or a name.
"""

from __future__ import annotations

import logging
import re
import threading
import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from flows.domain import Doctor
from flows.slots import overlaps_booked
from ivr.clinicea.errors import (
    CliniceaAuthError,
    CliniceaError,
    CliniceaOutcomeUnknown,
    CliniceaRejected,
)
from ivr.clinicea.models import Appointment, AppointmentRequest, BookingResult, NewPatientRequest
from ivr.phone import parse_phone

if TYPE_CHECKING:
    from ivr.clinicea import CliniceaClient
    from ivr.clock import Clock
    from ivr.config import ClinicConfig
    from ivr.store import BookingRecord, Store
    from ivr.texts import TextSender

log = logging.getLogger(__name__)

#: `last_error` of a row whose POST was sent and got no answer (look it up before resending).
OUTCOME_UNKNOWN = "outcome unknown"
#: Prefix of `failure_reason` when the time is not free any more.
SLOT_TAKEN = "slot taken"
#: Prefix of `failure_reason` when Clinicea refused the booking as invalid (its text follows).
REJECTED = "rejected by Clinicea: "

_SLOT_TAKEN_WORDS = re.compile(
    r"not available|no longer available|unavailable|already (?:booked|taken)|slot.*taken|"
    r"overlap|clash|conflict",
    re.IGNORECASE,
)
_TITLES = {"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss"}


@dataclass(frozen=True)
class BookingPayload:
    """What the outbox row carries: everything needed to send the booking later.

    `patient_id` None means register a new patient (`first_name`, `last_name`, `phone_e164`).
    Stored as JSON in the store (`to_json` / `from_json`); `start` is naive clinic-local.
    """

    doctor_id: str
    start: datetime
    patient_id: str | None
    clinic_id: str
    service_id: str
    first_name: str = ""
    last_name: str = ""
    phone_e164: str | None = None
    notes: str = ""
    call_sid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the store's `payload`)."""
        return {
            "doctor_id": self.doctor_id,
            "start": self.start.isoformat(timespec="seconds"),
            "patient_id": self.patient_id,
            "clinic_id": self.clinic_id,
            "service_id": self.service_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone_e164": self.phone_e164,
            "notes": self.notes,
            "call_sid": self.call_sid,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BookingPayload:
        """Read a stored payload; raises KeyError/ValueError/TypeError when it is unusable."""
        return cls(
            doctor_id=str(data["doctor_id"]),
            start=datetime.fromisoformat(str(data["start"])),
            patient_id=data.get("patient_id") or None,
            clinic_id=str(data.get("clinic_id") or ""),
            service_id=str(data.get("service_id") or ""),
            first_name=str(data.get("first_name") or ""),
            last_name=str(data.get("last_name") or ""),
            phone_e164=data.get("phone_e164") or None,
            notes=str(data.get("notes") or ""),
            call_sid=data.get("call_sid") or None,
        )


@dataclass(frozen=True)
class Backoff:
    """Retry delays: `base` seconds, doubling per attempt, capped at `maximum`."""

    base: float = 5.0
    maximum: float = 300.0

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 -> base, 2 -> 2*base, ...)."""
        exponent = max(attempts - 1, 0)
        seconds = self.maximum if exponent >= 32 else min(self.base * 2**exponent, self.maximum)
        return timedelta(seconds=seconds)


DEFAULT_BACKOFF = Backoff()

AttemptStatus = Literal["booked", "slot_taken", "retrying", "failed"]


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did to the outbox row (the row was updated to match)."""

    status: AttemptStatus
    appointment_id: str | None = None
    patient_id: str | None = None
    reason: str | None = None


# --- matching calendar rows ----------------------------------------------------------------


def name_key(name: str | None) -> str:
    """A person's name for comparison: lower case, no punctuation, no titles."""
    words = re.sub(r"[^\w\s]", " ", name or "").casefold().split()
    return " ".join(w for w in words if w not in _TITLES)


def doctor_matches(appointment: Appointment, doctor_id: str, doctor_name: str | None) -> bool:
    """Whether a calendar row belongs to the doctor: by StaffID when the row has one, else name."""
    if appointment.doctor_id:
        return appointment.doctor_id.casefold() == doctor_id.casefold()
    return bool(doctor_name) and name_key(appointment.doctor_name) == name_key(doctor_name)


def doctor_intervals(
    appointments: Iterable[Appointment],
    doctor_id: str,
    doctor_name: str | None,
    slot_minutes: int,
) -> list[tuple[datetime, datetime]]:
    """The doctor's active appointments as (start, end); a row without an end lasts one slot."""
    return [
        (a.start, a.end if a.end and a.end > a.start else a.start + timedelta(minutes=slot_minutes))
        for a in appointments
        if a.is_active and doctor_matches(a, doctor_id, doctor_name)
    ]


def _digits(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


def find_booked(
    appointments: Iterable[Appointment],
    payload: BookingPayload,
    *,
    doctor_name: str | None,
    region: str,
) -> Appointment | None:
    """The active appointment that is this booking, if Clinicea already has it.

    Same doctor, same start, and the same patient: by patient ID for a known patient; for a
    new patient by mobile (national number) and name, each compared when the row carries it.
    """
    phone = parse_phone(payload.phone_e164, region) if payload.phone_e164 else None
    wanted_name = name_key(f"{payload.first_name} {payload.last_name}")
    for appt in appointments:
        if not appt.is_active or appt.start != payload.start:
            continue
        if not doctor_matches(appt, payload.doctor_id, doctor_name):
            continue
        if payload.patient_id:
            if appt.patient_id and appt.patient_id.casefold() == payload.patient_id.casefold():
                return appt
            continue
        checks: list[bool] = []
        if appt.patient_mobile and phone is not None:
            checks.append(_digits(appt.patient_mobile).endswith(phone.national))
        if appt.patient_name and wanted_name:
            checks.append(name_key(appt.patient_name) == wanted_name)
        if checks and all(checks):
            return appt
    return None


def says_slot_taken(message: str | None) -> bool:
    """Whether a Clinicea rejection message means the time is not free."""
    return bool(message) and bool(_SLOT_TAKEN_WORDS.search(message or ""))


def needs_lookup(record: BookingRecord) -> bool:
    """Whether an earlier attempt may have reached Clinicea (so look before sending again)."""
    last_error = (record.last_error or "").casefold()
    return record.attempts > 1 or last_error.startswith(OUTCOME_UNKNOWN)


def _when(start: datetime) -> str:
    return start.strftime("%Y-%m-%d %H:%M")


# --- the one function that sends a booking -------------------------------------------------


def attempt_booking(
    record: BookingRecord,
    *,
    client: CliniceaClient,
    store: Store,
    config: ClinicConfig,
    now: datetime,
    backoff: Backoff = DEFAULT_BACKOFF,
    max_attempts: int | None = None,
    calendar: Callable[[date], list[Appointment]] | None = None,
) -> AttemptResult:
    """Send one claimed outbox row to Clinicea and record the outcome in the store.

    `record` must have been claimed by the caller (`claim_booking` / `claim_due_bookings`), so
    nobody else is sending it. `now` is naive clinic-local (is the slot in the past?); the next
    retry is stamped from the store's own UTC clock. Returns what happened; the row is already
    updated accordingly.

    `calendar` reads the day's appointments for the check that the time is still free; the
    call's services pass their briefly cached copy (the one the slots were just offered from),
    which saves a request per booking. Clinicea refuses a taken time itself, so the check is a
    second line. Whenever an earlier attempt may have reached Clinicea the calendar is read
    fresh, because then it must show our own appointment.
    """
    key = record.idempotency_key
    limit = max_attempts if max_attempts is not None else config.booking_max_attempts
    try:
        payload = BookingPayload.from_json(record.payload)
    except (KeyError, TypeError, ValueError):
        log.error("booking %s: unreadable payload, marked failed", key)
        return _fail(store, key, "failed", "unreadable booking payload")

    doctor = _doctor(config, payload.doctor_id)
    doctor_name = doctor.name if doctor else None
    slot_minutes = config.slot_minutes

    def retry(error: str) -> AttemptResult:
        if record.attempts >= limit:
            reason = f"{error} (gave up after {record.attempts} attempts)"
            if error.startswith(OUTCOME_UNKNOWN):
                reason += ": check the Clinicea calendar before booking again"
            log.warning("booking %s: %s", key, reason)
            return _fail(store, key, "failed", reason)
        next_at = store.now() + backoff.delay(record.attempts)
        store.mark_retry(key, error, next_at)
        log.info(
            "booking %s: attempt %d: %s; retry at %s UTC",
            key,
            record.attempts,
            error,
            next_at.isoformat(timespec="seconds"),
        )
        return AttemptResult("retrying", reason=error)

    def taken(reason: str) -> AttemptResult:
        log.info("booking %s: %s", key, reason)
        return _fail(store, key, "slot_taken", reason)

    def booked(appointment_id: str | None, patient_id: str | None) -> AttemptResult:
        store.mark_booked(key, appointment_id, patient_id)
        log.info(
            "booking %s: booked with doctor %s at %s", key, payload.doctor_id, _when(payload.start)
        )
        return AttemptResult("booked", appointment_id=appointment_id, patient_id=patient_id)

    # 1. The day's calendar: was it stored already (fresh read)? is the time still free?
    lookup = needs_lookup(record)
    read = client.appointments_on if lookup or calendar is None else calendar
    try:
        day_rows = read(payload.start.date())
    except CliniceaAuthError as exc:
        log.error("booking %s: Clinicea refused our credentials: %s", key, exc)
        return retry(f"credentials refused: {exc}")
    except CliniceaError as exc:
        return retry(str(exc))

    if lookup:
        found = find_booked(
            day_rows, payload, doctor_name=doctor_name, region=config.default_region
        )
        if found is not None:
            log.info("booking %s: found in the calendar after an earlier attempt", key)
            return booked(found.id, found.patient_id or payload.patient_id)

    if payload.start <= now:
        return taken(f"{SLOT_TAKEN}: {_when(payload.start)} has already passed")
    busy = doctor_intervals(day_rows, payload.doctor_id, doctor_name, slot_minutes)
    if overlaps_booked(payload.start, slot_minutes, busy):
        return taken(f"{SLOT_TAKEN}: {_when(payload.start)} is no longer free")

    # 2. Send it (exactly one POST per attempt; the client never re-sends a POST).
    try:
        result = _send(client, payload, config)
    except _NoMobile:
        return _fail(store, key, "failed", "no usable mobile number to register the new patient")
    except CliniceaRejected as exc:
        if says_slot_taken(exc.message) or _taken_now(client, payload, doctor_name, slot_minutes):
            return taken(f"{SLOT_TAKEN}: {_when(payload.start)} is no longer free")
        reason = f"{REJECTED}{exc.message or exc}"
        log.warning("booking %s: rejected (HTTP %s), marked failed", key, exc.status)
        return _fail(store, key, "failed", reason)
    except CliniceaOutcomeUnknown:
        return retry(OUTCOME_UNKNOWN)
    except CliniceaAuthError as exc:
        log.error("booking %s: Clinicea refused our credentials: %s", key, exc)
        return retry(f"credentials refused: {exc}")
    except CliniceaError as exc:
        return retry(str(exc))

    if not result.appointment_id:
        # Stored (2xx) but the answer had no ID: find it so the row carries the real one.
        try:
            found = find_booked(
                client.appointments_on(payload.start.date()),
                payload,
                doctor_name=doctor_name,
                region=config.default_region,
            )
        except CliniceaError:
            found = None
        if found is not None:
            return booked(found.id, found.patient_id or result.patient_id or payload.patient_id)
    return booked(result.appointment_id, result.patient_id or payload.patient_id)


class _NoMobile(Exception):
    """A new-patient booking without a usable mobile number."""


def _send(client: CliniceaClient, payload: BookingPayload, config: ClinicConfig) -> BookingResult:
    if payload.patient_id:
        return client.book_for_patient(
            AppointmentRequest(
                patient_id=payload.patient_id,
                start=payload.start,
                doctor_id=payload.doctor_id,
                clinic_id=payload.clinic_id,
                service_id=payload.service_id,
                notes=payload.notes,
            )
        )
    mobile = parse_phone(payload.phone_e164, config.default_region)
    if mobile is None:
        raise _NoMobile
    return client.book_new_patient(
        NewPatientRequest(
            first_name=payload.first_name,
            last_name=payload.last_name,
            mobile=mobile,
            start=payload.start,
            doctor_id=payload.doctor_id,
            clinic_id=payload.clinic_id,
            service_id=payload.service_id,
            notes=payload.notes,
        )
    )


def _taken_now(
    client: CliniceaClient, payload: BookingPayload, doctor_name: str | None, slot_minutes: int
) -> bool:
    """After a rejection: does a fresh look at the calendar show the time taken?"""
    try:
        rows = client.appointments_on(payload.start.date())
    except CliniceaError:
        return False
    busy = doctor_intervals(rows, payload.doctor_id, doctor_name, slot_minutes)
    return overlaps_booked(payload.start, slot_minutes, busy)


def _fail(store: Store, key: str, status: AttemptStatus, reason: str) -> AttemptResult:
    store.mark_failed(key, reason)
    return AttemptResult(status, reason=reason)


def _doctor(config: ClinicConfig, doctor_id: str) -> Doctor | None:
    return next((d for d in config.doctors if d.id == doctor_id), None)


# --- the worker ----------------------------------------------------------------------------


class OutboxWorker:
    """Finishes bookings that Clinicea has not confirmed: the `ivr worker` loop.

    `run_once` claims the rows that are due (pending, or retrying whose time has come, or
    whose lease expired) and processes each with `attempt_booking`. `run_forever` repeats it
    and purges old call events once an hour.
    """

    def __init__(
        self,
        client: CliniceaClient,
        store: Store,
        clock: Clock,
        config: ClinicConfig,
        *,
        worker_id: str,
        lease: timedelta = timedelta(seconds=30),
        backoff: Backoff = DEFAULT_BACKOFF,
        max_attempts: int | None = None,
        batch: int = 10,
        on_attempt: Callable[[date], None] | None = None,
        texts: TextSender | None = None,
    ) -> None:
        """`texts`: the confirmation texts' send pass, run after each pass (`ivr.texts`)."""
        self.texts = texts
        self.client = client
        self.store = store
        self.clock = clock
        self.config = config
        self.worker_id = worker_id
        self.lease = lease
        self.backoff = backoff
        if max_attempts is None:
            max_attempts = config.booking_max_attempts
        self.max_attempts = max_attempts
        self.batch = batch
        self._on_attempt = on_attempt

    def process(self, record: BookingRecord) -> AttemptResult:
        """Process one claimed row (see `attempt_booking`)."""
        try:
            return attempt_booking(
                record,
                client=self.client,
                store=self.store,
                config=self.config,
                now=self.clock.now(),
                backoff=self.backoff,
                max_attempts=self.max_attempts,
            )
        finally:
            if self._on_attempt is not None:
                try:
                    day = datetime.fromisoformat(str(record.payload["start"])).date()
                except (KeyError, TypeError, ValueError):
                    day = None
                if day is not None:
                    self._on_attempt(day)

    def run_once(self) -> int:
        """Claim the due bookings and process each; returns how many were processed."""
        records = self.store.claim_due_bookings(
            worker=self.worker_id, lease=self.lease, limit=self.batch
        )
        for record in records:
            try:
                self.process(record)
            except Exception:  # one bad row must not stop the others; its lease expires
                log.exception("booking %s: processing failed", record.idempotency_key)
        if self.texts is not None:  # after the bookings, so a text booked just now goes too
            try:
                self.texts.run_once()
            except Exception:
                log.exception("confirmation texts pass failed")
        return len(records)

    def purge(self) -> int:
        """Delete call events older than the clinic's retention; returns how many."""
        purged = self.store.purge_events(timedelta(days=self.config.event_retention_days))
        if purged:
            log.info(
                "purged %d call events older than %d days", purged, self.config.event_retention_days
            )
        return purged

    def run_forever(
        self,
        stop_event: threading.Event,
        interval: float = 2.0,
        *,
        purge_every: float = 3600.0,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> None:
        """Process due bookings every `interval` seconds until `stop_event` is set.

        Also purges old call events at start and then every `purge_every` seconds. Errors are
        logged and the loop goes on (Clinicea or the database may come back).
        """
        last_purge: float | None = None
        while not stop_event.is_set():
            if last_purge is None or monotonic() - last_purge >= purge_every:
                last_purge = monotonic()
                try:
                    self.purge()
                except Exception:
                    log.exception("purging call events failed")
            try:
                busy = self.run_once()
            except Exception:
                log.exception("outbox pass failed")
                busy = 0
            if busy < self.batch:
                stop_event.wait(interval)
