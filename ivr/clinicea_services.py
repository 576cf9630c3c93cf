"""`flows.clinic_services.ClinicServices` on Clinicea, the store, the slot rules and the clock.

- Lookups (`find_patients`, `last_visit`, `free_slots`) translate every `CliniceaError` into
  `flows.clinic_services.ServiceUnavailable`, which the flow answers with a transfer.
- A day's calendar is cached for a short time (`cache_ttl`, default 45 s) so that the turns of
  one call do not fetch it again; a booking's first attempt checks the time against it, and
  every attempt drops that day from the cache.
- `book` writes the outbox row first, claims it, and sends it through the process's
  `ivr.outbox.Outbox` (the same one the console and the worker use) within `budget_seconds`;
  whatever is not finished by then is "recorded" and finished by the worker.
- Holds (docs/design.md, Holds): inside `for_call(call_sid)` (every webhook of a call),
  `free_slots` holds the times it returns for that call (`hold_minutes`) and never returns a
  time someone else holds or a booking claims; `settle_holds` after the turn keeps only the
  times still on offer; `book` turns the hold into the booking's claim in the outbox row's
  transaction (a time claimed by anyone else: "slot_taken", nothing is sent); `end_call`
  releases what is left.

Time limits for lookups (Twilio gives up on a webhook after 15 s; each Clinicea request has
its own 5 s budget in the client, which is not enough on its own):

- **Per webhook.** `ivr.calls` runs each turn inside `webhook_budget()`, which sets a deadline
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
import math
import threading
import time as _time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from flows.clinic_services import BookingOutcome, BookingRequest, ClinicProfile, ServiceUnavailable
from flows.domain import ClinicSite, Doctor, LastVisit, PatientRef, Slot, Upcoming
from flows.slots import OutOfTime, first_free_slots
from flows.slots import free_slots as day_free_slots
from ivr.calendar import DayCalendar, doctor_intervals, name_key
from ivr.clinicea.errors import CliniceaError
from ivr.outbox import (
    DEFAULT_BACKOFF,
    SLOT_TAKEN,
    AttemptResult,
    Backoff,
    BookingPayload,
    Outbox,
)
from ivr.phone import digits_to_phone, mask, parse_phone
from ivr.store import SlotUnavailable
from ivr.twilio_rest import TwilioSms

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
# The call (CallSid) this thread is answering a webhook of: free slots are held for it.
_current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ivr_current_call", default=None)
_HOLD_ROUNDS = 10  # searches per offer while other callers keep winning the same times


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
        outbox: Outbox | None = None,
    ) -> None:
        """`lease` must outlast the client's worst-case time for one booking attempt, so that
        the worker never picks up a row this process is still sending. `budget_seconds` is how
        long `book` waits for Clinicea before answering "recorded" (None: wait for it).
        `webhook_seconds` and `slot_search_seconds`: the lookup time limits (module docstring).
        `outbox`: the process's one `Outbox` (the app passes it); None builds one, with a day
        calendar of `cache_ttl` seconds.
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
        self.outbox = outbox or Outbox(client, store, clock, config,
                                       calendar=DayCalendar(client, cache_ttl, monotonic),
                                       backoff=backoff, lease=lease)
        self.calendar = self.outbox.calendar
        self._monotonic = monotonic
        self.webhook_seconds = webhook_seconds
        self.slot_search_seconds = slot_search_seconds
        self.sms: TwilioSms | None = None  # set by the app when TWILIO_ACCOUNT_SID is configured

    @contextmanager
    def for_call(self, call_sid: str) -> Iterator[None]:
        """Inside the block, free slots are held for this call (see `free_slots`)."""
        token = _current_call.set(call_sid or None)
        try:
            yield
        finally:
            _current_call.reset(token)

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

    def next_appointment(self, patient_id: str) -> Upcoming | None:
        """The patient's next upcoming appointment (cancelled and no-show left out), or None.

        Its doctor and site come from the config where the row names a doctor it knows."""
        try:
            rows = self._in_time(lambda: self.client.upcoming_appointments(patient_id),
                                 _webhook_deadline.get())
        except OutOfTime as exc:
            raise ServiceUnavailable("upcoming appointments: out of time") from exc
        except CliniceaError as exc:
            log.warning("upcoming appointments of patient %s failed: %s", patient_id, exc)
            raise ServiceUnavailable(str(exc)) from exc
        now = self.clock.now()
        row = next((r for r in rows if r.start >= now), None)
        if row is None:
            return None
        doctor = self.profile.doctor(row.doctor_id)
        return Upcoming(
            id=row.id,
            start=row.start,
            doctor_name=doctor.name if doctor else (row.doctor_name or ""),
            doctor_id=doctor.id if doctor else row.doctor_id,
            clinic=self.profile.site(doctor.clinic_id if doctor else None),
        )

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

        call_sid = _current_call.get()
        grid = timedelta(minutes=self.config.slot_minutes)
        lost: set[datetime] = set()  # times another caller won while this search held them
        claims: dict[date, list[tuple[datetime, datetime]]] = {}

        def claimed(d: date) -> list[tuple[datetime, datetime]]:
            """Times held or claimed by others, as intervals that block every slot start
            whose steps would cover them."""
            if d not in claims:
                first = datetime.combine(d, time())
                taken = self.store.claimed_times(doctor.id, first, first + timedelta(days=1),
                                                 except_call=call_sid)
                lead = grid * (self._steps() - 1)
                claims[d] = [(t - lead, t + grid) for t in taken]
            return claims[d]

        def booked(d: date) -> list[tuple[datetime, datetime]]:
            lead = grid * (self._steps() - 1)
            mine = [(t - lead, t + grid) for t in lost if t.date() == d]
            return self._booked(doctor, d, deadline) + claimed(d) + mine

        for _ in range(_HOLD_ROUNDS):
            claims.clear()  # a lost race means the claims changed: read them again
            slots = self._search(doctor, day, after, limit, now, booked)
            if call_sid is None or not slots:
                return slots
            held = self.store.hold_slots(
                call_sid, doctor.id, [self.grid_steps(s.start) for s in slots],
                self.store.now() + timedelta(minutes=self.config.hold_minutes))
            if all(held):
                return slots
            for slot, ok in zip(slots, held, strict=True):
                if not ok:
                    lost.update(self.grid_steps(slot.start))
        return [s for s, ok in zip(slots, held, strict=True) if ok]

    def _search(
        self,
        doctor: Doctor,
        day: date | None,
        after: datetime | None,
        limit: int,
        now: datetime,
        booked: Callable[[date], list[tuple[datetime, datetime]]],
    ) -> list[Slot]:
        """The free-slot search itself (`booked`: a day's busy intervals)."""
        doctor_id = doctor.id
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
        try:
            record = self.outbox.enqueue(key, payload, steps=self.grid_steps(payload.start))
        except SlotUnavailable:
            # Another caller holds it or another booking claims it: nothing was written, and
            # Clinicea is not asked (it might accept an overlap).
            log.info("booking %s: doctor %s at %s is held or claimed by someone else",
                     key, payload.doctor_id, payload.start.strftime("%Y-%m-%d %H:%M"))
            return BookingOutcome("slot_taken")
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
            cached = self.calendar.get(day)
            if cached is not None:
                return cached
        return self._in_time(lambda: self.calendar.fetch(day), deadline)

    def grid_steps(self, start: datetime) -> list[datetime]:
        """The grid starts a booking at `start` covers (a 40-minute service on a 20-minute
        grid covers two)."""
        grid = timedelta(minutes=self.config.slot_minutes)
        return [start + grid * i for i in range(self._steps())]

    def _steps(self) -> int:
        service = next((s for s in self.config.services
                        if s.id == self.config.default_service_id), None)
        minutes = service.minutes if service else self.config.slot_minutes
        return max(1, math.ceil(minutes / self.config.slot_minutes))

    def settle_holds(self, call_sid: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """After a turn: keep (and renew) the holds of the times still on offer, end the rest.

        A time picked this turn keeps only that time; a fresh offer keeps the offered times (a
        time picked earlier is changed, so let go); otherwise the call's live holds that are
        still on the table are renewed."""
        doctor_id = after.get("doctor_id")
        start, offered = _on_offer(after)
        if start is not None and start != _on_offer(before)[0]:
            keep = {start}
        elif offered != _on_offer(before)[1]:
            keep = set(offered)
        elif not offered and start is None:
            return  # nothing on the table before or after: nothing held (the common turn)
        else:
            held = self.store.held_by(call_sid)
            if not held:
                return
            table = set(offered) | ({start} if start else set())
            keep = {t for d, t in held if d == doctor_id and t in table}
        steps = {(str(doctor_id), st) for t in keep for st in self.grid_steps(t)}
        self.store.release_holds(call_sid, steps)
        if keep and doctor_id:
            self.store.hold_slots(call_sid, str(doctor_id), [self.grid_steps(t) for t in keep],
                                  self.store.now() + timedelta(minutes=self.config.hold_minutes))

    def end_call(self, call_sid: str) -> None:
        """The call ended (hung up): the times it held are free for others."""
        released = self.store.release_holds(call_sid)
        if released:
            log.info("call ended: %d held times released", released)

    def forget_day(self, day: date) -> None:
        """Drop a day's cached calendar (after a booking that may have changed it)."""
        self.calendar.forget(day)

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
        # The cached day: the one the slots were just offered from (saves a request).
        return self.outbox.attempt(record, calendar=self.appointments_on)

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

        # In a copy of the webhook's context: its log lines carry the CallSid (ivr.logs) and its
        # Clinicea time is the webhook's (ivr.metrics); the name is for a thread dump only.
        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,),
                                  name=f"book-{record.idempotency_key}", daemon=True)
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
            configured = self.config.clinic_by_id(info.id)
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


def _on_offer(data: dict[str, Any]) -> tuple[datetime | None, list[datetime]]:
    """The call's picked time and the times offered to it (menu, or one proposed time)."""
    def when(value: object) -> datetime | None:
        try:
            return datetime.fromisoformat(str(value)) if value else None
        except ValueError:
            return None

    offer = data.get("offer")
    raw = list(data.get("offered") or []) + [offer.get("start") if isinstance(offer, dict)
                                              else None]
    offered = [t for t in (when(v) for v in raw) if t is not None]
    return when(data.get("start")), offered


def _outcome_of(record: BookingRecord | None) -> BookingOutcome:
    """What a caller hears about a row someone else handled."""
    if record is None:
        return BookingOutcome("recorded")
    if record.status == "booked":
        return BookingOutcome("booked", record.appointment_id, record.patient_id)
    if record.status == "failed" and (record.failure_reason or "").startswith(SLOT_TAKEN):
        return BookingOutcome("slot_taken")
    return BookingOutcome("recorded")
