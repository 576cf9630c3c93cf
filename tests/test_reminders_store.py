"""The store's appointment reminders (migration 10), on SQLite and PostgreSQL: the keys that
keep a run from reminding anyone twice, the send pass's claims, replies, opt-outs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from flows.reminders.plan import DayAppointment, DayPlan, plan_day
from ivr.store import Store

DAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 23, 10, 0)  # clinic-local, the run's moment


def appt(id_: str, hour: int, patient: str | None, mobile: str | None,
         status: str = "Scheduled") -> DayAppointment:
    return DayAppointment(id=id_, start=datetime(2026, 11, 24, hour), status=status,
                          patient_id=patient, patient_name=f"Name{patient} X", mobile=mobile,
                          doctor_id="D1")


ROWS = [
    appt("A1", 9, "P1", "+923000000001"),
    appt("A2", 11, "P1", "+923000000001"),  # the same patient: one reminder
    appt("A3", 10, "P2", "+923000000002"),
    appt("A4", 12, "P3", "+923000000003", status="Cancelled"),
    appt("A5", 13, "P4", "+923000000004"),
]


def plan(rows: list[DayAppointment] = ROWS, channels: tuple[str, ...] = ("call", "sms"),
         opted: set[str] | None = None) -> DayPlan:
    return plan_day(DAY, rows, channels=channels, now=NOW, opted_out=opted or set())


@pytest.fixture
def now() -> list[datetime]:
    return [datetime(2026, 11, 23, 5, 0)]  # UTC


def test_a_day_planned_twice_writes_each_patient_once(stores: list[Store]) -> None:
    store = stores[0]
    assert not store.reminder_day_planned(DAY)
    assert store.plan_reminders(plan()) == 3
    assert store.reminder_day_planned(DAY)
    assert store.plan_reminders(plan()) == 0  # a restarted run writes nothing new
    rows = store.reminders(day=DAY)
    assert sorted(r.key for r in rows) == ["2026-11-24/p:P1", "2026-11-24/p:P2",
                                           "2026-11-24/p:P4"]
    p1 = store.get_reminder("2026-11-24/p:P1")
    assert p1 is not None
    assert (p1.status, p1.channel, p1.channels) == ("queued", "call", ("call", "sms"))
    assert p1.phone_masked == "+92*******001"
    assert [i.appointment_id for i in store.reminder_items(p1.key)] == ["A1", "A2"]
    assert [a["id"] for a in p1.payload["appointments"]] == ["A1", "A2"]


def test_an_appointment_already_reminded_is_never_in_a_second_reminder(
        stores: list[Store]) -> None:
    store = stores[0]
    store.plan_reminders(plan())
    # Clinicea changed P2's patient id between two plans: A3 is already in P2's reminder.
    moved = [appt("A3", 10, "P2b", "+923000000002"), appt("A6", 15, "P5", "+923000000005")]
    assert store.plan_reminders(plan(moved)) == 1  # only P5's
    assert store.get_reminder("2026-11-24/p:P2b") is None
    assert len(store.reminders(day=DAY)) == 4


def test_concurrent_runs_plan_each_patient_once(stores: list[Store]) -> None:
    barrier = threading.Barrier(4)

    def run(i: int) -> int:
        barrier.wait()
        return stores[i].plan_reminders(plan())

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(run, range(4))) == 3
    assert len(stores[0].reminders(day=DAY)) == 3


def test_four_workers_claiming_at_once_claim_each_reminder_once(stores: list[Store]) -> None:
    stores[0].plan_reminders(plan(channels=("sms",)))
    barrier = threading.Barrier(4)

    def claim(i: int) -> list[str]:
        barrier.wait()
        return [r.key for r in stores[i].claim_reminders("sms", NOW, f"w{i}")]

    with ThreadPoolExecutor(4) as pool:
        won = [k for keys in pool.map(claim, range(4)) for k in keys]
    assert sorted(won) == sorted(r.key for r in stores[0].reminders(day=DAY))
    assert stores[0].claim_reminders("sms", NOW, "w9") == []


def test_calls_wait_for_their_time_and_no_room_goes_by_text(stores: list[Store]) -> None:
    store = stores[0]
    keys = [r.key for r in plan().reminders]
    later = NOW + timedelta(hours=1)
    store.plan_reminders(plan(), call_at={keys[0]: NOW, keys[1]: later, keys[2]: None})
    assert [r.key for r in store.claim_reminders("call", NOW, "w")] == [keys[0]]
    assert [r.key for r in store.claim_reminders("sms", NOW, "w")] == [keys[2]]
    assert [r.key for r in store.claim_reminders("call", later, "w")] == [keys[1]]


def test_no_room_for_a_call_and_no_texting_is_for_the_desk(stores: list[Store]) -> None:
    store = stores[0]
    only = plan(ROWS[:1], channels=("call",))
    store.plan_reminders(only, call_at={only.reminders[0].key: None})
    row = store.get_reminder(only.reminders[0].key)
    assert row is not None and (row.status, row.last_error) == ("failed",
                                                                "outside calling hours")


def test_sent_failed_retry_and_a_stopped_sender(stores: list[Store], now: list[datetime]) -> None:
    store = stores[0]
    store.plan_reminders(plan(channels=("sms",)))
    a, b, c = store.claim_reminders("sms", NOW, "w")
    assert store.reminder_sent(a.key, "sms", "SM1") is True
    assert store.reminder_sent(a.key, "sms", "SM1") is False  # not sending any more
    assert store.reminder_failed(b.key, "429", NOW + timedelta(minutes=1)) is True
    assert store.claim_reminders("sms", NOW, "w") == []
    [again] = store.claim_reminders("sms", NOW + timedelta(minutes=1), "w")
    assert (again.key, again.attempts) == (b.key, 2)
    assert store.reminder_failed(b.key, "refused", None) is True
    now[0] += timedelta(minutes=5)  # c was left sending by a sender that stopped
    assert store.expire_sending_reminders(timedelta(minutes=2)) == 1
    rows = {r.key: r for r in store.reminders(day=DAY)}
    assert (rows[a.key].status, rows[a.key].sms_sid) == ("sent", "SM1")
    assert rows[b.key].status == "failed"
    assert (rows[c.key].status, rows[c.key].last_error) == (
        "sent", "the sender stopped; the text may have been sent")


def test_a_call_sid_belongs_to_one_reminder(stores: list[Store]) -> None:
    store = stores[0]
    store.plan_reminders(plan())
    a, b, _ = store.claim_reminders("call", NOW, "w")
    store.reminder_sent(a.key, "call", "CA1")
    with pytest.raises(IntegrityError):  # the database refuses it
        store.reminder_sent(b.key, "call", "CA1")
    found = store.reminder_by_call("CA1")
    assert found is not None and found.key == a.key


def test_replies_statuses_are_conditional(stores: list[Store]) -> None:
    store = stores[0]
    store.plan_reminders(plan(channels=("sms",)))
    key = "2026-11-24/p:P1"
    found = store.reminder_by_phone("+923000000001", DAY - timedelta(days=2))
    assert found is not None and found.key == key
    assert store.reminder_by_phone("+923000000001", DAY + timedelta(days=1)) is None
    assert store.set_reminder_status(key, "confirmed", only_from=("sent",)) is False
    assert store.set_reminder_status(key, "confirmed", only_from=("queued",),
                                     reply="1" * 900) is True
    row = store.get_reminder(key)
    assert row is not None and row.status == "confirmed" and row.reply == "1" * 500
    assert store.mark_reminder_handled(key, "amna") is True
    assert store.mark_reminder_handled(key, "amna") is False
    assert store.reminder_counts(DAY)["confirmed"] == 1


def test_opt_outs(stores: list[Store]) -> None:
    store = stores[0]
    assert store.opt_out("+923000000001", "keyword:STOP") is True
    assert store.opt_out("+923000000001", "reply") is False
    assert store.opted_out(["+923000000001", "+923000000002"]) == {"+923000000001"}
    store.plan_reminders(plan(opted=store.opted_out(r.mobile for r in ROWS if r.mobile)))
    row = store.get_reminder("2026-11-24/p:P1")
    assert row is not None and (row.status, row.channel) == ("opted_out", None)
    assert store.claim_reminders("call", NOW, "w")[0].key != row.key
    assert store.opt_in("+923000000001") is True
    assert store.opt_in("+923000000001") is False
    assert store.opted_out(["+923000000001"]) == set()


def test_a_call_left_sending_is_never_placed_again_but_texted_when_the_clinic_texts(
        stores: list[Store], now: list[datetime]) -> None:
    store = stores[0]
    store.plan_reminders(plan(ROWS[:1]))  # P1: call, then text
    store.plan_reminders(plan([appt("A7", 14, "P5", "+923000000005")], channels=("call",)))
    claimed = store.claim_reminders("call", NOW, "dead")
    assert sorted(r.key for r in claimed) == ["2026-11-24/p:P1", "2026-11-24/p:P5"]
    now[0] += timedelta(minutes=5)  # the sender stopped while asking Twilio
    assert store.expire_sending_reminders(timedelta(minutes=2)) == 2
    assert store.claim_reminders("call", NOW, "w") == []
    [text] = store.claim_reminders("sms", NOW, "w")
    assert (text.key, text.attempts) == ("2026-11-24/p:P1", 1)
    p5 = store.get_reminder("2026-11-24/p:P5")
    assert p5 is not None and (p5.status, p5.last_error) == (
        "failed", "the sender stopped; the call may have been placed")
