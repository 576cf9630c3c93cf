"""Who gets reminded of what, how and when: the pure planning of a day's reminder run.

A run takes the appointments of one day (`DayAppointment`, built by the edge from Clinicea's
`getAppointmentsByDate` rows) and plans one `Reminder` per patient: only Scheduled and
Confirmed appointments count, a patient with several appointments that day gets one reminder
naming them all (grouped by patient id, else by mobile number), and every reminder and every
appointment in it carries a stable key. The store keeps those keys unique, so a run restarted
half way plans the same keys again and inserts only the ones it had not written: nobody is
skipped, nobody is reminded twice.

Calls are placed by channel rules (`first_channel`, `sms_after_call`) and by a schedule
(`call_times`): at most `per_second` calls a second, only inside the clinic's calling hours.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flows.domain import WeeklyHours

#: Appointment statuses that are reminded (Clinicea's words, compared case- and space-blind).
REMINDED_STATUSES = frozenset({"scheduled", "confirmed"})
#: The channels a clinic may list in its `[reminders] channels`.
CHANNELS = ("call", "sms")
#: Final statuses of a call (Twilio's CallStatus) after which the patient gets the SMS instead.
CALL_NOT_REACHED = frozenset({"busy", "no-answer", "failed", "canceled"})
#: Twilio's AnsweredBy values that mean an answering machine or a fax, not a person.
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence",
                             "machine_end_other", "fax"})


@dataclass(frozen=True)
class DayAppointment:
    """One appointment of the run's day, as the planner needs it (naive clinic-local times)."""

    id: str
    start: datetime
    status: str | None
    patient_id: str | None
    patient_name: str  # as Clinicea has it: "Bilal Ahmed"
    mobile: str | None  # E.164, normalised by the edge; None when Clinicea has none or a bad one
    doctor_id: str | None = None
    doctor_name: str = ""
    clinic_id: str | None = None

    @property
    def first_name(self) -> str:
        """The first word of the patient's name (what the call greets)."""
        parts = self.patient_name.split()
        return parts[0] if parts else ""


@dataclass(frozen=True)
class Reminder:
    """One patient's reminder for one day: every appointment of theirs that day, in time order.

    `key` is unique per (day, patient) and `item_keys` per appointment: the store's unique keys.
    `status` is "queued", or "opted_out" for a number that said STOP (kept so the desk sees it).
    """

    key: str
    day: date
    patient_id: str | None
    first_name: str
    mobile: str
    appointments: tuple[DayAppointment, ...]
    channels: tuple[str, ...]
    status: str = "queued"

    @property
    def item_keys(self) -> tuple[str, ...]:
        """One key per appointment: an appointment is in at most one reminder per day."""
        return tuple(appointment_key(self.day, a.id) for a in self.appointments)

    @property
    def first(self) -> DayAppointment:
        """The earliest appointment (the one a call offers to move)."""
        return self.appointments[0]


@dataclass(frozen=True)
class Skipped:
    """An appointment that gets no reminder, and why (`ivr remind --dry-run` prints it)."""

    appointment_id: str
    reason: str  # "status <status>" / "no mobile" / "already started"


@dataclass(frozen=True)
class DayPlan:
    """The reminders of a day's run and the appointments left out."""

    day: date
    reminders: tuple[Reminder, ...]
    skipped: tuple[Skipped, ...]


def status_key(status: str | None) -> str:
    """ "Check Out" -> "checkout", "No Show" -> "noshow": Clinicea's spelling varies."""
    return "".join((status or "").lower().split()).replace("_", "").replace("-", "")


def is_reminded(status: str | None) -> bool:
    """Only Scheduled and Confirmed appointments are reminded (not cancelled, no-show, arrived,
    checked in or out, nor a status we do not know)."""
    return status_key(status) in REMINDED_STATUSES


def reminder_key(day: date, patient_id: str | None, mobile: str | None) -> str:
    """The (day, patient) key: by patient id, else by the mobile number."""
    who = f"p:{patient_id}" if patient_id else f"m:{mobile}"
    return f"{day.isoformat()}/{who}"


def appointment_key(day: date, appointment_id: str) -> str:
    """The (day, appointment) key."""
    return f"{day.isoformat()}/a:{appointment_id}"


def parse_channels(raw: Iterable[str]) -> tuple[str, ...]:
    """The clinic file's `channels` list, checked and in a fixed order; ValueError names the
    wrong one."""
    given = [str(c).strip().lower() for c in raw]
    for channel in given:
        if channel not in CHANNELS:
            raise ValueError(f"unknown reminder channel {channel!r} (use call and/or sms)")
    return tuple(c for c in CHANNELS if c in given)


def plan_day(
    day: date,
    appointments: Iterable[DayAppointment],
    *,
    channels: Sequence[str],
    now: datetime,
    opted_out: Collection[str] = (),
) -> DayPlan:
    """Plan the reminders of `day` (see the module docstring).

    An appointment that has already started (`now` past its start) is left out; a number in
    `opted_out` (E.164) is planned with status "opted_out" and no channel.
    """
    chosen = parse_channels(channels)
    skipped: list[Skipped] = []
    groups: dict[str, list[DayAppointment]] = {}
    numbers: dict[str, str] = {}  # patient id -> the first mobile seen for them
    for appt in sorted(appointments, key=lambda a: (a.start, a.id)):
        if not is_reminded(appt.status):
            skipped.append(Skipped(appt.id, f"status {appt.status or 'unknown'}"))
            continue
        if appt.start <= now:
            skipped.append(Skipped(appt.id, "already started"))
            continue
        mobile = appt.mobile or (numbers.get(appt.patient_id) if appt.patient_id else None)
        if not mobile:
            skipped.append(Skipped(appt.id, "no mobile"))
            continue
        if appt.patient_id:
            numbers.setdefault(appt.patient_id, mobile)
        key = reminder_key(day, appt.patient_id, mobile)
        group = groups.setdefault(key, [])
        if all(a.id != appt.id for a in group):  # a row listed twice (two pages) counts once
            group.append(appt)
    reminders = []
    for key, group in groups.items():
        first = group[0]
        mobile = first.mobile or numbers.get(first.patient_id or "", "")
        out = mobile in opted_out
        reminders.append(Reminder(
            key=key, day=day, patient_id=first.patient_id, first_name=first.first_name,
            mobile=mobile, appointments=tuple(group), channels=() if out else chosen,
            status="opted_out" if out else "queued",
        ))
    reminders.sort(key=lambda r: (r.first.start, r.key))
    return DayPlan(day, tuple(reminders), tuple(skipped))


# --- channels ------------------------------------------------------------------------------


def first_channel(channels: Sequence[str]) -> str | None:
    """How a reminder goes out first: a call when the clinic calls, else a text."""
    if "call" in channels:
        return "call"
    return "sms" if "sms" in channels else None


def sms_after_call(channels: Sequence[str], call_status: str, answered_by: str | None) -> bool:
    """Whether a call's end sends the text too: the clinic texts, and the call reached no one
    (busy, no answer, failed) or a machine."""
    if "sms" not in channels:
        return False
    return call_status in CALL_NOT_REACHED or (answered_by or "") in MACHINE_ANSWERS


# --- the calling schedule ------------------------------------------------------------------


def next_calling_moment(moment: datetime, hours: WeeklyHours) -> datetime | None:
    """The first moment at or after `moment` inside calling hours on the same day, or None when
    the day's calling hours are over."""
    t = moment.time()
    for start, end in sorted(hours.on(moment.date())):
        if t < end:
            return moment if t >= start else datetime.combine(moment.date(), start)
    return None


def call_times(
    count: int, *, start: datetime, hours: WeeklyHours, per_second: float = 1.0
) -> list[datetime | None]:
    """When each of `count` calls may be placed: at most `per_second` a second from `start`,
    only inside calling hours (a gap between two ranges is skipped). None for a call that does
    not fit before the day's calling hours end (it goes by text, or waits for the desk)."""
    if per_second <= 0:
        raise ValueError("per_second must be positive")
    gap = timedelta(seconds=1 / per_second)
    burst = max(1, math.floor(per_second))  # a whole second's calls may start together
    out: list[datetime | None] = []
    moment: datetime | None = start
    in_second = 0
    for _ in range(count):
        moment = next_calling_moment(moment, hours) if moment is not None else None
        if moment is None:
            out.append(None)
            continue
        out.append(moment)
        in_second += 1
        if per_second >= 1:
            if in_second >= burst:
                moment, in_second = moment + timedelta(seconds=1), 0
        else:
            moment, in_second = moment + gap, 0
    return out



# --- stored form ---------------------------------------------------------------------------


def reminder_to_json(reminder: Reminder) -> dict[str, object]:
    """The reminder as the store keeps it (a JSON column of the `reminders` row)."""
    return {
        "key": reminder.key, "day": reminder.day.isoformat(), "patient_id": reminder.patient_id,
        "first_name": reminder.first_name, "mobile": reminder.mobile,
        "channels": list(reminder.channels), "status": reminder.status,
        "appointments": [
            {"id": a.id, "start": a.start.isoformat(), "status": a.status,
             "patient_id": a.patient_id, "patient_name": a.patient_name, "mobile": a.mobile,
             "doctor_id": a.doctor_id, "doctor_name": a.doctor_name, "clinic_id": a.clinic_id}
            for a in reminder.appointments
        ],
    }


def reminder_from_json(raw: Mapping[str, Any]) -> Reminder:
    """Back from `reminder_to_json` (ValueError/KeyError/TypeError on a broken row)."""
    appointments = tuple(
        DayAppointment(
            id=str(a["id"]), start=datetime.fromisoformat(a["start"]), status=a.get("status"),
            patient_id=a.get("patient_id"), patient_name=a.get("patient_name") or "",
            mobile=a.get("mobile"), doctor_id=a.get("doctor_id"),
            doctor_name=a.get("doctor_name") or "", clinic_id=a.get("clinic_id"),
        )
        for a in raw["appointments"]
    )
    if not appointments:
        raise ValueError("a reminder without appointments")
    return Reminder(
        key=str(raw["key"]), day=date.fromisoformat(raw["day"]), patient_id=raw.get("patient_id"),
        first_name=raw.get("first_name") or "", mobile=str(raw["mobile"]),
        appointments=appointments, channels=tuple(raw.get("channels") or ()),
        status=str(raw.get("status") or "queued"),
    )
