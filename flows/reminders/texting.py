"""The reminder's words: the text message, the appointments as spoken, and reading the replies.

`reminder_sms` renders the SMS in the patient's language from the catalogue (`flows/lang/`):
day, time, doctor, address, and how to answer ("Reply 1 to confirm, 2 to move, 3 to cancel, or
call us"). `say_appointments` is the phrase the SMS and the call share ("tomorrow, Tuesday the
24th at 4 p.m. with Dr. Farooq").

`read_reply` reads an inbound SMS. Twilio itself acts on a few whole-message keywords before
our webhook sees them: an opt-out keyword (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, and
the newer REVOKE and OPTOUT) blocks every later text to the number, an opt-in keyword (START,
YES, UNSTOP) lifts the block. The reading says both what the patient wants for the appointment
(`intent`) and what Twilio did to the number (`opted`), so the store can mirror Twilio:

- "3", "cancel it", "cancel my appointment": a cancel request; the number stays opted in.
- "CANCEL" alone: Twilio has opted the number out, so it is an opt-out *and* a cancel request
  (flagged for the desk to check: the patient most likely meant the appointment, but can no
  longer be texted). Our texts never say "reply CANCEL": they ask for "3".
- "YES" alone: a confirmation, and (for Twilio) an opt-in.
See docs/reminders.md ("Replies") for the decision.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from flows.clinic_services import ClinicProfile
from flows.domain import ClinicSite
from flows.lang import Catalogue, text

Intent = Literal["confirm", "move", "cancel", "opt_out", "opt_in", "help", "unknown"]

#: Twilio's default opt-out keywords (whole message, any case).
OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit",
                              "revoke", "optout"})
#: Twilio's default opt-in keywords.
OPT_IN_KEYWORDS = frozenset({"start", "yes", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_BY_DIGIT: dict[str, Intent] = {"1": "confirm", "2": "move", "3": "cancel"}
# Words of a reply that is not a bare digit, English and Urdu (roman and script). The first
# listed intent found wins in the order cancel, move, confirm: "no, cancel" is a cancel.
_WORDS: tuple[tuple[Intent, frozenset[str]], ...] = (
    ("cancel", frozenset({"cancel", "cancelled", "canceled", "cancellation", "منسوخ",
                          "mansookh", "cancl"})),
    ("move", frozenset({"move", "reschedule", "rebook", "change", "postpone", "another",
                        "later", "تبدیل", "بدل", "badal", "tabdeel"})),
    ("confirm", frozenset({"yes", "confirm", "confirmed", "ok", "okay", "sure", "coming",
                           "yep", "yeah", "y", "ہاں", "جی", "haan", "han", "ji", "👍"})),
)


@dataclass(frozen=True)
class ReplyReading:
    """What an inbound SMS means: for the appointment (`intent`) and for the number (`opted`:
    "out" or "in" when Twilio acted on a keyword, else None)."""

    intent: Intent
    opted: Literal["out", "in"] | None = None
    keyword: bool = False  # the whole message was one of Twilio's keywords


def read_reply(body: str | None) -> ReplyReading:
    """Read a reply to a reminder (module docstring)."""
    raw = (body or "").strip().translate(_DIGITS)
    word = raw.lower()
    if word in OPT_OUT_KEYWORDS:
        # "CANCEL" is a carrier opt-out and most likely means the appointment too.
        return ReplyReading("cancel" if word == "cancel" else "opt_out", "out", keyword=True)
    if word in OPT_IN_KEYWORDS:
        return ReplyReading("confirm" if word == "yes" else "opt_in", "in", keyword=True)
    if word in HELP_KEYWORDS:
        return ReplyReading("help", keyword=True)
    tokens = re.findall(r"[^\W_]+|👍", word)
    if not tokens:
        return ReplyReading("unknown")
    first = tokens[0]
    if first in _BY_DIGIT:
        return ReplyReading(_BY_DIGIT[first])
    if first in ("stop", "unsubscribe"):  # "stop texting me": not Twilio's keyword, same wish
        return ReplyReading("opt_out")
    found = set(tokens)
    for intent, words in _WORDS:
        if found & words:
            return ReplyReading(intent)
    return ReplyReading("unknown")


# --- the words of a reminder ---------------------------------------------------------------


def say_appointments(
    lang: Catalogue, items: Sequence[tuple[datetime, str]], today: date
) -> str:
    """ "tomorrow, Tuesday the 24th at 10 a.m. with Dr. Farooq and at 4 p.m. with Dr. Khan":
    each (start, doctor) in time order, the day said once."""
    parts: list[str] = []
    previous: date | None = None
    for start, doctor in sorted(items):
        when = lang.say_when(start, today, previous=previous)
        key = "reminder_item" if doctor else "reminder_item_no_doctor"
        parts.append(_fragment(lang, key, when=when, doctor=doctor))
        previous = start.date()
    if len(parts) <= 1:
        return "".join(parts)
    joiner = _fragment(lang, "reminder_and")
    return ", ".join(parts[:-1]) + f" {joiner} " + parts[-1]


def doctor_words(profile: ClinicProfile, doctor_id: str | None, doctor_name: str) -> str:
    """The doctor as the clinic file names them ("Dr. Farooq"), else as Clinicea does."""
    doctor = profile.doctor(doctor_id)
    return doctor.short_name if doctor else doctor_name


def site_of(
    profile: ClinicProfile, doctor_id: str | None, clinic_id: str | None = None
) -> ClinicSite | None:
    """The clinic site of an appointment: its own, its doctor's, else the first site."""
    doctor = profile.doctor(doctor_id)
    return profile.site(clinic_id or (doctor.clinic_id if doctor else None))


@dataclass(frozen=True)
class SmsAppointment:
    """One appointment as the text names it (from a planned reminder or stored row)."""

    start: datetime
    doctor_id: str | None
    doctor_name: str
    clinic_id: str | None = None


def reminder_sms(
    lang: Catalogue,
    profile: ClinicProfile,
    appointments: Sequence[SmsAppointment],
    *,
    today: date,
) -> str:
    """The reminder text: "Harbour Family Clinic: a reminder of your appointment tomorrow,
    Tuesday the 24th at 4 p.m. with Dr. Farooq, at 7 Khayaban-e-Ittehad. Reply 1 to confirm,
    2 to move, 3 to cancel, or call us on 021 111 222."."""
    if not appointments:
        raise ValueError("a reminder names at least one appointment")
    ordered = sorted(appointments, key=lambda a: a.start)
    first = ordered[0]
    site = site_of(profile, first.doctor_id, first.clinic_id)
    named = say_appointments(
        lang, [(a.start, doctor_words(profile, a.doctor_id, a.doctor_name)) for a in ordered],
        today,
    )
    call_us = (_fragment(lang, "reminder_call_us_on", phone=site.phone) if site and site.phone
               else _fragment(lang, "reminder_call_us"))
    key = "reminder_sms" if len(ordered) == 1 else "reminder_sms_many"
    return text(lang, key, {"clinic": profile.name, "appointments": named,
                            "address": site.address if site else "", "call_us": call_us})


def _fragment(lang: Catalogue, key: str, **fields: object) -> str:
    """A catalogue fragment as written (no capital added: it goes inside a sentence)."""
    template = lang.prompts.get(key)
    if template is None:
        from flows.lang import en

        template = en.PROMPTS.get(key, "")
    return template.format(**fields).strip()
