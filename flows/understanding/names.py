"""Doctor names (fuzzy, against the clinic's doctors) and callers' own names."""

from __future__ import annotations

import difflib
import re
import unicodedata

from flows.domain import Doctor
from flows.understanding.text import normalise, tokenize
from flows.understanding.types import Answer, Context, NotUnderstood, Understood

_TITLES = {"dr", "doctor", "doc", "doktor", "daktar", "prof", "professor", "ڈاکٹر", "mr", "mrs",
           "ms", "miss", "sahib", "sahab", "صاحب", "sahiba", "صاحبہ"}  # fmt: skip

# Rough Urdu-script -> Latin transliteration, only used to compare names phonetically.
_UR_LATIN = str.maketrans({
    "ا": "a", "آ": "a", "ب": "b", "پ": "p", "ت": "t", "ٹ": "t", "ث": "s", "ج": "j",
    "چ": "ch", "ح": "h", "خ": "kh", "د": "d", "ڈ": "d", "ذ": "z", "ر": "r", "ڑ": "r",
    "ز": "z", "ژ": "zh", "س": "s", "ش": "sh", "ص": "s", "ض": "z", "ط": "t", "ظ": "z",
    "ع": "a", "غ": "gh", "ف": "f", "ق": "q", "ک": "k", "گ": "g", "ل": "l", "م": "m",
    "ن": "n", "ں": "n", "و": "o", "ہ": "h", "ھ": "h", "ء": "", "ی": "i", "ے": "e",
    "ئ": "i", "ۓ": "e", "ؤ": "o", "أ": "a", "إ": "i",
})  # fmt: skip

_KEY_SUBS = [("kh", "k"), ("gh", "g"), ("ph", "f"), ("ck", "k"), ("q", "k"), ("ou", "u"),
             ("oo", "u"), ("ee", "i"), ("ie", "i"), ("ei", "e"), ("ey", "e"), ("y", "i"),
             ("w", "v"), ("z", "s"), ("c", "k")]  # fmt: skip


def name_key(word: str) -> str:
    """A rough phonetic key: spelling variants of one name map to close keys."""
    s = normalise(word).translate(_UR_LATIN)
    s = re.sub(r"[^a-z]", "", s)
    for a, b in _KEY_SUBS:
        s = s.replace(a, b)
    s = re.sub(r"(?<![sc])h", "", s) if len(s) > 3 else s
    s = s.replace("e", "i").replace("o", "u")
    return re.sub(r"(.)\1+", r"\1", s)


def _doctor_words(doctor: Doctor) -> list[str]:
    words = [w for w in tokenize(doctor.name) if w not in _TITLES]
    for alias in doctor.aliases:
        words.extend(w for w in tokenize(alias) if w not in _TITLES)
    return words


_STOP = {"the", "with", "and", "see", "want", "like", "book", "appointment", "please", "to",
         "i", "i'd", "would", "can", "could", "my", "me", "a", "an", "for", "same", "again",
         "one", "who", "is", "it", "at", "on", "next", "this", "uh", "um", "er", "yes", "no",
         "tomorrow", "today", "morning", "afternoon", "evening", "pm", "am", "time", "day",
         "week", "sahib", "ko", "se", "ke", "ka", "ki", "sath", "ساتھ", "کے", "سے", "کو",
         "ہے", "hai", "chahiye", "mujhe"}  # fmt: skip


def match_doctor(
    speech: str | None, doctors: tuple[Doctor, ...], *, cutoff: float = 0.78
) -> tuple[str | None, float, str]:
    """(doctor id, score 0..1, reason) for the doctor whose name is closest to the speech."""
    toks = [t for t in tokenize(speech) if not t.isdigit() and t not in _STOP]
    titled = any(t in _TITLES for t in toks)
    if titled:
        cutoff = min(cutoff, 0.75)
    toks = [t for t in toks if t not in _TITLES and len(name_key(t)) >= 2]
    if not toks or not doctors:
        return None, 0.0, "no_name"
    scores: dict[str, float] = {}
    for doctor in doctors:
        total = 0.0
        for word in _doctor_words(doctor):
            wk = name_key(word)
            best = max(difflib.SequenceMatcher(None, wk, name_key(t)).ratio() for t in toks)
            joined = max(
                (
                    difflib.SequenceMatcher(None, wk, name_key(a + b)).ratio()
                    for a, b in zip(toks, toks[1:], strict=False)
                ),
                default=0.0,
            )  # "far ooq" split by the recogniser
            best = max(best, joined)
            if best >= cutoff:
                total = max(total, best) + (0.01 if total else 0.0) * best
        if total:
            scores[doctor.id] = total
    if not scores:
        return None, 0.0, "no_doctor"
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - 0.02:
        return None, ranked[0][1], "ambiguous"
    doctor_id, score = ranked[0]
    return doctor_id, min(score, 1.0) if titled or score >= 0.99 else min(score, 1.0), ""


def parse_doctor(
    answer: Answer, ctx: Context, *, by_digit: bool = False
) -> Understood[str] | NotUnderstood:
    """A doctor id: a fuzzy match of the spoken name, or (`by_digit`) a keyed position 1..n."""
    try:
        if answer.keyed:
            if by_digit and answer.keyed.isdigit() and 1 <= int(answer.keyed) <= len(ctx.doctors):
                return Understood(ctx.doctors[int(answer.keyed) - 1].id)
            return NotUnderstood("keyed")
        doctor_id, score, reason = match_doctor(answer.speech, ctx.doctors)
        if doctor_id is None:
            if by_digit:
                from flows.understanding.yesno import parse_choice

                opts = {str(i + 1): [] for i in range(len(ctx.doctors))}
                picked = parse_choice(answer, ctx, opts)
                if isinstance(picked, Understood):
                    return Understood(ctx.doctors[int(picked.value) - 1].id, sure=picked.sure)
            return NotUnderstood(reason)
        return Understood(doctor_id, sure=score >= 0.99 and not answer.low_confidence)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")


_NAME_LEADS = [
    "my name is", "my name's", "name is", "the name is", "this is", "it's", "it is", "i am",
    "i'm", "im", "call me", "i'm called", "you can call me", "mera naam", "میرا نام",
    "my full name is", "the patient is", "patient name is", "full name",
]  # fmt: skip
_NAME_FILLERS = {"uh", "um", "umm", "er", "erm", "hmm", "ah", "well", "yes", "yeah", "okay",
                 "ok", "so", "hello", "hi", "please", "hai", "ہے", "ji", "جی", "sure", "and",
                 "name", "is", "my", "mr", "mrs", "ms", "miss", "dr", "doctor", "sir",
                 "madam", "thanks", "thank", "you", "the", "first", "last", "surname",
                 "its", "it's", "im", "i'm", "i", "am", "this", "called", "naam", "نام",
                 "mera", "میرا"}  # fmt: skip


_NAME_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*|\d+")
_NAME_PUNCT = set(".,'-?!:\u060c\u06d4")  # "،" and "۔": Urdu comma and full stop


def _plain_speech(text: str) -> bool:
    """Letters, digits, spaces and sentence punctuation only: no markup, code or symbols."""
    return all(c.isspace() or c in _NAME_PUNCT or unicodedata.category(c)[0] in "LMN" for c in text)


def _name_tokens(speech: str) -> list[str]:
    """Words of the transcript, keeping hyphenated names ("mary-jane") as one word."""
    return _NAME_WORD.findall(normalise(speech))


def parse_person_name(answer: Answer, ctx: Context) -> Understood[tuple[str, str]] | NotUnderstood:
    """(first, last) title-cased, lead-ins and fillers removed; never sure from speech."""
    try:
        if answer.keyed or not answer.speech:
            return NotUnderstood("no_speech")
        if not _plain_speech(normalise(answer.speech)):
            return NotUnderstood("not_a_name")  # "<script>...": reprompt, never store it
        text = " " + " ".join(_name_tokens(answer.speech)) + " "
        for lead in _NAME_LEADS:
            text = text.replace(" " + " ".join(_name_tokens(lead)) + " ", " ")
        toks = [
            t for t in text.split() if t not in _NAME_FILLERS and not any(c.isdigit() for c in t)
        ]
        if len(toks) < 2:
            return NotUnderstood("need_first_and_last" if toks else "no_name")
        if len(toks) > 4:
            return NotUnderstood("too_many_words")

        def cap(word: str) -> str:
            return "-".join(p[:1].upper() + p[1:] for p in word.split("-"))

        first = cap(toks[0])
        last = " ".join(cap(t) for t in toks[1:])
        return Understood((first, last), sure=False)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
