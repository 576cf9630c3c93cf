"""Read-backs of an unsure day or time say what was understood, never the transcript; a past day
is refused with a reason the caller hears. Calls through the simulator against the sandbox
(Monday 23 November 2026, Bilal Ahmed, Dr. Farooq)."""

from __future__ import annotations

from tests.demo import BILAL


def _at_times_menu(r):  # noqa: ANN001, ANN202
    call = r.call(BILAL.e164)
    call.press("1")  # book
    call.press("1")  # the same doctor again
    return call


def test_an_unsure_relative_day_is_read_back_as_the_date_understood(make_rig):
    """ "Next to next Thursday" said on a Monday: a week after the coming Thursday, read back."""
    r = make_rig()
    call = _at_times_menu(r)
    call.say("Next to next Thursday at 10.", confidence=0.9)
    heard = call.last_heard
    assert "I heard Thursday the 3rd of December at 10 a.m. Is that right?" in heard
    assert "next to next" not in heard.lower()


def test_a_mumbled_day_and_window_are_read_back_as_understood(make_rig):
    r = make_rig()
    call = _at_times_menu(r)
    call.say("Tomorrow, between 2 and 3.", confidence=0.3)
    heard = call.last_heard
    assert "I heard tomorrow, Tuesday the 24th between 2 p.m. and 3 p.m." in heard
    assert "Tomorrow, between" not in heard


def test_a_past_day_is_refused_with_the_reason(make_rig):
    r = make_rig()
    call = _at_times_menu(r)
    call.say("Last Tuesday at 10.", confidence=0.9)
    assert "that day has already passed" in call.last_heard
    call.say("The 3rd of November.", confidence=0.9)
    assert "that day has already passed" in call.last_heard


def test_read_back_wording_in_both_catalogues():
    from datetime import date, time

    from flows.lang.en import ENGLISH
    from flows.lang.ur import CATALOGUE as URDU

    today = date(2026, 11, 23)
    jan4 = date(2027, 1, 4)
    assert ENGLISH.say_understood(jan4, time(10), None, today) == (
        "Monday the 4th of January 2027 at 10 a.m."
    )
    assert ENGLISH.say_understood(None, time(12), time(17), today) == "in the afternoon"
    assert ENGLISH.say_understood(None, time(16), time(21), today) == "after 4 p.m."
    assert ENGLISH.say_understood(None, time(8), time(11), today) == "before 11 a.m."
    assert ENGLISH.say_understood(today, None, None, today, doctor="Dr. Nadia Farooq") == (
        "today, with Dr. Nadia Farooq"
    )
    assert URDU.say_understood(jan4, time(10), None, today) == "پیر، 4 جنوری 2027، صبح 10 بجے"
    assert URDU.say_understood(None, time(14), time(15), today) == (
        "دوپہر 2 بجے سے دوپہر 3 بجے کے درمیان"
    )
