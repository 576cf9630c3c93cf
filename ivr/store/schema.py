"""The store's current tables: what every query uses (SQLAlchemy Core metadata).

The frozen steps in `ivr.store.migrations` build these tables on a database; they are written
twice on purpose (a released step never changes, these grow), and tests/test_schema_drift.py holds
the two equal. ``schema_version`` (which steps ran) has a metadata of its own.

Tables: ``calls`` (per-call flow state keyed by Twilio's CallSid), ``call_events`` (what was
heard / pressed / said; texts arrive already masked), ``bookings`` (the outbox: written before
Clinicea is called), ``callback_requests``, ``agents``, ``api_keys``, ``clinicea_tokens``,
``slot_claims`` (holds on offered times and the times of open bookings: one row per doctor and
grid start, so the primary key is the "never two on one time" rule; see docs/design.md, Holds)
``booking_texts`` (confirmation texts), and the appointment reminders (``reminders``,
``reminder_items``, ``reminder_runs``, ``sms_opt_outs``; docs/reminders.md) and ``call_pacing``
(the account-wide pace of outbound calls).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


class _Cut(sa.types.TypeDecorator[str]):
    """VARCHAR(n) whose values are cut to n characters on the way in: a 150-character first
    name from Clinicea is stored shortened and never fails the call. Only for descriptive
    columns: a key cut short could match another row's."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        """`value`, at most the column's length."""
        impl = self.impl_instance
        limit = impl.length if isinstance(impl, sa.String) else None
        if isinstance(value, str) and limit is not None and len(value) > limit:
            return value[:limit]
        return value


metadata = sa.MetaData()
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PK = rowid

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("step", _Cut(100), nullable=False),
    sa.Column("turn", sa.Integer(), nullable=False),
    sa.Column("caller_masked", _Cut(40)),
    sa.Column("patient_first_name", _Cut(100)),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("last_reply", sa.Text()),
    sa.Column("last_reply_turn", sa.Integer()),
    sa.Column("outcome", sa.String(20)),
    sa.Column("outcome_step", _Cut(100)),
    sa.Column("language", _Cut(20)),
    sa.Column("ended_at", sa.DateTime()),
    sa.Column("transferred_at", sa.DateTime()),  # v2
    # v9: a keyed hash of the caller's number (never the number): "rang back within a day"
    sa.Column("caller_key", sa.String(64)),
    sa.Index("ix_calls_created_at", "created_at"),
)

call_events = sa.Table(
    "call_events",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("step", _Cut(100)),
    sa.Column("text", sa.Text()),
    sa.Index("ix_call_events_at", "at"),
    sa.Index("ix_call_events_call_sid", "call_sid"),
)

bookings = sa.Table(
    "bookings",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime()),
    sa.Column("last_error", sa.Text()),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("appointment_id", sa.String(100)),
    sa.Column("patient_id", sa.String(100)),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claimed_until", sa.DateTime()),
    sa.Column("failure_reason", sa.Text()),  # v2
    sa.Column("handled_by", sa.String(100)),  # v2
    sa.Column("handled_at", sa.DateTime()),  # v2
    sa.Index("ix_bookings_status_next", "status", "next_attempt_at"),
    sa.Index("ix_bookings_call_sid", "call_sid"),
)

callback_requests = sa.Table(
    "callback_requests",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("phone_masked", _Cut(40)),
    sa.Column("phone_e164", sa.String(40)),
    sa.Column("reason", sa.Text()),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("handled_by", sa.String(100)),
    sa.Column("handled_at", sa.DateTime()),
    sa.Index("ix_callback_requests_status", "status"),
    sa.Index("uq_callback_requests_call_sid", "call_sid", unique=True),  # v5: one per call
)

agents = sa.Table(  # v3
    "agents",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("failed_logins", sa.Integer(), nullable=False),
    sa.Column("locked_until", sa.DateTime()),
    sa.Column("session_generation", sa.Integer()),  # v4
)

api_keys = sa.Table(  # v3
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_hash", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("last_used_at", sa.DateTime()),
)

clinicea_tokens = sa.Table(  # v6: the Clinicea login shared by a deployment's hosts
    "clinicea_tokens",
    metadata,
    sa.Column("account", sa.String(64), primary_key=True),  # a hash of URL, user and key
    sa.Column("token", sa.Text()),
    sa.Column("expires_at", sa.Float()),  # wall-clock seconds since the epoch
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

slot_claims = sa.Table(  # v7
    "slot_claims",
    metadata,
    sa.Column("doctor_id", sa.String(100), primary_key=True),
    sa.Column("start", sa.DateTime(), primary_key=True),  # clinic-local grid time: a key
    sa.Column("owner", sa.String(200), nullable=False),  # CallSid or idempotency key
    sa.Column("kind", sa.String(10), nullable=False),  # HOLD or BOOKING
    sa.Column("expires_at", sa.DateTime()),  # UTC; NULL: until the booking is settled
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Index("ix_slot_claims_owner", "owner"),
)

booking_texts = sa.Table(  # v8
    "booking_texts",
    metadata,
    sa.Column("booking_key", sa.String(200), primary_key=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime()),
    sa.Column("to_e164", sa.String(40), nullable=False),
    sa.Column("from_e164", sa.String(40), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("twilio_sid", sa.String(64)),
    sa.Column("last_error", sa.Text()),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("sending_since", sa.DateTime()),
    sa.Index("ix_booking_texts_status", "status"),
)

reminders = sa.Table(  # v10: one appointment reminder per (day, patient); docs/reminders.md
    "reminders",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "2026-11-24/p:<patient id>"
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("patient_id", sa.String(64)),
    sa.Column("first_name", _Cut(100)),
    sa.Column("phone_e164", sa.String(40), nullable=False),
    sa.Column("phone_masked", _Cut(40)),
    sa.Column("channels", sa.String(20), nullable=False),  # "call,sms"
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),  # reminder_to_json(reminder)
    sa.Column("channel", sa.String(10)),  # the next send's channel, then the one that sent it
    sa.Column("call_sid", sa.String(64), unique=True),  # never two calls for one reminder
    sa.Column("sms_sid", sa.String(64)),
    sa.Column("answered_by", _Cut(40)),
    sa.Column("reply", sa.Text()),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime()),  # clinic-local (the calling schedule's time)
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("sending_since", sa.DateTime()),
    sa.Column("last_error", sa.Text()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("handled_by", sa.String(100)),
    sa.Column("handled_at", sa.DateTime()),
    sa.Index("ix_reminders_day", "day"),
    sa.Index("ix_reminders_status", "status"),
    sa.Index("ix_reminders_phone_e164", "phone_e164"),
)

reminder_items = sa.Table(  # v10: an appointment is in at most one reminder per day
    "reminder_items",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "2026-11-24/a:<appointment id>"
    sa.Column("reminder_key", sa.String(200), sa.ForeignKey("reminders.key"), nullable=False),
    sa.Column("appointment_id", sa.String(64), nullable=False),
    sa.Column("start", sa.DateTime(), nullable=False),  # clinic-local
    sa.Column("doctor_id", sa.String(64)),
    sa.Index("ix_reminder_items_reminder_key", "reminder_key"),
)

reminder_runs = sa.Table(  # v10: a day's run was planned (even when nobody was due)
    "reminder_runs",
    metadata,
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("planned_at", sa.DateTime(), nullable=False),
    sa.Column("planned", sa.Integer(), nullable=False),
)

sms_opt_outs = sa.Table(  # v10: numbers that asked for no more texts
    "sms_opt_outs",
    metadata,
    sa.Column("phone_e164", sa.String(40), primary_key=True),
    sa.Column("opted_out_at", sa.DateTime(), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # "keyword:STOP" / "reply" / "desk"
)

call_pacing = sa.Table(  # v11: when each Twilio account's next outbound call may start
    "call_pacing",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # the account SID, or "default"
    sa.Column("next_at", sa.DateTime(), nullable=False),  # naive UTC
)

schema_version_metadata = sa.MetaData()
schema_version = sa.Table(
    "schema_version",
    schema_version_metadata,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime(), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
)
