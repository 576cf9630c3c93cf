"""Self-corrections: "Tuesday, no, Wednesday at 3", "3, no, 4 p.m.", "Sorry, I mean Friday".

Callers correct themselves mid-answer; the value said last is the one they mean. These helpers
work on canonical tokens (`text.canonical`), so they serve every parser and the utterance-level
reader built on top of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

CORRECTION_MARKERS: tuple[tuple[str, ...], ...] = (
    ("no", "sorry", "i", "mean"), ("sorry", "i", "mean"), ("no", "i", "mean"), ("i", "mean"),
    ("no", "wait"), ("no", "sorry"), ("sorry",), ("actually",), ("or", "rather"), ("rather",),
    ("make", "it"), ("make", "that"), ("scratch", "that"), ("change", "that", "to"),
    ("change", "it", "to"), ("wait",), ("no",), ("nope",),
)  # fmt: skip
"""Token sequences after which a caller replaces what they said before (longest first).

"not" is no marker: "Tuesday, not Wednesday" means Tuesday, so it stays two days (asked again)."""

NOT_A_CORRECTION_AFTER = frozenset(
    {"later", "earlier", "sooner", "problem", "problems", "worries", "need", "preference",
     "rush", "hurry", "matter", "thanks", "thank", "good", "longer", "one", "way", "doubt"}
)  # fmt: skip
"""A marker followed by one of these is an ordinary phrase ("no later than 4", "sorry, thanks")."""

YES_NO_MARKERS: tuple[tuple[str, ...], ...] = tuple(
    m for m in CORRECTION_MARKERS if m[0] not in {"no", "nope", "not"}
)
"""For yes/no answers "no" is the value itself, never a correction marker."""


REPLACED_MARKERS: tuple[tuple[str, ...], ...] = (("instead", "of"), ("rather", "than"))
"""What follows these is the value being replaced: "2:40 p.m. instead of 2"."""


def drop_replaced(toks: Sequence[str]) -> list[str]:
    """The answer without the value it replaces: "thursday instead of friday" -> ["thursday"].

    Only when something comes before the marker ("Instead of Tuesday, Wednesday" is left
    whole, so it stays two days and is asked again).
    """
    for i in range(1, len(toks)):
        if any(tuple(toks[i : i + len(m)]) == m for m in REPLACED_MARKERS):
            return list(toks[:i])
    return list(toks)


def split_corrections(
    toks: Sequence[str], markers: Sequence[tuple[str, ...]] = CORRECTION_MARKERS
) -> list[list[str]]:
    """The answer cut at each correction marker: "tue no wed at 3" -> [["tue"], ["wed", "at", "3"]].

    Markers are dropped; a marker at the very start ("No, Wednesday") leaves an empty first
    segment. Always returns at least one segment.
    """
    toks = drop_replaced(toks)
    out: list[list[str]] = [[]]
    i = 0
    ordered = sorted(markers, key=len, reverse=True)
    while i < len(toks):
        marker = next((m for m in ordered if tuple(toks[i : i + len(m)]) == m), None)
        after = toks[i + len(marker)] if marker and i + len(marker) < len(toks) else ""
        if marker is not None and after not in NOT_A_CORRECTION_AFTER:
            if out[-1] or len(out) == 1:  # "10, no, make it 11": one correction, not two
                out.append([])
            i += len(marker)
            continue
        out[-1].append(toks[i])
        i += 1
    return out


def last_said(segments: Sequence[Sequence[str]], read: Callable[[list[str]], T]) -> T | None:
    """What `read` finds in the last segment where it finds anything (None if nowhere).

    `read` returns None for "nothing of this kind here"; anything else (a value or a
    NotUnderstood) counts as said, so "Tuesday, no, Wednesday or Thursday" stays ambiguous.
    """
    for seg in reversed(segments):
        got = read(list(seg))
        if got is not None:
            return got
    return None


def corrected(
    toks: Sequence[str],
    read: Callable[[list[str]], T],
    markers: Sequence[tuple[str, ...]] = CORRECTION_MARKERS,
) -> T | None:
    """`read` on the last corrected part of the answer that says something; the whole if none.

    A marker followed by nothing readable ("Tuesday, sorry" / "No, thanks") leaves the earlier
    value standing.
    """
    segments = split_corrections(toks, markers)
    if len(segments) == 1:
        return read(segments[0])
    return last_said(segments, read)
