"""The account-wide pace of reminder calls (docs/reminders.md, Pacing): every process calling on
one Twilio account takes its moments from one queue in the store, so a worker, `ivr remind`
run by hand beside it, or a second host on PostgreSQL never start calls closer together than
the account's calls-per-second limit. Times are the slots the store handed out (never the wall
clock), so a busy machine cannot make these fail."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, time, timedelta

import pytest

from ivr.config import DEMO_CLINIC, ReminderSettings
from ivr.reminders import run_for, store_pacer
from ivr.store import Store
from ivr.twilio_rest import SharedCallPacer
from tests.calls import rig
from tests.demo import CLINIC_NUMBER
from tests.store_clock import T0
from tests.test_store import run_threads

ACCOUNT = "AC" + "2" * 32
SECOND = timedelta(seconds=1)


class FakeTime:
    """A naive-UTC wall clock of one process that moves only when slept on."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)


def test_slots_are_handed_out_a_gap_apart_and_an_idle_account_calls_at_once(store: Store) -> None:
    assert store.take_call_slot(ACCOUNT, T0, SECOND) == T0
    assert store.take_call_slot(ACCOUNT, T0, SECOND) == T0 + SECOND
    soon = T0 + timedelta(milliseconds=300)
    assert store.take_call_slot(ACCOUNT, soon, SECOND) == T0 + 2 * SECOND
    # A quiet minute later the queue is empty: the next call goes at once.
    later = T0 + timedelta(minutes=1)
    assert store.take_call_slot(ACCOUNT, later, SECOND) == later
    # Another account (another Twilio limit) has a queue of its own.
    assert store.take_call_slot("AC" + "3" * 32, T0, SECOND) == T0


def test_a_queue_set_far_ahead_by_a_wrong_clock_is_not_waited_for(store: Store) -> None:
    store.take_call_slot(ACCOUNT, T0 + timedelta(days=1), SECOND)  # a host a day ahead
    assert store.take_call_slot(ACCOUNT, T0, SECOND) == T0
    assert store.take_call_slot(ACCOUNT, T0, SECOND) == T0 + SECOND
    with pytest.raises(ValueError):
        store.take_call_slot(ACCOUNT, T0, timedelta(0))


def test_two_processes_taking_slots_at_once_never_share_one_and_stay_a_gap_apart(
        make_store: Callable[..., Store]) -> None:
    # Two Store instances on one database: a worker and `ivr remind` (SQLite file), or two
    # hosts (PostgreSQL). All ask at the same moment, from threads released together.
    stores = [make_store(), make_store()]
    stores[0].migrate()
    gap = timedelta(milliseconds=250)  # 4 calls a second
    per_thread = 8

    def take(i: int) -> list[datetime]:
        pacer = store_pacer(stores[i % 2], ACCOUNT, 4.0, now=lambda: T0, sleep=lambda s: None)
        return [pacer.wait() for _ in range(per_thread)]

    slots = sorted(s for taken in run_threads(4, take) for s in taken)
    assert len(slots) == len(set(slots)) == 4 * per_thread
    assert slots == [T0 + n * gap for n in range(4 * per_thread)]


def test_a_pacer_sleeps_until_its_slot_and_two_processes_keep_one_pace(store: Store) -> None:
    worker, by_hand = FakeTime(), FakeTime()
    first = store_pacer(store, ACCOUNT, 1.0, now=worker.now, sleep=worker.sleep)
    second = store_pacer(store, ACCOUNT, 1.0, now=by_hand.now, sleep=by_hand.sleep)
    started: list[tuple[str, datetime]] = []
    for name, pacer, clock in [("worker", first, worker), ("remind", second, by_hand),
                               ("worker", first, worker), ("remind", second, by_hand)]:
        slot = pacer.wait()
        assert clock.now() >= slot  # it did not start before its slot
        started.append((name, clock.now()))
    assert [t for _, t in started] == [T0, T0 + SECOND, T0 + 2 * SECOND, T0 + 3 * SECOND]
    assert worker.slept == [2.0] and by_hand.slept == [1.0, 2.0]


def test_a_slow_answer_from_the_store_is_not_slept_again() -> None:
    clock = FakeTime()

    def slow_slot(now: datetime, gap: timedelta) -> datetime:
        clock.t += timedelta(seconds=0.4)  # the store took 0.4 s to answer
        return now + gap

    pacer = SharedCallPacer(slow_slot, 1.0, now=clock.now, sleep=clock.sleep)
    assert pacer.wait() == T0 + SECOND
    assert clock.slept == [pytest.approx(0.6)] and clock.now() == T0 + SECOND
    with pytest.raises(ValueError):
        SharedCallPacer(slow_slot, 0)


def test_the_reminder_run_paces_its_calls_in_the_store_under_the_account_sid() -> None:
    clinic = dataclasses.replace(DEMO_CLINIC, reminders=ReminderSettings(
        at=time(10), channels=("call",), from_number=CLINIC_NUMBER,
        calling_hours=DEMO_CLINIC.hours, calls_per_second=0.5))
    with rig(clinic=clinic, twilio_account_sid=ACCOUNT, public_url="http://testserver") as r:
        run = run_for(r.runtime, "w1")
        assert run is not None
        slot = run.pacer.wait()  # an idle account: at once, no sleep
        assert isinstance(slot, datetime)
        # Another process on the same database is queued behind it, 2 s later (0.5 a second).
        assert r.runtime.store.take_call_slot(ACCOUNT, slot, SECOND) == slot + 2 * SECOND
