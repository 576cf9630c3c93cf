"""Digit strings: keyed, or spoken ("three two one", "double five", "oh", "03 double 2").

Spoken tens and teens are written out as their digits ("thirty two" -> "32", "ten" -> "10"),
"hundred" appends "00" and "thousand" "000" ("five hundred" -> "500"); "oh"/"o" is zero.
Hyphens only separate digits: "3-2-1" and "three-two-one" are "321".
"""

from __future__ import annotations

import re

from flows.understanding import words as W
from flows.understanding.text import canonical
from flows.understanding.types import Answer, Context, NotUnderstood, Understood

_ZERO = {"oh", "o", "zero", "nought", "naught", "nil", "zed"}
_REPEAT = {"double": 2, "triple": 3, "treble": 3}
_DIGIT_FILLERS = {
    "my", "number", "is", "it's", "its", "the", "phone", "mobile", "cell", "and", "then",
    "uh", "um", "umm", "er", "erm", "hmm", "ah", "well", "it", "yes", "yeah", "ok", "okay",
    "so", "please", "dash", "hyphen", "space", "comma", "country", "code", "area", "hash",
    "pound", "star", "key", "that", "was", "sorry", "i", "mean", "a", "of", "numbers",
}  # fmt: skip


_HYPHENATED = re.compile(r"\d+(?:-\d+)+")


def _split_hyphens(tok: str) -> list[str]:
    """ "3-2-1" -> ["3", "2", "1"]: digits read with hyphens are a digit sequence."""
    return tok.split("-") if _HYPHENATED.fullmatch(tok) else [tok]


def spoken_digits(speech: str | None, language: str = "en") -> tuple[str, bool, bool]:
    """(digits, any_unknown_words, said_plus) from a transcript of numbers."""
    toks = [p for t in canonical(speech, language) for p in _split_hyphens(t)]
    out: list[str] = []
    unknown = False
    plus = False
    repeat = 1
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i].rstrip("#")
        nxt = toks[i + 1] if i + 1 < n else ""
        piece = None
        if t == "plus" and not out:
            plus = True
        elif t in _REPEAT:
            repeat = _REPEAT[t]
        elif t.isdigit():
            piece = t
        elif t in _ZERO:
            piece = "0"
        elif t in W.UNITS_EN:
            piece = str(W.UNITS_EN[t])
        elif t in W.TEENS_EN:
            piece = str(W.TEENS_EN[t])
        elif t in W.TENS_EN:
            val = W.TENS_EN[t]
            if nxt in W.UNITS_EN and W.UNITS_EN[nxt] > 0:
                piece, i = str(val + W.UNITS_EN[nxt]), i + 1
            elif nxt in W.SOUNDALIKE_UNITS:
                piece, i = str(val + W.SOUNDALIKE_UNITS[nxt]), i + 1
            else:
                piece = str(val)
        elif t in W.SOUNDALIKE_UNITS:
            piece = str(W.SOUNDALIKE_UNITS[t])
        elif t in {"hundred", "thousand"} and out:
            out[-1] += "00" if t == "hundred" else "000"
        elif t in _DIGIT_FILLERS or t in W.FILLERS.get(language, set()):
            pass
        else:
            unknown = True
        if piece is not None:
            if repeat > 1 and len(piece) > 1:
                out.append(piece[0] * repeat + piece[1:])
            else:
                out.append(piece * repeat)
            repeat = 1
        i += 1
    return "".join(out), unknown, plus


def parse_digits(
    answer: Answer, ctx: Context, *, length: int | None = None
) -> Understood[str] | NotUnderstood:
    """A string of digits, keyed or spoken; `length` (if given) must match exactly."""
    try:
        if answer.keyed:
            digits, sure = answer.keyed, True
        else:
            digits, unknown, _plus = spoken_digits(answer.speech, ctx.language)
            sure = not unknown and not answer.low_confidence
        if not digits:
            return NotUnderstood("no_digits")
        if length is not None and len(digits) != length:
            return NotUnderstood("wrong_length")
        return Understood(digits, sure=sure)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")


def parse_phone_digits(answer: Answer, ctx: Context) -> Understood[str] | NotUnderstood:
    """A phone number's digits (7 to 15 of them), with a leading "+" if the caller said "plus".

    The phone module validates and formats it; this only gathers the digits.
    """
    try:
        if answer.keyed:
            digits, sure, plus = answer.keyed, True, False
        else:
            digits, unknown, plus = spoken_digits(answer.speech, ctx.language)
            sure = not unknown and not answer.low_confidence
        if not 7 <= len(digits) <= 15:
            return NotUnderstood("wrong_length" if digits else "no_digits")
        return Understood(("+" if plus else "") + digits, sure=sure)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
