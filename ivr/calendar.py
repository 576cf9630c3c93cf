"""Clinicea's day calendar as the IVR reads it: a short-lived cache and row matching.

- `DayCalendar`: a day's appointment rows for `ttl` seconds, shared by the call's lookups
  and the booking attempts of one process (`ivr.outbox.Outbox` drops a day after every
  attempt, whoever made it: web request, console retry or worker). Thread-safe.
- `name_key`, `doctor_matches`, `doctor_intervals`, `find_booked`: which rows belong to a
  doctor, when they are busy, and whether a stored booking is already in the calendar.
"""

from __future__ import annotations

import re
import threading
import time as _time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from ivr.clinicea.models import Appointment
from ivr.phone import parse_phone

if TYPE_CHECKING:
    from ivr.booking_payload import BookingPayload
    from ivr.clinicea import CliniceaClient

_TITLES = {"dr", "doctor", "prof", "professor", "mr", "mrs", "ms", "miss"}


class DayCalendar:
    """A day's calendar rows for `ttl` seconds (see the module docstring)."""

    def __init__(self, client: CliniceaClient, ttl: float = 45.0,
                 monotonic: Callable[[], float] = _time.monotonic) -> None:
        self.client = client
        self._ttl = ttl
        self._monotonic = monotonic
        self._rows: dict[date, tuple[float, list[Appointment]]] = {}
        self._lock = threading.Lock()

    def get(self, day: date) -> list[Appointment] | None:
        """The cached rows of `day`, or None when not cached or expired."""
        with self._lock:
            hit = self._rows.get(day)
            if hit is None:
                return None
            if self._monotonic() - hit[0] >= self._ttl:
                del self._rows[day]
                return None
            return hit[1]

    def put(self, day: date, rows: list[Appointment]) -> None:
        """Cache the rows of `day` (and forget expired days: keep it small)."""
        with self._lock:
            self._rows[day] = (self._monotonic(), rows)
            now = self._monotonic()
            for stale in [d for d, (t, _) in self._rows.items() if now - t >= self._ttl]:
                del self._rows[stale]

    def appointments_on(self, day: date) -> list[Appointment]:
        """The rows of `day`: cached, else fetched from Clinicea (and cached)."""
        cached = self.get(day)
        if cached is not None:
            return cached
        return self.fetch(day)

    def fetch(self, day: date) -> list[Appointment]:
        """The rows of `day` fresh from Clinicea (and cached)."""
        rows = self.client.appointments_on(day)
        self.put(day, rows)
        return rows

    def forget(self, day: date) -> None:
        """Drop a day (after a booking attempt that may have changed it)."""
        with self._lock:
            self._rows.pop(day, None)


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
