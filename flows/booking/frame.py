"""The booking call's per-call data: one typed frame instead of loose string keys.

`BookingFrame` is everything the booking call has learnt and offered so far: who is calling,
the doctor, the day and time asked for (`Request`), the times offered, the time picked, the
reason, the booking's outcome and a few flags. Handlers, actions and facts read and write its
fields; the engine only stores it (`Flow(frame=BookingFrame.load)`, `CallState.to_dict` calls
`dump`).

The JSON it is stored as keeps the flat keys the call state had before the frame (`patient`,
`doctor_id`, `offered`, `offer`, `start`, `notes`, ...; ISO strings for dates and times), so
state saved by an older version loads as it is, the store's readers (`settle_holds` reads
`offered`, `offer` and `start`) keep working, and a key this version does not know (saved by a
newer one) is kept in `extra` and written back unchanged. `load` never raises: stored state is
data, and a value of the wrong shape reads as "not known yet". Lists are capped on load
(`menus.MAX_KEPT`), as they are when written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, cast

from flows import menus
from flows.understanding import TimeOfDay

if TYPE_CHECKING:
    from flows.engine import Turn


# --- readers that never raise (stored state is data) -----------------------------------------


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _parse(kind: Any, value: object) -> Any:
    if not isinstance(value, str) or not value:
        return None
    try:
        return kind.fromisoformat(value)
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    return cast("datetime | None", _parse(datetime, value))


def _date(value: object) -> date | None:
    found = _parse(date, value[:10] if isinstance(value, str) else value)
    return cast("date | None", found)


def _time(value: object) -> time | None:
    return cast("time | None", _parse(time, value))


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _iso(value: date | time | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    return value.isoformat()


# --- the parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    """A patient found for the caller's number (one of `patients`, or the one chosen)."""

    id: str
    first_name: str = ""
    last_name: str = ""
    dob: date | None = None

    @classmethod
    def load(cls, raw: object) -> Patient | None:
        """From stored JSON; None when it is not a patient."""
        raw = _map(raw)
        pid = raw.get("id")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            return None
        return cls(str(pid), _str(raw.get("first_name")) or "", _str(raw.get("last_name")) or "",
                   _date(raw.get("dob")))

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name,
                "dob": _iso(self.dob)}


@dataclass(frozen=True)
class Visit:
    """The caller's last completed visit, for the read-back."""

    start: datetime
    doctor_name: str = ""
    doctor_id: str | None = None
    address: str = ""
    site: str = ""
    service: str | None = None

    @classmethod
    def load(cls, raw: object) -> Visit | None:
        """From stored JSON; None when it has no start."""
        raw = _map(raw)
        start = _datetime(raw.get("start"))
        if start is None:
            return None
        return cls(start, _str(raw.get("doctor_name")) or "", _str(raw.get("doctor_id")),
                   _str(raw.get("address")) or "", _str(raw.get("site")) or "",
                   _str(raw.get("service")))

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"start": self.start.isoformat(), "doctor_name": self.doctor_name,
                "doctor_id": self.doctor_id, "address": self.address, "site": self.site,
                "service": self.service}


@dataclass(frozen=True)
class Appointment:
    """The caller's next upcoming appointment (to read out, cancel or move)."""

    id: str
    start: datetime
    doctor_name: str = ""
    address: str = ""

    @classmethod
    def load(cls, raw: object) -> Appointment | None:
        """From stored JSON; None when it lacks an id or a start."""
        raw = _map(raw)
        start = _datetime(raw.get("start"))
        aid = raw.get("id")
        if start is None or not isinstance(aid, (str, int)) or isinstance(aid, bool):
            return None
        return cls(str(aid), start, _str(raw.get("doctor_name")) or "",
                   _str(raw.get("address")) or "")

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"id": self.id, "start": self.start.isoformat(), "doctor_name": self.doctor_name,
                "address": self.address}


@dataclass(frozen=True)
class Offer:
    """One time proposed in a part of the day ("Is 2 p.m. good?")."""

    start: datetime
    part: str = "morning"  # morning / afternoon / evening: how the prompt names it

    @classmethod
    def load(cls, raw: object) -> Offer | None:
        """From stored JSON; None when it has no start."""
        raw = _map(raw)
        start = _datetime(raw.get("start"))
        return cls(start, _str(raw.get("part")) or "morning") if start else None

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"start": self.start.isoformat(), "part": self.part}


@dataclass
class Request:
    """The day and time the caller asked for, kept until a time is offered or picked."""

    day: date | None = None
    start: time | None = None
    end: time | None = None  # set for a part of the day ("in the afternoon")
    either_half: bool = False  # "at 9" with the clinic open at 9 a.m. and 9 p.m.: ask which

    @classmethod
    def load(cls, raw: object) -> Request | None:
        """From stored JSON; None when it asks for nothing."""
        raw = _map(raw)
        req = cls(_date(raw.get("day")), _time(raw.get("start")), _time(raw.get("end")),
                  bool(raw.get("either_half")))
        return None if req.empty else req

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"day": _iso(self.day), "start": _iso(self.start), "end": _iso(self.end),
                "either_half": self.either_half}

    @property
    def empty(self) -> bool:
        """Neither a day nor a time."""
        return self.day is None and self.start is None

    @property
    def time(self) -> TimeOfDay | None:
        """The time or part of day asked for."""
        return TimeOfDay(self.start, self.end) if self.start else None


@dataclass(frozen=True)
class BookingResult:
    """What `ClinicServices.book` said."""

    status: str  # booked / recorded / slot_taken
    appointment_id: str | None = None

    @classmethod
    def load(cls, raw: object) -> BookingResult | None:
        """From stored JSON."""
        raw = _map(raw)
        status = _str(raw.get("status"))
        aid = raw.get("appointment_id")
        return cls(status, None if aid is None else str(aid)) if status else None

    def dump(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"status": self.status, "appointment_id": self.appointment_id}


# --- the frame ---------------------------------------------------------------------------------


@dataclass
class BookingFrame:
    """Everything the booking call knows so far. Field names are the stored JSON keys."""

    # who is calling
    clinic_number: str | None = None  # the number the caller dialled (E.164), for texts
    keyed_number: str | None = None  # a withheld caller's registered number, keyed in
    patients: list[Patient] | None = None  # None: the lookup never answered (records down)
    patient: Patient | None = None
    who_page: int = 0  # the page of a long family menu
    verified: bool = False  # passed the clinic's birth-date check
    language_chosen: bool = False
    last_visit: Visit | None = None
    new_name: tuple[str, str] | None = None  # a new caller's first and last name
    # what they want
    doctor_id: str | None = None
    doctor_page: int = 0
    doctor_full: str | None = None  # the doctor chosen had no free time at all
    request: Request | None = None  # the day and time asked for, until offered or picked
    notes: str | None = None  # the reason for the visit (None: not said)
    keyed_day: date | None = None
    # times on the table (the holds follow these: ivr settle_holds)
    offered: list[datetime] = field(default_factory=list)
    offered_day: date | None = None
    offer: Offer | None = None
    start: datetime | None = None  # the time picked, read back, then booked
    # the booking and the questions that are not bookings
    booking_seq: int = 1
    booking: BookingResult | None = None
    texted: bool = False
    next_appointment: Appointment | None = None
    moving: bool = False  # the booking replaces `next_appointment`
    cancel_requested: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer version, kept as-is

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> BookingFrame:
        """From the JSON the store keeps (this version's, or an older one's: the same keys)."""
        raw = _map(raw)
        patients = raw.get("patients")
        name = raw.get("new_name")
        frame = cls(
            clinic_number=_str(raw.get("clinic_number")),
            keyed_number=_str(raw.get("keyed_number")),
            patients=None if not isinstance(patients, list) else [
                p for p in (Patient.load(x) for x in menus.keep(patients)) if p],
            patient=Patient.load(raw.get("patient")),
            who_page=_int(raw.get("who_page"), 0),
            verified=raw.get("verified") is True,
            language_chosen=raw.get("language_chosen") is True,
            last_visit=Visit.load(raw.get("last_visit")),
            new_name=(str(name[0]), str(name[1])) if isinstance(name, (list, tuple))
            and len(name) >= 2 else None,
            doctor_id=_str(raw.get("doctor_id")),
            doctor_page=_int(raw.get("doctor_page"), 0),
            doctor_full=_str(raw.get("doctor_full")),
            request=Request.load(raw.get("request")),
            notes=_str(raw.get("notes")),
            keyed_day=_date(raw.get("keyed_day")),
            offered=[t for t in (_datetime(v) for v in menus.keep(_list(raw.get("offered"))))
                     if t is not None],
            offered_day=_date(raw.get("offered_day")),
            offer=Offer.load(raw.get("offer")),
            start=_datetime(raw.get("start")),
            booking_seq=max(1, _int(raw.get("booking_seq"), 1)),
            booking=BookingResult.load(raw.get("booking")),
            texted=raw.get("texted") is True,
            next_appointment=Appointment.load(raw.get("next_appointment")),
            moving=raw.get("moving") is True,
            cancel_requested=None if raw.get("cancel_requested") is None
            else str(raw["cancel_requested"]),
        )
        frame.extra = {k: v for k, v in raw.items() if k not in _FIELDS}
        return frame

    def dump(self) -> dict[str, Any]:
        """The JSON for the store: only what is known (a default is left out)."""
        out: dict[str, Any] = {}
        for name, default in _DEFAULTS.items():
            value = getattr(self, name)
            if value == default:
                continue
            if name == "patients":
                out[name] = [p.dump() for p in menus.keep(value)]
            elif name == "offered":
                out[name] = [t.isoformat() for t in menus.keep(value)]
            elif name == "new_name":
                out[name] = list(value)
            elif hasattr(value, "dump"):
                out[name] = value.dump()
            elif isinstance(value, (date, time)):
                out[name] = _iso(value)
            else:
                out[name] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def choose_times(self, times: list[datetime], day: date | None = None) -> None:
        """A new menu of times (on `day`, when they are all on the day just named)."""
        self.offered = menus.keep(times)
        self.offered_day = day
        self.offer = None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


_FIELDS = {f for f in BookingFrame.__dataclass_fields__ if f != "extra"}
_BLANK = BookingFrame()
_DEFAULTS = {name: getattr(_BLANK, name) for name in BookingFrame.__dataclass_fields__
             if name != "extra"}


def frame_of(turn: Turn) -> BookingFrame:
    """The booking frame of the turn's call (the booking flow's `Flow(frame=...)`)."""
    data = turn.data
    if not isinstance(data, BookingFrame):  # a flow wired without its frame: a bug, not a call
        raise TypeError(f"the booking flow needs a BookingFrame, not {type(data).__name__}")
    return data
