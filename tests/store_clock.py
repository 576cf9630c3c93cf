"""The settable clock store tests hand to ``Store(now=...)``: naive UTC, moved by the test."""

from __future__ import annotations

from datetime import datetime, timedelta

T0 = datetime(2026, 3, 2, 9, 0, 0)


class Clock:
    """Naive-UTC test clock the store calls for "now"."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        """Move the clock forward, e.g. ``advance(seconds=61)``."""
        self.t += timedelta(**delta)
