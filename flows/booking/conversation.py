"""The booking call as a form the caller fills in any order: what was said is kept.

Every answer at the menu, the doctor question, the consent and name questions and the read-back
is read whole (`read_utterance`): the doctor, day, time and reason in it are kept in the call's
`BookingFrame` (the day and time as its `Request`), and the table's guards skip every question
already answered. A request said in one breath goes straight to the read-back; a correction at
the read-back changes only what the caller changed. Questions that are not bookings (next
appointment, opening hours, address, cancel, move) are answered here too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from flows.booking import actions as a
from flows.booking.frame import Appointment, Request, frame_of
from flows.engine import Turn
from flows.understanding import (
    Answer,
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


def remember(turn: Turn, reading: Reading) -> None:
    """Keep the doctor, day, time and reason of an answer for the questions still to come."""
    data = frame_of(turn)
    if reading.doctor_id and turn.profile.doctor(reading.doctor_id):
        data.doctor_id = reading.doctor_id
        data.doctor_full = None
    if reading.reason:
        data.notes = reading.reason[:NOTES_MAX]
    if reading.day or reading.time:
        req = data.request or Request()
        if reading.day:
            req.day = reading.day
        if reading.time:
            req.start, req.end = reading.time.start, reading.time.end
            req.either_half = reading.either_half
        data.request = None if req.empty else req


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
    data = frame_of(turn)
    return data.doctor_id is None or data.doctor_id == data.doctor_full


def needs_reason(turn: Turn) -> bool:
    """The reason was neither said already nor asked (once) in this call."""
    return frame_of(turn).notes is None and "reason" not in turn.call.trail


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
            frame_of(turn).doctor_id = a._last_doctor(turn)
            return "yes"
        return "no"
    if reading.day or reading.time:
        # "Friday at 11" to "Dr. Farooq again?": the same doctor, at that time.
        frame_of(turn).doctor_id = a._last_doctor(turn)
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
    frame_of(turn).new_name = result.value
    if cut < len(speech):
        remember(turn, _read(Answer(speech=speech[cut:], confidence=answer.confidence), turn))
    return "ok"


def choose_slot(answer: Answer, turn: Turn) -> str | None:
    """An offered time by key or speech; a reason said with it is kept; a plain "yes" to the
    list takes its first time."""
    if not answer.keyed:
        data = frame_of(turn)
        reading = _read(answer, turn)
        if reading.reason:
            data.notes = reading.reason[:NOTES_MAX]
        offered = data.offered
        if not reading.has_request and offered:
            result = parse_yes_no(answer, turn.context())
            if isinstance(result, Understood) and result.value:
                if not result.sure:
                    turn.unsure = answer.speech or ""
                data.start = offered[0]
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
        data = frame_of(turn)
        anchor = data.offered_day or (data.offered[0].date() if data.offered else None)
        if anchor:
            reading = replace(reading, day=anchor)
    remember(turn, reading)
    if not reading.sure:
        turn.unsure = answer.speech or ""
    return find_times(turn)


def accept_offer(answer: Answer, turn: Turn) -> str | None:
    """ "Is 2 p.m. good?", keeping a reason said with the answer."""
    if not answer.keyed:
        reading = _read(answer, turn)
        if reading.reason:
            frame_of(turn).notes = reading.reason[:NOTES_MAX]
        if (reading.day or reading.time) and not isinstance(
            parse_when(answer, turn.context()), Understood
        ):
            return _corrected_when(turn, reading, answer)
    return a.accept_offer(answer, turn)


def which_half(answer: Answer, turn: Turn) -> str | None:
    """ "9 in the morning or the evening?": 1 or "morning" is a.m., 2 or "evening" p.m."""
    req = frame_of(turn).request
    if req is None or req.start is None:
        return "ok"
    choice = parse_choice(answer, turn.context(), _HALVES)
    if not isinstance(choice, Understood):
        return None
    hour = req.start.hour % 12 + (12 if choice.value == "2" else 0)
    req.start, req.either_half = req.start.replace(hour=hour), False
    return "ok"


def half_facts(turn: Turn) -> dict[str, object]:
    """The hour asked about, without a.m. or p.m."""
    req = frame_of(turn).request
    if req is None or req.start is None:
        return {}
    hour = req.start.hour % 12 or 12
    return {"hour": f"{hour}:{req.start.minute:02d}" if req.start.minute else str(hour)}


def reason(answer: Answer, turn: Turn) -> str | None:
    """The reason for the visit; "actually, Thursday" here changes the request instead."""
    if not answer.keyed:
        reading = _read(answer, turn)
        if reading.has_request and frame_of(turn).start:
            return confirm(answer, turn)
    return a.reason(answer, turn)


def confirm(answer: Answer, turn: Turn) -> str | None:
    """The read-back: yes books; "no, make it 5 p.m." changes only the time, and so on."""
    if answer.keyed:
        return a.confirm(answer, turn)
    reading = _read(answer, turn)
    data = frame_of(turn)
    if (reading.has_request or reading.reason) and data.start is not None:
        start = data.start
        if reading.reason:
            data.notes = reading.reason[:NOTES_MAX]
        if reading.doctor_id:
            data.doctor_id = reading.doctor_id
        req = Request(day=reading.day or start.date(), start=start.time())
        if reading.time:
            req.start, req.end = reading.time.start, reading.time.end
            req.either_half = reading.either_half
        data.request = req
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
    data = frame_of(turn)
    req = data.request or Request()
    if req.either_half:
        return "which_half"  # the request is kept for the answer
    data.request = None
    if req.empty:
        outcome = a.find_slots(turn)
        if outcome == "none":
            data.doctor_full = data.doctor_id
        return outcome
    day = req.day
    if day is None:
        # "At 4" with no day: today if that is still ahead, else the next day.
        now = turn.now()
        day = turn.today if req.start and req.start > now.time() else turn.today + timedelta(1)
    when = req.time
    outcome = a._offer_day(turn, day) if when is None else a._pick_time(turn, day, when)
    if outcome == "none":
        data.doctor_full = data.doctor_id
    return outcome


def move_confirm(answer: Answer, turn: Turn) -> str | None:
    """ "Move it?": yes (with or without the new day and time) books a new time first."""
    reading = _read(answer, turn)
    if reading.has_request:
        remember(turn, reading)
        frame_of(turn).moving = True
        return "yes"
    label = a.yes_no(answer, turn)
    if label == "yes":
        frame_of(turn).moving = True
    return label


def load_next_appointment(turn: Turn) -> str:
    """The caller's next upcoming appointment (cancelled ones left out), for reading out."""
    data = frame_of(turn)
    if data.patient is None:
        return "none"
    upcoming = turn.services.next_appointment(data.patient.id)
    if upcoming is None:
        data.next_appointment = None
        return "none"
    site = upcoming.clinic or turn.profile.site(None)
    data.next_appointment = Appointment(
        id=upcoming.id,
        start=upcoming.start,
        doctor_name=upcoming.doctor_name,
        address=site.address if site else "",
    )
    return "found"


def is_moving(turn: Turn) -> bool:
    """The booking just made replaces an appointment the caller asked to move."""
    data = frame_of(turn)
    return data.moving and data.next_appointment is not None


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
    data = frame_of(turn)
    appt = data.next_appointment
    phone = data.keyed_number or turn.call.caller
    why = ""
    if data.moving:
        status = data.booking.status if data.booking else None
        why = "moved to a new time, not yet confirmed by Clinicea: " if status != "booked" else (
            "moved to a new time: ")
    appt_id = appt.id if appt else "?"
    appt_start = appt.start.isoformat()[:16] if appt else "?"
    reason = f"{CANCEL_REASON} {appt_id} on {appt_start} ({why}asked by the caller)"
    turn.services.request_callback(turn.call.call_sid, phone, reason)
    data.cancel_requested = appt.id if appt else None
    return "done"
