"""What the booking call's rows do: answer handlers (for Ask rows) and actions (for Do rows).

A handler takes the caller's `Answer` and the `Turn`, stores what it understood in the call's
`BookingFrame` (`frame_of(turn)`), and returns an outcome label (routed by the table), or None
when it did not understand (the engine reprompts). An action takes the `Turn` and returns an
outcome label.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flows import menus
from flows.booking.frame import BookingResult, Offer, Patient, Visit, frame_of
from flows.clinic_services import BookingRequest, ConfirmationText
from flows.domain import Slot
from flows.engine import Turn
from flows.understanding import (
    Answer,
    Understood,
    parse_choice,
    parse_date,
    parse_doctor,
    parse_language_choice,
    parse_person_name,
    parse_phone_digits,
    parse_time,
    parse_when,
    parse_yes_no,
)
from flows.understanding.types import NotUnderstood, TimeOfDay, When

MENU_WORDS = {"1": ["book", "appointment", "booking", "schedule"], "0": []}
NOTES_MAX = 200  # Clinicea notes are short; a rambling transcript is cut, not rejected


def _flag_unsure(turn: Turn, result: Understood[object], heard: str | None) -> None:
    """Low-confidence speech: ask "I heard X. Is that right?" before acting on it."""
    if not result.sure:
        turn.unsure = heard


def _explain(turn: Turn, result: object) -> None:
    """ "Tuesday the 25th" when the 25th is a Wednesday, "last Tuesday": say so, instead of
    "didn't catch"."""
    if isinstance(result, NotUnderstood) and result.reason in _EXPLAINED:
        turn.problem = _EXPLAINED[result.reason]


_EXPLAINED = {"weekday_mismatch": "weekday_mismatch", "past": "past_day",
              "movable_day": "movable_day"}  # fmt: skip


def _understood(turn: Turn, when: When) -> str:
    """An unsure day/time read back as understood ("Monday the 4th of January at 10 a.m."),
    never as the transcript."""
    t = when.time
    doctor = turn.profile.doctor(when.doctor_id) if when.doctor_id else None
    return turn.lang.say_understood(
        when.day, t.start if t else None, t.end if t else None, turn.today,
        doctor=doctor.name if doctor else None,
    )  # fmt: skip


# --- identification --------------------------------------------------------------------


def identify(turn: Turn) -> str:
    """Look the caller up by number: known, family (several patients), unknown or withheld."""
    data = frame_of(turn)
    phone = data.keyed_number or turn.call.caller
    if not phone:
        return "withheld"
    patients = turn.services.find_patients(phone)
    data.patients = [
        Patient(p.id, p.first_name, p.last_name, p.date_of_birth)
        for p in menus.keep(patients)  # the call's state never grows with Clinicea's answer
    ]
    if not patients:
        return "unknown"
    if len(patients) == 1:
        data.patient = data.patients[0]
        return "known"
    return "family"


def keyed_number(answer: Answer, turn: Turn) -> str | None:
    """A withheld caller keys (or says) their registered mobile number."""
    result = parse_phone_digits(answer, turn.context())
    if not isinstance(result, Understood):
        return None
    e164 = turn.services.normalise_phone(result.value)
    if e164 is None:
        return None
    frame_of(turn).keyed_number = e164
    return "ok"


def choose_family_member(answer: Answer, turn: Turn) -> str | None:
    """ "For Kamran, press 1; for Sana, press 2" — by key or by first name."""
    data = frame_of(turn)
    patients = data.patients or []
    page = menus.page_of(len(patients), data.who_page)
    result = menus.choose(answer, turn.context(), [[p.first_name] for p in patients], page)
    if result == menus.MORE:  # ten or more on one number: "for more names, press 9"
        data.who_page = page.following().number
        return "more"
    if not isinstance(result, Understood):
        return None
    data.patient = patients[result.value]
    _flag_unsure(turn, result, patients[result.value].first_name)
    return "chosen"


def needs_dob_check(turn: Turn) -> bool:
    """The clinic asks for a birth date before reading any details."""
    return turn.profile.verify_date_of_birth and frame_of(turn).patient is not None


def check_date_of_birth(answer: Answer, turn: Turn) -> str | None:
    """DDMMYYYY keyed; a mismatch counts as a failed try (three, then a person)."""
    digits = answer.keyed
    data = frame_of(turn)
    expected = data.patient.dob if data.patient else None
    if len(digits) == 8 and expected:
        try:
            given = date(int(digits[4:]), int(digits[2:4]), int(digits[:2]))
        except ValueError:
            given = None
        if given is not None and given == expected:
            data.verified = True
            return "ok"
    turn.problem = "dob_failed"
    return None


def load_last_visit(turn: Turn) -> str:
    """The newest completed visit, for the read-back."""
    data = frame_of(turn)
    if data.patient is None:
        return "none"
    visit = turn.services.last_visit(data.patient.id)
    if visit is None:
        data.last_visit = None
        return "none"
    site = visit.clinic or turn.profile.site(None)
    data.last_visit = Visit(
        start=visit.start,
        doctor_name=visit.doctor_name,
        doctor_id=visit.doctor_id,
        address=site.address if site else "",
        site=site.name if site else "",
        service=visit.service_name if turn.profile.read_last_visit_service else None,
    )
    return "service" if turn.profile.read_last_visit_service and visit.service_name else "found"


# --- menu and doctor -------------------------------------------------------------------


def choose_language(answer: Answer, turn: Turn) -> str | None:
    """ "For English, press 1; for Urdu, press 2."."""
    offered = turn.profile.languages_offered
    options = {str(i): code.split("-")[0].lower() for i, code in enumerate(offered, 1)}
    result = parse_language_choice(answer, turn.context(), options=options)
    if not isinstance(result, Understood):
        return None
    turn.call.language = next(c for c in offered if c.split("-")[0].lower() == result.value)
    frame_of(turn).language_chosen = True
    return "chosen"


def offers_languages(turn: Turn) -> bool:
    """The clinic offers callers a choice of language at the start."""
    return len(turn.profile.languages_offered) > 1 and not frame_of(turn).language_chosen


def not_welcomed(turn: Turn) -> bool:
    """The clinic's name was not said yet (it is said before the language menu)."""
    return len(turn.profile.languages_offered) <= 1


def main_menu(answer: Answer, turn: Turn) -> str | None:
    """1 (or "book") books; 0 and "agent" are handled by the engine at every prompt."""
    result = parse_choice(answer, turn.context(), MENU_WORDS)
    if not isinstance(result, Understood):
        return None
    return "book"


def has_last_doctor(turn: Turn) -> bool:
    """The last visit was with a doctor the clinic still books."""
    visit = frame_of(turn).last_visit
    return visit is not None and turn.profile.doctor(visit.doctor_id) is not None


def same_doctor(answer: Answer, turn: Turn) -> str | None:
    """ "Would you like Dr. Farooq again?"."""
    result = parse_yes_no(answer, turn.context())
    if isinstance(result, Understood):
        _flag_unsure(turn, result, answer.speech)
        if result.value:
            frame_of(turn).doctor_id = _last_doctor(turn)
            return "yes"
        return "no"
    # "Dr. Sheikh please" answers the question too.
    doctor = parse_doctor(answer, turn.context())
    if isinstance(doctor, Understood):
        frame_of(turn).doctor_id = doctor.value
        return "yes"
    return None


def choose_doctor(answer: Answer, turn: Turn) -> str | None:
    """By key (menu order) or by a (misspelt) name."""
    data = frame_of(turn)
    page = menus.page_of(len(turn.profile.doctors), data.doctor_page)
    if page.paged:  # ten or more doctors: "for more doctors, press 9"
        result = menus.choose_doctor(answer, turn.context(), page)
        if result == menus.MORE:
            data.doctor_page = page.following().number
            return "more"
    else:
        result = parse_doctor(answer, turn.context(), by_digit=True)
    if not isinstance(result, Understood):
        return None
    data.doctor_id = result.value
    doctor = turn.profile.doctor(result.value)
    _flag_unsure(turn, result, doctor.name if doctor else "")
    return "chosen"


def doctor_hints(turn: Turn) -> tuple[str, ...]:
    """Speech hints: doctor names and the words callers use for them."""
    words: list[str] = []
    for d in turn.profile.doctors:
        words.extend([d.name, d.short_name, *d.aliases])
    return tuple(dict.fromkeys(words))


# --- day and time ----------------------------------------------------------------------


def _last_doctor(turn: Turn) -> str | None:
    """The doctor of the caller's last visit."""
    visit = frame_of(turn).last_visit
    return visit.doctor_id if visit else None


def _doctor(turn: Turn) -> str:
    """The doctor being booked (the table asks for one before any time is looked up)."""
    doctor_id = frame_of(turn).doctor_id
    if doctor_id is None:
        raise KeyError("doctor_id")  # as the plain-key state did: a table bug, not a call
    return doctor_id


def find_slots(turn: Turn) -> str:
    """The doctor's earliest free times, as a menu."""
    slots = turn.services.free_slots(_doctor(turn), limit=3)
    frame_of(turn).choose_times([s.start for s in slots])
    return "found" if slots else "none"


def _offer_day(turn: Turn, day: date) -> str:
    """Offer the free times on `day`, or the earliest after it when the day is full."""
    data = frame_of(turn)
    slots = turn.services.free_slots(_doctor(turn), day=day, limit=3)
    if slots:
        data.choose_times([s.start for s in slots], day)
        return "day"
    data.offered_day = day
    turn.say("day_full")
    later = turn.services.free_slots(
        _doctor(turn), after=datetime.combine(day + timedelta(days=1), time()), limit=3
    )
    data.choose_times([s.start for s in later])
    return "earliest" if later else "none"


def _pick_time(turn: Turn, day: date, when: TimeOfDay) -> str:
    """A spoken or keyed time on a day: book it if free, else offer what is free."""
    data = frame_of(turn)
    slots = turn.services.free_slots(_doctor(turn), day=day, limit=50)
    if when.end is None:
        exact = datetime.combine(day, when.start)
        if any(s.start == exact for s in slots):
            data.start = exact
            return "picked"
        if slots:
            turn.say("time_not_free", requested=turn.lang.say_when(exact, turn.today))
            # The nearest free times that day, in time order.
            near = sorted(slots, key=lambda s: abs((s.start - exact).total_seconds()))[:3]
            data.choose_times([s.start for s in sorted(near, key=_start_of)], day)
            return "day"
        return _offer_day(turn, day)
    in_range = [s for s in slots if when.start <= s.start.time() < when.end]
    if in_range:
        part = "morning" if when.start < time(12) else "afternoon" if when.start < time(17) else (
            "evening"
        )
        data.offer = Offer(in_range[0].start, part)
        return "offer"
    return _offer_day(turn, day)


def _start_of(slot: Slot) -> datetime:
    return slot.start


def choose_slot(answer: Answer, turn: Turn) -> str | None:
    """A menu key for an offered time, 9 to key a date, or a spoken day and/or time."""
    data = frame_of(turn)
    offered = data.offered
    keyed = answer.keyed
    if keyed:
        if keyed == "9":
            return "key"
        if keyed.isdigit() and 1 <= int(keyed) <= len(offered):
            data.start = offered[int(keyed) - 1]
            return "picked"
        return None
    result = parse_when(answer, turn.context())
    if not isinstance(result, Understood):
        _explain(turn, result)
        return None
    when = result.value
    if when.doctor_id:
        data.doctor_id = when.doctor_id
    _flag_unsure(turn, result, _understood(turn, when))
    day = when.day
    if day is None and when.time is not None:
        # "at 4" refers to the day being discussed, else to the first day offered.
        day = data.offered_day or (offered[0].date() if offered else turn.today)
    if day is None:
        if when.doctor_id:
            return "doctor"
        return None
    if when.time is None:
        return _offer_day(turn, day)
    return _pick_time(turn, day, when.time)


def accept_offer(answer: Answer, turn: Turn) -> str | None:
    """ "Is 2 p.m. good?": yes books that time; anything else is read as another time."""
    result = parse_yes_no(answer, turn.context())
    if isinstance(result, Understood):
        _flag_unsure(turn, result, answer.speech)
    data = frame_of(turn)
    if isinstance(result, Understood) and result.value and data.offer is not None:
        data.start = data.offer.start
        return "picked"
    if isinstance(result, Understood):
        return "earliest_again"
    return choose_slot(answer, turn)


def keyed_date(answer: Answer, turn: Turn) -> str | None:
    """DDMM on the keypad (or a spoken date)."""
    result = parse_date(answer, turn.context())
    if not isinstance(result, Understood):
        _explain(turn, result)
        return None
    _flag_unsure(turn, result, _understood(turn, When(day=result.value)))
    frame_of(turn).keyed_day = result.value
    return "ok"


def keyed_time(answer: Answer, turn: Turn) -> str | None:
    """HHMM on the keypad (or a spoken time) on the keyed day."""
    day = frame_of(turn).keyed_day
    if day is None:
        return None
    result = parse_time(answer, turn.context(), day=day)
    if not isinstance(result, Understood):
        return None
    _flag_unsure(turn, result, _understood(turn, When(day=day, time=result.value)))
    return _pick_time(turn, day, result.value)


def reason(answer: Answer, turn: Turn) -> str | None:
    """Optional: a few words about the visit, kept as the appointment's notes."""
    words = (answer.speech or "").strip()
    if words:
        frame_of(turn).notes = words[:NOTES_MAX]
    return "ok"


def confirm(answer: Answer, turn: Turn) -> str | None:
    """1 books, 2 changes; a low-confidence spoken yes is read back before it books."""
    result = parse_yes_no(answer, turn.context())
    if not isinstance(result, Understood):
        return None
    _flag_unsure(turn, result, answer.speech)
    return "yes" if result.value else "change"


# --- booking ---------------------------------------------------------------------------


def book(turn: Turn) -> str:
    """Book through the clinic system (which records it first, so nothing is lost)."""
    data = frame_of(turn)
    seq = data.booking_seq
    first, last = data.new_name or ("", "")
    phone = data.keyed_number or turn.call.caller
    if data.start is None:
        raise KeyError("start")  # the table reads a time back before it books: a table bug
    text = None
    if phone and turn.profile.sms_confirmation:  # queued with the booking, sent once booked
        text = ConfirmationText(phone, data.clinic_number, turn.render("sms_booked"))
    outcome = turn.services.book(
        BookingRequest(
            idempotency_key=f"{turn.call.call_sid}:{seq}",
            doctor_id=_doctor(turn),
            start=data.start,
            patient_id=data.patient.id if data.patient else None,
            first_name=first,
            last_name=last,
            phone_e164=phone,
            notes=data.notes or "",
            call_sid=turn.call.call_sid,
            text=text,
        )
    )
    data.booking = BookingResult(outcome.status, outcome.appointment_id)
    if outcome.status == "booked":
        data.texted = outcome.texted
    if outcome.status == "slot_taken":
        data.booking_seq = seq + 1
        data.start = None
    return outcome.status


def wants_sms_note(turn: Turn) -> bool:
    """Mention the text message only when one was sent."""
    return frame_of(turn).texted


# --- new callers -----------------------------------------------------------------------


def yes_no(answer: Answer, turn: Turn) -> str | None:
    """Plain yes/no question (consent, the name read-back): a low-confidence spoken answer is
    read back before it counts."""
    result = parse_yes_no(answer, turn.context())
    if not isinstance(result, Understood):
        return None
    _flag_unsure(turn, result, answer.speech)
    return "yes" if result.value else "no"


def new_patient_name(answer: Answer, turn: Turn) -> str | None:
    """First and last name, read back on the next step."""
    result = parse_person_name(answer, turn.context())
    if not isinstance(result, Understood):
        return None
    frame_of(turn).new_name = result.value
    return "ok"


# --- people ----------------------------------------------------------------------------


def book_or_callback(answer: Answer, turn: Turn) -> str | None:
    """After nobody answered, or out of hours: 1 book now, 2 call me back."""
    result = parse_choice(
        answer, turn.context(), {"1": ["book", "appointment"], "2": ["call", "callback", "back"]}
    )
    if not isinstance(result, Understood):
        return None
    return "book" if result.value == "1" else "callback"


def route_booking(turn: Turn) -> str:
    """Where booking starts: a known patient picks a doctor; anyone else registers first.

    A caller who skipped or failed the clinic's birth-date check (pressed 0, or three wrong
    dates, then nobody answered) must not book in the patient's name: a callback only.
    """
    data = frame_of(turn)
    if data.patient is not None:
        if needs_dob_check(turn) and not data.verified:
            return "unverified"
        return "known"
    if data.patients is None and not data.new_name:
        # The lookup never answered (records were down): this may well be a known patient, so
        # look again rather than register them a second time.
        return "unidentified"
    if data.new_name:
        return "registered"
    return "unknown"


def request_callback(turn: Turn) -> str:
    """Record a callback request for the clinic's agents."""
    phone = frame_of(turn).keyed_number or turn.call.caller
    if not phone:
        return "no_number"
    turn.services.request_callback(turn.call.call_sid, phone, _callback_reason(turn))
    return "done"


def _callback_reason(turn: Turn) -> str:
    if turn.call.transfer_failed:
        return f"nobody answered the transfer ({turn.call.transfer_failed})"
    return "asked for a call back outside reception hours"
