"""Parsers of flows.understanding: examples, and the utterance table with accuracy per parser."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from flows.domain import Doctor, WeeklyHours
from flows.understanding import (
    Answer,
    Context,
    NotUnderstood,
    TimeOfDay,
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

NINE_FIVE = ((time(9), time(17)),)
HOURS = WeeklyHours(
    {0: NINE_FIVE, 1: NINE_FIVE, 2: NINE_FIVE, 3: NINE_FIVE, 4: ((time(9), time(13)),),
     5: ((time(10), time(14)),)}
)  # fmt: skip
DOCTORS = (
    Doctor("farooq", "Dr. Nadia Farooq", "c1"),
    Doctor("sheikh", "Dr. Omar Sheikh", "c1"),
    Doctor("khan", "Dr. Ayesha Khan", "c1"),
    Doctor("qureshi", "Dr. Bilal Qureshi", "c1"),
)
NOW = datetime(2026, 11, 23, 10, 0)  # a Monday


def ctx(language: str = "en", region: str = "PK") -> Context:
    return Context(NOW, region, HOURS, 20, DOCTORS, language)


def said(text: str, confidence: float | None = None) -> Answer:
    return Answer(speech=text, confidence=confidence)


def test_yes_no_keyed_and_spoken() -> None:
    assert parse_yes_no(Answer(digits="1"), ctx()) == Understood(True)
    assert parse_yes_no(Answer(digits="2"), ctx()) == Understood(False)
    assert parse_yes_no(said("uh yeah that's right"), ctx()) == Understood(True)
    assert parse_yes_no(said("no, change it"), ctx()) == Understood(False)
    assert isinstance(parse_yes_no(said("banana"), ctx()), NotUnderstood)


def test_low_confidence_is_not_sure_but_keyed_is() -> None:
    assert parse_yes_no(said("yes", 0.3), ctx()) == Understood(True, sure=False)
    assert parse_date(Answer(digits="0512", confidence=0.1), ctx()).sure  # type: ignore[union-attr]


def test_dates() -> None:
    assert parse_date(said("to morrow"), ctx()) == Understood(date(2026, 11, 24))
    assert parse_date(said("tuesday the 26th"), ctx()) == NotUnderstood("weekday_mismatch")
    assert parse_date(said("5th of december"), ctx()) == Understood(date(2026, 12, 5))
    assert parse_date(said("5/12"), ctx(region="US")) == Understood(
        date(2026, 5, 12).replace(year=2027)
    )
    assert parse_date(said("the 1st of january"), ctx()) == Understood(date(2027, 1, 1))


def test_next_weekday_rule() -> None:
    assert parse_date(said("next tuesday"), ctx()) == Understood(date(2026, 12, 1))
    assert parse_date(said("next thursday"), ctx()) == Understood(date(2026, 11, 26), sure=False)


def test_times() -> None:
    assert parse_time(said("4 pm"), ctx()) == Understood(TimeOfDay(time(16)))
    assert parse_time(said("4"), ctx()) == Understood(TimeOfDay(time(16)))
    assert parse_time(said("afternoon"), ctx()) == Understood(TimeOfDay(time(12), time(17)))
    assert parse_time(Answer(digits="1020"), ctx()) == Understood(TimeOfDay(time(10, 20)))


def test_when_fills_several() -> None:
    got = parse_when(said("next thursday afternoon with doctor omar"), ctx())
    assert isinstance(got, Understood)
    assert got.value == When(date(2026, 11, 26), TimeOfDay(time(12), time(17)), "sheikh")


def test_menu_person_language_digits_names() -> None:
    menu = {"1": ["book", "appointment"], "0": ["agent", "reception"]}
    assert parse_choice(said("i want to book an appointment"), ctx(), menu) == Understood("1")
    assert wants_person(Answer(digits="0")) and wants_person(said("a receptionist please"))
    assert not wants_person(said("tomorrow at 4"))
    assert parse_language_choice(said("اردو"), ctx("ur")) == Understood("ur")
    assert parse_digits(said("oh three double two"), ctx()) == Understood("0322")
    assert parse_phone_digits(Answer(digits="03216315551"), ctx()) == Understood("03216315551")
    assert parse_doctor(said("doctor faruk"), ctx()).value == "farooq"  # type: ignore[union-attr]
    assert parse_person_name(said("my name is ayaan khan"), ctx()) == Understood(
        ("Ayaan", "Khan"), sure=False
    )


@pytest.mark.parametrize("text", ["", "   ", "???", "٣٣٣٣", "9" * 50])
def test_nothing_raises(text: str) -> None:
    for parse in (parse_date, parse_time, parse_when, parse_yes_no, parse_digits):
        parse(said(text), ctx())


def test_utterance_table_accuracy() -> None:
    from tests.understanding_report import evaluate, load, table

    rows = load()
    assert len(rows) >= 250
    assert sum(r.language != "en" for r in rows) >= 20
    scores, misses = evaluate(rows)
    print("\n" + table(scores))
    parsers = {"yes_no", "choice", "wants_person", "date", "time", "when", "digits", "phone",
               "doctor", "person_name", "language"}  # fmt: skip
    assert parsers <= set(scores), parsers - set(scores)
    wrong = [(r.parser, r.speech or r.digits, got) for r, kind, got in misses if kind == "wrong"]
    assert wrong == [], wrong  # a miss must be NotUnderstood, never a different value
    right = sum(s.right for s in scores.values())
    assert right / len(rows) >= 0.95


def test_to_the_hour_is_resolved_before_subtracting() -> None:
    fine = Context(NOW, "PK", HOURS, 5, DOCTORS, "en")  # a 5-minute grid: no snapping here
    for text, want in [
        ("quarter to one", time(12, 45)),
        ("ten to one", time(12, 50)),
        ("quarter to twelve", time(11, 45)),
        ("half past twelve", time(12, 30)),
        ("ten past one", time(13, 10)),
        ("twenty to two", time(13, 40)),
        ("quarter to five", time(16, 45)),
        ("quarter to 1 pm", time(12, 45)),
    ]:
        got = parse_time(said(text), fine)
        assert isinstance(got, Understood) and got.value == TimeOfDay(want), (text, got)
    friday = date(2026, 11, 27)  # open 9 to 13
    got = parse_time(said("ten to one"), fine, day=friday)
    assert isinstance(got, Understood) and got.value == TimeOfDay(time(12, 50))


def test_wants_person_is_not_fooled_by_in_person_or_negation() -> None:
    for text in ["in person", "tuesday with dr farooq in person", "i'm not an agent",
                 "reception hours", "what are the reception hours", "i'd like to come in person",
                 "i am not a real person"]:  # fmt: skip
        assert not wants_person(said(text)), text
    for text in ["agent", "reception", "a person please", "speak to someone", "operator",
                 "can I talk to a person", "reception please", "the front desk",
                 "no i want a person", "ریسپشن سے بات کرائیں", "انسان سے بات"]:  # fmt: skip
        assert wants_person(said(text)), text


@pytest.mark.parametrize("keyed", ["²", "١٢", "½", "𝟙", "²³"])
def test_keyed_is_ascii_digits_only(keyed: str) -> None:
    assert Answer(digits=keyed).keyed == ""
    assert Answer(digits="1#2*3 ").keyed == "123"
    for parse in (parse_date, parse_time, parse_when, parse_yes_no, parse_digits,
                  parse_phone_digits, parse_doctor, parse_language_choice):  # fmt: skip
        got = parse(Answer(digits=keyed), ctx())
        assert not (isinstance(got, NotUnderstood) and got.reason.startswith("error")), got
    got = parse_doctor(Answer(digits=keyed), ctx(), by_digit=True)
    assert not (isinstance(got, NotUnderstood) and got.reason.startswith("error")), got


def test_hyphenated_digits() -> None:
    assert parse_digits(said("3-2-1"), ctx()) == Understood("321")
    assert parse_digits(said("1-2"), ctx()) == Understood("12")
    assert parse_digits(said("12-34-56"), ctx()) == Understood("123456")
    assert parse_digits(said("three-two-one"), ctx()) == Understood("321")
    assert parse_phone_digits(said("0321-631-5551"), ctx()) == Understood("03216315551")


def test_names_keep_hyphens_and_refuse_markup() -> None:
    assert parse_person_name(said("mary-jane smith"), ctx()) == Understood(
        ("Mary-Jane", "Smith"), sure=False
    )
    assert parse_person_name(said("my name is ali raza-khan"), ctx()) == Understood(
        ("Ali", "Raza-Khan"), sure=False
    )
    assert parse_person_name(said("Sara Ahmed."), ctx()) == Understood(("Sara", "Ahmed"), False)
    for text in ["<script>alert(1)</script>", "<b>mary smith</b>", "mary smith; drop table",
                 "{{mary}} smith", "mary smith <img src=x>"]:  # fmt: skip
        assert isinstance(parse_person_name(said(text), ctx()), NotUnderstood), text
