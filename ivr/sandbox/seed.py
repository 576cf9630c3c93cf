"""Seed data of the sandbox Clinicea: the demo clinic "Harbour Family Clinic".

The clinic itself (two sites, four doctors, three services, their fixed GUIDs, opening hours,
slot length) is read from `demo_clinic.toml` beside this module, the clinic file demo mode
serves (`ivr.config.DEMO_CLINIC`), so the IVR and its sandbox always name the same doctors.
This module adds what only Clinicea holds: about twenty patients, and appointments placed
relative to `today` by `demo_seed(today)`.

Past visits fall between 10:00 and 12:40, open on every open day of the file's hours (sundays
are closed: a visit that would land on one moves to the Saturday before).

Stored numbers deliberately come in mixed formats (`+92...`, `92...`, `03...`, `3...`, with spaces,
dashes, a leading `00`), as in real Clinicea data. `MobileCountryCode` is always stored apart.

Named patients for tests (`DEMO_PATIENTS`, keyed by full name; phones in E.164)::

    patient          E.164           stored as          what is special
    Bilal Ahmed      +923216315551   +923216315551      the call-script caller: last completed
                                                        visit 14 days ago with Dr. Nadia Farooq
                                                        at Clifton (an older one 90 days ago with
                                                        Dr. Omar Sheikh); a NEWER Cancelled row 5
                                                        days ago with Dr. Ayesha Khan at Gulshan:
                                                        a client that forgets to filter reads it
    Kamran Ahmed     +923001234567   923001234567       family number (father)
    Sana Ahmed       +923001234567   0300 1234567       family number (mother)
    Zoya Ahmed       +923001234567   +92-300-1234567    family number (child, born 2016); newest
                                                        past row is No Show (10 days ago)
    Hira Malik       +923331234567   03331234567        no appointments at all; no date of birth
    Usman Tariq      +923451234567   3451234567         newest past row is No Show (3 days ago);
                                                        last completed 40 days ago, Dr. Sheikh
    Ayesha Siddiqui  +923007654321   0300 765 4321      completed 7 days ago with Dr. Bilal
                                                        Qureshi at Gulshan
    Faisal Raza      +923215550001   +92-321-5550001    completed 120 days ago with Dr. Farooq;
                                                        Cancelled 20 days ago
    Mariam Hussain   +923125550002   +923125550002      past rows but none completed (Cancelled)
    Hamza Iqbal      +923335550003   00923335550003     stored with a leading 00
    Sarah Collins    +447700900123   07700 900123       UK number, MobileCountryCode "+44": found
                                                        only with countrycode +44

Eleven more patients (Fatima Zahid, Ali Raza, Zainab Chaudhry, Imran Butt, Nida Aslam, Saad
Mirza, Rabia Anwar, Tariq Mehmood, Amna Yousaf, Junaid Akhtar, Sadia Noor) fill the calendar.

Tomorrow (the next open day after `today`) is partly booked from opening time `T`: Dr. Farooq at
`T` (Scheduled), `T+20` (Confirmed), `T+40` (**Cancelled**: the slot is free), `T+60` (Scheduled);
Dr. Khan at `T`, `T+40`, `T+80` (Scheduled). All other doctors and times are free.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from importlib.resources import files
from typing import Any

SCHEDULED = "Scheduled"
CONFIRMED = "Confirmed"
CHECK_OUT = "Check Out"
CANCELLED = "Cancelled"
NO_SHOW = "No Show"
#: Statuses that do not hold a slot.
INACTIVE_STATUSES = frozenset({CANCELLED, NO_SHOW})

_APPOINTMENT_NAMESPACE = uuid.UUID("3c0ffee0-1a2b-4c3d-8e4f-5a6b7c8d9e0f")


@dataclass(frozen=True)
class SeedClinic:
    """A clinic location (the `Clinic*` fields of appointment rows, our invention)."""

    id: str
    name: str
    address1: str
    address2: str
    city: str
    state: str
    postal_code: str
    phone: str


@dataclass(frozen=True)
class SeedStaff:
    """A doctor (Clinicea staff member) and the clinic they work at."""

    id: str
    title: str
    first_name: str
    last_name: str
    clinic_id: str

    @property
    def name(self) -> str:
        """"Dr. Nadia Farooq"."""
        return f"{self.title} {self.first_name} {self.last_name}"


@dataclass(frozen=True)
class SeedService:
    """A bookable service and its length in minutes."""

    id: str
    name: str
    minutes: int


@dataclass(frozen=True)
class SeedPatient:
    """A patient record as Clinicea stores it (`mobile` exactly as typed at the desk)."""

    id: str
    file_no: str
    first_name: str
    last_name: str
    mobile: str
    mobile_country_code: str
    date_of_birth: date | None

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class SeedAppointment:
    """One calendar entry; `start`/`end` are naive clinic-local datetimes."""

    id: str
    patient_id: str
    staff_id: str
    clinic_id: str
    service_id: str
    start: datetime
    end: datetime
    status: str
    notes: str = ""

    @property
    def is_active(self) -> bool:
        """Whether it holds its slot (not Cancelled / No Show)."""
        return self.status not in INACTIVE_STATUSES


@dataclass(frozen=True)
class Seed:
    """Everything the sandbox starts with (and returns to on reset)."""

    clinics: tuple[SeedClinic, ...]
    staff: tuple[SeedStaff, ...]
    services: tuple[SeedService, ...]
    patients: tuple[SeedPatient, ...]
    appointments: tuple[SeedAppointment, ...]
    hours: Mapping[int, tuple[tuple[time, time], ...]]
    slot_minutes: int = 20


@dataclass(frozen=True)
class DemoPatient:
    """What tests need to know about a named seed patient."""

    id: str
    first_name: str
    last_name: str
    e164: str
    stored_mobile: str
    note: str

    @property
    def name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}"

    @property
    def national(self) -> str:
        """National significant number (what the client sends as `patmobile`)."""
        return self.e164[3:]

    @property
    def country_code(self) -> str:
        """"+92" (or "+44" for the one UK patient)."""
        return self.e164[:3]


#: The demo clinic file (clinic TOML, as `ivr.config.load_clinic_config` reads it).
DEMO_CLINIC_TOML: str = (files("ivr.sandbox") / "demo_clinic.toml").read_text(encoding="utf-8")
_FILE: dict[str, Any] = tomllib.loads(DEMO_CLINIC_TOML)


def _id(section: str, name: str) -> str:
    """The id of the `[[section]]` entry called `name` in the demo clinic file."""
    return next(str(entry["id"]) for entry in _FILE[section] if entry["name"] == name)


DEMO_CLINIC_CLIFTON_ID = _id("clinics", "Harbour Family Clinic Clifton")
DEMO_CLINIC_GULSHAN_ID = _id("clinics", "Harbour Family Clinic Gulshan")
DEMO_DOCTOR_FAROOQ_ID = _id("doctors", "Dr. Nadia Farooq")  # Clifton
DEMO_DOCTOR_SHEIKH_ID = _id("doctors", "Dr. Omar Sheikh")  # Clifton
DEMO_DOCTOR_KHAN_ID = _id("doctors", "Dr. Ayesha Khan")  # Gulshan
DEMO_DOCTOR_QURESHI_ID = _id("doctors", "Dr. Bilal Qureshi")  # Gulshan
DEMO_SERVICE_CONSULTATION_ID = _id("services", "Consultation")
DEMO_SERVICE_FOLLOWUP_ID = _id("services", "Follow-up")
DEMO_SERVICE_VACCINATION_ID = _id("services", "Vaccination")

# Address fields Clinicea keeps and a clinic file has no key for: province and postal code.
_PROVINCE_AND_POSTCODE = {
    DEMO_CLINIC_CLIFTON_ID: ("Sindh", "75600"),
    DEMO_CLINIC_GULSHAN_ID: ("Sindh", "75300"),
}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clinic(entry: Mapping[str, Any]) -> SeedClinic:
    street, area, city = (part.strip() for part in entry["address"].split(","))
    province, postcode = _PROVINCE_AND_POSTCODE[entry["id"]]
    return SeedClinic(entry["id"], entry["name"], street, area, city, province, postcode,
                      entry["phone"])


def _staff(entry: Mapping[str, Any]) -> SeedStaff:
    title, first, last = entry["name"].split(" ", 2)  # "Dr. Nadia Farooq"
    return SeedStaff(entry["id"], title, first, last, entry["clinic_id"])


def _day(value: str) -> tuple[tuple[time, time], ...]:
    """ "09:00-13:00, 14:00-17:00" or "closed" (the file is validated by ivr.config)."""
    if value.strip() == "closed":
        return ()
    pairs = (part.strip().split("-") for part in value.split(","))
    return tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in pairs)


DEMO_CLINICS: tuple[SeedClinic, ...] = tuple(_clinic(e) for e in _FILE["clinics"])
DEMO_STAFF: tuple[SeedStaff, ...] = tuple(_staff(e) for e in _FILE["doctors"])
DEMO_SERVICES: tuple[SeedService, ...] = tuple(
    SeedService(e["id"], e["name"], e["minutes"]) for e in _FILE["services"]
)
#: Opening hours by weekday (Monday 0); a day the file does not list is closed.
DEMO_HOURS: Mapping[int, tuple[tuple[time, time], ...]] = {
    index: _day(_FILE["hours"].get(day, "closed")) for index, day in enumerate(_WEEKDAYS)
}
DEMO_SLOT_MINUTES: int = _FILE["slot_minutes"]


def _pid(n: int) -> str:
    return f"9d4e5f60-7a1b-4c2d-8e3f-4a5b6c7d8e{n:02d}"


# (number, first, last, stored mobile, country code, date of birth, E.164 or None, note)
_PATIENTS: tuple[tuple[int, str, str, str, str, date | None, str, str], ...] = (
    (1, "Bilal", "Ahmed", "+923216315551", "+92", date(1985, 6, 14), "+923216315551",
     "last completed visit 14 days ago with Dr. Nadia Farooq at Clifton; a newer Cancelled row "
     "(5 days ago, Dr. Khan, Gulshan)"),
    (2, "Kamran", "Ahmed", "923001234567", "+92", date(1980, 2, 3), "+923001234567",
     "family number (father)"),
    (3, "Sana", "Ahmed", "0300 1234567", "+92", date(1984, 9, 21), "+923001234567",
     "family number (mother)"),
    (4, "Zoya", "Ahmed", "+92-300-1234567", "+92", date(2016, 4, 11), "+923001234567",
     "family number (child); newest past row is No Show"),
    (5, "Hira", "Malik", "03331234567", "+92", None, "+923331234567",
     "no appointments at all; date of birth unknown"),
    (6, "Usman", "Tariq", "3451234567", "+92", date(1990, 12, 1), "+923451234567",
     "newest past row is No Show; last completed 40 days ago with Dr. Sheikh"),
    (7, "Ayesha", "Siddiqui", "0300 765 4321", "+92", date(1992, 3, 30), "+923007654321",
     "completed visit 7 days ago with Dr. Bilal Qureshi at Gulshan"),
    (8, "Faisal", "Raza", "+92-321-5550001", "+92", date(1975, 7, 7), "+923215550001",
     "completed 120 days ago with Dr. Farooq, Cancelled 20 days ago"),
    (9, "Mariam", "Hussain", "+923125550002", "+92", date(1998, 1, 19), "+923125550002",
     "past rows but none completed (one Cancelled)"),
    (10, "Hamza", "Iqbal", "00923335550003", "+92", date(1988, 5, 5), "+923335550003",
     "stored with a leading 00"),
    (11, "Fatima", "Zahid", "0321-5550004", "+92", date(1979, 11, 23), "+923215550004", ""),
    (12, "Ali", "Raza", "3005550005", "+92", date(2001, 8, 15), "+923005550005", ""),
    (13, "Zainab", "Chaudhry", "+92 301 5550006", "+92", date(1995, 2, 28), "+923015550006", ""),
    (14, "Imran", "Butt", "92 345 5550007", "+92", date(1970, 10, 10), "+923455550007", ""),
    (15, "Nida", "Aslam", "03455550008", "+92", date(1993, 4, 4), "+923455550008", ""),
    (16, "Saad", "Mirza", "+923335550009", "+92", None, "+923335550009", ""),
    (17, "Rabia", "Anwar", "0333 5550010", "+92", date(1987, 9, 9), "+923335550010", ""),
    (18, "Tariq", "Mehmood", "923215550011", "+92", date(1965, 6, 1), "+923215550011", ""),
    (19, "Amna", "Yousaf", "3125550012", "+92", date(1999, 12, 12), "+923125550012", ""),
    (20, "Junaid", "Akhtar", "+92 300 5550013", "+92", date(1983, 3, 3), "+923005550013", ""),
    (21, "Sadia", "Noor", "0312-555-0014", "+92", date(1991, 7, 21), "+923125550014", ""),
    (22, "Sarah", "Collins", "07700 900123", "+44", date(1986, 1, 2), "+447700900123",
     "UK number: found only with countrycode +44"),
)

#: Named seed patients, keyed by full name ("Bilal Ahmed"); see the module docstring.
DEMO_PATIENTS: Mapping[str, DemoPatient] = {
    f"{first} {last}": DemoPatient(_pid(n), first, last, e164, stored, note)
    for n, first, last, stored, _cc, _dob, e164, note in _PATIENTS
}

# Past rows: (patient no, days ago, "HH:MM", staff id, service id, status)
_PAST: tuple[tuple[int, int, str, str, str, str], ...] = (
    (1, 90, "11:00", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (1, 14, "10:00", DEMO_DOCTOR_FAROOQ_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (1, 5, "11:20", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_FOLLOWUP_ID, CANCELLED),
    (2, 30, "10:40", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (3, 60, "12:00", DEMO_DOCTOR_QURESHI_ID, DEMO_SERVICE_VACCINATION_ID, CHECK_OUT),
    (4, 45, "10:20", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_VACCINATION_ID, CHECK_OUT),
    (4, 10, "10:20", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_VACCINATION_ID, NO_SHOW),
    (6, 40, "12:20", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (6, 3, "12:20", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_FOLLOWUP_ID, NO_SHOW),
    (7, 7, "11:40", DEMO_DOCTOR_QURESHI_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (8, 120, "10:00", DEMO_DOCTOR_FAROOQ_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (8, 20, "10:40", DEMO_DOCTOR_FAROOQ_ID, DEMO_SERVICE_FOLLOWUP_ID, CANCELLED),
    (9, 12, "11:00", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_CONSULTATION_ID, CANCELLED),
    (10, 21, "12:40", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (11, 200, "10:20", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (13, 35, "11:20", DEMO_DOCTOR_FAROOQ_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (14, 9, "12:00", DEMO_DOCTOR_QURESHI_ID, DEMO_SERVICE_FOLLOWUP_ID, CHECK_OUT),
    (15, 18, "10:40", DEMO_DOCTOR_KHAN_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (17, 50, "11:40", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (18, 75, "12:00", DEMO_DOCTOR_QURESHI_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
    (19, 28, "10:00", DEMO_DOCTOR_FAROOQ_ID, DEMO_SERVICE_FOLLOWUP_ID, CHECK_OUT),
    (22, 25, "11:00", DEMO_DOCTOR_SHEIKH_ID, DEMO_SERVICE_CONSULTATION_ID, CHECK_OUT),
)

# Tomorrow: (patient no, minutes after opening, staff id, status)
_TOMORROW: tuple[tuple[int, int, str, str], ...] = (
    (15, 0, DEMO_DOCTOR_FAROOQ_ID, SCHEDULED),
    (16, 20, DEMO_DOCTOR_FAROOQ_ID, CONFIRMED),
    (12, 40, DEMO_DOCTOR_FAROOQ_ID, CANCELLED),
    (17, 60, DEMO_DOCTOR_FAROOQ_ID, SCHEDULED),
    (20, 0, DEMO_DOCTOR_KHAN_ID, SCHEDULED),
    (21, 40, DEMO_DOCTOR_KHAN_ID, SCHEDULED),
    (19, 80, DEMO_DOCTOR_KHAN_ID, SCHEDULED),
)


def next_open_day(after: date, hours: Mapping[int, tuple[tuple[time, time], ...]] = DEMO_HOURS
                  ) -> date:
    """The first day after `after` with opening hours."""
    day = after + timedelta(days=1)
    for _ in range(14):
        if hours.get(day.weekday()):
            return day
        day += timedelta(days=1)
    raise ValueError("no open day in the next two weeks")


def _past_day(today: date, days_ago: int) -> date:
    day = today - timedelta(days=days_ago)
    while not DEMO_HOURS.get(day.weekday()):
        day -= timedelta(days=1)
    return day


def demo_seed(today: date) -> Seed:
    """The demo clinic with appointments placed relative to `today` (see the module docstring)."""
    staff_clinic = {s.id: s.clinic_id for s in DEMO_STAFF}
    minutes = {s.id: s.minutes for s in DEMO_SERVICES}
    patients = tuple(
        SeedPatient(_pid(n), f"HFC-{1000 + n}", first, last, stored, cc, dob)
        for n, first, last, stored, cc, dob, _e164, _note in _PATIENTS
    )
    appointments: list[SeedAppointment] = []
    for i, (n, days_ago, hhmm, staff_id, service_id, status) in enumerate(_PAST):
        hh, mm = (int(x) for x in hhmm.split(":"))
        start = datetime.combine(_past_day(today, days_ago), time(hh, mm))
        appointments.append(SeedAppointment(
            str(uuid.uuid5(_APPOINTMENT_NAMESPACE, f"past-{i}")), _pid(n), staff_id,
            staff_clinic[staff_id], service_id, start,
            start + timedelta(minutes=minutes[service_id]), status))
    tomorrow = next_open_day(today)
    opening = datetime.combine(tomorrow, DEMO_HOURS[tomorrow.weekday()][0][0])
    for i, (n, offset, staff_id, status) in enumerate(_TOMORROW):
        start = opening + timedelta(minutes=offset)
        appointments.append(SeedAppointment(
            str(uuid.uuid5(_APPOINTMENT_NAMESPACE, f"tomorrow-{i}")), _pid(n), staff_id,
            staff_clinic[staff_id], DEMO_SERVICE_CONSULTATION_ID, start,
            start + timedelta(minutes=20), status))
    return Seed(DEMO_CLINICS, DEMO_STAFF, DEMO_SERVICES, patients, tuple(appointments),
                DEMO_HOURS, DEMO_SLOT_MINUTES)
