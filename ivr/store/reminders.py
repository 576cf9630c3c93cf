"""Appointment reminders (docs/reminders.md): a day's planned reminders and their appointments,
the days planned, the send pass's claims, and the numbers that opted out of texts.

The rules that protect patients are keys and conditional updates, never a read then a write:
a reminder key is unique per (day, patient) and an appointment key per (day, appointment), so a
run planned twice inserts only what it had not written; a row is handed to Twilio only from a
claimed ``queued`` row (``queued -> sending`` committed before the request), and a call's SID is
unique, so nobody is called twice for one reminder.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from flows.reminders.plan import DayPlan, Reminder, first_channel, reminder_to_json
from flows.reminders.status import STATUSES
from ivr.phone import mask
from ivr.store.database import Database
from ivr.store.errors import StoreError
from ivr.store.records import ReminderItemRecord, ReminderRecord
from ivr.store.schema import reminder_items, reminder_runs, reminders, sms_opt_outs

#: What a row left ``sending`` by a sender that stopped becomes: never sent again on its own.
STOPPED_CALL = "the sender stopped; the call may have been placed"
STOPPED_TEXT = "the sender stopped; the text may have been sent"
#: A call reminder that does not fit in the day's calling hours, for a clinic that does not text.
NO_ROOM = "outside calling hours"


class _Taken(Exception):
    """An appointment of the reminder is already in another reminder that day (roll back)."""


def _record(row: Any) -> ReminderRecord:
    m = row._mapping
    try:
        payload = json.loads(m["payload"])
    except (TypeError, ValueError):
        payload = {}
    values = {k: m[k] for k in ReminderRecord.__dataclass_fields__ if k not in
              ("payload", "channels")}
    return ReminderRecord(
        **values,
        payload=payload if isinstance(payload, dict) else {},
        channels=tuple(c for c in (m["channels"] or "").split(",") if c),
    )


def _check(status: str) -> None:
    if status not in STATUSES:
        raise StoreError(f"unknown reminder status {status!r}")


class Reminders:
    """The ``reminders``, ``reminder_items``, ``reminder_runs`` and ``sms_opt_outs`` tables."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    # -- planning ------------------------------------------------------------------------------

    def plan_reminders(
        self, plan: DayPlan, *, call_at: Mapping[str, datetime | None] | None = None
    ) -> int:
        """Write the plan's reminders (each with its items in one transaction, insert-or-ignore
        on both keys) and mark the day planned; returns how many reminders were new.

        A reminder whose key exists is left as it is (a restarted run); one naming an
        appointment already in another reminder that day is not written at all. `call_at`
        (clinic-local, from the calling schedule) sets when each call reminder may be placed;
        a key mapped to None found no room in today's calling hours: it goes by text when the
        clinic texts, else it is ``failed`` ("outside calling hours") for the desk.
        """
        new = 0
        for reminder in plan.reminders:
            due = None if call_at is None else call_at.get(reminder.key)
            no_room = call_at is not None and reminder.key in call_at and due is None
            try:
                with self._db.transaction() as conn:
                    if self._insert(conn, reminder, due, no_room):
                        new += 1
            except _Taken:
                continue
        now = self._db.now()
        stmt = self._db.insert(reminder_runs).values(day=plan.day, planned_at=now, planned=new)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day"], set_={"planned": reminder_runs.c.planned + new}
        )
        with self._db.transaction() as conn:
            conn.execute(stmt)
        return new

    def _insert(self, conn: Connection, reminder: Reminder, due: datetime | None,
                no_room: bool) -> bool:
        now = self._db.now()
        status, channel, error = reminder.status, None, None
        if status == "queued":
            channel = first_channel(reminder.channels)
            if channel == "call" and no_room:
                if "sms" in reminder.channels:
                    channel = "sms"
                else:
                    status, channel, error = "failed", None, NO_ROOM
            if channel is None and status == "queued":
                status = "failed"
                error = error or "no reminder channel"
        row = {
            "key": reminder.key, "day": reminder.day, "patient_id": reminder.patient_id,
            "first_name": reminder.first_name, "phone_e164": reminder.mobile,
            "phone_masked": mask(reminder.mobile), "channels": ",".join(reminder.channels),
            "status": status, "payload": json.dumps(reminder_to_json(reminder)),
            "channel": channel, "attempts": 0,
            "next_attempt_at": due if channel == "call" else None, "last_error": error,
            "created_at": now, "updated_at": now,
        }
        inserted = conn.execute(
            self._db.insert_ignoring_conflict(reminders, row, ["key"])
            .returning(reminders.c.key)  # rowcount is -1 here on psycopg
        ).first()
        if inserted is None:
            return False
        for item_key, appt in zip(reminder.item_keys, reminder.appointments, strict=True):
            won = conn.execute(
                self._db.insert_ignoring_conflict(
                    reminder_items,
                    {"key": item_key, "reminder_key": reminder.key,
                     "appointment_id": appt.id, "start": appt.start,
                     "doctor_id": appt.doctor_id},
                    ["key"],
                ).returning(reminder_items.c.key)
            ).first()
            if won is None:
                raise _Taken(item_key)  # the whole reminder rolls back
        return True

    def reminder_day_planned(self, day: date) -> bool:
        """Whether `day`'s run has been planned (by the worker or by `ivr remind`)."""
        with self._db.transaction(write=False) as conn:
            return conn.execute(
                sa.select(reminder_runs.c.day).where(reminder_runs.c.day == day)
            ).first() is not None

    # -- the send pass -------------------------------------------------------------------------

    def claim_reminders(self, channel: str, now: datetime, worker_id: str,
                        limit: int = 20) -> list[ReminderRecord]:
        """Mark up to `limit` due ``queued`` reminders of `channel` ``sending``; the rows won.

        `now` is clinic-local (compared with ``next_attempt_at``). The mark is committed before
        Twilio is asked, so a reminder is handed to Twilio at most once per claim.
        """
        pick = (
            sa.select(reminders.c.key)
            .where(reminders.c.status == "queued", reminders.c.channel == channel,
                   sa.or_(reminders.c.next_attempt_at.is_(None),
                          reminders.c.next_attempt_at <= now))
            .order_by(reminders.c.next_attempt_at, reminders.c.created_at, reminders.c.key)
            .limit(limit)
        )
        with self._db.transaction(write=False) as conn:
            if conn.execute(pick).first() is None:
                return []
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stamp = self._db.now()
        claimed: list[ReminderRecord] = []
        with self._db.transaction() as conn:
            for key in list(conn.execute(pick).scalars()):
                won = conn.execute(
                    reminders.update()
                    .where(reminders.c.key == key, reminders.c.status == "queued",
                           reminders.c.channel == channel)
                    .values(status="sending", attempts=reminders.c.attempts + 1,
                            claimed_by=worker_id, sending_since=stamp, updated_at=stamp)
                ).rowcount
                if won == 1:
                    claimed.append(_record(conn.execute(
                        sa.select(reminders).where(reminders.c.key == key)).one()))
        return claimed

    def reminder_sent(self, key: str, channel: str, sid: str | None) -> bool:
        """Twilio took the call or the text: its SID is kept and ``sending`` becomes ``sent``.

        The SID is recorded even when a status callback already moved the row on (it may
        arrive before Twilio's answer to the request is read); True when the status changed.
        """
        now = self._db.now()
        sid_column = "call_sid" if channel == "call" else "sms_sid"
        with self._db.transaction() as conn:
            if sid is not None:
                conn.execute(reminders.update().where(reminders.c.key == key)
                             .values({sid_column: sid, "updated_at": now}))
            return conn.execute(
                reminders.update()
                .where(reminders.c.key == key, reminders.c.status == "sending")
                .values(status="sent", channel=channel, claimed_by=None, last_error=None,
                        updated_at=now)
            ).rowcount == 1

    def reminder_failed(self, key: str, error: str, retry_at: datetime | None) -> bool:
        """The send did not happen: back to ``queued`` until `retry_at` (clinic-local), or
        ``failed`` (for the desk) when `retry_at` is None. Only from ``sending``."""
        values: dict[str, Any] = {"last_error": error, "claimed_by": None,
                                  "updated_at": self._db.now()}
        if retry_at is None:
            values["status"] = "failed"
        else:
            values.update(status="queued", next_attempt_at=retry_at)
        with self._db.transaction() as conn:
            return conn.execute(
                reminders.update()
                .where(reminders.c.key == key, reminders.c.status == "sending")
                .values(**values)
            ).rowcount == 1

    def expire_sending_reminders(self, older_than: timedelta) -> int:
        """Rows ``sending`` longer than `older_than` (their sender stopped): neither is sent
        again on its own. A call goes ``queued`` for a text when the clinic texts (as when
        Twilio's answer to a call is lost: a second text is harmless, a second call is not),
        else ``failed`` for the desk; a text becomes ``sent`` with a note."""
        now = self._db.now()
        stale = (reminders.c.status == "sending", reminders.c.sending_since < now - older_than)
        texts_too = reminders.c.channels.like("%sms%")
        with self._db.transaction() as conn:
            calls = conn.execute(
                reminders.update().where(*stale, reminders.c.channel == "call", texts_too)
                .values(status="queued", channel="sms", attempts=0,
                        last_error=f"{STOPPED_CALL}; texted instead", claimed_by=None,
                        updated_at=now)
            ).rowcount
            calls += conn.execute(
                reminders.update().where(*stale, reminders.c.channel == "call")
                .values(status="failed", last_error=STOPPED_CALL, claimed_by=None,
                        updated_at=now)
            ).rowcount
            texts = conn.execute(
                reminders.update().where(*stale, reminders.c.channel != "call")
                .values(status="sent", last_error=STOPPED_TEXT, claimed_by=None,
                        updated_at=now)
            ).rowcount
        return calls + texts

    # -- lookups -------------------------------------------------------------------------------

    def get_reminder(self, key: str) -> ReminderRecord | None:
        """The reminder with that key, or None."""
        return self._one(sa.select(reminders).where(reminders.c.key == key))

    def reminder_by_call(self, call_sid: str) -> ReminderRecord | None:
        """The reminder whose call has that SID, or None."""
        return self._one(sa.select(reminders).where(reminders.c.call_sid == call_sid))

    def reminder_by_phone(self, phone: str, since_day: date) -> ReminderRecord | None:
        """The newest reminder of a number (E.164) on or after `since_day` (an SMS reply's)."""
        return self._one(
            sa.select(reminders)
            .where(reminders.c.phone_e164 == phone, reminders.c.day >= since_day)
            .order_by(reminders.c.day.desc(), reminders.c.created_at.desc())
            .limit(1)
        )

    def _one(self, stmt: sa.Select[Any]) -> ReminderRecord | None:
        with self._db.transaction(write=False) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _record(row)

    def reminders(self, day: date | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 500) -> list[ReminderRecord]:
        """Reminders (of `day`, in `statuses` when given): by day, then in planned order."""
        stmt = sa.select(reminders)
        if day is not None:
            stmt = stmt.where(reminders.c.day == day)
        if statuses is not None:
            stmt = stmt.where(reminders.c.status.in_(tuple(statuses)))
        stmt = stmt.order_by(reminders.c.day, reminders.c.created_at, reminders.c.key).limit(limit)
        with self._db.transaction(write=False) as conn:
            return [_record(r) for r in conn.execute(stmt)]

    def reminder_items(self, key: str) -> list[ReminderItemRecord]:
        """The appointments of a reminder, in time order."""
        stmt = (sa.select(reminder_items).where(reminder_items.c.reminder_key == key)
                .order_by(reminder_items.c.start, reminder_items.c.key))
        with self._db.transaction(write=False) as conn:
            return [ReminderItemRecord(**{k: r._mapping[k] for k in
                                          ReminderItemRecord.__dataclass_fields__})
                    for r in conn.execute(stmt)]

    def reminder_counts(self, day: date) -> dict[str, int]:
        """Reminders of `day` per status (every status present, zero included)."""
        stmt = (sa.select(reminders.c.status, sa.func.count())
                .where(reminders.c.day == day).group_by(reminders.c.status))
        counts = dict.fromkeys(STATUSES, 0)
        with self._db.transaction(write=False) as conn:
            for status, n in conn.execute(stmt):
                counts[status] = int(n)
        return counts

    # -- answers -------------------------------------------------------------------------------

    def set_reminder_status(
        self,
        key: str,
        status: str,
        *,
        only_from: Collection[str] | None = None,
        channel: str | None = None,
        answered_by: str | None = None,
        reply: str | None = None,
        note: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Set a reminder's status, only while it is in `only_from` (when given): the update
        is the check. `channel` given: the next send goes that way (attempts start again).
        `answered_by`, `reply` (cut to 500 characters), `note` (``last_error``) and
        `next_attempt_at` are written when given. True when the row changed."""
        _check(status)
        values: dict[str, Any] = {"status": status, "updated_at": self._db.now()}
        if status != "sending":
            values["claimed_by"] = None
        if channel is not None:
            values.update(channel=channel, attempts=0)
        if answered_by is not None:
            values["answered_by"] = answered_by
        if reply is not None:
            values["reply"] = reply[:500]
        if note is not None:
            values["last_error"] = note
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        stmt = reminders.update().where(reminders.c.key == key)
        if only_from is not None:
            stmt = stmt.where(reminders.c.status.in_(tuple(only_from)))
        with self._db.transaction() as conn:
            return conn.execute(stmt.values(**values)).rowcount == 1

    def mark_reminder_handled(self, key: str, by: str) -> bool:
        """The desk acted on a reminder; False when unknown or already handled."""
        now = self._db.now()
        with self._db.transaction() as conn:
            return conn.execute(
                reminders.update()
                .where(reminders.c.key == key, reminders.c.handled_at.is_(None))
                .values(handled_by=by[:100], handled_at=now, updated_at=now)
            ).rowcount == 1

    # -- texting opt-outs ----------------------------------------------------------------------

    def opt_out(self, phone: str, source: str) -> bool:
        """Record that a number (E.164) wants no more texts; True when newly opted out (an
        existing opt-out keeps its first time and source)."""
        stmt = self._db.insert_ignoring_conflict(
            sms_opt_outs,
            {"phone_e164": phone, "opted_out_at": self._db.now(), "source": source[:20]},
            ["phone_e164"],
        ).returning(sms_opt_outs.c.phone_e164)
        with self._db.transaction() as conn:
            return conn.execute(stmt).first() is not None

    def opt_in(self, phone: str) -> bool:
        """Lift a number's opt-out; True when it was opted out."""
        with self._db.transaction() as conn:
            return conn.execute(
                sms_opt_outs.delete().where(sms_opt_outs.c.phone_e164 == phone)
            ).rowcount == 1

    def opted_out(self, phones: Iterable[str]) -> set[str]:
        """Which of these numbers (E.164) are opted out."""
        wanted = sorted(set(phones))
        found: set[str] = set()
        with self._db.transaction(write=False) as conn:
            for i in range(0, len(wanted), 500):  # bounded IN lists
                found.update(conn.execute(
                    sa.select(sms_opt_outs.c.phone_e164)
                    .where(sms_opt_outs.c.phone_e164.in_(wanted[i:i + 500]))
                ).scalars())
        return found
