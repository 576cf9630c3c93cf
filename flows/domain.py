"""Value types the conversation works with: clinic, doctors, hours, patients, visits, slots.

They are plain frozen dataclasses so that `ivr/` can build them from its config and from
Clinicea's answers, and tests can build them by hand. Times are naive clinic-local datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklyHours:
    """Opening ranges per weekday (0 = Monday); a day with no range is closed."""

    ranges: Mapping[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)

    def on(self, day: date) -> tuple[tuple[time, time], ...]:
        """The ranges open on that calendar day."""
        return tuple(self.ranges.get(day.weekday(), ()))

    def is_open(self, moment: datetime) -> bool:
        """Whether `moment` falls inside an open range (start inclusive, end exclusive)."""
        t = moment.time()
        return any(start <= t < end for start, end in self.on(moment.date()))


@dataclass(frozen=True)
class ClinicSite:
    """One clinic location as Clinicea knows it, with the address read to callers."""

    id: str
    name: str
    address: str
    phone: str | None = None


@dataclass(frozen=True)
class Doctor:
    """A doctor (a Clinicea staff member) callers can book with."""

    id: str
    name: str  # as spoken: "Dr. Ayesha Khan"
    clinic_id: str
    aliases: tuple[str, ...] = ()  # other ways callers say the name ("Ayesha", "Khan")

    @property
    def short_name(self) -> str:
        """Title and surname: "Dr. Khan"."""
        parts = self.name.split()
        if len(parts) >= 3 and parts[0].rstrip(".").lower() in {"dr", "doctor", "prof"}:
            return f"{parts[0]} {parts[-1]}"
        return self.name


@dataclass(frozen=True)
class Service:
    """A bookable service and its length."""

    id: str
    name: str
    minutes: int


@dataclass(frozen=True)
class PatientRef:
    """A patient found by phone number: enough to greet and book, nothing sensitive."""

    id: str
    first_name: str
    last_name: str = ""
    date_of_birth: date | None = None

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class LastVisit:
    """The patient's last completed visit, as it is read back."""

    start: datetime
    doctor_name: str
    doctor_id: str | None
    clinic: ClinicSite | None
    service_name: str | None = None


@dataclass(frozen=True)
class Upcoming:
    """The patient's next booked appointment, as it is read out."""

    id: str
    start: datetime
    doctor_name: str
    doctor_id: str | None
    clinic: ClinicSite | None


@dataclass(frozen=True)
class Slot:
    """A free appointment time for one doctor."""

    doctor_id: str
    start: datetime
    minutes: int
