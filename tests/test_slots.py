"""Tests for the free-slot rules in flows.slots."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from flows.domain import Slot, WeeklyHours
from flows.slots import first_free_slots, free_slots, last_bookable_day

HOURS = WeeklyHours(
    {
        0: ((time(9), time(17)),),
        1: ((time(9), time(17)),),
        2: ((time(9), time(17)),),
        3: ((time(9), time(17)),),
        4: ((time(9), time(13)),),  # Friday half day
        5: ((time(10), time(14)),),
        # Sunday closed
    }
)
MONDAY = date(2025, 3, 10)
FRIDAY = date(2025, 3, 14)
SUNDAY = date(2025, 3, 16)
DR = "doc-1"


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """A clinic-local datetime on `day`."""
    return datetime.combine(day, time(hh, mm))


def starts(slots: list[Slot]) -> list[str]:
    """Slot starts as HH:MM strings."""
    return [s.start.strftime("%H:%M") for s in slots]


def test_calendar_assumptions() -> None:
    assert MONDAY.weekday() == 0 and FRIDAY.weekday() == 4 and SUNDAY.weekday() == 6


@pytest.mark.parametrize(
    (
        "case",
        "day",
        "slot_minutes",
        "booked",
        "now",
        "lead",
        "expected_first",
        "expected_last",
        "expected_count",
        "absent",
    ),
    [
        # whole Monday free, asked the evening before: 9:00 .. 16:40, 24 slots of 20 min
        (
            "open day",
            MONDAY,
            20,
            [],
            at(MONDAY, 0) - timedelta(hours=3),
            0,
            "09:00",
            "16:40",
            24,
            [],
        ),
        # past: at 11:05 nothing at or before 11:05 is offered
        ("past", MONDAY, 20, [], at(MONDAY, 11, 5), 0, "11:20", "16:40", 17, ["11:00"]),
        # exactly on a slot start: that slot is already under way, not offered
        ("now on grid", MONDAY, 20, [], at(MONDAY, 11, 20), 0, "11:40", "16:40", 16, ["11:20"]),
        # lead time pushes the first offer further
        ("lead", MONDAY, 20, [], at(MONDAY, 11, 5), 30, "11:40", "16:40", 16, ["11:20"]),
        # closed day: nothing
        ("closed day", SUNDAY, 20, [], at(MONDAY, 8), 0, None, None, 0, []),
        # Friday half day: last slot ends at 13:00
        ("friday half day", FRIDAY, 20, [], at(MONDAY, 8), 0, "09:00", "12:40", 12, ["13:00"]),
        # a 30-minute appointment at 10:10 blocks 10:00 and 10:20 (both overlap), not 10:40
        (
            "overlap 30 min",
            MONDAY,
            20,
            [(at(MONDAY, 10, 10), at(MONDAY, 10, 40))],
            at(MONDAY, 8),
            0,
            "09:00",
            "16:40",
            22,
            ["10:00", "10:20"],
        ),
        # back to back is fine: an appointment 10:00-10:20 blocks only 10:00
        (
            "back to back",
            MONDAY,
            20,
            [(at(MONDAY, 10), at(MONDAY, 10, 20))],
            at(MONDAY, 8),
            0,
            "09:00",
            "16:40",
            23,
            ["10:00"],
        ),
        # grid alignment: 45-minute slots from 09:00; the last one that fits ends at 16:30
        ("grid 45", MONDAY, 45, [], at(MONDAY, 8), 0, "09:00", "15:45", 10, ["16:30"]),
    ],
)
def test_free_slots(
    case: str,
    day: date,
    slot_minutes: int,
    booked: list[tuple[datetime, datetime]],
    now: datetime,
    lead: int,
    expected_first: str | None,
    expected_last: str | None,
    expected_count: int,
    absent: list[str],
) -> None:
    slots = free_slots(
        doctor_id=DR,
        day=day,
        hours=HOURS,
        slot_minutes=slot_minutes,
        booked=booked,
        now=now,
        lead_minutes=lead,
    )
    got = starts(slots)
    assert len(got) == expected_count, case
    if expected_count:
        assert got[0] == expected_first, case
        assert got[-1] == expected_last, case
    for hhmm in absent:
        assert hhmm not in got, case
    for slot in slots:
        assert slot.doctor_id == DR and slot.minutes == slot_minutes
        assert slot.start > now + timedelta(minutes=lead)
        assert HOURS.is_open(slot.start)
        assert HOURS.is_open(slot.start + timedelta(minutes=slot_minutes - 1))
        for b_start, b_end in booked:
            assert not (
                b_start < slot.start + timedelta(minutes=slot_minutes) and slot.start < b_end
            )


def test_grid_starts_at_each_range_start() -> None:
    split = WeeklyHours({0: ((time(9), time(12)), (time(14, 10), time(15)))})
    got = starts(
        free_slots(
            doctor_id=DR, day=MONDAY, hours=split, slot_minutes=20, booked=[], now=at(MONDAY, 7)
        )
    )
    assert got[-2:] == ["14:10", "14:30"]
    assert "11:40" in got and "12:00" not in got and "14:00" not in got


def test_cancelled_appointments_are_ignored_by_passing_only_active_ones() -> None:
    rows = [
        (at(MONDAY, 10), at(MONDAY, 10, 20), "Cancelled"),
        (at(MONDAY, 11), at(MONDAY, 11, 20), "Scheduled"),
        (at(MONDAY, 12), at(MONDAY, 12, 20), "No Show"),
    ]
    active = [(s, e) for s, e, status in rows if status not in {"Cancelled", "No Show"}]
    got = starts(
        free_slots(
            doctor_id=DR, day=MONDAY, hours=HOURS, slot_minutes=20, booked=active, now=at(MONDAY, 8)
        )
    )
    assert "10:00" in got and "12:00" in got and "11:00" not in got


def test_first_free_slots_walks_forward_and_skips_closed_days() -> None:
    saturday = date(2025, 3, 15)
    full_saturday = [(at(saturday, 10), at(saturday, 14))]
    asked: list[date] = []

    def booked_by_day(day: date) -> list[tuple[datetime, datetime]]:
        asked.append(day)
        return full_saturday if day == saturday else []

    slots = first_free_slots(
        doctor_id=DR,
        from_day=saturday,
        days_ahead=30,
        limit=3,
        hours=HOURS,
        slot_minutes=20,
        booked_by_day=booked_by_day,
        now=at(FRIDAY, 12),
    )
    assert [s.start for s in slots] == [
        at(date(2025, 3, 17), 9),
        at(date(2025, 3, 17), 9, 20),
        at(date(2025, 3, 17), 9, 40),
    ]
    assert SUNDAY not in asked  # closed days are not fetched


def test_first_free_slots_respects_booking_window_and_after() -> None:
    now = at(MONDAY, 16, 50)
    none = first_free_slots(
        doctor_id=DR,
        from_day=MONDAY,
        days_ahead=0,
        limit=3,
        hours=HOURS,
        slot_minutes=20,
        booked_by_day=lambda d: [],
        now=now,
    )
    assert none == []
    after = first_free_slots(
        doctor_id=DR,
        from_day=MONDAY,
        days_ahead=5,
        limit=2,
        hours=HOURS,
        slot_minutes=20,
        booked_by_day=lambda d: [],
        now=now,
        after=at(date(2025, 3, 11), 15),
    )
    assert [s.start for s in after] == [at(date(2025, 3, 11), 15), at(date(2025, 3, 11), 15, 20)]
    assert (
        first_free_slots(
            doctor_id=DR,
            from_day=MONDAY,
            days_ahead=5,
            limit=0,
            hours=HOURS,
            slot_minutes=20,
            booked_by_day=lambda d: [],
            now=now,
        )
        == []
    )


@pytest.mark.parametrize(
    ("start", "bookable"),
    [
        (at(MONDAY, 10), True),
        (at(MONDAY, 10, 10), False),  # off the grid
        (at(MONDAY, 8, 40), False),  # before opening
        (at(MONDAY, 16, 50), False),  # would end after closing
        (at(MONDAY, 11), False),  # taken
        (at(FRIDAY, 13), False),  # Friday afternoon is closed
        (at(SUNDAY, 10), False),  # closed day
        (at(MONDAY, 9), False),  # in the past (now is 09:30)
        (at(date(2025, 5, 1), 10), False),  # beyond the booking window
    ],
)
def test_a_time_is_bookable_exactly_when_it_is_a_free_slot_in_the_window(
        start: datetime, bookable: bool) -> None:
    now = at(MONDAY, 9, 30)
    slots = free_slots(doctor_id=DR, day=start.date(), hours=HOURS, slot_minutes=20,
                       booked=[(at(MONDAY, 11), at(MONDAY, 11, 30))], now=now)
    in_window = start.date() <= last_bookable_day(now, 30)
    assert (in_window and any(s.start == start for s in slots)) is bookable
