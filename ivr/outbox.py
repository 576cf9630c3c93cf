"""The bookings outbox: send a stored booking to Clinicea once, retry it, never lose it.

A confirmed booking is written to the store with the claim on its time (`Outbox.enqueue`,
docs/design.md "Holds") BEFORE Clinicea is called. Every process has one `Outbox` (built by
`ivr.runtime.build_runtime`); whoever claims the row (the web request that took the call, the
console's "retry now", the `ivr worker` loop) sends it with `Outbox.attempt`, which runs
`attempt_booking`, the one function that sends a booking and records what happened, and then
drops that day from the process's cached calendar:

- booked: Clinicea gave an appointment ID (or a lookup found the appointment) -> `mark_booked`;
- slot taken: another appointment holds that doctor's time, Clinicea said the slot is not
  available, or the time has passed -> `mark_failed("slot taken: ...")`; agents call back;
- Clinicea unavailable, credentials refused, or the outcome of a sent POST unknown ->
  `mark_retry` with exponential backoff (jittered); after `max_attempts` -> `mark_failed(last
  error)`;
- any other rejection -> `mark_failed("rejected by Clinicea: ...")`.

Before sending a booking that was claimed before (a previous attempt may have reached
Clinicea, e.g. a POST whose answer was lost), the day's calendar is searched for it: if it is
there, the row is marked booked with that appointment's ID and nothing is sent again.

Logs name the idempotency key, the doctor ID and the time; never a phone number or a name.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from flows.slots import overlaps_booked
from ivr.booking_payload import BookingPayload
from ivr.calendar import (  # noqa: F401  (re-exported: older imports name them here)
    DayCalendar,
    doctor_intervals,
    doctor_matches,
    find_booked,
    name_key,
)
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
    from ivr.reminders import ReminderRun
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


@dataclass(frozen=True)
class Backoff:
    """Retry delays: `base` seconds, doubling per attempt, capped at `maximum`.

    With a random source (`rng`), each delay is drawn from [(1 - jitter) * d, d] so that the
    bookings one Clinicea outage failed together (a host's threads, several hosts) are not
    all retried at the same instant."""

    base: float = 5.0
    maximum: float = 300.0
    jitter: float = 0.5

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1 -> base, 2 -> 2*base, ...)."""
        exponent = max(attempts - 1, 0)
        seconds = self.maximum if exponent >= 32 else min(self.base * 2**exponent, self.maximum)
        if rng is not None and self.jitter > 0:
            seconds *= 1.0 - self.jitter * rng.random()
        return timedelta(seconds=seconds)


DEFAULT_BACKOFF = Backoff()
_JITTER = random.Random()  # one per process: the threads draw different delays

AttemptStatus = Literal["booked", "slot_taken", "retrying", "failed"]


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did to the outbox row (the row was updated to match)."""

    status: AttemptStatus
    appointment_id: str | None = None
    patient_id: str | None = None
    reason: str | None = None


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
    payload = record.payload
    if payload is None:
        log.error("booking %s: unreadable payload, marked failed", key)
        return _fail(store, key, "failed", "unreadable booking payload")

    doctor = config.doctor_by_id(payload.doctor_id)
    doctor_name = doctor.name if doctor else None
    slot_minutes = config.slot_minutes

    def retry(error: str) -> AttemptResult:
        if record.attempts >= limit:
            reason = f"{error} (gave up after {record.attempts} attempts)"
            if error.startswith(OUTCOME_UNKNOWN):
                reason += ": check the Clinicea calendar before booking again"
            log.warning("booking %s: %s", key, reason)
            return _fail(store, key, "failed", reason)
        next_at = store.now() + backoff.delay(record.attempts, _JITTER)
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
    except Exception as exc:  # a bug or a surprise still counts toward the attempt limit
        log.exception("booking %s: reading the calendar failed unexpectedly", key)
        return retry(_unexpected(exc))

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
    except Exception as exc:  # never posted again and again: it counts like any failure
        log.exception("booking %s: sending failed unexpectedly", key)
        return retry(_unexpected(exc))

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


def _unexpected(exc: Exception) -> str:
    # The class name says what broke; the message may carry patient data (it is in the log).
    return (f"unexpected error ({type(exc).__name__}) while talking to Clinicea: check the "
            f"Clinicea calendar and the worker log")


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


# --- the one owner of booking attempts ------------------------------------------------------


class Outbox:
    """Every booking attempt of a process goes through here (built once, by `build_runtime`).

    `enqueue` stores a booking with the claim on its time; `attempt` sends a claimed row with
    `attempt_booking` and then drops that day from the process's `DayCalendar`, whoever
    asked (a call, the console's "retry now", the worker); `retry_now` is the console's
    button; `worker`/`run` is the `ivr worker` loop.
    """

    def __init__(
        self,
        client: CliniceaClient,
        store: Store,
        clock: Clock,
        config: ClinicConfig,
        *,
        calendar: DayCalendar | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int | None = None,
    ) -> None:
        """`lease`: how long a web request or the console owns a row it claimed (longer than
        the client's worst case for one attempt)."""
        self.client = client
        self.store = store
        self.clock = clock
        self.config = config
        self.calendar = calendar or DayCalendar(client)
        self.backoff = backoff
        self.lease = lease
        self.max_attempts = max_attempts

    def enqueue(
        self, key: str, payload: BookingPayload, *, steps: Sequence[datetime]
    ) -> BookingRecord:
        """Store the booking and the claim on its grid `steps` in one transaction; the call's
        hold becomes the claim. `ivr.store.SlotUnavailable` when someone else has the time
        (nothing stored). A key stored before returns its row as it is."""
        return self.store.enqueue_claimed_booking(
            key, call_sid=payload.call_sid, payload=payload,
            doctor_id=payload.doctor_id, steps=steps,
        )

    def attempt(
        self, record: BookingRecord, *,
        calendar: Callable[[date], list[Appointment]] | None = None,
        max_attempts: int | None = None,
    ) -> AttemptResult:
        """Send one claimed row (`attempt_booking`); the day's cached calendar is dropped after.

        `calendar`: how to read the day for the "still free?" check (None: fresh)."""
        try:
            return attempt_booking(
                record, client=self.client, store=self.store, config=self.config,
                now=self.clock.now(), backoff=self.backoff,
                max_attempts=max_attempts if max_attempts is not None else self.max_attempts,
                calendar=calendar,
            )
        finally:
            if record.payload is not None:
                self.calendar.forget(record.payload.start.date())

    def retry_now(self, key: str, *, by: str) -> AttemptResult | None:
        """Make a pending or retrying row due now, claim it and send it; None when someone
        else is sending it."""
        self.store.mark_retry(key, f"retry requested by {by}", self.store.now())
        claimed = self.store.claim_booking(key, worker=f"console-{by}", lease=self.lease)
        if claimed is None:
            return None
        return self.attempt(claimed)

    def worker(self, worker_id: str, *, lease: timedelta = timedelta(seconds=30),
               batch: int = 10, texts: TextSender | None = None,
               reminders: ReminderRun | None = None) -> OutboxWorker:
        """The loop that finishes due bookings, attempting through this outbox (and sending
        the confirmation texts of booked ones, with `texts`)."""
        return OutboxWorker(self.client, self.store, self.clock, self.config,
                            worker_id=worker_id, lease=lease, backoff=self.backoff,
                            max_attempts=self.max_attempts, batch=batch, outbox=self,
                            texts=texts, reminders=reminders)

    def run(self, stop_event: threading.Event, worker_id: str, interval: float = 2.0) -> None:
        """Run the worker loop until `stop_event` is set."""
        self.worker(worker_id).run_forever(stop_event, interval)


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
        outbox: Outbox | None = None,
        texts: TextSender | None = None,
        reminders: ReminderRun | None = None,
    ) -> None:
        """`outbox`: the process's `Outbox` (its calendar cache is the web's); None builds one.
        `texts`: the confirmation texts' send pass, run after each pass (`ivr.texts`).
        `reminders`: the appointment reminders' pass (plans the day at `at`, sends what is
        due; `ivr.reminders`), run after the texts."""
        self.texts = texts
        self.reminders = reminders
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
        self.outbox = outbox or Outbox(client, store, clock, config, backoff=backoff,
                                       max_attempts=max_attempts)

    def process(self, record: BookingRecord) -> AttemptResult:
        """Process one claimed row (`Outbox.attempt`, with this worker's attempt limit)."""
        try:
            return self.outbox.attempt(record, max_attempts=self.max_attempts)
        finally:
            if self._on_attempt is not None and record.payload is not None:
                self._on_attempt(record.payload.start.date())

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
        if self.reminders is not None:
            try:
                self.reminders.run_once()
            except Exception:
                log.exception("reminders pass failed")
        return len(records)

    def purge(self) -> int:
        """Delete call events older than the clinic's retention; returns how many."""
        self.store.purge_claims()  # expired holds: replaceable anyway, just keep the table small
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
