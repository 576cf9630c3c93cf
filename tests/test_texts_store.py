"""The store's confirmation texts (``booking_texts``), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from ivr.booking_payload import BookingPayload
from ivr.store import Store

T0 = datetime(2026, 3, 2, 9, 0, 0)
PAYLOAD = BookingPayload("D1", datetime(2026, 3, 3, 10), "P1", "C1", "S1")
TEXT = {"to_e164": "+923216315551", "from_e164": "+922135550199", "body": "You're booked"}


@pytest.fixture
def now() -> list[datetime]:
    return [T0]


def booked(store: Store, key: str) -> None:
    store.enqueue_booking(key, call_sid="CA1", payload=PAYLOAD)
    assert store.claim_booking(key, worker="w", lease=timedelta(seconds=60))
    assert store.mark_booked(key, "A1", "P1")


def test_a_text_waits_for_its_booking_and_is_queued_once(stores: list[Store]) -> None:
    store = stores[0]
    assert store.queue_text("k1", **TEXT) is True
    assert store.queue_text("k1", **{**TEXT, "body": "again"}) is False  # a retried webhook
    assert store.claim_due_texts(worker="w") == []  # no booking yet
    store.enqueue_booking("k1", call_sid="CA1", payload=PAYLOAD)
    assert store.claim_due_texts(worker="w") == []  # pending, not booked
    store.claim_booking("k1", worker="w", lease=timedelta(seconds=60))
    store.mark_booked("k1", "A1", "P1")
    [text] = store.claim_due_texts(worker="w")
    assert (text.status, text.attempts, text.body) == ("sending", 1, "You're booked")


def test_four_workers_claiming_at_once_send_each_text_once(stores: list[Store]) -> None:
    for i in range(6):
        stores[0].queue_text(f"k{i}", **TEXT)
        booked(stores[0], f"k{i}")
    barrier = threading.Barrier(4)

    def claim(i: int) -> list[str]:
        barrier.wait(timeout=30)
        return [t.booking_key for t in stores[i].claim_due_texts(worker=f"w{i}", limit=6)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        won = [k for keys in pool.map(claim, range(4)) for k in keys]
    assert sorted(won) == [f"k{i}" for i in range(6)]
    assert all(s.claim_due_texts(worker="late") == [] for s in stores)


def test_a_text_left_sending_becomes_unknown_and_is_never_claimed_again(
    stores: list[Store], now: list[datetime]
) -> None:
    store = stores[0]
    store.queue_text("k1", **TEXT)
    booked(store, "k1")
    assert store.claim_due_texts(worker="dead")
    now[0] = T0 + timedelta(minutes=1)
    assert store.expire_sending_texts(timedelta(minutes=2), "stopped") == 0  # still live
    now[0] = T0 + timedelta(minutes=3)
    assert store.expire_sending_texts(timedelta(minutes=2), "stopped") == 1
    assert store.get_text("k1").status == "unknown"  # type: ignore[union-attr]
    assert store.claim_due_texts(worker="w") == []
    assert [t.booking_key for t in store.texts(("unknown",))] == ["k1"]


def test_a_retry_is_claimed_only_when_due(stores: list[Store], now: list[datetime]) -> None:
    store = stores[0]
    store.queue_text("k1", **TEXT)
    booked(store, "k1")
    store.claim_due_texts(worker="w")
    assert store.finish_text("k1", "retrying", error="503",
                             next_attempt_at=T0 + timedelta(seconds=30))
    assert store.finish_text("k1", "sent") is False  # only from sending
    assert store.claim_due_texts(worker="w") == []
    now[0] = T0 + timedelta(seconds=31)
    [again] = store.claim_due_texts(worker="w")
    assert again.attempts == 2
    assert store.finish_text("k1", "sent", twilio_sid="SM1")
    text = store.get_text("k1")
    assert text is not None and (text.status, text.twilio_sid, text.last_error) == (
        "sent", "SM1", None)
