"""The bookings outbox: every booking a caller accepted, written before Clinicea is called, and
how far it got (claimed by a worker under a lease, booked, retrying, failed, handled).

A booking made on a call also claims its time (`enqueue_claimed_booking`): the call's hold
becomes the booking's claim in the same transaction, and settling the booking frees or keeps it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.booking_payload import BookingPayload
from ivr.store.database import Database, utc_naive
from ivr.store.errors import SlotUnavailable
from ivr.store.holds import BOOKING, Holds
from ivr.store.records import BOOKING_STATUSES, OPEN_BOOKING_STATUSES, BookingRecord
from ivr.store.schema import bookings


def _claimable() -> sa.ColumnElement[bool]:
    """Rows a worker may claim at ``p_now``: open, due, and not under someone else's live lease.

    A row left in ``booking`` by a worker whose lease ran out is claimable again."""
    now = sa.bindparam("p_now", type_=sa.DateTime())
    lease_free = sa.or_(bookings.c.claimed_until.is_(None), bookings.c.claimed_until < now)
    return sa.and_(
        sa.or_(
            sa.and_(bookings.c.status.in_(("pending", "retrying")), lease_free),
            sa.and_(bookings.c.status == "booking", bookings.c.claimed_until < now),
        ),
        sa.or_(bookings.c.next_attempt_at.is_(None), bookings.c.next_attempt_at <= now),
    )


# A claim: parameters p_now, p_worker, p_until and p_key or p_id.
_CLAIM_VALUES: dict[str, Any] = {
    "status": "booking",
    "attempts": bookings.c.attempts + 1,
    "claimed_by": sa.bindparam("p_worker", type_=bookings.c.claimed_by.type),
    "claimed_until": sa.bindparam("p_until", type_=bookings.c.claimed_until.type),
    "updated_at": sa.bindparam("p_now", type_=bookings.c.updated_at.type),
}
_CLAIM_BY_KEY = (
    bookings.update()
    .where(bookings.c.idempotency_key == sa.bindparam("p_key"), _claimable())
    .values(**_CLAIM_VALUES)
)
_CLAIM_BY_ID = (
    bookings.update()
    .where(bookings.c.id == sa.bindparam("p_id"), _claimable())
    .values(**_CLAIM_VALUES)
)
_BOOKING_BY_KEY = sa.select(bookings).where(bookings.c.idempotency_key == sa.bindparam("p_key"))
_BOOKING_BY_ID = sa.select(bookings).where(bookings.c.id == sa.bindparam("p_id"))
_ENQUEUE_COLUMNS = (
    "idempotency_key", "call_sid", "created_at", "updated_at", "status", "attempts", "payload",
)


@functools.cache
def _transition_stmt(from_statuses: tuple[str, ...], columns: tuple[str, ...]) -> sa.Update:
    """Set ``columns`` (parameters ``p_<column>``) of the booking ``p_key`` if its status is
    one of ``from_statuses``."""
    return (
        bookings.update()
        .where(
            bookings.c.idempotency_key == sa.bindparam("p_key"),
            bookings.c.status.in_(from_statuses),
        )
        .values({c: sa.bindparam(f"p_{c}", type_=bookings.c[c].type) for c in columns})
    )


def _booking(row: Any) -> BookingRecord:
    m = row._mapping
    return BookingRecord(
        id=m["id"],
        idempotency_key=m["idempotency_key"],
        call_sid=m["call_sid"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        status=m["status"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        payload=BookingPayload.loads(m["payload"]),
        appointment_id=m["appointment_id"],
        patient_id=m["patient_id"],
        claimed_by=m["claimed_by"],
        claimed_until=m["claimed_until"],
        failure_reason=m["failure_reason"],
        handled_by=m["handled_by"],
        handled_at=m["handled_at"],
    )


class Bookings:
    """The ``bookings`` table; a booking's time claim through `Holds`."""

    def __init__(self, db: Database, holds: Holds) -> None:
        """Work through ``db``; the INSERT of a new booking is built once (values bound per
        call)."""
        self._db = db
        self._holds = holds
        self._enqueue_stmt = db.insert_ignoring_conflict(
            bookings, {c: sa.bindparam(c, type_=bookings.c[c].type) for c in _ENQUEUE_COLUMNS},
            ["idempotency_key"],
        )

    def enqueue_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload
    ) -> BookingRecord:
        """Insert a pending booking, or return the existing one with the same idempotency key."""
        now = self._db.now()
        values = {
            "idempotency_key": key,
            "call_sid": call_sid,
            "created_at": now,
            "updated_at": now,
            "status": "pending",
            "attempts": 0,
            "payload": payload.dumps(),
        }
        with self._db.transaction() as conn:
            conn.execute(self._enqueue_stmt, values)
            row = conn.execute(_BOOKING_BY_KEY, {"p_key": key}).one()
        return _booking(row)

    def claim_booking(self, key: str, *, worker: str, lease: timedelta) -> BookingRecord | None:
        """Atomically claim one booking for ``worker``; the row only if this caller won."""
        now = self._db.now()
        params = {"p_key": key, "p_now": now, "p_worker": worker, "p_until": now + lease}
        with self._db.transaction() as conn:
            if conn.execute(_CLAIM_BY_KEY, params).rowcount != 1:
                return None
            row = conn.execute(_BOOKING_BY_KEY, params).one()
        return _booking(row)

    def claim_due_bookings(
        self, *, worker: str, lease: timedelta, limit: int = 10
    ) -> list[BookingRecord]:
        """Claim up to ``limit`` due bookings, oldest due first (PostgreSQL: SKIP LOCKED)."""
        now = self._db.now()
        pick = (
            sa.select(bookings.c.id)
            .where(_claimable())
            .order_by(
                sa.func.coalesce(bookings.c.next_attempt_at, bookings.c.created_at), bookings.c.id
            )
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        claimed: list[BookingRecord] = []
        params: dict[str, Any] = {"p_now": now, "p_worker": worker, "p_until": now + lease}
        with self._db.transaction() as conn:
            ids = list(conn.execute(pick, params).scalars())
            for booking_id in ids:  # per-row conditional update: only rows still claimable
                params["p_id"] = booking_id
                if conn.execute(_CLAIM_BY_ID, params).rowcount == 1:
                    claimed.append(_booking(conn.execute(_BOOKING_BY_ID, params).one()))
        return claimed

    def _transition(self, key: str, from_statuses: Iterable[str], values: dict[str, Any],
                    then: Callable[[Connection], object] | None = None) -> bool:
        values = {**values, "updated_at": self._db.now()}
        stmt = _transition_stmt(tuple(from_statuses), tuple(values))
        params = {f"p_{column}": value for column, value in values.items()}
        with self._db.transaction() as conn:
            changed = conn.execute(stmt, {**params, "p_key": key}).rowcount == 1
            if changed and then is not None:
                then(conn)  # same transaction: the row and its time claim change together
            return changed

    def mark_booked(self, key: str, appointment_id: str | None, patient_id: str | None) -> bool:
        """Clinicea stored it: status ``booked`` with its IDs; the lease is released.

        Allowed from pending / booking / retrying / failed (a late lookup may find a booking
        given up on). Returns True when the row is now booked with that appointment."""
        changed = self._transition(
            key,
            ("pending", "booking", "retrying", "failed"),
            {
                "status": "booked",
                "appointment_id": appointment_id,
                "patient_id": patient_id,
                "claimed_by": None,
                "claimed_until": None,
                "next_attempt_at": None,
                "failure_reason": None,
            },
            # Clinicea has it now; the claim covers calendars cached before it was there.
            then=lambda conn: self._holds.keep_booked_claim(conn, key),
        )
        if changed:
            return True
        current = self.get_booking(key)
        return (
            current is not None
            and current.status == "booked"
            and (current.appointment_id == appointment_id)
        )

    def mark_retry(self, key: str, error: str, next_attempt_at: datetime) -> bool:
        """This attempt failed transiently: status ``retrying`` until ``next_attempt_at``."""
        return self._transition(
            key,
            ("pending", "booking", "retrying"),
            {
                "status": "retrying",
                "last_error": error,
                "next_attempt_at": utc_naive(next_attempt_at),
                "claimed_by": None,
                "claimed_until": None,
            },
        )

    def mark_failed(self, key: str, reason: str) -> bool:
        """Given up (rejected, or out of attempts): status ``failed``; a person must act."""
        return self._transition(
            key,
            ("pending", "booking", "retrying"),
            {
                "status": "failed",
                "failure_reason": reason,
                "claimed_by": None,
                "claimed_until": None,
                "next_attempt_at": None,
            },
            then=lambda conn: self._holds.release_booking_claim(conn, key),
        )

    def mark_handled(self, key: str, by: str) -> bool:
        """An agent dealt with a booking the outbox could not: status ``handled``."""
        return self._transition(
            key,
            ("pending", "retrying", "failed"),
            {
                "status": "handled",
                "handled_by": by,
                "handled_at": self._db.now(),
                "claimed_by": None,
                "claimed_until": None,
                "next_attempt_at": None,
            },
            then=lambda conn: self._holds.release_booking_claim(conn, key),
        )

    def get_booking(self, key_or_id: str | int) -> BookingRecord | None:
        """A booking by idempotency key (str) or id (int)."""
        stmt, params = (
            (_BOOKING_BY_ID, {"p_id": key_or_id})
            if isinstance(key_or_id, int)
            else (_BOOKING_BY_KEY, {"p_key": key_or_id})
        )
        with self._db.transaction(write=False) as conn:
            row = conn.execute(stmt, params).first()
        return None if row is None else _booking(row)

    def bookings(
        self, statuses: Iterable[str] | None = None, limit: int = 100
    ) -> list[BookingRecord]:
        """Bookings, newest first, optionally only those in ``statuses``."""
        stmt = sa.select(bookings).order_by(bookings.c.created_at.desc(), bookings.c.id.desc())
        if statuses is not None:
            stmt = stmt.where(bookings.c.status.in_(tuple(statuses)))
        with self._db.transaction(write=False) as conn:
            return [_booking(r) for r in conn.execute(stmt.limit(limit))]

    def outbox_depth(self) -> dict[str, int]:
        """Number of bookings per status (every status present, zero included)."""
        stmt = sa.select(bookings.c.status, sa.func.count()).group_by(bookings.c.status)
        depth = dict.fromkeys(BOOKING_STATUSES, 0)
        with self._db.transaction(write=False) as conn:
            for status, n in conn.execute(stmt):
                depth[status] = int(n)
        return depth

    def oldest_pending_age(self) -> timedelta | None:
        """Age of the oldest booking not yet booked/failed/handled; None when there is none."""
        stmt = sa.select(sa.func.min(bookings.c.created_at)).where(
            bookings.c.status.in_(OPEN_BOOKING_STATUSES)
        )
        with self._db.transaction(write=False) as conn:
            oldest = conn.execute(stmt).scalar()
        if oldest is None:
            return None
        if isinstance(oldest, str):  # pragma: no cover - SQLite min() over text, untyped
            oldest = datetime.fromisoformat(oldest)
        return max(self._db.now() - oldest, timedelta(0))

    def enqueue_claimed_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload, doctor_id: str,
        steps: Sequence[datetime],
    ) -> BookingRecord:
        """`enqueue_booking` and the claim on the booking's time, in one transaction.

        The call's hold on those steps (``call_sid``) becomes the booking's claim; a step
        claimed or held live by anyone else raises `SlotUnavailable` and nothing is written.
        A key that exists already returns its row unchanged (a repeated webhook)."""
        now = self._db.now()
        values = {
            "idempotency_key": key, "call_sid": call_sid, "created_at": now, "updated_at": now,
            "status": "pending", "attempts": 0, "payload": payload.dumps(),
        }
        # The booking row first, then its claim: the order mark_booked/mark_failed lock them
        # in too (the other order deadlocked on PostgreSQL against a concurrent mark_booked).
        with self._db.transaction() as conn:
            # RETURNING, not rowcount: PostgreSQL's rowcount is not 1 here (implicit RETURNING).
            inserted = conn.execute(self._enqueue_stmt.returning(bookings.c.id),
                                    values).first() is not None
            if inserted:
                owned = self._holds.take(conn, owner=key, kind=BOOKING, doctor_id=doctor_id,
                                         steps=steps, until=None, hold_owner=call_sid or "")
                if not set(steps) <= owned:  # raising rolls the booking row back too
                    raise SlotUnavailable(f"{doctor_id} at {min(steps):%Y-%m-%d %H:%M} is taken")
            row = conn.execute(_BOOKING_BY_KEY, {"p_key": key}).one()
        return _booking(row)
