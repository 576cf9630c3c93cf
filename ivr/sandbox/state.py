"""In-memory state of the sandbox Clinicea: patients, calendar, tokens, faults, request log.

All public methods are thread-safe (one lock; the werkzeug server runs a thread per request).
Reads return wire-format JSON objects (PascalCase dicts, exactly what the HTTP layer sends),
because the only consumer is the sandbox's own Flask app and its admin API. Rejections raise
`SandboxError(status, message)`, which the app answers as plain text.

"Now" comes from the injected clock (naive clinic-local), so tokens expire by the clock too:
a test moves a `FixedClock` 61 minutes forward and the token is gone.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from ivr.sandbox.faults import Faults
from ivr.sandbox.seed import (
    SCHEDULED,
    Seed,
    SeedAppointment,
    SeedClinic,
    SeedPatient,
    SeedService,
    SeedStaff,
    demo_seed,
)

SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_USERNAME = "frontdesk"
SANDBOX_PASSWORD = "sandbox-password"

#: .NET's "no date", what Clinicea sends for an unknown date of birth.
NO_DATE = "0001-01-01T00:00:00"
WIRE_DATETIME = "%Y-%m-%dT%H:%M:%S"


class _Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Credentials:
    """The API key and staff login the sandbox accepts."""

    api_key: str = SANDBOX_API_KEY
    username: str = SANDBOX_USERNAME
    password: str = SANDBOX_PASSWORD


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered (admin requests are not logged)."""

    at: str  # clinic-local time of the request, YYYY-MM-DDTHH:mm:ss
    method: str
    path: str
    operation: str | None  # None: not one of the Clinicea operations (e.g. 404)
    status: int
    query: str  # raw query string as received, secrets (api_key, apiKey, pwd) masked


class SandboxError(Exception):
    """A request the sandbox refuses: answered as `status` with a plain-text `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Token:
    expires: datetime
    generation: int


def national_number(raw: str, country_code: str | None) -> str:
    """The national significant number of a stored or searched mobile, however it was typed.

    Strips everything but digits, a leading `00`, the country code when the number was written
    internationally (`+92...`, `0092...`) or is longer than 10 digits and starts with it
    (`923001234567`), and the trunk `0` (`0300...`): `+92-300-1234567`, `923001234567`,
    `0300 1234567` and `3001234567` all give `3001234567`.
    """
    text = raw.strip()
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+")
    if digits.startswith("00"):
        digits, international = digits[2:], True
    cc = re.sub(r"\D", "", country_code or "") or "92"
    if digits.startswith(cc) and (international or len(digits) > 10):
        digits = digits[len(cc):]
    return digits.lstrip("0")


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def _cc_digits(code: str | None) -> str:
    return re.sub(r"\D", "", code or "")


def wire_datetime(value: datetime) -> str:
    """`YYYY-MM-DDTHH:mm:ss`."""
    return value.strftime(WIRE_DATETIME)


class SandboxState:
    """Everything one sandbox Clinicea holds. Thread-safe.

    `clock.now()` gives naive clinic-local time. `seed` defaults to `demo_seed(clock's today)`.
    `strict` makes the HTTP layer refuse what the real API is believed to refuse (encoded
    colons in datetimes, missing `countrycode`/paging parameters). Tokens live `token_ttl`
    (60 minutes) by the clock.
    """

    def __init__(self, clock: _Clock, *, seed: Seed | None = None,
                 credentials: Credentials | None = None, strict: bool = True,
                 token_ttl: timedelta = timedelta(minutes=60)) -> None:
        self.clock = clock
        self.seed = seed if seed is not None else demo_seed(clock.now().date())
        self.credentials = credentials or Credentials()
        self.strict = strict
        self.token_ttl = token_ttl
        self.faults = Faults()
        self._lock = threading.RLock()
        self._clinics: dict[str, SeedClinic] = {c.id: c for c in self.seed.clinics}
        self._staff: dict[str, SeedStaff] = {s.id: s for s in self.seed.staff}
        self._services: dict[str, SeedService] = {s.id: s for s in self.seed.services}
        self._patients: dict[str, SeedPatient] = {}
        self._appointments: dict[str, SeedAppointment] = {}
        self._tokens: dict[str, _Token] = {}
        self._log: list[RequestRecord] = []
        self.reset()

    # -- admin ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed: patients, calendar; no tokens, no faults, empty request log."""
        with self._lock:
            self._patients = {p.id: p for p in self.seed.patients}
            self._appointments = {a.id: a for a in self.seed.appointments}
            self._tokens.clear()
            self._log.clear()
            self.faults.clear()

    def expire_tokens(self) -> None:
        """Invalidate every issued token (same as `faults.expire_tokens()`)."""
        self.faults.expire_tokens()

    def log_request(self, record: RequestRecord) -> None:
        """Append to the request log."""
        with self._lock:
            self._log.append(record)

    def requests(self) -> list[RequestRecord]:
        """The request log, oldest first."""
        with self._lock:
            return list(self._log)

    def calendar(self, day: date | None = None) -> list[dict[str, Any]]:
        """Appointment rows (all statuses) of `day`, or of every day, by start time."""
        with self._lock:
            appts = [a for a in self._appointments.values()
                     if day is None or a.start.date() == day]
            return [self._row(a) for a in sorted(appts, key=lambda a: (a.start, a.staff_id))]

    def patients(self) -> list[dict[str, Any]]:
        """Every patient object, in file-number order."""
        with self._lock:
            return [_patient_json(p) for p in sorted(self._patients.values(),
                                                     key=lambda p: p.file_no)]

    # -- auth ----------------------------------------------------------------------------------

    def login(self, api_key: str, username: str, password: str) -> str:
        """Issue a token for the staff login, or SandboxError 401."""
        creds = self.credentials
        ok = (_same(api_key, creds.api_key)
              and _same(username.lower(), creds.username.lower())
              and _same(password, creds.password))
        if not ok:
            raise SandboxError(401, "Invalid API key, username or password.")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(self.clock.now() + self.token_ttl,
                                         self.faults.token_generation)
        return token

    def authenticate(self, api_key: str | None) -> None:
        """Accept a live token this sandbox issued, or the raw API key; else SandboxError 401."""
        if not api_key:
            raise SandboxError(401, "Authorization has been denied for this request.")
        if _same(api_key, self.credentials.api_key):
            return
        with self._lock:
            token = self._tokens.get(api_key)
            if token is None:
                raise SandboxError(401, "Authorization has been denied for this request.")
            if (token.generation != self.faults.token_generation
                    or self.clock.now() >= token.expires):
                del self._tokens[api_key]
                raise SandboxError(401, "Authorization has been denied for this request. "
                                        "Token expired.")

    # -- reads ---------------------------------------------------------------------------------

    def search_patients(self, patmobile: str, countrycode: str | None) -> list[dict[str, Any]]:
        """Patients whose stored mobile has the same national number (and country code)."""
        wanted = national_number(patmobile, countrycode)
        if not wanted:
            return []
        cc = _cc_digits(countrycode)
        with self._lock:
            found = [p for p in self._patients.values()
                     if national_number(p.mobile, p.mobile_country_code) == wanted
                     and (not cc or _cc_digits(p.mobile_country_code) == cc)]
            return [_patient_json(p) for p in sorted(found, key=lambda p: p.file_no)]

    def past_visits(self, patient_id: str) -> list[dict[str, Any]]:
        """All past rows of the patient, oldest first, every status (deliberately pessimistic)."""
        now = self.clock.now()
        with self._lock:
            rows = [a for a in self._appointments.values()
                    if a.patient_id.lower() == patient_id.lower() and a.start < now]
            return [self._row(a) for a in sorted(rows, key=lambda a: a.start)]

    def upcoming_appointments(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient's rows from now on, soonest first, every status (cancelled too)."""
        now = self.clock.now()
        with self._lock:
            rows = [a for a in self._appointments.values()
                    if a.patient_id.lower() == patient_id.lower() and a.start >= now]
            return [self._row(a) for a in sorted(rows, key=lambda a: a.start)]

    def appointments_on(self, day: date) -> list[dict[str, Any]]:
        """Rows of one day, every status, by start time (the caller pages them)."""
        return self.calendar(day)

    # -- writes --------------------------------------------------------------------------------

    def book(self, patient_id: str, start: datetime, staff_id: str, clinic_id: str,
             service_id: str, notes: str = "") -> tuple[str, str]:
        """Book an existing patient; returns (AppointmentID, PatientID) or SandboxError 400."""
        with self._lock:
            patient = self._find(self._patients, patient_id, "patientID")
            appt = self._new_appointment(patient.id, start, staff_id, clinic_id, service_id,
                                         notes)
            self._appointments[appt.id] = appt
            return appt.id, patient.id

    def register_and_book(self, first_name: str, last_name: str, mobile: str,
                          mobile_country_code: str, start: datetime, staff_id: str,
                          clinic_id: str, service_id: str, notes: str = ""
                          ) -> tuple[str, str]:
        """Create the patient (mobile stored as given) and book; both or neither."""
        if not first_name.strip():
            raise SandboxError(400, "firstName is required.")
        if not national_number(mobile, mobile_country_code):
            raise SandboxError(400, "mobile is required.")
        cc = _cc_digits(mobile_country_code)
        if not cc:
            raise SandboxError(400, "mobileCountryCode is required.")
        with self._lock:
            patient_id = str(uuid.uuid4())
            appt = self._new_appointment(patient_id, start, staff_id, clinic_id, service_id,
                                         notes)
            file_no = f"HFC-{1001 + len(self._patients)}"
            self._patients[patient_id] = SeedPatient(
                patient_id, file_no, first_name.strip(), last_name.strip(), mobile.strip(),
                f"+{cc}", None)
            self._appointments[appt.id] = appt
            return appt.id, patient_id

    def set_status(self, appointment_id: str, status: str) -> None:
        """Change an appointment's status (tests: cancel a booking, mark a visit done)."""
        with self._lock:
            appt = self._find(self._appointments, appointment_id, "appointmentID")
            self._appointments[appt.id] = replace(appt, status=status)

    # -- helpers (call with the lock held) -----------------------------------------------------

    @staticmethod
    def _find(table: dict[str, Any], key: str, what: str) -> Any:
        for k, v in table.items():
            if k.lower() == key.strip().lower():
                return v
        raise SandboxError(400, f"Invalid {what}: {key}")

    def _new_appointment(self, patient_id: str, start: datetime, staff_id: str, clinic_id: str,
                         service_id: str, notes: str) -> SeedAppointment:
        staff = self._find(self._staff, staff_id, "staffID")
        clinic = self._find(self._clinics, clinic_id, "clinicID")
        service = self._find(self._services, service_id, "serviceID")
        if start < self.clock.now():
            raise SandboxError(400, "Appointment date and time cannot be in the past.")
        end = start + timedelta(minutes=service.minutes)
        for other in self._appointments.values():
            if (other.staff_id == staff.id and other.is_active
                    and other.start < end and start < other.end
                    and not self.faults.overlaps_allowed):
                raise SandboxError(400, "The selected slot is not available")
        return SeedAppointment(str(uuid.uuid4()), patient_id, staff.id, clinic.id, service.id,
                               start, end, SCHEDULED, notes)

    def _row(self, a: SeedAppointment) -> dict[str, Any]:
        staff = self._staff[a.staff_id]
        service = self._services[a.service_id]
        clinic = self._clinics[a.clinic_id]
        patient = self._patients.get(a.patient_id)
        return {
            "ID": a.id,
            "StartDateTime": wire_datetime(a.start),
            "EndDateTime": wire_datetime(a.end),
            "AppointmentStatus": a.status,
            "StaffID": staff.id,
            "StaffTitle": staff.title,
            "StaffFirstName": staff.first_name,
            "StaffLastName": staff.last_name,
            "ServiceID": service.id,
            "ServiceName": service.name,
            "PatientID": a.patient_id,
            "PatientName": patient.full_name if patient else "",
            "PatientFirstName": patient.first_name if patient else "",
            "PatientLastName": patient.last_name if patient else "",
            "PatientMobile": patient.mobile if patient else "",
            "ClinicID": clinic.id,
            "ClinicName": clinic.name,
            "ClinicAddress1": clinic.address1,
            "ClinicAddress2": clinic.address2,
            "ClinicCity": clinic.city,
            "ClinicState": clinic.state,
            "ClinicPostalCode": clinic.postal_code,
            "ClinicPhone": clinic.phone,
            "Notes": a.notes,
        }


def _patient_json(p: SeedPatient) -> dict[str, Any]:
    return {
        "ID": p.id,
        "FileNo": p.file_no,
        "FullName": p.full_name,
        "FirstName": p.first_name,
        "LastName": p.last_name,
        "Mobile": p.mobile,
        "MobileCountryCode": p.mobile_country_code,
        "DateOfBirth": (p.date_of_birth.strftime("%Y-%m-%dT00:00:00")
                        if p.date_of_birth else NO_DATE),
    }
