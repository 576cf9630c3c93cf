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

                opts: dict[str, list[str]] = {str(i + 1): [] for i in range(len(ctx.doctors))}
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
    "my full name is", "the patient is", "patient name is", "full name", "name's",
    "the name's", "my good name is", "good name is", "good name", "you're speaking to",
    "you are speaking to", "you're speaking with", "you are speaking with", "speaking to",
    "the patient's name is", "patient's name is", "his name is", "her name is", "their name is",
    "they call me", "i am called", "it's for", "it is for", "this is for", "i'm calling for",
    "i am calling for", "calling for", "calling on behalf of", "on behalf of", "it's about",
    "good morning", "good afternoon", "good evening", "assalam o alaikum", "assalamu alaikum",
    "assalamualaikum", "salaam", "salam", "aoa",
]  # fmt: skip
_LEADS_LONGEST_FIRST = sorted(_NAME_LEADS, key=len, reverse=True)  # "my good name is" first
# Framing after the name: "This is Sana Tariq speaking", "Sana here", "Zoya calling".
_NAME_TRAILERS = {"speaking", "here", "calling", "thanks", "thank", "you", "please", "sahib",
                  "sahiba", "ji"}  # fmt: skip
# The patient described before the name: "it's for my son, Ahmed Ali".
_NAME_RELATIONS = {"for", "my", "son", "daughter", "mother", "father", "wife", "husband",
                   "child", "kid", "baby", "brother", "sister", "mom", "mum", "dad", "mummy",
                   "daddy", "grandmother", "grandfather", "aunt", "uncle", "patient",
                   "of"}  # fmt: skip
NOT_NAME_WORDS = frozenset({
    "don't", "dont", "know", "what", "why", "who", "how", "where", "when", "pardon",
    "need", "have", "has", "give", "want", "do", "does", "did", "can", "could", "should",
    "would", "not", "repeat", "again", "understand", "hear", "heard", "mean", "say",
    "said", "excuse", "tell", "told", "question", "because", "busy", "wrong", "number",
    "that", "there", "nothing", "nobody", "anonymous", "unknown", "sure", "idea", "hello",
    "huh", "eh", "appointment", "booking", "doctor", "spell", "spelling", "okay",
    "yes", "yeah", "privacy", "private", "rather", "prefer", "won't", "wont", "can't", "cant",
    "isn't", "got", "get", "let", "hold", "wait", "moment", "minute", "sec", "hang", "it",
    "is", "are", "was", "were", "be", "just", "the",
})  # fmt: skip
"""Words that show an answer is not a name ("I don't know", "Sorry, what?", "Do I have to
give my name?"); checked after lead-ins, fillers and framing are dropped."""
_NAME_FILLERS = {"uh", "um", "umm", "er", "erm", "hmm", "ah", "well", "yes", "yeah", "okay",
                 "ok", "so", "hello", "hi", "please", "hai", "ہے", "ji", "جی", "sure", "and",
                 "name", "is", "my", "mr", "mrs", "ms", "miss", "dr", "doctor", "sir",
                 "madam", "thanks", "thank", "you", "the", "first", "last", "surname",
                 "its", "it's", "im", "i'm", "i", "am", "this", "called", "naam", "نام",
                 "mera", "میرا", "no", "sorry", "oh", "fine", "right", "alright"}  # fmt: skip


_NAME_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*|\d+")
_NAME_PUNCT = set(".,'-?!:\u060c\u06d4")  # "،" and "۔": Urdu comma and full stop


def _plain_speech(text: str) -> bool:
    """Letters, digits, spaces and sentence punctuation only: no markup, code or symbols."""
    return all(c.isspace() or c in _NAME_PUNCT or unicodedata.category(c)[0] in "LMN" for c in text)


def _name_tokens(speech: str) -> list[str]:
    """Words of the transcript, keeping hyphenated names ("mary-jane") as one word."""
    return _NAME_WORD.findall(normalise(speech))


def spelled_words(toks: list[str]) -> list[str]:
    """Letters spelled out joined into words: "s a n a" / "s-a-n-a" -> "sana".

    A spelled word that repeats a word said in the answer ("Sana, S A N A", "Nida Yasir,
    N I D A") only confirms it and is dropped.
    """
    out: list[str] = []
    spelled: set[int] = set()  # positions in `out`
    run: list[str] = []

    def flush() -> None:
        if len(run) >= 2:
            spelled.add(len(out))
            out.append("".join(run))
        else:
            out.extend(run)
        run.clear()

    for t in toks:
        parts = t.split("-")
        if len(parts) >= 2 and all(len(p) == 1 and p.isalpha() for p in parts):
            flush()
            spelled.add(len(out))
            out.append("".join(parts))
        elif len(t) == 1 and t.isalpha():
            run.append(t)
        else:
            flush()
            out.append(t)
    flush()
    said = {t for k, t in enumerate(out) if k not in spelled}
    return [t for k, t in enumerate(out) if k not in spelled or t not in said]


def drop_repeats(toks: list[str]) -> list[str]:
    """A name said twice once, as said the last time: "Saima, Saima Naz" -> "Saima Naz",
    "Khan. Imran Khan." -> "Imran Khan", "Sana Tariq, Sana Tariq" -> "Sana Tariq"."""
    out: list[str] = []
    for t in reversed(toks):
        if t not in out:
            out.insert(0, t)
    return out


def parse_person_name(answer: Answer, ctx: Context) -> Understood[tuple[str, str]] | NotUnderstood:
    """(first, last) title-cased, lead-ins, fillers and framing removed; never sure from speech.

    Not a name: a question ("Do I have to give my name?"), an answer with words no name has
    ("I don't know", "Sorry, what?"), markup. Spelled letters are joined ("S A N A Tariq"),
    a repeated name is said once ("Saima, Saima Naz").
    """
    try:
        if answer.keyed or not answer.speech:
            return NotUnderstood("no_speech")
        if not _plain_speech(normalise(answer.speech)):
            return NotUnderstood("not_a_name")  # "<script>...": reprompt, never store it
        if "?" in answer.speech or "؟" in answer.speech:
            return NotUnderstood("question")  # "Sorry, what?", "Why do you need that?"
        # Spelled letters first: "D A N I S H" must not lose its "i" and "a" as fillers.
        text = " " + " ".join(spelled_words(_name_tokens(answer.speech))) + " "
        if any(f" {w} " in text for w in NOT_NAME_WORDS):
            stripped = text
            for lead in _LEADS_LONGEST_FIRST:
                stripped = stripped.replace(" " + " ".join(_name_tokens(lead)) + " ", " ")
            left = [t for t in stripped.split() if t not in _NAME_FILLERS]
            if any(t in NOT_NAME_WORDS for t in left):
                return NotUnderstood("not_a_name")
        for lead in _LEADS_LONGEST_FIRST:
            text = text.replace(" " + " ".join(_name_tokens(lead)) + " ", " ")
        toks = [
            t for t in text.split() if t not in _NAME_FILLERS and not any(c.isdigit() for c in t)
        ]
        while toks and toks[-1] in _NAME_TRAILERS:
            toks.pop()
        while len(toks) > 2 and toks[0] in _NAME_RELATIONS:
            toks.pop(0)
        toks = drop_repeats(toks)
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
