"""Typed results and requests of the Clinicea client, and the parsing of Clinicea's JSON.

This module is the ONLY place Clinicea's field names (`ID`, `FullName`, `StartDateTime`,
`ClinicAddress1`, ...) appear. Parsing is tolerant where Clinicea is known to vary:

- an answer may be an object or an array (a lone object counts as a one-element list);
- extra fields are ignored; a missing optional field becomes None;
- `0001-01-01T00:00:00` (.NET's unset date) means "no date" and becomes None;
- characters XML cannot hold are removed from every text (`ivr.plaintext.clean`);
- an ID may come as a bare JSON string or inside an object as `ID`/`AppointmentID`/`PatientID`.

What cannot be used raises `ResponseFormatError` (the client turns it into
`CliniceaUnavailable`): a row without its `ID`, an appointment without a start time, a
patient or appointment that is not a JSON object. Times are naive clinic-local datetimes, as
Clinicea sends them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ivr.plaintext import clean

if TYPE_CHECKING:
    from ivr.phone import PhoneNumber

__all__ = [
    "DEFAULT_COMPLETED_STATUSES",
    "Appointment",
    "AppointmentRequest",
    "BookingResult",
    "ClinicInfo",
    "NewPatientRequest",
    "Patient",
    "ResponseFormatError",
    "Visit",
    "format_date",
    "format_datetime",
    "parse_booking",
    "parse_token",
]

DEFAULT_COMPLETED_STATUSES: frozenset[str] = frozenset({"Check Out", "Checked Out", "Completed"})
_INACTIVE_STATUSES = frozenset({"cancelled", "canceled", "noshow"})


class ResponseFormatError(ValueError):
    """Clinicea answered 2xx with something we cannot use (says what, never the data)."""


def status_key(status: str | None) -> str:
    """A status compared case-insensitively and ignoring spaces: "Check Out" == "checkout"."""
    return "".join((status or "").split()).casefold()


# --- small field readers -------------------------------------------------------------------


def _rows(payload: Any) -> list[Any]:
    if payload is None:
        return []
    if isinstance(payload, list):
        return payload
    return [payload]


def _object(row: Any, what: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ResponseFormatError(f"{what}: expected a JSON object, got {type(row).__name__}")
    return row


def _text(row: dict[str, Any], key: str) -> str | None:
    """The field as a stripped string; None when missing, null or blank.

    Every text field of Clinicea's answers comes through here, so this is where characters
    XML cannot hold (control characters, lone surrogates) are removed, once.
    """
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = clean(str(value)).strip()
    return text or None


def _required_id(row: dict[str, Any], what: str, *keys: str) -> str:
    for key in keys:
        value = _text(row, key)
        if value:
            return value
    raise ResponseFormatError(f"{what}: no {'/'.join(keys)}")


def _datetime(value: Any) -> datetime | None:
    """Clinicea's `YYYY-MM-DDTHH:mm:ss` (or a date), naive; the year-1 .NET default is None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().removesuffix("Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    # Times are clinic-local on the wire; an offset, if one ever appears, is dropped, not
    # converted: converting would need the clinic's zone, and reads are proven local.
    return parsed.replace(tzinfo=None)


def _join(*parts: str | None, sep: str = " ") -> str | None:
    joined = sep.join(p for p in parts if p)
    return joined or None


def format_datetime(moment: datetime) -> str:
    """A naive clinic-local datetime as Clinicea wants it: `YYYY-MM-DDTHH:mm:ss`."""
    return moment.replace(microsecond=0, tzinfo=None).isoformat(timespec="seconds")


def format_date(day: date) -> str:
    """A date as `YYYY-MM-DD`."""
    return day.isoformat()


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    """A patient record found by mobile number. Several may share one number (a family)."""

    id: str
    first_name: str | None
    last_name: str | None
    full_name: str | None
    mobile: str | None
    mobile_country_code: str | None
    file_no: str | None
    date_of_birth: date | None

    @classmethod
    def from_api(cls, row: Any) -> Patient:
        """Parse one patient object (`ID` required; names fall back on each other)."""
        row = _object(row, "patient")
        first = _text(row, "FirstName")
        last = _text(row, "LastName")
        full = _text(row, "FullName") or _join(first, last)
        if first is None and full:
            # v2 answers have been seen with only FullName: greet by its first word.
            first = full.split()[0]
        born = _datetime(row.get("DateOfBirth"))
        return cls(
            id=_required_id(row, "patient", "ID", "PatientID"),
            first_name=first,
            last_name=last,
            full_name=full,
            mobile=_text(row, "Mobile"),
            mobile_country_code=_text(row, "MobileCountryCode"),
            file_no=_text(row, "FileNo"),
            date_of_birth=born.date() if born else None,
        )

    @classmethod
    def list_from_api(cls, payload: Any) -> list[Patient]:
        """Every patient in a search answer (object or array; None = none found)."""
        return [cls.from_api(row) for row in _rows(payload)]


@dataclass(frozen=True)
class ClinicInfo:
    """The clinic a visit took place at, with the address read back to callers."""

    id: str | None
    name: str | None
    address: str | None  # "ClinicAddress1, ClinicAddress2, ClinicCity"
    phone: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ClinicInfo | None:
        """The clinic fields of an appointment row; None when the row carries none.

        The `Clinic*` names are our invention (Clinicea's real reference is not public), so
        they live here only.
        """
        info = cls(
            id=_text(row, "ClinicID"),
            name=_text(row, "ClinicName"),
            address=_join(
                _text(row, "ClinicAddress1"),
                _text(row, "ClinicAddress2"),
                _text(row, "ClinicCity"),
                sep=", ",
            ),
            phone=_text(row, "ClinicPhone"),
        )
        return info if (info.id or info.name or info.address) else None


def _doctor_name(row: dict[str, Any]) -> str | None:
    # There is no DoctorName on the wire: the title and names come apart ("Dr.", "Ayesha", ...).
    return _join(
        _text(row, "StaffTitle"), _text(row, "StaffFirstName"), _text(row, "StaffLastName")
    )


def _start(row: dict[str, Any], what: str) -> datetime:
    start = _datetime(row.get("StartDateTime"))
    if start is None:
        raise ResponseFormatError(f"{what}: no usable StartDateTime")
    return start


@dataclass(frozen=True)
class Visit:
    """A past visit of one patient, as read back to the caller."""

    id: str
    start: datetime
    end: datetime | None
    status: str | None
    doctor_id: str | None
    doctor_name: str | None
    service_id: str | None
    service_name: str | None
    clinic: ClinicInfo | None

    @classmethod
    def from_api(cls, row: Any) -> Visit:
        """Parse one appointment row as a visit (`ID` and `StartDateTime` required)."""
        row = _object(row, "visit")
        return cls(
            id=_required_id(row, "visit", "ID", "AppointmentID"),
            start=_start(row, "visit"),
            end=_datetime(row.get("EndDateTime")),
            status=_text(row, "AppointmentStatus"),
            doctor_id=_text(row, "StaffID"),
            doctor_name=_doctor_name(row),
            service_id=_text(row, "ServiceID"),
            service_name=_text(row, "ServiceName"),
            clinic=ClinicInfo.from_row(row),
        )

    @classmethod
    def completed_from_api(
        cls, payload: Any, completed: Iterable[str] = DEFAULT_COMPLETED_STATUSES
    ) -> list[Visit]:
        """The completed visits in a past-appointments answer, newest first.

        Clinicea (and the sandbox, on purpose) may return cancelled and no-show rows and any
        order; only statuses in `completed` (compared by `status_key`) are kept.
        """
        wanted = {status_key(s) for s in completed}
        visits = [cls.from_api(row) for row in _rows(payload)]
        kept = [v for v in visits if status_key(v.status) in wanted]
        return sorted(kept, key=lambda v: v.start, reverse=True)


@dataclass(frozen=True)
class Appointment:
    """One row of a day's calendar (used to work out free slots)."""

    id: str
    start: datetime
    end: datetime | None
    status: str | None
    doctor_id: str | None
    doctor_name: str | None
    patient_id: str | None
    patient_name: str | None
    patient_mobile: str | None

    @property
    def is_active(self) -> bool:
        """False for cancelled and no-show appointments: they do not hold their slot."""
        return status_key(self.status) not in _INACTIVE_STATUSES

    @classmethod
    def from_api(cls, row: Any) -> Appointment:
        """Parse one appointment row (`ID` and `StartDateTime` required)."""
        row = _object(row, "appointment")
        return cls(
            id=_required_id(row, "appointment", "ID", "AppointmentID"),
            start=_start(row, "appointment"),
            end=_datetime(row.get("EndDateTime")),
            status=_text(row, "AppointmentStatus"),
            doctor_id=_text(row, "StaffID"),
            doctor_name=_doctor_name(row),
            patient_id=_text(row, "PatientID"),
            patient_name=_text(row, "PatientName")
            or _join(_text(row, "PatientFirstName"), _text(row, "PatientLastName")),
            patient_mobile=_text(row, "PatientMobile"),
        )

    @classmethod
    def list_from_api(cls, payload: Any) -> list[Appointment]:
        """Every appointment in one page of an answer."""
        return [cls.from_api(row) for row in _rows(payload)]


@dataclass(frozen=True)
class BookingResult:
    """What Clinicea gave back for a booking: its IDs, None where it did not say."""

    appointment_id: str | None
    patient_id: str | None


def parse_booking(payload: Any) -> BookingResult:
    """Read the IDs out of a booking answer, as tolerantly as Clinicea needs.

    A bare string is the appointment ID; an object may carry `AppointmentID` (or `ID`) and
    `PatientID`; a one-element array is unwrapped. Anything else gives None IDs: the write
    itself succeeded (2xx), so an unreadable body must not turn it into a failure.
    """
    if isinstance(payload, list):
        payload = payload[0] if len(payload) == 1 else None
    if isinstance(payload, str):
        return BookingResult(appointment_id=clean(payload).strip() or None, patient_id=None)
    if isinstance(payload, dict):
        return BookingResult(
            appointment_id=_text(payload, "AppointmentID") or _text(payload, "ID"),
            patient_id=_text(payload, "PatientID"),
        )
    return BookingResult(appointment_id=None, patient_id=None)


def parse_token(payload: Any) -> str:
    """The session token from a login answer: a JSON string, or an object's Token/token."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if isinstance(payload, dict):
        payload = payload.get("Token") or payload.get("token") or payload.get("sessionId")
    if isinstance(payload, str) and clean(payload).strip():
        return clean(payload).strip()
    raise ResponseFormatError("login: no token in the answer")


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentRequest:
    """Book an existing patient (`postAppointmentByPatientID`). `start` is clinic-local."""

    patient_id: str
    start: datetime
    doctor_id: str
    clinic_id: str
    service_id: str
    notes: str = ""


@dataclass(frozen=True)
class NewPatientRequest:
    """Register a new patient and book them in one call (`postAppointment`)."""

    first_name: str
    last_name: str
    mobile: PhoneNumber
    start: datetime
    doctor_id: str
    clinic_id: str
    service_id: str
    notes: str = ""
