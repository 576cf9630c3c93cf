"""Properties of every parser: never raises, never a past day, bounded time per utterance.

"Never raises" includes the parsers' last-resort `except`: a `NotUnderstood("error: ...")` is a
crash turned into a reprompt, so `_check` fails on it, and `wants_person` (which returns False on
a crash) is checked through its unguarded `person_requested`.
"""

from __future__ import annotations

import time as clock
from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.understanding import (
    Answer,
    NotUnderstood,
    Understood,
    When,
    parse_choice,
    parse_date,
    parse_digits,
    parse_doctor,
    parse_language_choice,
    parse_person_name,
    parse_phone_digits,
    parse_time,
    parse_when,
    parse_yes_no,
    wants_person,
)
from flows.understanding.types import Context
from flows.understanding.yesno import person_requested
from tests.understanding_report import TABLE_DOCTORS, TABLE_HOURS

VOCAB = [
    "tomorrow", "today", "next", "this", "tuesday", "the", "5th", "of", "december", "at", "4",
    "pm", "am", "half", "past", "quarter", "to", "for", "too", "tutu", "twenty", "second",
    "thirty", "one", "oh", "double", "triple", "doctor", "khan", "omar", "faruk", "morning",
    "yes", "no", "not", "right", "uh", "31", "12/12", "16:30", "99:99", "0/0", "00", "کل",
    "منگل", "بجے", "ساڑھے", "تاریخ", "نہیں", "ہاں", "اگلے", "kal", "baje", "feb", "30th",
    "2026", "1999", "9999", "noon", "hundred", "-", "/", ":", "#", "*", "!", "", "february",
    "29", "wednesday", "day", "after", "o'clock", "between", "and", "before", "sorry,",
    "actually", "i mean", "no,", "week", "fortnight", "last", "christmas", "eve", "new",
    "year's", "eid", "a", "on", "Uh-huh.", "Mm-hmm", "uh-uh", "haan", "ji", "nahi", "definitely",
    "speaking", "s", "n", "?", "told", "receptionist", "don't", "need", "tak", "سے", "کے", "بعد",
    "درمیان", "tomorrow's", "Dr.", "p.m.", "until", "than", "later", "next to next",
]  # fmt: skip
speech = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(VOCAB), max_size=10).map(" ".join),
)
digits = st.one_of(
    st.none(),
    st.text(alphabet="0123456789#*", max_size=14),
    st.text(alphabet="0123456789#* ²³¹½١٢٣۴𝟙", max_size=8),  # what `int()` chokes on
    st.text(max_size=8),
)
confidence = st.one_of(st.none(), st.floats(0, 1))
nows = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31))
languages = st.sampled_from(["en", "ur", "xx"])
answers = st.builds(Answer, digits, st.one_of(st.none(), speech), confidence)

MENU = {"1": ["book", "appointment"], "0": ["agent", "reception"]}


def _ctx(now: datetime, language: str) -> Context:
    return Context(now, "PK", TABLE_HOURS, 20, TABLE_DOCTORS, language)


def _check(result: object) -> None:
    assert isinstance(result, Understood | NotUnderstood)
    if isinstance(result, NotUnderstood):
        assert not result.reason.startswith("error"), result  # a crash the parser swallowed


@settings(max_examples=200, deadline=None)
@given(answers, nows, languages)
def test_dates_never_raise_never_past(answer: Answer, now: datetime, language: str) -> None:
    ctx = _ctx(now, language)
    got = parse_date(answer, ctx)
    _check(got)
    if isinstance(got, Understood):
        assert isinstance(got.value, date) and got.value >= now.date()
    when = parse_when(answer, ctx)
    _check(when)
    if isinstance(when, Understood):
        assert isinstance(when.value, When)
        assert when.value.day is None or when.value.day >= now.date()


@settings(max_examples=200, deadline=None)
@given(answers, nows, languages, st.one_of(st.none(), st.dates(date(2024, 1, 1))))
def test_times_never_raise(answer: Answer, now: datetime, language: str, day: date | None) -> None:
    got = parse_time(answer, _ctx(now, language), day=day)
    _check(got)
    if isinstance(got, Understood) and got.value.end is not None:
        assert got.value.start < got.value.end


@settings(max_examples=200, deadline=None)
@given(answers, languages, st.one_of(st.none(), st.integers(0, 12)))
def test_other_parsers_never_raise(answer: Answer, language: str, length: int | None) -> None:
    ctx = _ctx(datetime(2026, 11, 23, 10), language)
    started = clock.perf_counter()
    for result in (
        parse_yes_no(answer, ctx),
        parse_choice(answer, ctx, MENU),
        parse_digits(answer, ctx, length=length),
        parse_phone_digits(answer, ctx),
        parse_doctor(answer, ctx),
        parse_doctor(answer, ctx, by_digit=True),
        parse_person_name(answer, ctx),
        parse_language_choice(answer, ctx),
    ):
        _check(result)
    assert isinstance(person_requested(answer), bool)  # raises on a bug, unlike wants_person
    assert wants_person(answer) == person_requested(answer)
    assert clock.perf_counter() - started < 0.5  # bounded work per utterance


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=10))
def test_keyed_is_only_ascii_digits(keyed: str) -> None:
    assert set(Answer(digits=keyed).keyed) <= set("0123456789")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=10))
def test_keyed_digits_are_always_sure(keyed: str) -> None:
    ctx = _ctx(datetime(2026, 11, 23, 10), "en")
    got = parse_digits(Answer(digits=keyed, confidence=0.01), ctx)
    assert got == Understood(keyed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 400), st.integers(0, 6))
def test_weekday_names_land_within_two_weeks(offset: int, weekday: int) -> None:
    now = datetime(2026, 1, 1, 9) + timedelta(days=offset)
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for phrase in (names[weekday], f"next {names[weekday]}", f"this {names[weekday]}"):
        got = parse_date(Answer(speech=phrase), _ctx(now, "en"))
        assert isinstance(got, Understood)
        assert got.value.weekday() == weekday
        assert 0 <= (got.value - now.date()).days <= 13


WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 6), st.integers(0, 6), st.sampled_from(["no", "sorry", "I mean", "actually"]))
def test_a_corrected_weekday_is_the_last_one(first: int, last: int, marker: str) -> None:
    ctx = _ctx(datetime(2026, 11, 23, 10), "en")
    got = parse_date(Answer(speech=f"{WEEKDAYS[first]}, {marker}, {WEEKDAYS[last]}."), ctx)
    assert isinstance(got, Understood) and got.value.weekday() == last


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 11), st.integers(1, 4), nows)
def test_a_corrected_hour_is_the_last_one(first: int, last: int, now: datetime) -> None:
    got = parse_time(Answer(speech=f"{first}, no, {last} p.m."), _ctx(now, "en"))
    assert isinstance(got, Understood) and got.value.start.hour == last + 12


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 6), nows, st.sampled_from(["{d} after next", "next to next {d}"]))
def test_after_next_is_a_week_after_next(weekday: int, now: datetime, form: str) -> None:
    ctx = _ctx(now, "en")
    after = parse_date(Answer(speech=form.format(d=WEEKDAYS[weekday])), ctx)
    nxt = parse_date(Answer(speech=f"next {WEEKDAYS[weekday]}"), ctx)
    assert isinstance(after, Understood) and isinstance(nxt, Understood)
    assert after.value - nxt.value == timedelta(days=7) and after.sure == nxt.sure
