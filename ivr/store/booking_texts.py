"""Confirmation texts, one per booking: queued with it, claimed for sending once it is booked,
and what Twilio answered. A text handed to Twilio is marked before the request, so it is never
sent twice on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ivr.store.database import Database, utc_naive
from ivr.store.errors import StoreError
from ivr.store.records import TEXT_STATUSES, TextRecord
from ivr.store.schema import booking_texts, bookings


def _text(row: Any) -> TextRecord:
    m = row._mapping
    return TextRecord(**{k: m[k] for k in TextRecord.__dataclass_fields__})


class BookingTexts:
    """The ``booking_texts`` table (it reads ``bookings`` to send only booked ones)."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    def queue_text(self, booking_key: str, *, to_e164: str, from_e164: str, body: str) -> bool:
        """Queue the booking's confirmation text (status ``waiting``); True if newly queued.

        One row per booking: queueing again (a retried webhook) keeps the first row. Queue it
        BEFORE the booking row is written, so a booking never becomes booked without its text;
        a text whose booking never gets booked is never sent.
        """
        now = self._db.now()
        stmt = self._db.insert_ignoring_conflict(
            booking_texts,
            {"booking_key": booking_key, "created_at": now, "updated_at": now,
             "status": "waiting", "attempts": 0, "to_e164": to_e164, "from_e164": from_e164,
             "body": body},
            ["booking_key"],
        ).returning(booking_texts.c.booking_key)  # rowcount is -1 here on psycopg
        with self._db.transaction() as conn:
            return conn.execute(stmt).first() is not None

    def claim_due_texts(self, *, worker: str, limit: int = 20) -> list[TextRecord]:
        """Mark up to ``limit`` due texts of booked bookings ``sending``; the rows this won.

        The mark is committed before Twilio is asked, so a text is handed to Twilio at most
        once per claim: a crash after it leaves the row ``sending`` (see
        ``expire_sending_texts``), never ``waiting``.
        """
        now = self._db.now()
        pick = (
            sa.select(booking_texts.c.booking_key)
            .join(bookings, bookings.c.idempotency_key == booking_texts.c.booking_key)
            .where(
                booking_texts.c.status.in_(("waiting", "retrying")),
                sa.or_(booking_texts.c.next_attempt_at.is_(None),
                       booking_texts.c.next_attempt_at <= now),
                bookings.c.status == "booked",
            )
            .order_by(booking_texts.c.created_at)
            .limit(limit)
        )
        # The usual answer, without taking the write lock.
        with self._db.transaction(write=False) as conn:
            if conn.execute(pick).first() is None:
                return []
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(of=booking_texts, skip_locked=True)
        claimed: list[TextRecord] = []
        with self._db.transaction() as conn:
            for key in list(conn.execute(pick).scalars()):
                won = conn.execute(
                    booking_texts.update()
                    .where(booking_texts.c.booking_key == key,
                           booking_texts.c.status.in_(("waiting", "retrying")))
                    .values(status="sending", attempts=booking_texts.c.attempts + 1,
                            claimed_by=worker, sending_since=now, updated_at=now)
                ).rowcount
                if won == 1:
                    row = conn.execute(
                        sa.select(booking_texts).where(booking_texts.c.booking_key == key)
                    ).one()
                    claimed.append(_text(row))
        return claimed

    def finish_text(
        self,
        booking_key: str,
        status: str,
        *,
        error: str | None = None,
        twilio_sid: str | None = None,
        next_attempt_at: datetime | None = None,
        from_statuses: Iterable[str] = ("sending",),
    ) -> bool:
        """Record what Twilio answered (``sent`` / ``retrying`` / ``failed`` / ``unknown``)."""
        if status not in TEXT_STATUSES:
            raise StoreError(f"unknown text status {status!r}")
        values: dict[str, Any] = {"status": status, "updated_at": self._db.now(),
                                  "last_error": error, "claimed_by": None,
                                  "next_attempt_at": (None if next_attempt_at is None
                                                      else utc_naive(next_attempt_at))}
        if twilio_sid is not None:
            values["twilio_sid"] = twilio_sid
        with self._db.transaction() as conn:
            return conn.execute(
                booking_texts.update()
                .where(booking_texts.c.booking_key == booking_key,
                       booking_texts.c.status.in_(tuple(from_statuses)))
                .values(**values)
            ).rowcount == 1

    def expire_sending_texts(self, older_than: timedelta, error: str) -> int:
        """Texts ``sending`` for longer than ``older_than`` (their sender stopped): ``unknown``.

        Twilio may or may not have them, so they are never sent again on their own."""
        now = self._db.now()
        with self._db.transaction() as conn:
            return conn.execute(
                booking_texts.update()
                .where(booking_texts.c.status == "sending",
                       booking_texts.c.sending_since < now - older_than)
                .values(status="unknown", last_error=error, claimed_by=None, updated_at=now)
            ).rowcount

    def get_text(self, booking_key: str) -> TextRecord | None:
        """The booking's confirmation text, or None (none was queued)."""
        with self._db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(booking_texts).where(booking_texts.c.booking_key == booking_key)
            ).first()
        return None if row is None else _text(row)

    def texts(self, statuses: Iterable[str], limit: int = 100) -> list[TextRecord]:
        """Texts in ``statuses``, newest first."""
        stmt = (
            sa.select(booking_texts)
            .where(booking_texts.c.status.in_(tuple(statuses)))
            .order_by(booking_texts.c.created_at.desc())
            .limit(limit)
        )
        with self._db.transaction(write=False) as conn:
            return [_text(r) for r in conn.execute(stmt)]
