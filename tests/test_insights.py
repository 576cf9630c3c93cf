"""Where calls go wrong: the History page's figures (funnel, busiest hours, containment with
ring-backs, a person after the robot failed), in the clinic's own days and hours."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flows.booking import FLOW
from ivr import insights
from ivr.store import CallFact
from tests.agents import signed_in
from tests.demo import AYESHA, BILAL, HIRA, USMAN

KARACHI = ZoneInfo("Asia/Karachi")  # UTC+5: its day starts at 19:00 UTC the day before


def fact(sid: str, at: datetime, outcome: str | None = None, *, steps: tuple[str, ...] = (),
         caller: str | None = None, transferred: bool = False, gave_up: bool = False) -> CallFact:
    return CallFact(call_sid=sid, created_at=at, outcome=outcome, transferred=transferred,
                    caller_key=caller, steps=frozenset(steps), gave_up=gave_up)


def test_every_funnel_step_is_a_step_of_the_call():
    # A renamed step would silently empty a stage of the funnel.
    for _, _, stage_steps in insights.FUNNEL:
        assert all(step in FLOW for step in stage_steps), stage_steps


def test_days_and_hours_are_the_clinics_not_utc():
    # 20:30 UTC on Monday 30 Nov is 01:30 on Tuesday 1 Dec in Karachi.
    late = fact("CA1", datetime(2026, 11, 30, 20, 30), "booked")
    morning = fact("CA2", datetime(2026, 12, 1, 5, 0), "abandoned")  # 10:00 Tuesday
    figures = insights.compute([late, morning], KARACHI, date(2026, 12, 1), days=2)
    assert figures.days == (date(2026, 11, 30), date(2026, 12, 1))
    assert sum(figures.outcomes_by_day[date(2026, 11, 30)].values()) == 0
    assert figures.outcomes_by_day[date(2026, 12, 1)] == {"booked": 1, "abandoned": 1}
    assert figures.by_hour[1][1] == 1 and figures.by_hour[1][10] == 1  # Tuesday 01:00, 10:00
    assert sum(map(sum, figures.by_hour)) == 2
    # The window starts at the clinic's midnight, 19:00 UTC the day before.
    assert insights.window_start(KARACHI, date(2026, 12, 1), 2) == datetime(2026, 11, 29, 19)


def test_the_funnel_counts_each_call_at_every_stage_it_passed():
    at = datetime(2026, 12, 1, 6, 0)
    facts = [
        fact("CA1", at, "abandoned"),  # hung up during the greeting
        fact("CA2", at, "abandoned", steps=("greet", "menu")),
        fact("CA3", at, "transferred", steps=("menu", "same_doctor", "doctor")),
        fact("CA4", at, "abandoned", steps=("menu", "slots", "confirm")),
        fact("CA5", at, "booked", steps=("menu", "slots", "confirm", "book", "booked")),
        fact("CA6", at, "booked", steps=("confirm",)),  # one breath: straight to the read-back
    ]
    figures = insights.compute(facts, KARACHI, date(2026, 12, 1), days=1)
    assert [(s.key, s.calls) for s in figures.funnel] == [
        ("answered", 6), ("menu", 5), ("choosing", 4), ("readback", 3), ("booked", 2)]


def test_a_caller_who_rang_back_within_a_day_was_not_settled():
    facts = [
        fact("CA1", datetime(2026, 12, 1, 6, 0), "booked", caller="k-bilal"),
        fact("CA2", datetime(2026, 12, 1, 9, 0), "transferred", caller="k-bilal"),  # rang back
        fact("CA3", datetime(2026, 12, 1, 6, 5), "booked", caller="k-hira"),
        fact("CA4", datetime(2026, 12, 1, 7, 0), "booked", caller=None),  # withheld number
        fact("CA5", datetime(2026, 12, 1, 8, 0), "abandoned", caller="k-sana"),
    ]
    figures = insights.compute(facts, KARACHI, date(2026, 12, 1), days=1)
    assert figures.calls == 5 and figures.settled == 2 and figures.rang_back == 1
    assert figures.containment == 2 / 5
    # A day and more later is a new matter, not a ring-back.
    later = [facts[0], fact("CA9", datetime(2026, 12, 2, 6, 1), "booked", caller="k-bilal")]
    figures = insights.compute(later, KARACHI, date(2026, 12, 2), days=2)
    assert figures.settled == 2 and figures.rang_back == 0


def test_a_person_after_the_robot_gave_up_is_counted_apart_from_asking_for_one():
    at = datetime(2026, 12, 1, 6, 0)
    facts = [
        fact("CA1", at, "transferred", transferred=True, gave_up=True),
        fact("CA2", at, "transferred", transferred=True),  # pressed 0: asked for a person
        fact("CA3", at, "abandoned", gave_up=True),  # gave up, nobody took the call
        fact("CA4", at, "booked"),
    ]
    figures = insights.compute(facts, KARACHI, date(2026, 12, 1), days=1)
    assert figures.person_after_failure == 1 and figures.person_after_failure_share == 0.25


def test_caller_keys_are_keyed_hashes_of_the_number():
    a = insights.caller_key("secret", BILAL.e164)
    assert a == insights.caller_key("secret", BILAL.e164) and BILAL.e164 not in a
    assert a != insights.caller_key("other secret", BILAL.e164)
    assert a != insights.caller_key("secret", HIRA.e164)
    assert insights.caller_key("secret", None) is None


def _book_by_keypad(r, number: str) -> None:
    call = r.call(number)
    call.press("1")
    call.press("1")
    call.press("1")
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard and call.ended


def test_real_calls_feed_the_json_and_metrics(make_rig):
    r = make_rig()
    _book_by_keypad(r, BILAL.e164)
    _book_by_keypad(r, HIRA.e164)
    _book_by_keypad(r, BILAL.e164)  # Bilal rang back: his first booking was not settled
    lost = r.call(USMAN.e164)
    for _ in range(3):  # the robot does not understand, and gives up: a person
        lost.say("purple monkey dishwasher")
    assert lost.dialed
    left = r.call(AYESHA.e164)  # heard the greeting and the menu, then hung up
    left.hang_up()
    data = signed_in(r.app).get("/console/history.json").json
    assert data["calls"] == 5
    assert {s["key"]: s["calls"] for s in data["funnel"]} == {
        "answered": 5, "menu": 5, "choosing": 3, "readback": 3, "booked": 3}
    assert data["containment"] == {"rate": 2 / 5, "settled": 2, "rang_back": 1}
    assert data["person_after_failure"] == {"rate": 1 / 5, "calls": 1}
    assert sum(map(sum, data["by_hour"]["calls"])) == 5
    assert [d["calls"] for d in data["days"]][-1] == 5
    metrics = r.app.test_client().get("/metrics").text
    assert 'ivr_funnel_calls{stage="readback"} 3' in metrics
    assert "ivr_containment_ratio 0.4" in metrics
    assert "ivr_booked_rang_back_calls 1" in metrics
    assert "ivr_person_after_failure_ratio 0.2" in metrics


def test_history_json_needs_a_signed_in_agent(make_rig):
    r = make_rig()
    response = r.app.test_client().get("/console/history.json")
    assert response.status_code in (302, 401)
