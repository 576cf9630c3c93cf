"""One spoken answer read for everything in it: what the caller wants, doctor, day, time, reason.

The `parse_*` functions each look for one thing; a caller says several at once ("book me with
Dr. Khan on Friday at 11 for a sore throat"). `read_utterance` runs them over the whole answer
and returns a `Reading` with every field it found (None for the rest), so the call can keep
what was said and ask only for what is missing. A self-correction inside the answer ("Tuesday,
no, Wednesday") keeps the last value of each field. Never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from flows.understanding.text import canonical, normalise
from flows.understanding.types import Answer, Context, TimeOfDay, Understood
from flows.understanding.when import parse_when
from flows.understanding.yesno import wants_person

INTENTS = ("book", "person", "next", "hours", "address", "cancel", "move")
"""What a caller may want: book, a person, their next appointment, opening hours, the address,
cancel or move an appointment."""

# Words (after `normalise`) that say what the caller wants; checked in this order, so "cancel my
# appointment" is a cancellation, not a booking. English and Urdu (script and romanised).
_INTENT_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cancel", ("cancel", "cancellation", "call off", "منسوخ", "کینسل", "cancel karna")),
    ("move", ("reschedule", "move my", "move the", "move it", "change my appointment",
              "postpone", "rearrange", "bring forward", "تبدیل", "آگے کر")),
    ("next", ("next appointment", "upcoming appointment", "when is my", "my appointment",
              "اگلی اپوائنٹمنٹ", "اگلی ملاقات", "میری اپوائنٹمنٹ")),
    ("hours", ("opening hours", "open", "opening times", "timings", "timing", "closing",
               "close", "what time do you", "اوقات", "کھلتا", "کھلتے", "کھلا", "بند ہوتا")),
    ("address", ("address", "where are you", "where is the clinic", "where is your",
                 "located", "location", "directions", "how do i get", "پتہ", "پتا", "کہاں")),
    ("book", ("book", "booking", "appointment", "schedule", "see a doctor", "see the doctor",
              "see doctor", "see dr", "free", "available", "slot", "checkup", "check up",
              "بکنگ", "اپوائنٹمنٹ", "ملاقات", "دکھانا", "ملنا")),
)
_ZERO = {"zero", "0", "صفر", "sifar"}
# Where a self-correction starts: the part after it wins for every field it gives.
# Markers in a row ("no, make it 3") are one correction; case does not matter ("No," as Twilio
# writes it at the start, "no," as the softphone's caller types it).
_CORRECTION = re.compile(
    r"(?:,|\s)\s*(?:(?:no|nope|sorry|actually|i mean|rather|make it|or rather|wait|نہیں)\b"
    r"[,\s]*)+",
    re.IGNORECASE,
)
# "for a sore throat": the reason, up to where another part of the request starts.
_REASON = re.compile(r"\b(?:for|about|because of|regarding)\s+(.+)", re.IGNORECASE)
_REASON_END = re.compile(
    r"\s+(?:on|at|with|tomorrow|today|next|this|in the|please)\b|[,.?!]", re.IGNORECASE
)
_TITLE_DOT = re.compile(r"\b(dr|mr|mrs|ms|st)\.", re.IGNORECASE)
_NOT_REASON = {"me", "you", "it", "now", "a", "an", "the", "my", "that", "this"}
# Urdu puts "for" after the reason: "کمر کے درد کے لیے" (for back pain); the reason is the words
# before it, back to a word that belongs to the day, time or doctor.
_UR_FOR = re.compile(r"\s+کے\s+لی[ےئ]")
_UR_BOUNDARY = {"بجے", "کو", "ساتھ", "سے", "میں", "پر", "اور", "،", "ہے", "ہیں"}
REASON_MAX = 200


@dataclass(frozen=True)
class Reading:
    """What one answer said; None where it said nothing about that."""

    intent: str | None = None  # one of INTENTS
    doctor_id: str | None = None
    day: date | None = None
    time: TimeOfDay | None = None
    reason: str | None = None
    sure: bool = True  # False: the recogniser or a parser was unsure (read it back first)
    problem: str | None = None  # why a day or time said could not be used ("weekday_mismatch")
    either_half: bool = False  # an hour without a.m./p.m. that is open both ways: ask which

    @property
    def has_request(self) -> bool:
        """Whether it named a doctor, a day or a time."""
        return self.doctor_id is not None or self.day is not None or self.time is not None


def read_utterance(answer: Answer, ctx: Context) -> Reading:
    """Everything in one spoken (or keyed) answer; an empty `Reading` when nothing was found."""
    try:
        return _read(answer, ctx)
    except Exception:  # noqa: BLE001 - understanding never raises
        return Reading()


def _read(answer: Answer, ctx: Context) -> Reading:
    if answer.keyed:
        return Reading(intent="person") if answer.keyed == "0" else Reading()
    speech = (answer.speech or "").strip()
    if not speech:
        return Reading()
    said = normalise(speech).strip(" .?!,")
    if said in _ZERO:
        return Reading(intent="person")
    reading = Reading(sure=not answer.low_confidence)
    # parse_when keeps the last value of a self-correction itself ("Thursday at 10, no, make
    # it 11" is Thursday at 11); only what it cannot read whole is read part by part, earlier
    # parts first and later ones overwriting ("Tuesday, no, Wednesday" is Wednesday).
    whole = _read_part(speech, answer, ctx)
    if whole.has_request:
        reading = _merge(reading, whole)
    else:
        for part in _parts(speech):
            reading = _merge(reading, _read_part(part, answer, ctx))
    if _either_half(reading, speech, ctx):
        # "At 9" in a clinic open 9 a.m. to 10 p.m.: ask which, once (not "I heard ...").
        reading = replace(reading, either_half=True, sure=not answer.low_confidence)
    reason = _reason(speech, ctx)
    intent = _intent(speech, answer)
    if intent is None and (reading.has_request or reason):
        intent = "book"  # "Is Dr. Farooq free on Monday at 10?" asks for a booking
    return replace(reading, intent=intent, reason=reason)


def _parts(speech: str) -> list[str]:
    """The answer split where the caller corrected themselves ("Tuesday, no, Wednesday")."""
    parts = [p for p in _CORRECTION.split(" " + speech) if p and p.strip(" ,.")]
    return parts or [speech]


def _read_part(part: str, answer: Answer, ctx: Context) -> Reading:
    found = parse_when(Answer(speech=part, confidence=answer.confidence), ctx)
    if not isinstance(found, Understood):
        reason = getattr(found, "reason", "")
        return Reading(problem=reason if reason == "weekday_mismatch" else None)
    when = found.value
    return Reading(doctor_id=when.doctor_id, day=when.day, time=when.time, sure=found.sure)


_HALF_WORDS = {"am", "pm", "morning", "afternoon", "evening", "night", "noon", "midday",
               "midnight"}


def _either_half(reading: Reading, speech: str, ctx: Context) -> bool:
    """An exact hour said without a.m./p.m. that the clinic is open at both ways."""
    t = reading.time
    if t is None or t.end is not None or t.start.hour in (0, 12):
        return False
    if _HALF_WORDS & set(canonical(speech, ctx.language)):
        return False
    am = t.start.replace(hour=t.start.hour % 12)
    pm = am.replace(hour=am.hour + 12)
    spans = (ctx.hours.on(reading.day) if reading.day else
             [s for ranges in ctx.hours.ranges.values() for s in ranges])
    return all(any(a <= x < b for a, b in spans) for x in (am, pm))


def _merge(old: Reading, new: Reading) -> Reading:
    return Reading(
        doctor_id=new.doctor_id or old.doctor_id,
        day=new.day or old.day,
        time=new.time or old.time,
        sure=old.sure and new.sure,
        problem=new.problem or old.problem,
    )


def _intent(speech: str, answer: Answer) -> str | None:
    if wants_person(answer):
        return "person"
    text = " " + " ".join(normalise(speech).replace("?", " ").replace(",", " ").split()) + " "
    for intent, words in _INTENT_WORDS:
        for word in words:
            if word.isascii():
                if f" {word} " in text:
                    return intent
            elif word in text:
                return intent
    return None


def _reason(speech: str, ctx: Context) -> str | None:
    """ "for my back pain" -> "my back pain"; not "for tomorrow" or "for Dr. Khan"."""
    if not speech.isascii():
        return _reason_urdu(speech, ctx)
    speech = _TITLE_DOT.sub(r"\1", speech)  # "Dr. Khan": the dot does not end the reason
    for match in _REASON.finditer(speech):
        rest = match.group(1)
        end = _REASON_END.search(rest)
        words = (rest[: end.start()] if end else rest).strip(" ,.?!")
        if not words or words.lower() in _NOT_REASON:
            continue
        if isinstance(parse_when(Answer(speech=words), ctx), Understood):
            continue  # "for Friday", "for 10 a.m.", "for Dr. Khan": a when, not a reason
        toks = canonical(words, ctx.language)
        if toks and toks[0] in {"appointment", "booking", "book", "doctor", "dr", "doc"}:
            continue
        return words[:REASON_MAX]
    return None


def _reason_urdu(speech: str, ctx: Context) -> str | None:
    for match in _UR_FOR.finditer(speech):
        words = speech[: match.start()].replace("،", " ، ").split()
        kept: list[str] = []
        for word in reversed(words):
            if word in _UR_BOUNDARY or len(kept) >= 6:
                break
            kept.insert(0, word)
        found = " ".join(kept)
        if found and not isinstance(parse_when(Answer(speech=found), ctx), Understood):
            return found[:REASON_MAX]
    return None
