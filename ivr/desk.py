"""What the console and the JSON API both do: look up a caller, list free times, book, and
read the day's appointment reminders.

One place for the agent side's rules, so the screen-pop page and `/api` cannot drift apart:
the same `CliniceaServices` (patient search, last completed visit, the slot rules of
`flows.slots`) and the same outbox path (`services.book`) as the phone call; the same order
of the reminders (the desk's statuses first) and the same counts on the page and in `/api`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flows.clinic_services import BookingOutcome, BookingRequest, ServiceUnavailable
from flows.domain import ClinicSite, Doctor, LastVisit, PatientRef, Slot
from flows.reminders.plan import DayAppointment, reminder_from_json
from flows.reminders.status import FOR_THE_DESK, STATUSES
from ivr.clinicea_services import CliniceaServices
from ivr.phone import PhoneNumber, digits_to_phone, parse_phone
from ivr.store import ReminderRecord, Store

UNAVAILABLE_LOOKUP = "Clinicea is not answering right now. Try again in a minute."
UNAVAILABLE_BOOKING = (
    "Clinicea is not answering right now; nothing was booked. Try again in a minute."
)
RECORDED = "Recorded; it will be booked as soon as Clinicea answers."
CONSENT_REQUIRED = "consent is required to register a new patient"
SLOT_TAKEN = "That time is no longer free; pick another."
IN_THE_PAST = "start is in the past (it is {now} at the clinic); pick a later time"
MAX_NAME = 100
MAX_NOTES = 500
SLOTS_PER_DAY = 50
START_FORMAT = "%Y-%m-%dT%H:%M"
_KEY = re.compile(r"^[A-Za-z0-9:._-]{1,200}$")
MAX_REMINDERS = 2000  # a day of a large clinic; the page and the API show at most this many

log = logging.getLogger(__name__)


class DeskError(Exception):
    """A request the desk refuses, with an HTTP status and a sentence for the agent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CallerLookup:
    """Who is calling: the number read, the patients on it, the chosen one, their last visit."""

    raw: str
    phone: PhoneNumber
    patients: tuple[PatientRef, ...]
    selected: PatientRef | None
    last_visit: LastVisit | None


@dataclass(frozen=True)
class NewPatient:
    """A caller to register with their booking (only with their consent)."""

    first_name: str
    last_name: str
    phone: PhoneNumber


def read_phone(services: CliniceaServices, raw: str | None) -> PhoneNumber:
    """A number in any common format (clinic region by default); DeskError 400 if unreadable."""
    raw = (raw or "").strip()
    if not raw:
        raise DeskError(400, "mobile is required")
    if len(raw) > 40:
        raise DeskError(400, "that is not a phone number")
    region = services.config.default_region
    phone = parse_phone(raw, region) or digits_to_phone(raw, region)
    if phone is None:
        raise DeskError(400, "that is not a phone number")
    return phone


def lookup_caller(
    services: CliniceaServices, raw: str | None, patient_id: str | None = None
) -> CallerLookup:
    """Patients on the number and the chosen one's last completed visit.

    The chosen patient is `patient_id` if it is one of them, else the only one. Raises
    DeskError (400 bad number) or ServiceUnavailable (Clinicea down)."""
    phone = read_phone(services, raw)
    patients = tuple(services.find_patients(phone.e164))
    selected = next((p for p in patients if p.id == patient_id), None)
    if selected is None and len(patients) == 1:
        selected = patients[0]
    last = services.last_visit(selected.id) if selected else None
    return CallerLookup(raw or "", phone, patients, selected, last)


def doctor_of(services: CliniceaServices, doctor_id: str | None) -> Doctor:
    """The clinic's doctor with that id; DeskError 400 otherwise."""
    doctor = services.profile.doctor(doctor_id)
    if doctor is None:
        raise DeskError(400, "unknown doctor_id")
    return doctor


def site_of(services: CliniceaServices, doctor: Doctor) -> ClinicSite | None:
    """Where the doctor sees patients."""
    return services.profile.site(doctor.clinic_id)


def parse_day(text: str | None) -> date:
    """`YYYY-MM-DD`; DeskError 400 otherwise."""
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        raise DeskError(400, "day must be a date written YYYY-MM-DD") from None


def parse_start(text: str | None) -> datetime:
    """`YYYY-MM-DDTHH:MM` (clinic-local); DeskError 400 otherwise."""
    try:
        return datetime.strptime((text or "").strip(), START_FORMAT)
    except ValueError:
        raise DeskError(400, "start must be a clinic-local time written YYYY-MM-DDTHH:MM") from None


def free_slots(services: CliniceaServices, doctor_id: str | None, day: date) -> list[Slot]:
    """The doctor's free times on `day` (the phone's slot rules). May raise ServiceUnavailable."""
    doctor = doctor_of(services, doctor_id)
    return services.free_slots(doctor.id, day=day, limit=SLOTS_PER_DAY)


def first_free_day(services: CliniceaServices, doctor_id: str) -> date:
    """The day of the doctor's next free slot (today when there is none or Clinicea is down)."""
    try:
        slots = services.free_slots(doctor_id, limit=1)
    except ServiceUnavailable:
        slots = []
    return slots[0].start.date() if slots else services.now().date()


def new_patient(
    services: CliniceaServices, first_name: str | None, last_name: str | None,
    mobile: str | None, consent: bool,
) -> NewPatient:
    """Validate a registration; without consent nothing may be created (DeskError 400)."""
    if not consent:
        raise DeskError(400, CONSENT_REQUIRED)
    first = " ".join((first_name or "").split())
    last = " ".join((last_name or "").split())
    if not first or not last:
        raise DeskError(400, "first_name and last_name are required to register a new patient")
    if len(first) > MAX_NAME or len(last) > MAX_NAME:
        raise DeskError(400, f"names are limited to {MAX_NAME} characters")
    return NewPatient(first, last, read_phone(services, mobile))


def valid_key(key: str | None) -> bool:
    """Whether an idempotency key is safe to store."""
    return bool(key) and _KEY.match(key or "") is not None


def book(
    services: CliniceaServices,
    *,
    key: str,
    doctor_id: str | None,
    start: datetime,
    patient_id: str | None,
    patient: NewPatient | None,
    notes: str = "",
) -> BookingOutcome:
    """Book through the outbox, as the phone does. Returns booked or recorded.

    Refuses (DeskError) an unknown doctor, notes too long, a start that is not after the
    clinic's current time (400), a time that is not one of the doctor's free slots (409) or a
    slot taken meanwhile (409). When Clinicea cannot say which times are free, the booking is
    still recorded and the outbox finishes it. A resubmission (known key) skips the time checks.
    """
    doctor = doctor_of(services, doctor_id)
    if patient_id is None and patient is None:
        raise DeskError(400, "patient_id or new_patient is required")
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES:
        raise DeskError(400, f"notes are limited to {MAX_NOTES} characters")
    if services.store.get_booking(key) is None:  # a resubmitted form skips the checks
        now = services.now()
        if start <= now:
            raise DeskError(400, IN_THE_PAST.format(now=now.strftime(START_FORMAT)))
        try:
            free = {s.start for s in services.free_slots(doctor.id, day=start.date(), limit=500)}
        except ServiceUnavailable:
            free = None  # cannot check now: the outbox will find out when it sends it
        if free is not None and start not in free:
            raise DeskError(409, SLOT_TAKEN)
    request = BookingRequest(
        idempotency_key=key,
        doctor_id=doctor.id,
        start=start,
        patient_id=patient_id if patient is None else None,
        first_name=patient.first_name if patient else "",
        last_name=patient.last_name if patient else "",
        phone_e164=patient.phone.e164 if patient else None,
        notes=notes,
    )
    outcome = services.book(request)
    if outcome.status == "slot_taken":
        raise DeskError(409, SLOT_TAKEN)
    return outcome


def when(moment: datetime) -> str:
    """ "Monday 30 November 2026, 10:40"."""
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M}"


# --------------------------------------------------------------------------- reminders


@dataclass(frozen=True)
class DeskReminder:
    """A reminder as the desk sees it: the stored row and its appointments (time order)."""

    record: ReminderRecord
    appointments: tuple[DayAppointment, ...]

    @property
    def for_the_desk(self) -> bool:
        """An answer the desk acts on (move, cancel, failed) and nobody has marked done."""
        return self.record.status in FOR_THE_DESK and self.record.handled_at is None

    @property
    def first_start(self) -> datetime | None:
        """The first appointment's start (None for a row whose payload is unreadable)."""
        return self.appointments[0].start if self.appointments else None


@dataclass(frozen=True)
class DeskReminders:
    """One day's reminders (or every kept day's) and how many are in each status."""

    reminders: tuple[DeskReminder, ...]
    counts: dict[str, int]


def reminder_day(now: datetime, days_ahead: int) -> date:
    """The day the console shows by default: the one today's run reminds (`days_ahead` after
    today): before the run it is the next run's day, after it the day whose answers arrive."""
    return now.date() + timedelta(days=days_ahead)


def parse_status(text: str | None) -> str | None:
    """A reminder status filter (None: all); DeskError 400 for an unknown one."""
    if not text:
        return None
    if text not in STATUSES:
        raise DeskError(400, f"status must be one of {', '.join(STATUSES)}")
    return text


def desk_reminders(store: Store, day: date | None, status: str | None = None) -> DeskReminders:
    """The reminders of `day` (None: every day kept) for the desk: those it acts on first
    (oldest appointment first), then the rest by first appointment; the counts per status are
    the whole day's, whatever `status` filters."""
    rows = store.reminders(day=day, limit=MAX_REMINDERS)
    counts = Counter(r.status for r in rows)
    chosen = [_desk_reminder(r) for r in rows if status is None or r.status == status]
    chosen.sort(key=lambda d: (not d.for_the_desk, d.first_start or datetime.max, d.record.key))
    ordered = {s: counts[s] for s in STATUSES if counts[s]}
    return DeskReminders(tuple(chosen), ordered)


def find_reminder(store: Store, key: str) -> DeskReminder | None:
    """The reminder of `key`, or None."""
    record = store.get_reminder(key)
    return _desk_reminder(record) if record is not None else None


def _desk_reminder(record: ReminderRecord) -> DeskReminder:
    try:
        appointments = reminder_from_json(record.payload).appointments
    except (ValueError, KeyError, TypeError):
        log.warning("reminder %s: its stored payload is unreadable", record.key)
        appointments = ()
    return DeskReminder(record, tuple(sorted(appointments, key=lambda a: a.start)))
