"""Acting only on what the caller really said: low-confidence yes/no answers are read back, and a
caller whose lookup failed is looked up again before anything is registered in their name."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.sandbox.seed import DEMO_PATIENTS
from tests.demo import BILAL

SATURDAY_7PM = datetime(2026, 11, 28, 19, 0)  # reception closed: no ringing of an empty room


def _new_appointments(r) -> list[dict]:  # noqa: ANN001
    return [a for a in r.appointments() if a["ID"] not in r.seeded]


def _to_confirm(r):  # noqa: ANN001, ANN202
    call = r.call(BILAL.e164)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    assert "Press 1 to book it" in call.last_heard
    return call


def test_a_mumbled_yes_at_the_confirmation_is_read_back_before_booking(make_rig):
    r = make_rig()
    call = _to_confirm(r)
    call.say("yes", confidence=0.05)
    assert "I heard yes" in call.last_heard
    assert _new_appointments(r) == []  # nothing booked on a guess
    call.press("1")
    assert "You're booked" in call.heard
    assert len(_new_appointments(r)) == 1


def test_a_mumbled_yes_read_back_and_denied_books_nothing(make_rig):
    r = make_rig()
    call = _to_confirm(r)
    call.say("yes", confidence=0.05)
    call.press("2")  # "no, that's not what I said"
    assert "Press 1 to book it" in call.last_heard
    assert _new_appointments(r) == []


def test_a_clear_spoken_yes_books_at_once(make_rig):
    r = make_rig()
    call = _to_confirm(r)
    call.say("yes please", confidence=0.95)
    assert "You're booked" in call.heard
    assert len(_new_appointments(r)) == 1


def test_a_mumbled_consent_to_register_is_read_back(make_rig):
    r = make_rig()
    call = r.call("+923009998877")
    call.say("yes", confidence=0.1)
    assert "I heard yes" in call.last_heard
    assert "first and last name" not in call.last_heard


@pytest.mark.parametrize("back", [True, False])
def test_a_known_caller_whose_lookup_failed_is_never_registered_again(back, make_rig):
    """Records down at the lookup, reception closed, the caller presses 1 to book: look them up
    again; if the records are back they are greeted as themselves, else a callback."""
    r = make_rig(now=SATURDAY_7PM)
    r.sandbox.faults.fail_next(503, times=None, operation="search")
    call = r.call(BILAL.e164)
    assert "can't reach our records" in call.heard and "closed" in call.last_heard
    if back:
        r.sandbox.faults.clear()
    call.press("1")  # book now
    assert "isn't in our records" not in call.heard
    if back:
        assert "Hello Bilal" in call.heard
    else:
        assert "still can't reach our records" in call.heard and call.ended
        assert len(r.runtime.store.callbacks()) == 1
    bilals = [p for p in r.sandbox.patients() if p["FirstName"] == "Bilal"]
    assert len(bilals) == 1


def test_a_weekday_that_disagrees_with_the_date_is_said_back_as_such(make_rig):
    """Monday 23 November: the 25th is a Wednesday, so "Tuesday the 25th" is a real mismatch."""
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    call.say("tuesday the 25th at 4", confidence=0.9)
    assert "that day and date don't match" in call.last_heard
    assert _new_appointments(r) == []


def test_a_keyed_date_and_time_book_and_a_taken_time_offers_that_day_once(make_rig):
    """9 at the times menu, DDMM, HHMM. Thursday 26 November 9:00 is free; Dr. Farooq's 9:00 on
    that day is then taken by someone else, so the same keys offer that day's other times."""
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    call.press("1")
    assert "Thursday" in call.gather["hints"]  # the times menu hears weekday names
    call.press("9")
    assert "day and month as four digits" in call.last_heard
    assert "tomorrow" in call.gather["hints"]  # so does the keyed-date step
    call.press("2611")
    call.press("0900")
    call.silence()
    assert "Thursday the 26th of November at 9 a.m. with Dr. Farooq" in call.last_heard
    call.press("1")
    assert "You're booked for Thursday the 26th of November at 9 a.m." in call.heard
    again = r.call(DEMO_PATIENTS["Hira Malik"].e164)
    again.press("1")
    if "Would you like" in again.last_heard:
        again.press("1")
    else:
        again.press("1")  # Dr. Farooq is first in the doctor menu
    again.press("9")
    again.press("2611")
    again.press("0900")
    offer = again.last_heard
    assert "Friday" in again.gather["hints"]  # and the times of one day
    assert "9 a.m. is not free" in offer
    assert "Thursday the 26th of November, Dr. Farooq is free: At 9:20 a.m., press 1." in offer
    assert "26th" not in offer.split("is free:")[1], offer  # not repeated before each time
