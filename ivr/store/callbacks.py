"""Callback requests: a caller asked to be called back (one per call; console only, since a
request holds the full number).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ivr.store.database import Database
from ivr.store.records import CallbackRecord
from ivr.store.schema import callback_requests


def _callback(row: Any) -> CallbackRecord:
    m = row._mapping
    return CallbackRecord(**{k: m[k] for k in CallbackRecord.__dataclass_fields__})


class Callbacks:
    """The ``callback_requests`` table."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    def add_callback(
        self,
        call_sid: str | None,
        phone_e164: str | None,
        phone_masked: str | None,
        reason: str | None,
    ) -> int:
        """Record an open callback request; returns its id.

        One per call: a second request for the same ``call_sid`` (a retried fallback or status
        webhook) returns the first one's id and records nothing (a unique key, not a check)."""
        values = {
            "call_sid": call_sid,
            "created_at": self._db.now(),
            "phone_e164": phone_e164,
            "phone_masked": phone_masked,
            "reason": reason,
            "status": "open",
        }
        with self._db.transaction() as conn:
            if call_sid is None:
                result = conn.execute(callback_requests.insert().values(**values))
                inserted = result.inserted_primary_key
                assert inserted is not None  # a plain INSERT always has its new key
                return int(inserted[0])
            conn.execute(self._db.insert_ignoring_conflict(callback_requests, values, ["call_sid"]))
            return int(conn.execute(
                sa.select(callback_requests.c.id).where(callback_requests.c.call_sid == call_sid)
            ).scalar_one())

    def callbacks(self, status: str | None = "open", limit: int = 100) -> list[CallbackRecord]:
        """Callback requests (``status=None``: all), oldest first."""
        stmt = sa.select(callback_requests).order_by(
            callback_requests.c.created_at, callback_requests.c.id
        )
        if status is not None:
            stmt = stmt.where(callback_requests.c.status == status)
        with self._db.transaction(write=False) as conn:
            return [_callback(r) for r in conn.execute(stmt.limit(limit))]

    def mark_callback_handled(self, callback_id: int, by: str) -> bool:
        """Close an open callback request; False if unknown or already handled."""
        with self._db.transaction() as conn:
            return (
                conn.execute(
                    callback_requests.update()
                    .where(
                        callback_requests.c.id == callback_id, callback_requests.c.status == "open"
                    )
                    .values(status="handled", handled_by=by, handled_at=self._db.now())
                ).rowcount
                == 1
            )
