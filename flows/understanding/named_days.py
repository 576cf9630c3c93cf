"""Named days of the clinic's calendar: "Christmas Day", "New Year's Eve", "Quaid Day".

Data, per region: `NAMED_DAYS[""]` holds days named alike everywhere the product runs, a
region's own table adds (or overrides) its public days. Days whose date moves every year
(Eid, Easter, Diwali) are listed in `MOVABLE_DAYS`: the parser asks for the date instead of
guessing one. A named day is its next occurrence from today on.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from flows.understanding.text import canonical, numberize

NAMED_DAYS: dict[str, dict[str, tuple[int, int]]] = {
    "": {
        "christmas": (12, 25), "christmas day": (12, 25), "xmas": (12, 25),
        "xmas day": (12, 25), "christmas eve": (12, 24), "xmas eve": (12, 24),
        "boxing day": (12, 26), "new year's day": (1, 1), "new years day": (1, 1),
        "new year day": (1, 1), "new year's": (1, 1),
        "new year's eve": (12, 31), "new years eve": (12, 31), "new year eve": (12, 31),
        "valentine's day": (2, 14), "valentines day": (2, 14), "valentine's": (2, 14),
        "halloween": (10, 31), "labour day": (5, 1),
        "labor day": (5, 1), "may day": (5, 1),
    },
    "PK": {
        "quaid day": (12, 25), "quaid e azam day": (12, 25), "quaid-e-azam day": (12, 25),
        "pakistan day": (3, 23), "independence day": (8, 14), "kashmir day": (2, 5),
        "iqbal day": (11, 9), "allama iqbal day": (11, 9),
    },
    "IN": {
        "independence day": (8, 15), "republic day": (1, 26), "gandhi jayanti": (10, 2),
    },
    "US": {"independence day": (7, 4), "labor day": (0, 0), "labour day": (0, 0)},
    "GB": {"st patrick's day": (3, 17)},
    "AE": {"national day": (12, 2), "uae national day": (12, 2)},
}  # fmt: skip
"""Fixed-date named days: phrase -> (month, day). (0, 0) marks a day that moves in that region."""

MOVABLE_DAYS = (
    "eid", "eid ul fitr", "eid ul adha", "eid-ul-fitr", "eid-ul-adha", "bakra eid", "ramadan",
    "ramzan", "easter", "good friday", "diwali", "holi", "thanksgiving", "mother's day",
    "father's day", "muharram", "ashura", "chand raat",
)  # fmt: skip
"""Days with a date that changes every year: asked for, never guessed."""


def _key(phrase: str) -> tuple[str, ...]:
    # As the date parser sees it: "good friday" -> ("good", "wd4"), "may day" -> ("m5", "day").
    return tuple(numberize(canonical(phrase, "en")))


@lru_cache(maxsize=16)
def _table(region: str) -> dict[tuple[str, ...], tuple[int, int]]:
    table: dict[tuple[str, ...], tuple[int, int]] = {}
    for source in (NAMED_DAYS[""], NAMED_DAYS.get(region.upper(), {})):
        for phrase, md in source.items():
            table[_key(phrase)] = md
    for phrase in MOVABLE_DAYS:
        table[_key(phrase)] = (0, 0)
    return table


def find_named_days(toks: Sequence[str], region: str) -> list[tuple[int, int, frozenset[int]]]:
    """(month, day, token indices) of each named day in `toks`; month 0 for a movable day.

    `toks` are canonical tokens with numbers joined (`dates.date_tokens`).
    """
    table = _table(region)
    longest = max(len(k) for k in table)
    out: list[tuple[int, int, frozenset[int]]] = []
    i = 0
    while i < len(toks):
        for n in range(min(longest, len(toks) - i), 0, -1):
            key = tuple(toks[i : i + n])
            if key in table:
                m, d = table[key]
                out.append((m, d, frozenset(range(i, i + n))))
                i += n
                break
        else:
            i += 1
    return out
