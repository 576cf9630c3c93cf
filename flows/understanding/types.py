"""Value types shared by every parser: what was gathered, what was understood, what parsers know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Generic, TypeVar

from flows.domain import Doctor, WeeklyHours

T = TypeVar("T", covariant=True)  # frozen: an Understood[bool] is an Understood[object]

_ASCII_DIGITS = frozenset("0123456789")

LOW_CONFIDENCE = 0.5
"""Speech below this recognition confidence is understood but read back (`sure=False`)."""


@dataclass(frozen=True)
class Answer:
    """What Twilio gathered: keyed digits and/or a speech transcript with its confidence."""

    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None

    @property
    def keyed(self) -> str:
        """The keyed ASCII digits without `#`/`*` and spaces ("" when nothing was keyed).

        Not `str.isdigit`: that lets "²" or "١" through, and callers do `int()` on the result.
        """
        return "".join(c for c in (self.digits or "") if c in _ASCII_DIGITS)

    @property
    def low_confidence(self) -> bool:
        """Whether the recogniser was unsure of the transcript."""
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE


@dataclass(frozen=True)
class Understood(Generic[T]):
    """A parsed value; `sure=False` means read it back to the caller before acting on it."""

    value: T
    sure: bool = True


@dataclass(frozen=True)
class NotUnderstood:
    """Nothing usable; `reason` is for logs (the caller's hint comes from the prompt catalogue)."""

    reason: str = ""


@dataclass(frozen=True)
class Context:
    """What parsers may know about the call and the clinic."""

    now: datetime  # naive clinic-local
    region: str  # "PK": numeric date order
    hours: WeeklyHours  # to resolve "4" to 4 pm
    slot_minutes: int = 20
    doctors: tuple[Doctor, ...] = ()
    language: str = "en"  # "en" or "ur"

    @property
    def today(self) -> date:
        """The clinic-local calendar day of `now`."""
        return self.now.date()


@dataclass(frozen=True)
class TimeOfDay:
    """An exact time (`end` None) or a part of the day (`start` inclusive to `end` exclusive)."""

    start: time
    end: time | None = None

    @property
    def is_range(self) -> bool:
        """Whether this is a part of the day rather than an exact time."""
        return self.end is not None


@dataclass(frozen=True)
class When:
    """What one utterance said about an appointment: any of day, time and doctor."""

    day: date | None = None
    time: TimeOfDay | None = None
    doctor_id: str | None = None


Result = Understood[T] | NotUnderstood
