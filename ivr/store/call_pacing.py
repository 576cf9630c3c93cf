"""The account-wide pace of outbound calls: one row per Twilio account holding the earliest
moment its next call may start, so every process (a worker, `ivr remind` run by hand, a second
host on PostgreSQL) takes its calls from one queue and together they keep Twilio's
calls-per-second limit.

A slot is taken in one write transaction that holds the row (PostgreSQL: ``SELECT ... FOR
UPDATE``; SQLite: the ``BEGIN IMMEDIATE`` write lock), never read in one and written in another,
so no two takers are ever handed the same moment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from ivr.store.database import Database, utc_naive
from ivr.store.schema import call_pacing

#: A queue further ahead than this many gaps is a clock that jumped (a host's clock set back,
#: or another's far ahead), not callers waiting their turn: it is not waited for.
MAX_QUEUED_GAPS = 60


class CallPacing:
    """The ``call_pacing`` table."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    def take_call_slot(self, key: str, now: datetime, gap: timedelta) -> datetime:
        """Reserve the next moment a call of account `key` may start and return it (naive UTC):
        `max(now, next_at)`, and `next_at` becomes that moment + `gap`. `now` is the caller's
        clock (naive or aware UTC)."""
        if gap <= timedelta(0):
            raise ValueError("gap must be positive")
        now = utc_naive(now)
        with self._db.transaction() as conn:
            conn.execute(self._db.insert_ignoring_conflict(
                call_pacing, {"key": key, "next_at": now}, ["key"]))
            next_at = conn.execute(
                sa.select(call_pacing.c.next_at).where(call_pacing.c.key == key)
                .with_for_update()
            ).scalar_one()
            slot = next_at if now < next_at <= now + gap * MAX_QUEUED_GAPS else now
            conn.execute(call_pacing.update().where(call_pacing.c.key == key)
                         .values(next_at=slot + gap))
        return slot
