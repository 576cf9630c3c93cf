"""Text plumbing: normalise a transcript, split it into tokens, map them to canonical tokens."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from flows.understanding import words as W

_CHAR_MAP = str.maketrans(
    {
        "ي": "ی", "ى": "ی", "ك": "ک", "ه": "ہ", "ة": "ہ", "ۀ": "ہ", "ۃ": "ہ",
        "’": "'", "‘": "'", "`": "'", "´": "'", "ـ": "",
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        **{chr(0x0966 + i): str(i) for i in range(10)},
    }
)  # fmt: skip

_TOKEN = re.compile(
    r"\d{1,2}[:.]\d{2}(?!\d)"  # 16:30, 4.30
    r"|\d{1,4}[/\-]\d{1,2}(?:[/\-]\d{2,4})?(?![\d])"  # 5/12, 5/12/2026, 2026-12-05
    r"|\d+"
    r"|[^\W\d_]+(?:'[^\W\d_]+)?"
)
_ORD_SUFFIX = {"st", "nd", "rd", "th", "rth", "nth"}


def normalise(text: str | None) -> str:
    """Lower-case, unify Urdu letter variants and digits, drop diacritics and odd spacing."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP).lower()
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r" \1m ", text)
    return re.sub(r"\s+", " ", text).strip()


def tokenize(text: str | None) -> list[str]:
    """Split a normalised transcript into words and number-ish tokens."""
    out: list[str] = []
    for tok in _TOKEN.findall(normalise(text)):
        if out and tok in _ORD_SUFFIX and out[-1].isdigit():
            out[-1] += "#"
        else:
            out.append(tok)
    return out


@lru_cache(maxsize=8)
def _phrase_table(language: str) -> tuple[dict[tuple[str, ...], tuple[str, ...]], int]:
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    sources: list[dict[str, str]] = [W.PHRASES_EN]
    for word, n in W.WEEKDAY_EN.items():
        table[tuple(tokenize(word))] = (f"wd{n}",)
    for word, n in W.MONTH_EN.items():
        table[tuple(tokenize(word))] = (f"m{n}",)
    for word, n in W.ORDINAL_EN.items():
        table[tuple(tokenize(word))] = (f"{n}#",)
    if language != "en" and language in W.PHRASES:
        sources.append(W.PHRASES[language])  # the caller's language wins over English
    for source in sources:
        for phrase, canon in source.items():
            key = tuple(tokenize(phrase))
            if key:
                table[key] = tuple(canon.split())
    longest = max((len(k) for k in table), default=1)
    return table, longest


def canonical(text: str | None, language: str = "en") -> list[str]:
    """Tokens of `text` with phrases of the language (and English) replaced by canonical ones."""
    toks = tokenize(text)
    table, longest = _phrase_table(language if language in W.PHRASES else "en")
    out: list[str] = []
    i = 0
    while i < len(toks):
        for n in range(min(longest, len(toks) - i), 0, -1):
            key = tuple(toks[i : i + n])
            if key in table:
                out.extend(table[key])
                i += n
                break
        else:
            tok = toks[i]
            base = (tok[:-2],) if tok.endswith("'s") else ()
            if base in table:  # "Monday's good"
                out.extend(table[base])
            elif base and base[0] in {"today", "tomorrow"}:  # "tomorrow's fine"
                out.append(base[0])
            else:
                out.append(W.ALWAYS_NUMBERS.get(tok, tok))
            i += 1
    return out


def is_num(tok: str) -> bool:
    """A cardinal digit token ("5", "05")."""
    return tok.isdigit()


def is_ord(tok: str) -> bool:
    """An ordinal day token ("5#")."""
    return tok.endswith("#") and tok[:-1].isdigit()


def month_of(tok: str) -> int | None:
    """The month number of a canonical month token ("m12" -> 12)."""
    if tok.startswith("m") and tok[1:].isdigit():
        return int(tok[1:])
    return None


def weekday_of(tok: str) -> int | None:
    """The weekday number of a canonical weekday token ("wd1" -> 1)."""
    if tok.startswith("wd") and tok[2:].isdigit():
        return int(tok[2:])
    return None


_NUMBER_BEFORE = {"the", "on", "at", "around", "by", "date"}
_NUMBER_AFTER = {"pm", "am", "oclock", "of", "th", "st", "date"}


def numberize(toks: list[str], *, soundalikes: bool = True) -> list[str]:
    """Join number words into digit tokens: "twenty two" -> "22", "twenty second" -> "22#".

    Soundalikes ("to", "too", "for") become numbers only next to a month or a word that
    expects a number ("the", "on", "at", "pm"...), or when they are the whole utterance.
    """
    out: list[str] = []
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        nxt = toks[i + 1] if i + 1 < n else ""
        if t in W.TENS_EN:
            val = W.TENS_EN[t]
            if nxt in W.UNITS_EN and W.UNITS_EN[nxt] > 0:
                out.append(str(val + W.UNITS_EN[nxt]))
                i += 2
                continue
            after = toks[i + 2] if i + 2 < n else ""
            if nxt in W.SOUNDALIKE_UNITS and not _numberish(after):
                out.append(str(val + W.SOUNDALIKE_UNITS[nxt]))
                i += 2
                continue
            if is_ord(nxt) and int(nxt[:-1]) < 10:
                out.append(f"{val + int(nxt[:-1])}#")
                i += 2
                continue
            out.append(str(val))
        elif t in W.TEENS_EN:
            out.append(str(W.TEENS_EN[t]))
        elif t in W.UNITS_EN:
            out.append(str(W.UNITS_EN[t]))
        elif soundalikes and t in W.SOUNDALIKE_UNITS and _numeric_spot(toks, i):
            out.append(str(W.SOUNDALIKE_UNITS[t]))
        else:
            out.append(t)
        i += 1
    return out


def _numberish(tok: str) -> bool:
    return tok.isdigit() or tok in W.UNITS_EN or tok in W.TEENS_EN or tok in W.TENS_EN


def _numeric_spot(toks: list[str], i: int) -> bool:
    if len(toks) == 1:
        return True
    prev = toks[i - 1] if i > 0 else ""
    nxt = toks[i + 1] if i + 1 < len(toks) else ""
    if _numberish(nxt):
        return False  # "to five", "for two"
    if toks[i] in {"to", "too"} and prev in {"quarter", "half", "minutes", "mins"}:
        return False
    return prev in _NUMBER_BEFORE or month_of(prev) is not None or nxt in _NUMBER_AFTER


def strip(toks: Iterable[str], drop: set[str]) -> list[str]:
    """Tokens without the ones in `drop`."""
    return [t for t in toks if t not in drop]
