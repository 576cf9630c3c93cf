"""Understanding callers: pure parsers from what Twilio gathered to values the flow uses.

Every parser takes `(answer, ctx, ...)`, returns `Understood[T] | NotUnderstood`, never raises
and never returns a day before `ctx.now`. See docs/understanding.md.
"""

from __future__ import annotations

from flows.understanding.dates import parse_date
from flows.understanding.names import parse_doctor, parse_person_name
from flows.understanding.numbers import parse_digits, parse_phone_digits
from flows.understanding.times import PARTS_OF_DAY, parse_time
from flows.understanding.types import (
    LOW_CONFIDENCE,
    Answer,
    Context,
    NotUnderstood,
    Result,
    TimeOfDay,
    Understood,
    When,
)
from flows.understanding.utterance import Reading, read_utterance
from flows.understanding.when import parse_when
from flows.understanding.yesno import (
    parse_choice,
    parse_language_choice,
    parse_yes_no,
    wants_person,
)

SECOND_LANGUAGE = "ur"
"""The second language: Urdu (Twilio <Gather language="ur-PK">, <Say> Google ur-IN voice)."""

__all__ = [
    "LOW_CONFIDENCE",
    "PARTS_OF_DAY",
    "SECOND_LANGUAGE",
    "Answer",
    "Context",
    "Reading",
    "NotUnderstood",
    "Result",
    "TimeOfDay",
    "Understood",
    "When",
    "parse_choice",
    "parse_date",
    "parse_digits",
    "parse_doctor",
    "parse_language_choice",
    "parse_person_name",
    "parse_phone_digits",
    "parse_time",
    "parse_when",
    "parse_yes_no",
    "read_utterance",
    "wants_person",
]
