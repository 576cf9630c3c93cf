"""What the conversation needs from the clinic, as a small protocol.

`ivr.clinicea_services` implements it on Clinicea, the store and the slot rules; tests may pass
a fake.
Every method may raise `ServiceUnavailable` when the clinic system cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from flows.domain import (
    ClinicSite,
    Doctor,
    LastVisit,
    PatientRef,
    Service,
    Slot,
    Upcoming,
    WeeklyHours,
)


class ServiceUnavailable(Exception):
    """The clinic system could not answer (Clinicea down, timed out, credentials refused)."""


@dataclass(frozen=True)
class ClinicProfile:
    """The clinic as the call presents it."""

    name: str
    sites: tuple[ClinicSite, ...]
    doctors: tuple[Doctor, ...]
    services: tuple[Service, ...]
    default_service_id: str
    hours: WeeklyHours
    agent_hours: WeeklyHours
    slot_minutes: int
    booking_days_ahead: int
    region: str
    language: str
    languages_offered: tuple[str, ...]
    read_last_visit_service: bool = False
    verify_date_of_birth: bool = False
    sms_confirmation: bool = False

    def doctor(self, doctor_id: str | None) -> Doctor | None:
        """The doctor with that id, if the clinic has one."""
        return next((d for d in self.doctors if d.id == doctor_id), None)

    def site(self, clinic_id: str | None) -> ClinicSite | None:
        """The clinic site with that id, or the first site."""
        found = next((s for s in self.sites if s.id == clinic_id), None)
        return found or (self.sites[0] if self.sites else None)


@dataclass(frozen=True)
class ConfirmationText:
    """The text message that confirms a booking to the caller, once it is booked."""

    to_e164: str
    from_e164: str | None
    body: str


@dataclass(frozen=True)
class BookingRequest:
    """A booking the caller confirmed. `patient_id` None means register a new patient.

    `text`: the confirmation to send once Clinicea has it (None: no text)."""

    idempotency_key: str
    doctor_id: str
    start: datetime
    patient_id: str | None
    first_name: str = ""
    last_name: str = ""
    phone_e164: str | None = None
    notes: str = ""
    call_sid: str | None = None
    text: ConfirmationText | None = None


BookingStatus = Literal["booked", "recorded", "slot_taken"]


@dataclass(frozen=True)
class BookingOutcome:
    """What happened to a confirmed booking.

    booked: Clinicea confirmed it. recorded: stored in the outbox, Clinicea did not answer in
    time; the worker will finish it. slot_taken: someone else has that time now.
    `texted`: the request's confirmation text is queued and goes out once it is booked.
    """

    status: BookingStatus
    appointment_id: str | None = None
    patient_id: str | None = None
    texted: bool = False


class ClinicServices(Protocol):
    """The clinic operations a call can use."""

    profile: ClinicProfile

    def now(self) -> datetime:
        """Naive clinic-local current time."""
        ...

    def normalise_phone(self, raw: str) -> str | None:
        """E.164 for a number keyed or said by the caller (clinic region), or None if invalid."""
        ...

    def find_patients(self, phone_e164: str) -> list[PatientRef]:
        """Patients registered on that number (a family may share one)."""
        ...

    def last_visit(self, patient_id: str) -> LastVisit | None:
        """The newest completed visit, or None."""
        ...

    def next_appointment(self, patient_id: str) -> Upcoming | None:
        """The patient's next upcoming appointment that is not cancelled, or None."""
        ...

    def free_slots(
        self, doctor_id: str, *, day: date | None = None, after: datetime | None = None,
        limit: int = 3,
    ) -> list[Slot]:
        """Earliest free slots for a doctor, on one day or from `after` onwards."""
        ...

    def book(self, request: BookingRequest) -> BookingOutcome:
        """Book (idempotent per `request.idempotency_key`); queue `request.text` with it if the
        clinic has texting set up."""
        ...

    def request_callback(self, call_sid: str, phone_e164: str | None, reason: str) -> None:
        """Record that the caller wants the clinic to call back."""
        ...
