"""The store contract (ivr/store/), run against SQLite (a temp file) and PostgreSQL (real server).

PostgreSQL parametrisations are skipped with a reason when no server is reachable (see pg.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from ivr.booking_payload import BookingPayload
from ivr.store import (
    BOOKING_STATUSES,
    LATEST_VERSION,
    AlreadyExists,
    CallUpdate,
    Store,
    StoreError,
    normalize_url,
)
from tests.store_clock import T0, Clock

T = TypeVar("T")
LEASE = timedelta(seconds=60)


def run_threads(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` in ``n`` threads released together; re-raises any thread's exception."""
    barrier = threading.Barrier(n)

    def go(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


def new_call(store: Store, sid: str = "CA1", **kw: Any) -> Any:
    args: dict[str, Any] = {
        "caller_masked": "+92*******551",
        "state": {"n": 0},
        "step": "greet",
        "language": "en",
    }
    args.update(kw)
    return store.create_call(sid, **args)


# ---------------------------------------------------------------------------------------------
# schema


def test_migrate_twice_is_a_no_op(store: Store) -> None:
    assert store.schema_version() == LATEST_VERSION
    new_call(store)
    assert store.migrate() == LATEST_VERSION
    assert store.migrate() == LATEST_VERSION
    with store.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))
    assert store.load_call("CA1") is not None


def test_concurrent_migrate_from_several_processes(make_store: Callable[..., Store]) -> None:
    stores = [make_store() for _ in range(4)]
    assert run_threads(4, lambda i: stores[i].migrate()) == [LATEST_VERSION] * 4
    with stores[0].engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))


def test_database_at_v1_upgrades_without_losing_rows(
    make_store: Callable[..., Store], clock: Clock
) -> None:
    old = make_store()
    assert old.migrate(target=1) == 1
    with old.engine.begin() as conn:
        cols = {c["name"] for c in sa.inspect(conn).get_columns("calls")}
        assert "transferred_at" not in cols
        assert not sa.inspect(conn).has_table("agents")
        conn.execute(
            sa.text(
                "INSERT INTO calls (call_sid, created_at, updated_at, version, step, turn,"
                " caller_masked, state, last_reply, last_reply_turn)"
                " VALUES ('CAold', :t, :t, 3, 'ask_date', 2, '+92*******551', '{\"a\": 1}',"
                " '<Response/>', 2)"
            ),
            {"t": T0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO bookings (idempotency_key, call_sid, created_at, updated_at, status,"
                " attempts, payload) VALUES ('k-old', 'CAold', :t, :t, 'pending', 0,"
                ' \'{"doctor_id": "D1", "start": "2026-03-03T10:00:00"}\')'
            ),
            {"t": T0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO call_events (call_sid, at, kind, step, text)"
                " VALUES ('CAold', :t, 'said', 'ask_date', 'tomorrow')"
            ),
            {"t": T0},
        )
        conn.execute(
            sa.text(
                "INSERT INTO callback_requests (call_sid, created_at, phone_masked, phone_e164,"
                " reason, status) VALUES ('CAold', :t, '+92*******551', '+923216315551',"
                " 'busy', 'open')"
            ),
            {"t": T0},
        )

    new = make_store()
    assert new.migrate() == LATEST_VERSION
    call = new.load_call("CAold")
    assert call is not None
    assert (call.version, call.step, call.turn, call.state) == (3, "ask_date", 2, {"a": 1})
    assert call.last_reply == "<Response/>" and call.transferred_at is None
    booking = new.get_booking("k-old")
    assert booking is not None and booking.payload is not None
    assert (booking.payload.doctor_id, booking.payload.start) == ("D1", datetime(2026, 3, 3, 10))
    assert booking.failure_reason is None
    assert [e.text for e in new.events("CAold")] == ["tomorrow"]
    assert [c.phone_e164 for c in new.callbacks()] == ["+923216315551"]
    # the new columns and tables work on the old rows
    new.mark_transferred("CAold")
    assert new.load_call("CAold").transferred_at == T0  # type: ignore[union-attr]
    assert new.mark_failed("k-old", "rejected")
    assert new.get_booking("k-old").failure_reason == "rejected"  # type: ignore[union-attr]
    assert new.add_agent("amna", "hash").failed_logins == 0


def test_ping(store: Store) -> None:
    assert store.ping() is True


def test_ping_false_when_unreachable(tmp_path: Any) -> None:
    bad = Store(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    try:
        assert bad.ping() is False
    finally:
        bad.dispose()


def test_url_normalisation() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(StoreError):
        Store("mysql://u@h/db")


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    store = Store("sqlite:///:memory:", now=Clock())
    try:
        store.migrate()
        new_call(store)
        results = run_threads(
            10,
            lambda i: store.save_call("CA1", CallUpdate(
                expected_version=1,
                state={"i": i},
                step="s",
                turn=1,
                last_reply="<Response/>",
                last_reply_turn=1,
            )),
        )
        assert results.count(True) == 1
        assert store.load_call("CA1").version == 2  # type: ignore[union-attr]
    finally:
        store.dispose()


def test_aware_now_is_stored_as_naive_utc(make_store: Callable[..., Store]) -> None:
    pkt = timezone(timedelta(hours=5))
    store = make_store(now=lambda: datetime(2026, 3, 2, 14, 0, tzinfo=pkt))
    store.migrate()
    call = new_call(store)
    assert call.created_at == datetime(2026, 3, 2, 9, 0) and call.created_at.tzinfo is None


# ---------------------------------------------------------------------------------------------
# calls


def test_create_call_twice_returns_the_same_row(store: Store, clock: Clock) -> None:
    first = new_call(store, state={"first": True})
    clock.advance(seconds=5)
    again = new_call(store, state={"second": True}, step="other")
    assert again == first
    assert first.version == 1 and first.turn == 0 and first.state == {"first": True}
    assert first.caller_masked == "+92*******551" and first.language == "en"
    assert first.outcome is None and first.in_progress
    assert len(store.recent_calls(T0 - timedelta(days=1))) == 1


def test_create_call_from_10_threads_makes_one_row(store: Store) -> None:
    results = run_threads(10, lambda i: new_call(store, state={"i": i}))
    assert len({r.state["i"] for r in results}) == 1
    assert len(store.recent_calls(T0 - timedelta(days=1))) == 1


def test_load_unknown_call_is_none(store: Store) -> None:
    assert store.load_call("nope") is None


def test_save_call_compare_and_swap(store: Store, clock: Clock) -> None:
    new_call(store)
    clock.advance(seconds=3)
    ok = store.save_call("CA1", CallUpdate(
        expected_version=1,
        state={"n": 1},
        step="ask_doctor",
        turn=1,
        last_reply="<Response><Say>hi</Say></Response>",
        last_reply_turn=1,
        patient_first_name="Amna",
    ))
    late = store.save_call("CA1", CallUpdate(
        expected_version=1,
        state={"n": 99},
        step="x",
        turn=1,
        last_reply="<Response/>",
        last_reply_turn=1,
    ))
    assert (ok, late) == (True, False)
    call = store.load_call("CA1")
    assert call is not None
    assert (call.version, call.step, call.turn, call.state) == (2, "ask_doctor", 1, {"n": 1})
    assert call.last_reply == "<Response><Say>hi</Say></Response>" and call.last_reply_turn == 1
    assert call.patient_first_name == "Amna"
    assert call.updated_at == T0 + timedelta(seconds=3) and call.created_at == T0
    # None leaves the first name alone; the next version continues from 2
    assert store.save_call("CA1", CallUpdate(
        expected_version=2,
        state={},
        step="s",
        turn=2,
        last_reply=None,
        last_reply_turn=None,
    ))
    assert store.load_call("CA1").patient_first_name == "Amna"  # type: ignore[union-attr]
    assert not store.save_call("nope", CallUpdate(
        expected_version=1,
        state={},
        step="s",
        turn=1,
        last_reply=None,
        last_reply_turn=None,
    ))


def test_save_call_from_10_threads_exactly_one_wins(store: Store) -> None:
    new_call(store)
    results = run_threads(
        10,
        lambda i: store.save_call("CA1", CallUpdate(
            expected_version=1,
            state={"winner": i},
            step=f"s{i}",
            turn=1,
            last_reply=f"<Response>{i}</Response>",
            last_reply_turn=1,
        )),
    )
    assert results.count(True) == 1
    winner = results.index(True)
    call = store.load_call("CA1")
    assert call is not None and call.version == 2
    assert call.state == {"winner": winner} and call.step == f"s{winner}"


def test_save_call_outcome_never_downgrades(store: Store) -> None:
    new_call(store)
    assert store.save_call("CA1", CallUpdate(
        expected_version=1,
        state={},
        step="done",
        turn=3,
        last_reply=None,
        last_reply_turn=None,
        outcome="booked",
        outcome_step="confirm",
    ))
    assert store.save_call("CA1", CallUpdate(
        expected_version=2,
        state={},
        step="bye",
        turn=4,
        last_reply=None,
        last_reply_turn=None,
        outcome="abandoned",
        outcome_step="bye",
    ))
    call = store.load_call("CA1")
    assert call is not None and (call.outcome, call.outcome_step) == ("booked", "confirm")
    with pytest.raises(StoreError):
        store.save_call("CA1", CallUpdate(
            expected_version=3,
            state={},
            step="x",
            turn=5,
            last_reply=None,
            last_reply_turn=None,
            outcome="great",
        ))


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("abandoned", "booked", "booked"),
        ("booked", "abandoned", "booked"),
        ("transferred", "callback", "transferred"),
        ("callback", "transferred", "transferred"),
        ("abandoned", "callback", "callback"),
        ("booked", "transferred", "booked"),
    ],
)
def test_finish_call_outcome_precedence(
    store: Store, clock: Clock, first: str, second: str, expected: str
) -> None:
    new_call(store)
    store.finish_call("CA1", first, "step1")
    clock.advance(seconds=10)
    store.finish_call("CA1", second, "step2")
    call = store.load_call("CA1")
    assert call is not None and call.outcome == expected
    assert call.outcome_step == ("step1" if expected == first else "step2")
    assert call.ended_at == T0  # the first end time stays
    assert not call.in_progress


def test_finish_call_keeps_version(store: Store) -> None:
    new_call(store)
    assert store.finish_call("CA1", "abandoned") is True
    assert store.load_call("CA1").version == 1  # type: ignore[union-attr]
    assert store.finish_call("CA1", "abandoned") is False  # not stronger: nothing recorded
    with pytest.raises(StoreError):
        store.finish_call("CA1", "exploded")


def test_mark_transferred(store: Store, clock: Clock) -> None:
    new_call(store)
    store.mark_transferred("CA1")
    clock.advance(minutes=1)
    store.mark_transferred("CA1")
    call = store.load_call("CA1")
    assert call is not None
    assert call.transferred_at == T0 and call.outcome == "transferred"
    assert store.calls_in_progress() == []
    # booked is stronger than transferred
    new_call(store, "CA2")
    store.finish_call("CA2", "booked")
    store.mark_transferred("CA2")
    assert store.load_call("CA2").outcome == "booked"  # type: ignore[union-attr]


def test_calls_in_progress_and_recent_calls(store: Store, clock: Clock) -> None:
    for sid in ("CA1", "CA2", "CA3"):
        new_call(store, sid)
        clock.advance(minutes=1)
    store.finish_call("CA2", "abandoned")
    assert [c.call_sid for c in store.calls_in_progress()] == ["CA3", "CA1"]
    assert [c.call_sid for c in store.calls_in_progress(limit=1)] == ["CA3"]
    assert [c.call_sid for c in store.recent_calls(T0 + timedelta(seconds=30), 10)] == [
        "CA3",
        "CA2",
    ]
    aware = (T0 + timedelta(minutes=2)).replace(tzinfo=UTC)
    assert [c.call_sid for c in store.recent_calls(aware, 10)] == ["CA3"]


def test_outcome_counts_by_day(store: Store, clock: Clock) -> None:
    clock.t = datetime(2026, 3, 1, 23, 0)
    new_call(store, "old")  # outside a 1-day window
    store.finish_call("old", "booked")
    clock.t = datetime(2026, 3, 2, 8, 0)
    for sid, outcome in [("a", "booked"), ("b", "booked"), ("c", "abandoned"), ("d", None)]:
        new_call(store, sid)
        if outcome:
            store.finish_call(sid, outcome)
    today = [tuple(c) for c in store.outcome_counts_by_day(1)]
    d = datetime(2026, 3, 2).date()
    assert today == [(d, "abandoned", 1), (d, "booked", 2), (d, None, 1)]
    two = store.outcome_counts_by_day(2)
    assert (two[0].day, two[0].outcome, two[0].count) == (datetime(2026, 3, 1).date(), "booked", 1)
    assert len(two) == 4


# A worker process: migrate (concurrently with its siblings), then race for the same call turn
# and the same bookings. Prints what it won as JSON.
PROCESS_SCRIPT = """
import json, os, sys, time
from datetime import timedelta
from ivr.store import CallUpdate, Store
url, start_at = sys.argv[1], float(sys.argv[2])
store = Store(url)
while time.time() < start_at:
    time.sleep(0.005)
store.migrate()
me = str(os.getpid())
saved = store.save_call("CA1", CallUpdate(expected_version=1, state={"by": me}, step="s",
                                          turn=1, last_reply="<Response/>", last_reply_turn=1))
won = [k for k in ("k0", "k1", "k2", "k3", "k4")
       if store.claim_booking(k, worker=me, lease=timedelta(minutes=5)) is not None]
store.dispose()
print(json.dumps({"saved": saved, "won": won}))
"""


@pytest.mark.slow
def test_several_processes_race_safely(store: Store, db_url: str) -> None:
    new_call(store)
    for i in range(5):
        store.enqueue_booking(f"k{i}", call_sid="CA1", payload=payload(notes=str(i)))
    start_at = str(time.time() + 2.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS_SCRIPT, db_url, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert [r["saved"] for r in results].count(True) == 1
    won = sorted(k for r in results for k in r["won"])
    assert won == ["k0", "k1", "k2", "k3", "k4"]
    assert store.load_call("CA1").version == 2  # type: ignore[union-attr]
    assert store.outbox_depth()["booking"] == 5


# ---------------------------------------------------------------------------------------------
# events


def test_events_in_order_and_kind_checked(store: Store, clock: Clock) -> None:
    new_call(store)
    store.add_event("CA1", "step", "greet", None)
    store.add_event("CA1", "said", "ask_name", "my name is A***")
    store.add_event("CA1", "pressed", "menu", "1")
    store.add_event("CA2", "silence", "menu", None)
    events = store.events("CA1")
    assert [(e.kind, e.step, e.text) for e in events] == [
        ("step", "greet", None),
        ("said", "ask_name", "my name is A***"),
        ("pressed", "menu", "1"),
    ]
    assert all(e.at == T0 and e.call_sid == "CA1" for e in events)
    with pytest.raises(StoreError):
        store.add_event("CA1", "sang", None, None)


def test_purge_events_removes_only_old_events(store: Store, clock: Clock) -> None:
    new_call(store)
    store.add_event("CA1", "heard", "greet", "old")
    store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    store.add_callback("CA1", "+923216315551", "+92*******551", "busy")
    clock.advance(days=31)
    store.add_event("CA1", "heard", "greet", "new")
    assert store.purge_events(timedelta(days=30)) == 1
    assert [e.text for e in store.events("CA1")] == ["new"]
    assert store.load_call("CA1") is not None
    assert store.get_booking("k1") is not None
    assert len(store.callbacks()) == 1
    assert store.purge_events(timedelta(days=30)) == 0


# ---------------------------------------------------------------------------------------------
# bookings outbox

def payload(**changes: Any) -> BookingPayload:
    """A booking's payload: Dr D1 on 3 March at 10:00 for patient P1, with `changes`."""
    fields: dict[str, Any] = {
        "doctor_id": "D1", "start": datetime(2026, 3, 3, 10), "patient_id": "P1",
        "clinic_id": "C1", "service_id": "S1", "notes": "IVR",
    }
    return BookingPayload(**{**fields, **changes})


PAYLOAD = payload()


def test_enqueue_same_key_returns_existing(store: Store, clock: Clock) -> None:
    first = store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    clock.advance(seconds=1)
    again = store.enqueue_booking("k1", call_sid="CA9", payload=payload(doctor_id="D2"))
    assert again == first
    assert first.status == "pending" and first.attempts == 0 and first.payload == PAYLOAD
    assert first.created_at == T0 and first.next_attempt_at is None
    assert store.get_booking(first.id) == first
    assert store.get_booking("nope") is None


@pytest.mark.parametrize("stored", ['{"nothing": "here"}', '{"doctor_id": "D1", "start": "soon"}',
                                    "[1, 2]", "{not json", ""])
def test_an_unreadable_stored_payload_reads_as_none(store: Store, stored: str) -> None:
    # A row written by other code or cut short: listed and shown, never a failed read.
    store.enqueue_booking("bad", call_sid="CA1", payload=PAYLOAD)
    store.enqueue_booking("good", call_sid="CA2", payload=PAYLOAD)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE bookings SET payload = :p WHERE idempotency_key = 'bad'"),
                     {"p": stored})
    bad = store.get_booking("bad")
    assert bad is not None and bad.payload is None and bad.status == "pending"
    assert {b.idempotency_key: b.payload for b in store.bookings()} == {
        "bad": None, "good": PAYLOAD}


def test_enqueue_same_key_from_10_threads_makes_one_row(store: Store) -> None:
    results = run_threads(
        10, lambda i: store.enqueue_booking("k1", call_sid="CA1", payload=payload(notes=str(i)))
    )
    assert len({r.id for r in results}) == 1
    assert len({r.payload for r in results}) == 1
    assert len(store.bookings()) == 1


def test_claim_booking_from_10_threads_exactly_one_winner(store: Store) -> None:
    store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    results = run_threads(10, lambda i: store.claim_booking("k1", worker=f"w{i}", lease=LEASE))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    won = winners[0]
    assert won.status == "booking" and won.attempts == 1
    assert won.claimed_by == f"w{results.index(won)}" and won.claimed_until == T0 + LEASE
    assert store.get_booking("k1") == won


def test_lease_expiry_lets_another_worker_claim(store: Store, clock: Clock) -> None:
    store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    assert store.claim_booking("k1", worker="a", lease=LEASE) is not None
    clock.advance(seconds=59)
    assert store.claim_booking("k1", worker="b", lease=LEASE) is None
    assert store.claim_due_bookings(worker="b", lease=LEASE, limit=10) == []
    clock.advance(seconds=2)
    again = store.claim_booking("k1", worker="b", lease=LEASE)
    assert again is not None and again.claimed_by == "b" and again.attempts == 2
    assert store.claim_booking("unknown", worker="b", lease=LEASE) is None


def test_due_bookings_respect_next_attempt_at(store: Store, clock: Clock) -> None:
    store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    clock.advance(seconds=1)
    store.enqueue_booking("k2", call_sid="CA2", payload=PAYLOAD)
    assert store.claim_booking("k1", worker="w", lease=LEASE) is not None
    assert store.mark_retry("k1", "503 from Clinicea", T0 + timedelta(minutes=5))
    retrying = store.get_booking("k1")
    assert retrying is not None and retrying.status == "retrying"
    assert retrying.last_error == "503 from Clinicea" and retrying.claimed_by is None
    # k1 is not due yet: only k2 is claimable
    claimed = store.claim_due_bookings(worker="w", lease=LEASE, limit=10)
    assert [b.idempotency_key for b in claimed] == ["k2"]
    assert store.claim_booking("k1", worker="w", lease=LEASE) is None
    assert store.mark_booked("k2", "APT-2", "P1")
    clock.t = T0 + timedelta(minutes=5) - timedelta(microseconds=1)
    assert store.claim_due_bookings(worker="w2", lease=LEASE, limit=10) == []
    clock.t = T0 + timedelta(minutes=5)
    claimed = store.claim_due_bookings(worker="w2", lease=LEASE, limit=10)
    assert [(b.idempotency_key, b.attempts, b.claimed_by) for b in claimed] == [("k1", 2, "w2")]


def test_claim_due_bookings_limit_and_order_and_no_double_claims(
    store: Store, clock: Clock
) -> None:
    for i in range(20):
        store.enqueue_booking(f"k{i:02}", call_sid=None, payload=payload(notes=str(i)))
        clock.advance(seconds=1)
    first = store.claim_due_bookings(worker="w", lease=LEASE, limit=3)
    assert [b.idempotency_key for b in first] == ["k00", "k01", "k02"]
    results = run_threads(
        5, lambda i: store.claim_due_bookings(worker=f"w{i}", lease=LEASE, limit=4)
    )
    keys = [b.idempotency_key for batch in results for b in batch]
    assert len(keys) == len(set(keys)) == 17
    assert store.claim_due_bookings(worker="x", lease=LEASE, limit=10) == []


def test_mark_transitions(store: Store, clock: Clock) -> None:
    for key in ("ok", "bad", "handled"):
        store.enqueue_booking(key, call_sid="CA1", payload=PAYLOAD)
    store.claim_booking("ok", worker="w", lease=LEASE)
    clock.advance(seconds=2)
    assert store.mark_booked("ok", "APT-1", "PAT-1")
    ok = store.get_booking("ok")
    assert ok is not None
    assert (ok.status, ok.appointment_id, ok.patient_id) == ("booked", "APT-1", "PAT-1")
    assert ok.claimed_by is None and ok.claimed_until is None and ok.updated_at > ok.created_at
    assert store.mark_booked("ok", "APT-1", "PAT-1")  # idempotent
    assert not store.mark_booked("ok", "APT-2", "PAT-1")  # a different appointment: refused
    assert not store.mark_retry("ok", "late", clock.t)  # booked is final for the worker
    assert not store.mark_failed("ok", "late")
    assert store.claim_booking("ok", worker="w", lease=LEASE) is None

    assert store.mark_failed("bad", "The selected slot is not available")
    bad = store.get_booking("bad")
    assert bad is not None and bad.status == "failed"
    assert bad.failure_reason == "The selected slot is not available"
    assert store.claim_booking("bad", worker="w", lease=LEASE) is None
    assert store.mark_handled("bad", "agent1")
    bad = store.get_booking("bad")
    assert bad is not None and (bad.status, bad.handled_by, bad.handled_at) == (
        "handled",
        "agent1",
        clock.t,
    )
    assert not store.mark_handled("bad", "agent2")

    # a failed booking later found in Clinicea can still be recorded as booked
    store.mark_failed("handled", "unknown outcome")
    assert store.mark_booked("handled", "APT-9", None)
    assert store.bookings(statuses=["booked"], limit=10)[0].idempotency_key == "handled"
    assert [b.idempotency_key for b in store.bookings()] == ["handled", "bad", "ok"]
    assert not store.mark_booked("missing", "A", "P")


def test_outbox_depth_and_oldest_pending_age(store: Store, clock: Clock) -> None:
    assert store.outbox_depth() == dict.fromkeys(BOOKING_STATUSES, 0)
    assert store.oldest_pending_age() is None
    store.enqueue_booking("a", call_sid=None, payload=PAYLOAD)
    clock.advance(minutes=1)
    store.enqueue_booking("b", call_sid=None, payload=PAYLOAD)
    store.enqueue_booking("c", call_sid=None, payload=PAYLOAD)
    store.claim_booking("b", worker="w", lease=LEASE)
    store.mark_failed("c", "no")
    clock.advance(minutes=2)
    depth = store.outbox_depth()
    assert depth == {**dict.fromkeys(BOOKING_STATUSES, 0), "pending": 1, "booking": 1, "failed": 1}
    assert store.oldest_pending_age() == timedelta(minutes=3)
    store.claim_booking("a", worker="w", lease=LEASE)
    store.mark_booked("a", "APT", "PAT")
    assert store.oldest_pending_age() == timedelta(minutes=2)


# ---------------------------------------------------------------------------------------------
# callbacks, agents, API keys


def test_callbacks(store: Store, clock: Clock) -> None:
    first = store.add_callback("CA1", "+923216315551", "+92*******551", "no slot")
    clock.advance(minutes=1)
    second = store.add_callback("CA2", None, None, "withheld")
    assert first != second
    open_ = store.callbacks()
    assert [(c.id, c.phone_e164, c.phone_masked, c.reason, c.status) for c in open_] == [
        (first, "+923216315551", "+92*******551", "no slot", "open"),
        (second, None, None, "withheld", "open"),
    ]
    assert store.mark_callback_handled(first, "agent1")
    assert not store.mark_callback_handled(first, "agent2")
    assert not store.mark_callback_handled(9999, "agent2")
    assert [c.id for c in store.callbacks()] == [second]
    handled = store.callbacks(status="handled")
    assert [(c.id, c.handled_by, c.handled_at) for c in handled] == [(first, "agent1", clock.t)]
    assert len(store.callbacks(status=None)) == 2


def test_agents_and_lockout_fields(store: Store, clock: Clock) -> None:
    agent = store.add_agent("amna", "scrypt$abc")
    assert (agent.username, agent.password_hash, agent.failed_logins) == ("amna", "scrypt$abc", 0)
    assert agent.locked_until is None and agent.created_at == T0
    with pytest.raises(AlreadyExists):
        store.add_agent("amna", "other")
    assert store.get_agent("nobody") is None
    assert store.record_login_failure("nobody") is None
    results = run_threads(5, lambda i: store.record_login_failure("amna"))
    assert max(r.failed_logins for r in results if r) == 5
    locked = store.record_login_failure("amna", lock_until=T0 + timedelta(minutes=15))
    assert locked is not None and locked.failed_logins == 6
    assert locked.locked_until == T0 + timedelta(minutes=15)
    store.reset_login_failures("amna")
    agent = store.get_agent("amna")
    assert agent is not None and agent.failed_logins == 0 and agent.locked_until is None
    assert store.set_agent_password("amna", "scrypt$new")
    assert store.get_agent("amna").password_hash == "scrypt$new"  # type: ignore[union-attr]


def test_api_keys(store: Store, clock: Clock) -> None:
    key = store.add_api_key("reception-pc", "sha256:aaa")
    assert key.name == "reception-pc" and key.last_used_at is None and key.created_at == T0
    with pytest.raises(AlreadyExists):
        store.add_api_key("dup", "sha256:aaa")
    clock.advance(hours=1)
    found = store.find_api_key("sha256:aaa")
    assert found is not None and found.id == key.id and found.last_used_at == clock.t
    assert store.find_api_key("sha256:zzz") is None
