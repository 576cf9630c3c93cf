"""Yes/no, menu choices, "a person please", and the language menu."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from flows.understanding import words as W
from flows.understanding.corrections import YES_NO_MARKERS, corrected
from flows.understanding.text import canonical, normalise, tokenize
from flows.understanding.types import Answer, Context, NotUnderstood, Understood

_NO_PHRASES = [
    "not right", "not correct", "isn't right", "isnt right", "is not right", "not okay",
    "not ok", "not fine", "not good", "don't", "dont", "do not", "not really", "not that",
    "no thanks", "no thank you", "change it", "wrong", "not", "no",
]  # fmt: skip
_YES_PHRASES = ["no problem", "no worries", "why not", "go ahead", "book it", "do it",
                "that's right", "thats right", "that is right", "all right", "please do",
                "sounds good", "that works", "that's fine", "yes please", "not a problem",
                "don't mind", "dont mind", "do not mind", "wouldn't mind", "of course",
                "by all means", "go for it", "go on", "suits me", "that suits", "works for me",
                "fine by me", "sounds great", "sounds fine", "sounds perfect", "that'll do",
                "you got it", "that's it", "spot on", "that's the one", "yes that's it",
                "i'd like that", "lets do it", "let's do it", "why not", "think so",
                "guess so", "suppose so", "i suppose", "i guess", "believe so"]  # fmt: skip
_NEGATORS = {"not", "don't", "dont", "doesn't", "doesnt", "isn't", "isnt", "won't", "wont",
             "can't", "cant", "never", "hardly", "wouldn't", "wouldnt", "shouldn't", "didn't",
             "didnt", "aren't", "arent", "wasn't", "wasnt"}  # fmt: skip
"""A yes word within three words after one of these is negated: "not good", "doesn't suit me"."""
_INTENSIFIERS = {"definitely", "absolutely", "certainly", "surely", "really", "course",
                 "totally", "bilkul"}  # fmt: skip
"""Before "not"/"no" these strengthen the refusal: "definitely not", "of course not"."""
_STRONG_YES = {
    "yes", "yeah", "yea", "yep", "yup", "ya", "yah", "yess", "aye", "sure", "correct",
    "right", "exactly", "absolutely", "definitely", "certainly", "perfect", "confirm",
    "confirmed", "affirmative", "great", "good", "fine", "okay", "ok", "alright", "k", "okey",
    "oke", "go", "yeap", "suits", "suit", "works", "lovely", "brilliant", "cool", "indeed",
    "agreed", "agree", "course", "yesh", "yas", "haan",
}  # fmt: skip
_WEAK_YES = {"ji", "well", "please"}
_NO = {"no", "nope", "nah", "negative", "wrong", "incorrect", "change", "different",
       "another", "other", "cancel", "nay", "never", "not", "nahi"} | _NEGATORS  # fmt: skip

BACKCHANNEL_YES = re.compile(r"\b(?:uh[- ]?huh|mm+[- ]?hm+|m+hm+|uh[- ]?hum|yeah[- ]yeah)\b")
BACKCHANNEL_NO = re.compile(r"\b(?:uh-uh|nuh[- ]?uh|mm-mm|huh-uh)\b")
"""Backchannels as Twilio writes them: "Uh-huh." / "Mm-hmm." agree, "Uh-uh." / "Nuh-uh." refuse.
"uh-uh" needs its hyphen: "uh, uh" is hesitation."""


def backchannel(text: str | None) -> bool | None:
    """True for an agreeing backchannel ("Uh-huh", "Mm-hmm", "Mhm"), False for a refusing one
    ("Uh-uh", "Nuh-uh"), None when the text has neither (or both)."""
    low = normalise(text)
    yes, no = bool(BACKCHANNEL_YES.search(low)), bool(BACKCHANNEL_NO.search(low))
    return None if yes == no else yes


def _with_backchannels(text: str | None) -> str:
    """The transcript with backchannels written as "yes"/"no", so they join the other words."""
    low = normalise(text)
    return BACKCHANNEL_YES.sub(" yes ", BACKCHANNEL_NO.sub(" no ", low))


def yes_no_tokens(text: str | None, language: str) -> list[str]:
    """Canonical tokens for a yes/no answer: backchannels and Urdu yes/no words in an English
    answer ("Haan ji", "Theek hai", "Nahi, nahi", "Bilkul") mapped to English ones."""
    toks = canonical(_with_backchannels(text), language)
    out: list[str] = []
    i = 0
    while i < len(toks):
        pair = " ".join(toks[i : i + 2])
        if pair in W.YES_NO_LOANS:
            out.extend(W.YES_NO_LOANS[pair].split())
            i += 2
            continue
        out.extend(W.YES_NO_LOANS.get(toks[i], toks[i]).split())
        i += 1
    return out


_SKIP_NOT_SURE = {"not sure", "don't know", "dont know", "maybe", "perhaps"}
_FILLERS = {
    "uh",
    "um",
    "umm",
    "er",
    "erm",
    "hmm",
    "ah",
    "oh",
    "well",
    "so",
    "like",
    "the",
    "it",
    "is",
    "that",
    "that's",
    "thats",
    "i",
    "a",
    "to",
    "thank",
    "you",
    "thanks",
}


def yes_or_no(toks: Sequence[str]) -> bool | NotUnderstood | None:
    """The verdict of canonical tokens (`yes_no_tokens`): True, False, NotUnderstood when they
    say both or are unsure, None when they say neither.

    Negation wins: a yes word after a negator ("not good", "doesn't suit me") and an
    intensifier before "not" ("definitely not", "of course not") count as a no, not as both.
    """
    text = " " + " ".join(toks) + " "
    if any(f" {p} " in text for p in _SKIP_NOT_SURE):
        return NotUnderstood("unsure")
    im_good = _IM_GOOD.search(text)
    if im_good:  # "I'm good, thanks" is often a polite no: only the other words count
        text = text[: im_good.start()] + " "
        if not text.strip():
            return NotUnderstood("ambiguous")
    yes = no = False
    for p in _YES_PHRASES:
        if f" {p} " in text and not _negated_phrase(text, p):
            yes, text = True, text.replace(f" {p} ", " ")
    words = text.split()
    for i, t in enumerate(words):
        if t in _NEGATORS or t in {"no", "nahi"}:
            if i and words[i - 1] in _INTENSIFIERS:  # "definitely not", "bilkul nahi"
                words[i - 1] = ""
            if t in _NEGATORS:
                for j in range(i + 1, min(len(words), i + 4)):
                    if words[j] in _STRONG_YES or words[j] in _WEAK_YES:
                        words[j] = ""  # "not good", "doesn't suit me"
    text = " " + " ".join(w for w in words if w) + " "
    for p in _NO_PHRASES:
        if f" {p} " in text:
            no, text = True, text.replace(f" {p} ", " ")
    rest = text.split()
    yes = yes or any(t in _STRONG_YES for t in rest)
    no = no or any(t in _NO for t in rest)
    weak = any(t in _WEAK_YES for t in rest)
    if yes and no:
        return NotUnderstood("yes_and_no")
    if no:
        return False
    if yes or (weak and rest and all(t in _WEAK_YES | _FILLERS for t in rest)):
        return True
    return None


_IM_GOOD = re.compile(
    r" (?:i'm|im|i am) (?:good|fine|ok|okay|alright|all right)(?: thanks| thank you)? $"
)


def _negated_phrase(text: str, phrase: str) -> bool:
    """Whether a yes phrase is negated: "doesn't sound good", "of course not"."""
    at = text.find(f" {phrase} ")
    before = text[:at].split()[-3:]
    after = text[at + len(phrase) + 2 :].split()[:1]
    if any(w in _NEGATORS | {"no", "nahi"} for w in after):
        return True  # "of course not"
    return any(w in _NEGATORS for w in before) and phrase not in {"don't mind", "dont mind"}


def parse_yes_no(answer: Answer, ctx: Context) -> Understood[bool] | NotUnderstood:
    """Keyed 1 = yes, 2 = no; or spoken agreement / refusal, fillers ignored."""
    try:
        if answer.keyed:
            if answer.keyed == "1":
                return Understood(True)
            if answer.keyed == "2":
                return Understood(False)
            return NotUnderstood("not_1_or_2")
        toks = yes_no_tokens(answer.speech, ctx.language)
        if toks in (["1"], ["one"], ["press", "1"], ["won"]):
            return Understood(True, sure=not answer.low_confidence)
        if toks in (["2"], ["two"], ["press", "2"], ["to"], ["too"]):
            return Understood(False, sure=not answer.low_confidence)
        said = corrected(toks, yes_or_no, YES_NO_MARKERS)  # "Yes. Actually, no." is no
        if isinstance(said, bool):
            return Understood(said, sure=not answer.low_confidence)
        return said or NotUnderstood("no_yes_or_no")
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")


def _stem(word: str) -> str:
    for suffix in ("ing", "ment", "ments", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


_SPOKEN_KEYS = {
    "0": {"zero", "oh", "0", "sifar"}, "1": {"one", "1", "won", "first"},
    "2": {"two", "2", "second"}, "3": {"three", "3", "third"}, "4": {"four", "4", "fourth"},
    "5": {"five", "5", "fifth"}, "6": {"six", "6"}, "7": {"seven", "7"}, "8": {"eight", "8"},
    "9": {"nine", "9"},
}  # fmt: skip
_KEY_CUES = {"press", "option", "number", "pressing", "choose", "key"}


def parse_choice(
    answer: Answer, ctx: Context, options: Mapping[str, Sequence[str]]
) -> Understood[str] | NotUnderstood:
    """The option key chosen: a keyed key, a spoken key ("press one"), or an option's words."""
    try:
        if answer.keyed:
            if answer.keyed in options:
                return Understood(answer.keyed)
            return NotUnderstood("no_option")
        toks = canonical(answer.speech, ctx.language)
        if not toks:
            return NotUnderstood("empty")
        content = [t.rstrip("#") for t in toks if t not in _FILLERS and t not in _KEY_CUES]
        spoken_keys = {k for k in options for t in content if t in _SPOKEN_KEYS.get(k, {k})}
        if len(spoken_keys) == 1 and (len(content) <= 2 or any(t in _KEY_CUES for t in toks)):
            return Understood(spoken_keys.pop(), sure=not answer.low_confidence)
        stems = [_stem(t) for t in toks]
        scores: dict[str, float] = {}
        for key, option_words in options.items():
            best = 0.0
            for phrase in option_words:
                p = [_stem(w) for w in tokenize(phrase)]
                if not p:
                    continue
                at = [i for i in range(len(stems)) if stems[i : i + len(p)] == p]
                if at:  # the word said first leads: "change my booking" is about changing
                    early = 0.3 * (1 - at[0] / len(stems))
                    best = max(best, 1.0 + 0.1 * len(p) + early)
                elif len(p) == 1 and len(p[0]) >= 4 and any(s.startswith(p[0]) for s in stems):
                    best = max(best, 0.9)
                elif len(p) == 1 and len(p[0]) >= 4:
                    close = difflib.get_close_matches(p[0], stems, n=1, cutoff=0.8)
                    if close:
                        best = max(best, difflib.SequenceMatcher(None, p[0], close[0]).ratio())
            if best:
                scores[key] = best
        if not scores:
            return NotUnderstood("no_option")
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - 0.05:
            return NotUnderstood("ambiguous")
        key, score = ranked[0]
        sure = score >= 1.0 and len(ranked) == 1 and not answer.low_confidence
        return Understood(key, sure=sure)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")


_NEGATION = {"not", "never", "isn't", "isnt", "aren't", "arent", "don't", "dont", "doesn't",
             "doesnt", "didn't", "didnt", "won't", "wont", "without", "nahi"}  # fmt: skip
REPORTING_VERBS = frozenset({
    "told", "tell", "tells", "said", "says", "say", "asked", "asks", "wants", "wanted",
    "gave", "booked", "called", "calls", "mentioned", "recommended", "suggested", "advised",
    "sent", "referred", "rang", "phoned", "texted", "messaged", "emailed", "explained",
    "confirmed", "prescribed", "checked", "thinks", "thought", "reminded", "changed", "moved",
    "cancelled", "canceled", "forgot", "noted", "wrote", "left", "was", "were", "had",
    # Urdu: "ریسپشنسٹ نے کہا" (the receptionist said); "ne" marks who did it
    "ne", "نے", "kaha", "کہا", "bola", "بولا", "bataya", "بتایا",
})  # fmt: skip
_NEGATION_AFTER = {"no", "nahi", "nahin", "نہیں", "mat", "مت"}
"""Urdu negates after the verb: "کسی سے بات نہیں کرنی" (I don't want to talk to anyone)."""
"""A person word followed by one of these is someone in the caller's story, not a request:
"The receptionist told me to come back", "the nurse said it's due"."""
_STORY_BEFORE = {"works", "worked", "work", "working", "met", "saw", "seen", "knows", "whose",
                 "when", "spoke", "spoken", "talked"}  # fmt: skip
"""Before a person word these tell a story: "my sister works at reception", "my mum spoke to
someone yesterday"."""
_DETERMINERS = {"the", "my", "your", "our", "his", "her", "their", "that", "this"}
_ASKING_ABOUT = {"hours", "hour", "timings", "timing", "times", "open", "opens", "opening",
                 "close", "closes", "closing", "closed", "number", "address"}  # fmt: skip
_TALK = {"speak", "talk"}


def _negated(before: list[str]) -> bool:
    """A negator in the clause; "no" only right before or as "no need" ("no, I want a person"
    is a request)."""
    text = " " + " ".join(before) + " "
    return bool(_NEGATION & set(before)) or "no" in before[-2:] or " no need " in text


def _clause_before(toks: list[str], i: int, span: int = 6) -> list[str]:
    """Up to `span` tokens before i, back to a "but" ("not now, but can I talk to a person")."""
    out = toks[max(0, i - span) : i]
    for j in range(len(out) - 1, -1, -1):
        if out[j] in {"but", "though", "although"}:
            return out[j + 1 :]
    return out


def _asks_for_person(toks: list[str]) -> bool:
    """Whether canonical tokens ask for a person (raises on a bug: `wants_person` guards it)."""
    text = " " + " ".join(toks) + " "
    if " someone else " in text or " for someone " in text:
        return False
    words = W.PERSON_WORDS - _TALK - {"real"}
    for i, tok in enumerate(toks):
        phrase = next((w for w in words if " " in w and toks[i : i + 2] == w.split()), None)
        if tok not in words and phrase is None:
            continue
        end = i + (2 if phrase else 1)
        before, after = _clause_before(toks, i), toks[end] if end < len(toks) else ""
        if tok == "person" and i and toks[i - 1] == "in":
            continue  # "in person": how they will come, not who they want
        if _negated(before) or after in _ASKING_ABOUT:
            continue  # "i'm not an agent", "i don't need a person", "reception hours"
        if after == "please":
            return True  # "Reception, please, I was told to call"
        if _NEGATION_AFTER & set(toks[end : end + 3]):
            continue  # "kisi se baat nahi karni"
        if REPORTING_VERBS & set(toks[end : end + 4]):
            continue  # "the receptionist told me to come back"
        if (
            i
            and toks[i - 1] in _DETERMINERS
            and "please" not in toks[end : end + 2]
            and REPORTING_VERBS & set(toks[end : end + 6])
        ):
            continue  # "the agent on the phone last week was rude"
        if _STORY_BEFORE & set(before):
            continue  # "my sister works at reception"
        if "by" in before and REPORTING_VERBS & set(toks[max(0, i - 5) : i]):
            continue  # "I was told by the receptionist to call back"
        return True
    for i, tok in enumerate(toks):
        if tok in _TALK and "to" in toks[i + 1 :] and "doctor" not in toks:
            before = _clause_before(toks, i)
            if not _negated(before) and not REPORTING_VERBS & set(before):
                return True  # not "she said to speak to you first"
    return False


def person_requested(answer: Answer) -> bool:
    """`wants_person` without its guard: a bug raises (the property tests call this one)."""
    if answer.keyed:
        return answer.keyed == "0"
    return any(_asks_for_person(canonical(answer.speech, lang)) for lang in W.LANGUAGES)


def wants_person(answer: Answer) -> bool:
    """Whether the caller keyed 0 alone or asked for a person (any supported language).

    Not for "in person", "I'm not an agent" or "reception hours": this is checked at every
    prompt, so a false yes transfers a caller in the middle of booking.
    """
    try:
        return person_requested(answer)
    except Exception:  # noqa: BLE001 - never raises
        return False


def parse_language_choice(
    answer: Answer, ctx: Context, *, options: Mapping[str, str] | None = None
) -> Understood[str] | NotUnderstood:
    """A language code from a keyed option (default 1 = en, 2 = ur) or a spoken language name."""
    try:
        options = options or {"1": "en", "2": "ur"}
        if answer.keyed:
            code = options.get(answer.keyed)
            return Understood(code) if code else NotUnderstood("no_option")
        offered = set(options.values())
        said = set()
        for lang in W.LANGUAGES:
            for t in canonical(answer.speech, lang):
                code = W.LANGUAGE_NAMES.get(t)
                if code in offered:
                    said.add(code)
                else:
                    said.update(
                        options[k]
                        for k, spoken in _SPOKEN_KEYS.items()
                        if k in options and t in spoken
                    )
        if len(said) == 1:
            return Understood(said.pop(), sure=not answer.low_confidence)
        return NotUnderstood("ambiguous" if said else "no_language")
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
