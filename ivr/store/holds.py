"""Slot claims: holds on the times a call was offered and the claims of open bookings.

One ``slot_claims`` row per (doctor, grid start), so the primary key is the "never two on one
time" rule: taking a time is an INSERT that either wins or takes over a row that expired, is
already the taker's, or is the hold that becomes a booking's claim (see docs/design.md, Holds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.store.database import Database, utc_naive
from ivr.store.schema import slot_claims

#: How long a booked appointment keeps its claim: longer than any cached calendar that may not
#: show it yet; after that Clinicea's calendar is the truth (a cancelled time frees up).
BOOKED_CLAIM_TTL = timedelta(minutes=10)
HOLD = "hold"  # slot_claims.kind of a call's hold (owner: the CallSid)
BOOKING = "booking"  # slot_claims.kind of a booking's claim (owner: its idempotency key)


def _as_datetime(value: Any) -> datetime:
    """A DateTime column's value (SQLite may hand back text in raw selects)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class Holds:
    """The ``slot_claims`` table."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    def _claim_stmt(self) -> sa.Insert:
        """Take (doctor_id, start) for ``p_owner``/``p_kind``: insert, or take over a row that
        has expired, is already ours, or is the hold ``p_hold_owner`` that becomes this claim.
        The primary key makes the insert itself the check (no read-then-write)."""
        now = sa.bindparam("p_now", type_=sa.DateTime())
        stmt = self._db.insert(slot_claims).values(
            doctor_id=sa.bindparam("p_doctor", type_=sa.String()),
            start=sa.bindparam("p_start", type_=sa.DateTime()),
            owner=sa.bindparam("p_owner", type_=sa.String()),
            kind=sa.bindparam("p_kind", type_=sa.String()),
            expires_at=sa.bindparam("p_until", type_=sa.DateTime()),
            created_at=now,
        )
        c = slot_claims.c
        return stmt.on_conflict_do_update(
            index_elements=["doctor_id", "start"],
            set_={"owner": stmt.excluded.owner, "kind": stmt.excluded.kind,
                  "expires_at": stmt.excluded.expires_at, "created_at": stmt.excluded.created_at},
            where=sa.or_(
                sa.and_(c.expires_at.is_not(None), c.expires_at <= now),
                sa.and_(c.owner == sa.bindparam("p_owner"), c.kind == sa.bindparam("p_kind")),
                sa.and_(c.owner == sa.bindparam("p_hold_owner"), c.kind == HOLD),
            ),
        )

    def take(self, conn: Connection, *, owner: str, kind: str, doctor_id: str,
             steps: Iterable[datetime], until: datetime | None, hold_owner: str) -> set[datetime]:
        """Try to take every step (in the caller's transaction); the steps now owned by
        ``owner``/``kind``."""
        wanted = sorted(set(steps))  # one order everywhere: no lock-order deadlock on PostgreSQL
        if not wanted:
            return set()
        stmt = self._claim_stmt()
        base = {"p_now": self._db.now(), "p_doctor": doctor_id, "p_owner": owner, "p_kind": kind,
                "p_until": until, "p_hold_owner": hold_owner}
        for step in wanted:
            conn.execute(stmt, {**base, "p_start": step})
        owned = conn.execute(
            sa.select(slot_claims.c.start).where(
                slot_claims.c.doctor_id == doctor_id, slot_claims.c.start.in_(wanted),
                slot_claims.c.owner == owner, slot_claims.c.kind == kind,
            )
        ).scalars()
        return {_as_datetime(v) for v in owned}

    def hold_slots(self, call_sid: str, doctor_id: str, slots: Sequence[Sequence[datetime]],
                   until: datetime) -> list[bool]:
        """Hold times for a call until ``until`` (UTC); each slot is the grid steps it covers.

        A slot is held only if all its steps are (a step held by another call or claimed by a
        booking is refused; an expired one is taken over; the call's own holds are renewed).
        Returns, per slot, whether it is now held by the call. One transaction."""
        until = utc_naive(until)
        with self._db.transaction() as conn:
            owned = self.take(conn, owner=call_sid, kind=HOLD, doctor_id=doctor_id,
                              steps=[st for slot in slots for st in slot], until=until,
                              hold_owner=call_sid)
            held = [all(st in owned for st in slot) for slot in slots]
            keep = {st for slot, ok in zip(slots, held, strict=True) if ok for st in slot}
            loose = list(owned - keep)  # steps of a slot only partly held: let them go
            if loose:
                conn.execute(slot_claims.delete().where(
                    slot_claims.c.doctor_id == doctor_id, slot_claims.c.start.in_(loose),
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD))
        return held

    def release_holds(self, call_sid: str,
                      keep: Iterable[tuple[str, datetime]] = ()) -> int:
        """End the call's holds except ``keep`` (doctor_id, grid start); returns how many."""
        keep_set = set(keep)
        with self._db.transaction() as conn:
            rows = conn.execute(
                sa.select(slot_claims.c.doctor_id, slot_claims.c.start).where(
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD)
            ).all()
            gone = sorted((d, _as_datetime(st)) for d, st in rows
                          if (d, _as_datetime(st)) not in keep_set)  # lock order: as take
            for doctor_id, start in gone:
                conn.execute(slot_claims.delete().where(
                    slot_claims.c.doctor_id == doctor_id, slot_claims.c.start == start,
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD))
        return len(gone)

    def held_by(self, call_sid: str) -> list[tuple[str, datetime]]:
        """The call's live holds as (doctor_id, grid start), earliest first."""
        now = self._db.now()
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(slot_claims.c.doctor_id, slot_claims.c.start).where(
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD,
                    slot_claims.c.expires_at > now,
                ).order_by(slot_claims.c.start)
            ).all()
        return [(d, _as_datetime(st)) for d, st in rows]

    def claimed_times(self, doctor_id: str, start: datetime, end: datetime, *,
                      except_call: str | None = None) -> list[datetime]:
        """Grid starts in [start, end) the doctor has held or claimed by someone else, live."""
        now = self._db.now()
        c = slot_claims.c
        stmt = sa.select(c.start).where(
            c.doctor_id == doctor_id, c.start >= start, c.start < end,
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
        )
        if except_call is not None:
            stmt = stmt.where(sa.not_(sa.and_(c.owner == except_call, c.kind == HOLD)))
        with self._db.transaction(write=False) as conn:
            return sorted(_as_datetime(v) for v in conn.execute(stmt).scalars())

    def purge_claims(self) -> int:
        """Delete expired holds and claims (they are replaceable anyway); returns how many."""
        c = slot_claims.c
        with self._db.transaction() as conn:
            return conn.execute(slot_claims.delete().where(
                c.expires_at.is_not(None), c.expires_at <= self._db.now())).rowcount or 0

    def release_booking_claim(self, conn: Connection, key: str) -> None:
        """The booking ``key`` is settled without an appointment: its time is free again
        (in the caller's transaction)."""
        conn.execute(slot_claims.delete().where(
            slot_claims.c.owner == key, slot_claims.c.kind == BOOKING))

    def keep_booked_claim(self, conn: Connection, key: str) -> None:
        """The booking ``key`` is in Clinicea now: its claim lasts `BOOKED_CLAIM_TTL` longer,
        to cover calendars cached before it was there (in the caller's transaction)."""
        conn.execute(
            slot_claims.update()
            .where(slot_claims.c.owner == key, slot_claims.c.kind == BOOKING)
            .values(expires_at=self._db.now() + BOOKED_CLAIM_TTL)
        )
