"""`flows.services.ClinicServices` on Clinicea, the store, the slot rules and the clock.

- Lookups (`find_patients`, `last_visit`, `free_slots`) translate every `CliniceaError` into
  `flows.services.ServiceUnavailable`, which the flow answers with a transfer.
- A day's calendar is cached for a short time (`cache_ttl`, default 45 s) so that the turns of
  one call do not fetch it again; a booking's first attempt checks the time against it, and
  every attempt drops that day from the cache.
- `book` writes the outbox row first, claims it, and sends it with `ivr.outbox.attempt_booking`
  (the same function the worker uses) within `budget_seconds`; whatever is not finished by
  then is "recorded" and finished by the worker.

Time limits for lookups (Twilio gives up on a webhook after 15 s; each Clinicea request has
its own 5 s budget in the client, which is not enough on its own):

- **Per webhook.** `VoiceTurns` runs each turn inside `webhook_budget()`, which sets a deadline
  `webhook_seconds` (default `WEBHOOK_SECONDS`, 8 s) away. Every lookup in that turn gets only
  what is left: `/voice/incoming`'s patient search and past visits together take at most that.
  The client itself is held to the deadline (`CliniceaClient.within`: its request timeouts are
  clamped to what is left, no extra thread); a lookup cut off there counts as failed:
  `find_patients` and `free_slots` raise `ServiceUnavailable`, `last_visit` answers None (greet
  without the read-back rather than fail the call).
- **Per slot search.** `free_slots` also stops after `SLOT_SEARCH_SECONDS` (6 s) in any case
  (console and API too): a day-by-day walk through a fully booked month offers the slots
  found so far, or raises `ServiceUnavailable` when it found none.
- `book` keeps its own `budget_seconds` (it runs in a webhook of its own, after "one moment").

Logs never carry a full phone number or a patient's name (`PhoneNumber.masked`, IDs only).
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import threading
import time as _time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from flows.domain import ClinicSite, Doctor, LastVisit, PatientRef, Slot
from flows.services import BookingOutcome, BookingRequest, ClinicProfile, ServiceUnavailable
from flows.slots import OutOfTime, first_free_slots
from flows.slots import free_slots as day_free_slots
from ivr.clinicea.errors import CliniceaError
from ivr.outbox import (
    DEFAULT_BACKOFF,
    SLOT_TAKEN,
    AttemptResult,
    Backoff,
    BookingPayload,
    attempt_booking,
    doctor_intervals,
    name_key,
)
from ivr.phone import digits_to_phone, mask, parse_phone
from ivr.sms import TwilioSms

if TYPE_CHECKING:
    from ivr.clinicea import CliniceaClient
    from ivr.clinicea.models import Appointment, ClinicInfo, Visit
    from ivr.clock import Clock
    from ivr.config import ClinicConfig
    from ivr.store import BookingRecord, Store

_T = TypeVar("_T")
# A Clinicea error this close to the deadline is the deadline (the client stops a request that
# cannot finish in time: its timeout, or "out of time" with under 50 ms left).
_OUT_OF_TIME_MARGIN = 0.1
log = logging.getLogger(__name__)

WEBHOOK_SECONDS = 8.0  # all lookups of one webhook together (Twilio waits 15 s at most)
SLOT_SEARCH_SECONDS = 6.0  # one search for free slots, however many days it walks

# The deadline (monotonic seconds) of the webhook this thread is answering, if any.
_webhook_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ivr_webhook_deadline", default=None)


def profile_from_config(cfg: ClinicConfig) -> ClinicProfile:
    """The clinic as the call presents it, from the clinic config."""
    return ClinicProfile(
        name=cfg.name,
        sites=tuple(cfg.clinics),
        doctors=tuple(cfg.doctors),
        services=tuple(cfg.services),
        default_service_id=cfg.default_service_id,
        hours=cfg.hours,
        agent_hours=cfg.agent_hours,
        slot_minutes=cfg.slot_minutes,
        booking_days_ahead=cfg.booking_days_ahead,
        region=cfg.default_region,
        language=cfg.language,
        languages_offered=tuple(cfg.languages_offered),
        read_last_visit_service=cfg.read_last_visit_service,
        verify_date_of_birth=cfg.verify_date_of_birth,
        sms_confirmation=cfg.sms_confirmation,
    )


class _DayCache:
    """A day's calendar rows for a few seconds; thread-safe."""

    def __init__(self, ttl: float, monotonic: Callable[[], float]) -> None:
        self._ttl = ttl
        self._monotonic = monotonic
        self.sms: TwilioSms | None = None  # set by the app when TWILIO_ACCOUNT_SID is configured
        self._rows: dict[date, tuple[float, list[Appointment]]] = {}
        self._lock = threading.Lock()

    def get(self, day: date) -> list[Appointment] | None:
        with self._lock:
            hit = self._rows.get(day)
            if hit is None:
                return None
            if self._monotonic() - hit[0] >= self._ttl:
                del self._rows[day]
                return None
            return hit[1]

    def put(self, day: date, rows: list[Appointment]) -> None:
        with self._lock:
            self._rows[day] = (self._monotonic(), rows)
            # Keep it small: forget expired days.
            now = self._monotonic()
            for stale in [d for d, (t, _) in self._rows.items() if now - t >= self._ttl]:
                del self._rows[stale]

    def drop(self, day: date) -> None:
        with self._lock:
            self._rows.pop(day, None)


class CliniceaServices:
    """The clinic operations a call uses, on Clinicea + the store (see the module docstring)."""

    def __init__(
        self,
        client: CliniceaClient,
        store: Store,
        clock: Clock,
        config: ClinicConfig,
        *,
        cache_ttl: float = 45.0,
        lead_minutes: int = 0,
        lease: timedelta = timedelta(seconds=60),
        budget_seconds: float | None = 10.0,
        backoff: Backoff = DEFAULT_BACKOFF,
        worker_id: str | None = None,
        monotonic: Callable[[], float] = _time.monotonic,
        webhook_seconds: float = WEBHOOK_SECONDS,
        slot_search_seconds: float = SLOT_SEARCH_SECONDS,
    ) -> None:
        """`lease` must outlast the client's worst-case time for one booking attempt, so that
        the worker never picks up a row this process is still sending. `budget_seconds` is how
        long `book` waits for Clinicea before answering "recorded" (None: wait for it).
        `webhook_seconds` and `slot_search_seconds`: the lookup time limits (module docstring).
        """
        self.client = client
        self.store = store
        self.clock = clock
        self.config = config
        self.profile = profile_from_config(config)
        self.lead_minutes = lead_minutes
        self.lease = lease
        self.budget_seconds = budget_seconds
        self.backoff = backoff
        self.worker_id = worker_id or f"web-{uuid.uuid4().hex[:8]}"
        self._cache = _DayCache(cache_ttl, monotonic)
        self._monotonic = monotonic
        self.webhook_seconds = webhook_seconds
        self.slot_search_seconds = slot_search_seconds
        self.sms: TwilioSms | None = None  # set by the app when TWILIO_ACCOUNT_SID is configured

    @contextmanager
    def webhook_budget(self) -> Iterator[None]:
        """Bound the lookups made inside the block to `webhook_seconds` together."""
        token = _webhook_deadline.set(self._monotonic() + self.webhook_seconds)
        try:
            yield
        finally:
            _webhook_deadline.reset(token)

    # --- ClinicServices ----------------------------------------------------------------------

    def now(self) -> datetime:
        """Naive clinic-local current time."""
        return self.clock.now()

    def normalise_phone(self, raw: str) -> str | None:
        """E.164 for a number keyed or said by the caller (clinic region), or None if invalid."""
        phone = digits_to_phone(raw, self.config.default_region)
        return phone.e164 if phone else None

    def find_patients(self, phone_e164: str) -> list[PatientRef]:
        """Patients registered on that number (a family may share one); [] for no number."""
        phone = parse_phone(phone_e164, self.config.default_region)
        if phone is None:
            return []
        try:
            patients = self._in_time(lambda: self.client.search_patients(phone),
                                     _webhook_deadline.get())
        except OutOfTime as exc:
            log.warning("patient search for %s: out of time", phone.masked)
            raise ServiceUnavailable("patient search: out of time") from exc
        except CliniceaError as exc:
            log.warning("patient search for %s failed: %s", phone.masked, exc)
            raise ServiceUnavailable(str(exc)) from exc
        refs = [
            PatientRef(
                id=p.id,
                first_name=p.first_name or (p.full_name or "").split(" ")[0],
                last_name=p.last_name or "",
                date_of_birth=p.date_of_birth,
            )
            for p in patients
        ]
        log.info("patient search for %s: %d found", phone.masked, len(refs))
        return refs

    def last_visit(self, patient_id: str) -> LastVisit | None:
        """The newest completed visit, with doctor and clinic filled in from the config.

        None also when the webhook's time runs out first: the greeting goes without it."""
        try:
            visits = self._in_time(lambda: self.client.past_completed_visits(patient_id),
                                   _webhook_deadline.get())
        except OutOfTime:
            log.warning("past visits of patient %s: out of time, greeting without", patient_id)
            return None
        except CliniceaError as exc:
            log.warning("past visits of patient %s failed: %s", patient_id, exc)
            raise ServiceUnavailable(str(exc)) from exc
        if not visits:
            return None
        return self._last_visit(visits[0])

    def free_slots(
        self,
        doctor_id: str,
        *,
        day: date | None = None,
        after: datetime | None = None,
        limit: int = 3,
    ) -> list[Slot]:
        """Earliest free slots for a doctor, on one day or from `after` (default: now) onwards.

        Within `slot_search_seconds` (and the webhook's deadline): the slots found by then, or
        `ServiceUnavailable` if none."""
        doctor = self.profile.doctor(doctor_id)
        if doctor is None:
            log.warning("free slots asked for unknown doctor %s", doctor_id)
            return []
        now = self.clock.now()
        deadline = self._monotonic() + self.slot_search_seconds
        webhook = _webhook_deadline.get()
        if webhook is not None:
            deadline = min(deadline, webhook)

        def booked(d: date) -> list[tuple[datetime, datetime]]:
            return self._booked(doctor, d, deadline)

        try:
            if day is not None:
                slots = day_free_slots(
                    doctor_id=doctor.id,
                    day=day,
                    hours=self.config.hours,
                    slot_minutes=self.config.slot_minutes,
                    booked=booked(day),
                    now=now,
                    lead_minutes=self.lead_minutes,
                )
                if after is not None:
                    slots = [s for s in slots if s.start >= after]
                if day > now.date() + timedelta(days=self.config.booking_days_ahead):
                    slots = []
                return slots[:limit]
            return first_free_slots(
                doctor_id=doctor.id,
                from_day=(after or now).date(),
                days_ahead=self.config.booking_days_ahead,
                limit=limit,
                hours=self.config.hours,
                slot_minutes=self.config.slot_minutes,
                booked_by_day=booked,
                now=now,
                lead_minutes=self.lead_minutes,
                after=after,
            )
        except OutOfTime as exc:
            log.warning("calendar of doctor %s: out of time, no slot found", doctor_id)
            raise ServiceUnavailable("free slots: out of time") from exc
        except CliniceaError as exc:
            log.warning("calendar of doctor %s failed: %s", doctor_id, exc)
            raise ServiceUnavailable(str(exc)) from exc

    def book(self, request: BookingRequest) -> BookingOutcome:
        """Book, idempotent per `request.idempotency_key` (see the module docstring); the
        confirmation text is queued first (`ivr.texts`), so it is never lost once booked."""
        texted = self._queue_text(request)
        outcome = self._book(request)
        return dataclasses.replace(outcome, texted=texted) if texted else outcome

    def _book(self, request: BookingRequest) -> BookingOutcome:
        key = request.idempotency_key
        payload = self._payload(request)
        record = self.store.enqueue_booking(
            key, call_sid=request.call_sid, payload=payload.to_json()
        )
        if record.status == "booked":
            return _outcome_of(record)
        claimed = self.store.claim_booking(key, worker=self.worker_id, lease=self.lease)
        if claimed is None:
            # Another webhook or process is sending it, or finished it: wait (within the
            # budget) for its result, so a duplicate webhook tells the caller the same truth.
            row = self._await_other(key)
            log.info("booking %s: not claimed here (%s)", key, row.status if row else "gone")
            return _outcome_of(row)
        result = self._attempt_within_budget(claimed)
        if result is None:
            log.info(
                "booking %s: still running after %.1fs, answered recorded",
                key,
                self.budget_seconds or 0.0,
            )
            return BookingOutcome("recorded")
        if result.status == "booked":
            return BookingOutcome("booked", result.appointment_id, result.patient_id)
        if result.status == "slot_taken":
            return BookingOutcome("slot_taken")
        return BookingOutcome("recorded")

    def _queue_text(self, request: BookingRequest) -> bool:
        """Queue the request's confirmation text (before its booking row); False when the
        clinic does not text or the call has no number to text from."""
        text = request.text
        if (text is None or self.sms is None or not text.from_e164
                or not self.config.sms_confirmation):
            return False
        self.store.queue_text(request.idempotency_key, to_e164=text.to_e164,
                              from_e164=text.from_e164, body=text.body)
        return True

    def request_callback(self, call_sid: str, phone_e164: str | None, reason: str) -> None:
        """Record that the caller wants the clinic to call back (phone masked in logs)."""
        phone = parse_phone(phone_e164, self.config.default_region) if phone_e164 else None
        e164 = phone.e164 if phone else phone_e164
        masked = phone.masked if phone else mask(phone_e164)
        self.store.add_callback(call_sid, e164, masked, reason)
        log.info("callback requested by %s (%s)", masked, reason)

    # --- optional extras ---------------------------------------------------------------------

    def appointments_on(
        self, day: date, *, fresh: bool = False, deadline: float | None = None
    ) -> list[Appointment]:
        """The day's calendar rows (cached for `cache_ttl` seconds unless `fresh`).

        With `deadline` (monotonic seconds), `OutOfTime` when Clinicea has not answered by
        then."""
        if not fresh:
            cached = self._cache.get(day)
            if cached is not None:
                return cached

        def fetch() -> list[Appointment]:
            rows = self.client.appointments_on(day)
            self._cache.put(day, rows)
            return rows

        return self._in_time(fetch, deadline)

    def forget_day(self, day: date) -> None:
        """Drop a day's cached calendar (after a booking that may have changed it)."""
        self._cache.drop(day)

    # --- internals ---------------------------------------------------------------------------

    def _booked(
        self, doctor: Doctor, day: date, deadline: float | None = None
    ) -> list[tuple[datetime, datetime]]:
        return doctor_intervals(
            self.appointments_on(day, deadline=deadline), doctor.id, doctor.name,
            self.config.slot_minutes,
        )

    def _in_time(self, fetch: Callable[[], _T], deadline: float | None) -> _T:
        """`fetch()` with the client held to `deadline` (None: no limit); `OutOfTime` when the
        time ran out before Clinicea answered (other Clinicea errors pass through)."""
        if deadline is None:
            return fetch()
        remaining = deadline - self._monotonic()
        if remaining <= 0:
            raise OutOfTime()
        try:
            with self.client.within(remaining):
                return fetch()
        except CliniceaError as exc:
            if deadline - self._monotonic() < _OUT_OF_TIME_MARGIN:
                raise OutOfTime() from exc
            raise

    def _await_other(self, key: str) -> BookingRecord | None:
        """The booking row once another sender has finished with it, or when the budget ends."""
        deadline = self._monotonic() + (self.budget_seconds or 0.0)
        row = self.store.get_booking(key)
        while row is not None and row.status in ("pending", "booking"):
            if self._monotonic() >= deadline:
                break
            _time.sleep(0.05)
            row = self.store.get_booking(key)
        return row

    def _payload(self, request: BookingRequest) -> BookingPayload:
        doctor = self.profile.doctor(request.doctor_id)
        site = self.profile.site(doctor.clinic_id if doctor else None)
        return BookingPayload(
            doctor_id=request.doctor_id,
            start=request.start.replace(second=0, microsecond=0, tzinfo=None),
            patient_id=request.patient_id,
            clinic_id=site.id if site else "",
            service_id=self.config.default_service_id,
            first_name=request.first_name,
            last_name=request.last_name,
            phone_e164=request.phone_e164,
            notes=request.notes,
            call_sid=request.call_sid,
        )

    def _attempt(self, record: BookingRecord) -> AttemptResult:
        try:
            return attempt_booking(
                record,
                client=self.client,
                store=self.store,
                config=self.config,
                now=self.clock.now(),
                backoff=self.backoff,
                calendar=self.appointments_on,  # cached: as the slots were offered
            )
        finally:
            day = _payload_day(record)
            if day is not None:
                self._cache.drop(day)

    def _attempt_within_budget(self, record: BookingRecord) -> AttemptResult | None:
        """Run the attempt; None when it is not done within the budget (it goes on alone)."""
        if self.budget_seconds is None:
            return self._attempt(record)
        box: list[AttemptResult] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                box.append(self._attempt(record))
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)
                log.exception("booking %s: attempt failed", record.idempotency_key)

        worker = threading.Thread(target=run, name=f"book-{record.idempotency_key}", daemon=True)
        worker.start()
        worker.join(self.budget_seconds)
        if worker.is_alive():
            return None
        if errors:
            raise errors[0]
        return box[0]

    def _last_visit(self, visit: Visit) -> LastVisit:
        doctor = self._visit_doctor(visit)
        doctor_name = doctor.name if doctor else (visit.doctor_name or "")
        return LastVisit(
            start=visit.start,
            doctor_name=doctor_name,
            doctor_id=doctor.id if doctor else visit.doctor_id,
            clinic=self._visit_clinic(visit.clinic, doctor),
            service_name=visit.service_name if self.config.read_last_visit_service else None,
        )

    def _visit_doctor(self, visit: Visit) -> Doctor | None:
        """The config's doctor for a visit row: by ID, then by name; when the row names no
        doctor at all, the clinic's only doctor (with several, guessing would mislead)."""
        if visit.doctor_id:
            found = self.profile.doctor(visit.doctor_id)
            if found:
                return found
        if visit.doctor_name:
            wanted = name_key(visit.doctor_name)
            return next((d for d in self.config.doctors if name_key(d.name) == wanted), None)
        if not visit.doctor_id and len(self.config.doctors) == 1:
            return self.config.doctors[0]
        return None

    def _visit_clinic(self, info: ClinicInfo | None, doctor: Doctor | None) -> ClinicSite | None:
        """The visit's clinic: the row's fields, completed from the config where missing."""
        configured = None
        if info is not None and info.id:
            configured = next((s for s in self.config.clinics if s.id == info.id), None)
        if configured is None and info is not None and info.name:
            configured = next(
                (s for s in self.config.clinics if s.name.casefold() == info.name.casefold()),
                None,
            )
        if configured is None and (info is None or not info.address):
            configured = self.profile.site(doctor.clinic_id if doctor else None)
        if info is None:
            return configured
        return ClinicSite(
            id=info.id or (configured.id if configured else ""),
            name=info.name or (configured.name if configured else ""),
            address=info.address or (configured.address if configured else ""),
            phone=info.phone or (configured.phone if configured else None),
        )


def _payload_day(record: BookingRecord) -> date | None:
    """The calendar day a stored booking is for (None when the payload is unreadable)."""
    try:
        return datetime.fromisoformat(str(record.payload["start"])).date()
    except (KeyError, TypeError, ValueError):
        return None


def _outcome_of(record: BookingRecord | None) -> BookingOutcome:
    """What a caller hears about a row someone else handled."""
    if record is None:
        return BookingOutcome("recorded")
    if record.status == "booked":
        return BookingOutcome("booked", record.appointment_id, record.patient_id)
    if record.status == "failed" and (record.failure_reason or "").startswith(SLOT_TAKEN):
        return BookingOutcome("slot_taken")
    return BookingOutcome("recorded")
