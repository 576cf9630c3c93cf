"""Free-slot rules: the one place that decides which appointment times can be offered or booked.

The phone flow, the agent console and the JSON API all call these functions, so a time that one
of them offers is a time the others accept. Everything here is pure: the caller passes the
opening hours, the doctor's *active* appointments (cancelled and no-show rows already removed)
and "now"; nothing is fetched.

Rules, for one doctor on one day:

- slots lie on a grid that starts at each opening range's start and steps by `slot_minutes`;
- a slot ends inside its range (`start + slot_minutes <= range end`);
- a slot starts strictly after `now + lead_minutes` (never in the past);
- a slot never overlaps a booked interval (half-open intervals: back to back is fine).

Times are naive clinic-local datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

from flows.domain import Slot, WeeklyHours

Interval = tuple[datetime, datetime]


class OutOfTime(Exception):  # noqa: N818 - a condition, not a programming error
    """Raised by a `booked_by_day` whose time ran out (see `first_free_slots`)."""


def _normalise(booked: Iterable[Interval]) -> list[Interval]:
    """Booked intervals sorted by start; a zero or negative length row still blocks its start."""
    out: list[Interval] = []
    for start, end in booked:
        if end <= start:
            end = start + timedelta(minutes=1)
        out.append((start, end))
    out.sort()
    return out


def _overlaps(start: datetime, end: datetime, booked: list[Interval]) -> bool:
    """Whether [start, end) overlaps any of the half-open booked intervals."""
    return any(b_start < end and start < b_end for b_start, b_end in booked)


def overlaps_booked(start: datetime, slot_minutes: int, booked: Iterable[Interval]) -> bool:
    """Whether the slot starting at `start` collides with any booked (start, end) interval.

    The same overlap rule `free_slots` applies, for callers that check one concrete time
    (e.g. just before sending a booking) whether or not it lies on the grid.
    """
    return _overlaps(start, start + timedelta(minutes=slot_minutes), _normalise(booked))


def free_slots(
    *,
    doctor_id: str,
    day: date,
    hours: WeeklyHours,
    slot_minutes: int,
    booked: Iterable[Interval],
    now: datetime,
    lead_minutes: int = 0,
) -> list[Slot]:
    """The free slots of one doctor on one day, earliest first.

    `booked` are the doctor's active appointments as (start, end); the caller filters out
    cancelled and no-show rows. A slot must start strictly after `now + lead_minutes`.
    """
    if slot_minutes <= 0:
        raise ValueError("slot_minutes must be positive")
    step = timedelta(minutes=slot_minutes)
    earliest = now + timedelta(minutes=lead_minutes)
    busy = _normalise(booked)
    slots: list[Slot] = []
    for range_start, range_end in hours.on(day):
        start = datetime.combine(day, range_start)
        end_of_range = datetime.combine(day, range_end)
        while start + step <= end_of_range:
            if start > earliest and not _overlaps(start, start + step, busy):
                slots.append(Slot(doctor_id=doctor_id, start=start, minutes=slot_minutes))
            start += step
    slots.sort(key=lambda s: s.start)
    return slots


def last_bookable_day(now: datetime, days_ahead: int) -> date:
    """The last calendar day of the booking window (today + `days_ahead`)."""
    return now.date() + timedelta(days=days_ahead)


def first_free_slots(
    *,
    doctor_id: str,
    from_day: date,
    days_ahead: int,
    limit: int,
    hours: WeeklyHours,
    slot_minutes: int,
    booked_by_day: Callable[[date], Iterable[Interval]],
    now: datetime,
    lead_minutes: int = 0,
    after: datetime | None = None,
) -> list[Slot]:
    """The earliest `limit` free slots from `from_day` on, within the booking window.

    Walks forward day by day up to today + `days_ahead` (the clinic's `booking_days_ahead`),
    asking `booked_by_day(day)` for that doctor's active appointments only on open days.
    `after`, when given, keeps slots starting at or after it (and starts the walk on its day).

    If `booked_by_day` raises `OutOfTime` (the caller's time limit for the search), the walk
    stops there: the slots found so far, or `OutOfTime` again when there are none.
    """
    if limit <= 0:
        return []
    day = max(from_day, now.date())
    if after is not None:
        day = max(day, after.date())
    last = last_bookable_day(now, days_ahead)
    found: list[Slot] = []
    while day <= last and len(found) < limit:
        if hours.on(day):
            try:
                booked = booked_by_day(day)
            except OutOfTime:
                if found:
                    return found
                raise
            for slot in free_slots(
                doctor_id=doctor_id,
                day=day,
                hours=hours,
                slot_minutes=slot_minutes,
                booked=booked,
                now=now,
                lead_minutes=lead_minutes,
            ):
                if after is not None and slot.start < after:
                    continue
                found.append(slot)
                if len(found) >= limit:
                    break
        day += timedelta(days=1)
    return found

