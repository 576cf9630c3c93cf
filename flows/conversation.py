"""The booking call as a form the caller fills in any order: what was said is kept.

Every answer at the menu, the doctor question, the consent and name questions and the read-back
is read whole (`read_utterance`): the doctor, day, time and reason in it are kept in the call's
`Request` frame, and the table's guards skip every question already answered. A request said
in one breath goes straight to the read-back; a correction at the read-back changes only what
the caller changed. Questions that are not bookings (next appointment, opening hours, address,
cancel, move) are answered here too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from flows import actions as a
from flows.engine import Turn
from flows.understanding import (
    Answer,
    TimeOfDay,
    Understood,
    parse_choice,
    parse_person_name,
    parse_when,
    parse_yes_no,
)
from flows.understanding.utterance import Reading, read_utterance

NOTES_MAX = a.NOTES_MAX
_HALVES = {"1": ["morning", "am", "صبح"], "2": ["evening", "afternoon", "pm", "night", "شام", "رات",
                                              "دوپہر"]}
# How a spoken answer to "please say your name" ends its name part and starts a request.
_NAME_ENDS = (",", ".", " and i", " i want", " i'd like", " i would like", " i need", " book",
              " can i", " with doctor", " with dr", " for an appointment", " appointment")


# --- the request frame -------------------------------------------------------------------


@dataclass
class Request:
    """The day and time the caller asked for, kept until a time is offered or picked.

    Stored as plain data under `data["request"]`; the doctor (`doctor_id`) and the reason
    (`notes`) are kept where the rest of the booking reads them.
    """

    day: date | None = None
    start: time | None = None
    end: time | None = None  # set for a part of the day ("in the afternoon")
    either_half: bool = False  # "at 9" with the clinic open at 9 a.m. and 9 p.m.: ask which

    @classmethod
    def load(cls, data: dict[str, Any]) -> Request:
        """The request in the call's data (empty when none)."""
        raw = data.get("request") or {}
        return cls(
            day=date.fromisoformat(raw["day"]) if raw.get("day") else None,
            start=time.fromisoformat(raw["start"]) if raw.get("start") else None,
            end=time.fromisoformat(raw["end"]) if raw.get("end") else None,
            either_half=bool(raw.get("either_half")),
        )

    def save(self, data: dict[str, Any]) -> None:
        """Write back into the call's data (removed when empty)."""
        if self.day is None and self.start is None:
            data.pop("request", None)
            return
        data["request"] = {
            "day": self.day.isoformat() if self.day else None,
            "start": self.start.isoformat(timespec="minutes") if self.start else None,
            "end": self.end.isoformat(timespec="minutes") if self.end else None,
            "either_half": self.either_half,
        }

    @property
    def time(self) -> TimeOfDay | None:
        """The time or part of day asked for."""
        return TimeOfDay(self.start, self.end) if self.start else None


def remember(turn: Turn, reading: Reading) -> None:
    """Keep the doctor, day, time and reason of an answer for the questions still to come."""
    data = turn.data
    if reading.doctor_id and turn.profile.doctor(reading.doctor_id):
        data["doctor_id"] = reading.doctor_id
        data.pop("doctor_full", None)
    if reading.reason:
        data["notes"] = reading.reason[:NOTES_MAX]
    if reading.day or reading.time:
        req = Request.load(data)
        if reading.day:
            req.day = reading.day
        if reading.time:
            req.start, req.end = reading.time.start, reading.time.end
            req.either_half = reading.either_half
        req.save(data)


def _read(answer: Answer, turn: Turn) -> Reading:
    reading = read_utterance(answer, turn.context())
    if reading.problem == "weekday_mismatch":
        turn.problem = "weekday_mismatch"
    return reading


def request_hints(turn: Turn) -> tuple[str, ...]:
    """Speech hints where a whole request may be said: doctors, days, parts of the day."""
    words = ("book", "appointment", "reception", "next appointment", "opening hours", "address",
             "cancel", "reschedule", "tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday",
             "Friday", "Saturday", "morning", "afternoon", "evening")
    return (*words, *a.doctor_hints(turn))


# --- guards --------------------------------------------------------------------------------


def asks_same_doctor(turn: Turn) -> bool:
    """ "Dr. Farooq again?" only when the caller has not named a doctor yet."""
    return a.has_last_doctor(turn) and needs_doctor(turn)


def needs_doctor(turn: Turn) -> bool:
    """No doctor chosen yet (or the one chosen has no free time at all)."""
    doctor_id = turn.data.get("doctor_id")
    return doctor_id is None or doctor_id == turn.data.get("doctor_full")


def needs_reason(turn: Turn) -> bool:
    """The reason was neither said already nor asked (once) in this call."""
    return "notes" not in turn.data and "reason" not in turn.call.trail


# --- handlers ------------------------------------------------------------------------------


def what_caller_wants(answer: Answer, turn: Turn) -> str | None:
    """The menu: 1 books; a spoken answer is read for what they want and all they said."""
    if answer.keyed:
        return a.main_menu(answer, turn)
    reading = _read(answer, turn)
    if reading.intent is None:
        return a.main_menu(answer, turn)
    if reading.intent in ("book", "move"):
        remember(turn, reading)
    if not reading.sure:
        turn.unsure = answer.speech or ""
    return reading.intent


def anything_else(answer: Answer, turn: Turn) -> str | None:
    """ "Anything else?": no ends the call, yes or a request goes where the menu would."""
    reading = _read(answer, turn)
    if reading.intent is None:
        result = parse_yes_no(answer, turn.context())
        if isinstance(result, Understood):
            return "book" if result.value else "done"
        return a.main_menu(answer, turn)
    if reading.intent in ("book", "move"):
        remember(turn, reading)
    return reading.intent


def same_doctor(answer: Answer, turn: Turn) -> str | None:
    """ "Would you like Dr. Farooq again?": "No, Dr. Sheikh" picks Dr. Sheikh."""
    reading = _read(answer, turn)
    remember(turn, reading)
    if reading.doctor_id:
        return "yes"
    result = parse_yes_no(answer, turn.context())
    if isinstance(result, Understood):
        if not result.sure:
            turn.unsure = answer.speech or ""
        if result.value:
            turn.data["doctor_id"] = turn.data["last_visit"]["doctor_id"]
            return "yes"
        return "no"
    if reading.day or reading.time:
        # "Friday at 11" to "Dr. Farooq again?": the same doctor, at that time.
        turn.data["doctor_id"] = turn.data["last_visit"]["doctor_id"]
        return "yes"
    return None


def choose_doctor(answer: Answer, turn: Turn) -> str | None:
    """Which doctor: by key or name, keeping a day, time or reason said with it ("Dr. Farooq,
    no, Dr. Sheikh" is Dr. Sheikh)."""
    if not answer.keyed:
        reading = _read(answer, turn)
        remember(turn, reading)
        doctor = turn.profile.doctor(reading.doctor_id)
        if doctor is not None:
            if not reading.sure:
                turn.unsure = doctor.name
            return "chosen"
    return a.choose_doctor(answer, turn)


def consent(answer: Answer, turn: Turn) -> str | None:
    """ "Register as a new patient?": a yes with a request keeps the request."""
    label = a.yes_no(answer, turn)
    if label == "yes" and not answer.keyed:
        remember(turn, _read(answer, turn))
    return label


def name_and_request(answer: Answer, turn: Turn) -> str | None:
    """The new caller's name; a doctor, day, time or reason said with it is kept."""
    speech = answer.speech or ""
    cut = len(speech)
    lowered = speech.lower()
    for end in _NAME_ENDS:
        i = lowered.find(end)
        if 0 < i < cut:
            cut = i
    name_part = Answer(speech=speech[:cut], confidence=answer.confidence)
    result = parse_person_name(name_part, turn.context())
    if not isinstance(result, Understood):
        return a.new_patient_name(answer, turn)
    turn.data["new_name"] = list(result.value)
    if cut < len(speech):
        remember(turn, _read(Answer(speech=speech[cut:], confidence=answer.confidence), turn))
    return "ok"


def choose_slot(answer: Answer, turn: Turn) -> str | None:
    """An offered time by key or speech; a reason said with it is kept; a plain "yes" to the
    list takes its first time."""
    if not answer.keyed:
        reading = _read(answer, turn)
        if reading.reason:
            turn.data["notes"] = reading.reason[:NOTES_MAX]
        offered = turn.data.get("offered") or []
        if not reading.has_request and offered:
            result = parse_yes_no(answer, turn.context())
            if isinstance(result, Understood) and result.value:
                if not result.sure:
                    turn.unsure = answer.speech or ""
                turn.data["start"] = offered[0]
                return "picked"
        if (reading.day or reading.time) and not isinstance(
            parse_when(answer, turn.context()), Understood
        ):
            return _corrected_when(turn, reading, answer)
    return a.choose_slot(answer, turn)


def _corrected_when(turn: Turn, reading: Reading, answer: Answer) -> str:
    """ "Tuesday, no, Wednesday" at the times offered: the parser sees two days, the reading
    keeps the last; a time alone is on the day being discussed."""
    if reading.day is None:
        offered = turn.data.get("offered") or []
        anchor = turn.data.get("offered_day") or (offered[0][:10] if offered else None)
        if anchor:
            reading = replace(reading, day=date.fromisoformat(anchor))
    remember(turn, reading)
    if not reading.sure:
        turn.unsure = answer.speech or ""
    return find_times(turn)


def accept_offer(answer: Answer, turn: Turn) -> str | None:
    """ "Is 2 p.m. good?", keeping a reason said with the answer."""
    if not answer.keyed:
        reading = _read(answer, turn)
        if reading.reason:
            turn.data["notes"] = reading.reason[:NOTES_MAX]
        if (reading.day or reading.time) and not isinstance(
            parse_when(answer, turn.context()), Understood
        ):
            return _corrected_when(turn, reading, answer)
    return a.accept_offer(answer, turn)


def which_half(answer: Answer, turn: Turn) -> str | None:
    """ "9 in the morning or the evening?": 1 or "morning" is a.m., 2 or "evening" p.m."""
    req = Request.load(turn.data)
    if req.start is None:
        return "ok"
    choice = parse_choice(answer, turn.context(), _HALVES)
    if not isinstance(choice, Understood):
        return None
    hour = req.start.hour % 12 + (12 if choice.value == "2" else 0)
    req.start, req.either_half = req.start.replace(hour=hour), False
    req.save(turn.data)
    return "ok"


def half_facts(turn: Turn) -> dict[str, object]:
    """The hour asked about, without a.m. or p.m."""
    req = Request.load(turn.data)
    if req.start is None:
        return {}
    hour = req.start.hour % 12 or 12
    return {"hour": f"{hour}:{req.start.minute:02d}" if req.start.minute else str(hour)}


def reason(answer: Answer, turn: Turn) -> str | None:
    """The reason for the visit; "actually, Thursday" here changes the request instead."""
    if not answer.keyed:
        reading = _read(answer, turn)
        if reading.has_request and turn.data.get("start"):
            return confirm(answer, turn)
    return a.reason(answer, turn)


def confirm(answer: Answer, turn: Turn) -> str | None:
    """The read-back: yes books; "no, make it 5 p.m." changes only the time, and so on."""
    if answer.keyed:
        return a.confirm(answer, turn)
    reading = _read(answer, turn)
    if reading.has_request or reading.reason:
        start = datetime.fromisoformat(turn.data["start"])
        if reading.reason:
            turn.data["notes"] = reading.reason[:NOTES_MAX]
        if reading.doctor_id:
            turn.data["doctor_id"] = reading.doctor_id
        req = Request(day=reading.day or start.date(), start=start.time())
        if reading.time:
            req.start, req.end = reading.time.start, reading.time.end
            req.either_half = reading.either_half
        req.save(turn.data)
        if not reading.sure:
            turn.unsure = answer.speech or ""
        return "change"
    return a.confirm(answer, turn)


# --- actions -------------------------------------------------------------------------------


def find_times(turn: Turn) -> str:
    """Try the day and time the caller asked for; else the doctor's earliest free times.

    A free requested time is picked (straight to the read-back); a taken one is said so and
    the nearest free times that day are offered; a part of the day offers a time in it.
    """
    req = Request.load(turn.data)
    if req.either_half:
        return "which_half"  # the request is kept for the answer
    turn.data.pop("request", None)
    if req.day is None and req.start is None:
        outcome = a.find_slots(turn)
        if outcome == "none":
            turn.data["doctor_full"] = turn.data.get("doctor_id")
        return outcome
    day = req.day
    if day is None:
        # "At 4" with no day: today if that is still ahead, else the next day.
        now = turn.now()
        day = turn.today if req.start and req.start > now.time() else turn.today + timedelta(1)
    when = req.time
    outcome = a._offer_day(turn, day) if when is None else a._pick_time(turn, day, when)
    if outcome == "none":
        turn.data["doctor_full"] = turn.data.get("doctor_id")
    return outcome


def move_confirm(answer: Answer, turn: Turn) -> str | None:
    """ "Move it?": yes (with or without the new day and time) books a new time first."""
    reading = _read(answer, turn)
    if reading.has_request:
        remember(turn, reading)
        turn.data["moving"] = True
        return "yes"
    label = a.yes_no(answer, turn)
    if label == "yes":
        turn.data["moving"] = True
    return label


def load_next_appointment(turn: Turn) -> str:
    """The caller's next upcoming appointment (cancelled ones left out), for reading out."""
    patient = turn.data.get("patient")
    if not patient:
        return "none"
    upcoming = turn.services.next_appointment(patient["id"])
    if upcoming is None:
        turn.data.pop("next_appointment", None)
        return "none"
    site = upcoming.clinic or turn.profile.site(None)
    turn.data["next_appointment"] = {
        "id": upcoming.id,
        "start": upcoming.start.isoformat(),
        "doctor_name": upcoming.doctor_name,
        "address": site.address if site else "",
    }
    return "found"


def is_moving(turn: Turn) -> bool:
    """The booking just made replaces an appointment the caller asked to move."""
    return bool(turn.data.get("moving")) and bool(turn.data.get("next_appointment"))


CANCEL_REASON = "cancel appointment"
"""How a cancellation request's reason starts (the console and the API tell them apart by it)."""


def request_kind(reason: str | None) -> str:
    """ "cancel" for a cancellation the caller asked for, else "callback"."""
    return "cancel" if (reason or "").startswith(CANCEL_REASON) else "callback"


def request_cancellation(turn: Turn) -> str:
    """Ask the desk to cancel the appointment named (no public Clinicea call cancels one).

    Recorded as a callback request whose reason names the appointment, so the desk sees it in
    the console and the API beside the other callback requests.
    """
    appt = turn.data.get("next_appointment") or {}
    phone = turn.data.get("keyed_number") or turn.call.caller
    why = ""
    if turn.data.get("moving"):
        status = (turn.data.get("booking") or {}).get("status")
        why = "moved to a new time, not yet confirmed by Clinicea: " if status != "booked" else (
            "moved to a new time: ")
    reason = (f"{CANCEL_REASON} {appt.get('id', '?')} on {appt.get('start', '?')[:16]} "
              f"({why}asked by the caller)")
    turn.services.request_callback(turn.call.call_sid, phone, reason)
    turn.data["cancel_requested"] = appt.get("id")
    return "done"
