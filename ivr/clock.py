"""Where "now" comes from: clinic-local wall-clock time, injectable for tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Gives the current clinic-local time as a naive datetime."""

    def now(self) -> datetime:
        """Current naive clinic-local time."""
        ...


class SystemClock:
    """The real clock, read in the clinic's time zone."""

    def __init__(self, timezone: str) -> None:
        self._tz = ZoneInfo(timezone)

    def now(self) -> datetime:
        """Current naive clinic-local time."""
        return datetime.now(self._tz).replace(tzinfo=None, microsecond=0)


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        """The fixed time."""
        return self._now

    def advance(self, **delta: float) -> None:
        """Move the clock forward, e.g. `advance(minutes=5)`."""
        self._now += timedelta(**delta)
