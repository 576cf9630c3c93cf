"""The store: the only module that touches the database (SQLAlchemy 2.x Core).

Tables: ``calls`` (per-call flow state keyed by Twilio's CallSid, saved by compare-and-swap),
``call_events`` (what was heard / pressed / said; texts arrive already masked), ``bookings`` (the
outbox: written before Clinicea is called), ``callback_requests``, ``agents``, ``api_keys`` and
``slot_claims`` (holds on offered times and the times of open bookings: one row per doctor and
grid start, so the primary key is the "never two on one time" rule; see docs/design.md, Holds).

Backends: SQLite (the embedded default; a file in WAL mode with ``busy_timeout`` (3 s, see
``DEFAULT_LOCK_SECONDS``: store work must fit a webhook's budget), write
transactions start with ``BEGIN IMMEDIATE`` so several threads and several worker processes on one
host serialise their writes instead of deadlocking; ``sqlite:///:memory:`` shares one connection
between threads behind a lock) and PostgreSQL through psycopg 3 (``postgresql://`` URLs are
rewritten to ``postgresql+psycopg://``).

Time: every timestamp the store writes or compares is a **naive UTC** ``datetime``. "Now" comes from
the injected ``now`` callable (default: the system clock in UTC); aware datetimes passed in (by
``now`` or as arguments) are converted to UTC and made naive, naive ones are taken as UTC already.
This is deliberately not the clinic-local ``Clock`` of ``ivr.clock``: the store records instants.

Schema: created and upgraded by ``Store.migrate()`` from the numbered ``MIGRATIONS`` list; the
applied versions are rows of ``schema_version``. Steps are additive only (new tables, new nullable
columns), so rows written under an older schema survive and older code keeps working on a newer
schema. ``migrate()`` is idempotent and safe when several processes run it at once (PostgreSQL:
an advisory transaction lock; SQLite: the ``BEGIN IMMEDIATE`` write lock; a lost race on the
``schema_version`` row is retried).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ivr.booking_payload import BookingPayload
from ivr.config import ConfigError

__all__ = [
    "BOOKING_STATUSES",
    "CALLBACK_STATUSES",
    "EVENT_KINDS",
    "LATEST_VERSION",
    "OUTCOMES",
    "AgentRecord",
    "AlreadyExists",
    "ApiKeyRecord",
    "BookingRecord",
    "CallEvent",
    "CallFact",
    "CallRecord",
    "CallbackRecord",
    "OutcomeCount",
    "SlotUnavailable",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TextRecord",
    "normalize_url",
]

# --------------------------------------------------------------------------------------------
# Vocabulary

#: Call outcomes, strongest first: a stronger outcome is never replaced by a weaker one.
# "answered": the caller asked something that is not a booking (hours, address, next
# appointment) and was told.
OUTCOMES: tuple[str, ...] = (
    "booked", "transferred", "callback", "answered", "failed", "abandoned",
)
_OUTCOME_RANK = {name: len(OUTCOMES) - i for i, name in enumerate(OUTCOMES)}

EVENT_KINDS = frozenset({"heard", "pressed", "said", "silence", "step", "transfer", "error"})

BOOKING_STATUSES: tuple[str, ...] = (
    "pending",
    "booking",
    "booked",
    "retrying",
    "failed",
    "handled",
)
#: Statuses of bookings the outbox still has to deal with.
OPEN_BOOKING_STATUSES: tuple[str, ...] = ("pending", "booking", "retrying")

CALLBACK_STATUSES: tuple[str, ...] = ("open", "handled")

#: Confirmation text statuses (``TextRecord``); the last two need an agent.
TEXT_STATUSES: tuple[str, ...] = ("waiting", "sending", "sent", "retrying", "failed", "unknown")


#: Longest wait for a database lock (seconds). A webhook does at most three writes on its way
#: to an apology, two of them after its Clinicea work (8 s at most): 8 + 2 * 3 < 15 s.
DEFAULT_LOCK_SECONDS = 3.0
#: PostgreSQL's statement_timeout, as a multiple of the lock wait.
STATEMENT_TIMEOUT_FACTOR = 2


class StoreError(Exception):
    """A store operation was refused (bad argument, conflicting row)."""


class AlreadyExists(StoreError):
    """A row with that unique name already exists."""


class StoreUnavailable(StoreError, ConfigError):
    """The database cannot be used at all (no driver, unreachable, read-only): one line for
    the operator, naming `IVR_DATABASE_URL` but never its password. A `ConfigError` too, so
    every command (and the app's start) reports it like any other bad setting."""


class SlotUnavailable(StoreError):
    """A time is held by another caller or claimed by another booking (nothing was written)."""


#: How long a booked appointment keeps its claim: longer than any cached calendar that may not
#: show it yet; after that Clinicea's calendar is the truth (a cancelled time frees up).
BOOKED_CLAIM_TTL = timedelta(minutes=10)
HOLD = "hold"  # slot_claims.kind of a call's hold (owner: the CallSid)
BOOKING = "booking"  # slot_claims.kind of a booking's claim (owner: its idempotency key)


# --------------------------------------------------------------------------------------------
# Records returned to callers (never Row objects)


@dataclass(frozen=True)
class CallRecord:
    """One call's row: the flow state and what the agents' live view shows."""

    call_sid: str
    version: int
    step: str
    turn: int
    state: dict[str, Any]
    last_reply: str | None
    last_reply_turn: int | None
    outcome: str | None
    caller_masked: str | None
    patient_first_name: str | None
    language: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    outcome_step: str | None = None
    transferred_at: datetime | None = None

    @property
    def in_progress(self) -> bool:
        """True while the call has neither an outcome nor an end time."""
        return self.outcome is None and self.ended_at is None


@dataclass(frozen=True)
class CallEvent:
    """One thing that happened on a call (text already masked by whoever added it)."""

    id: int
    call_sid: str
    at: datetime
    kind: str
    step: str | None
    text: str | None


@dataclass(frozen=True)
class BookingRecord:
    """One outbox row: a booking accepted from a caller, and how far it got in Clinicea.

    ``attempts > 0`` means an earlier attempt may have reached Clinicea (look it up before
    posting again).
    """

    id: int
    idempotency_key: str
    call_sid: str | None
    created_at: datetime
    updated_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    payload: BookingPayload | None  # None: the stored JSON is not a readable payload
    appointment_id: str | None
    patient_id: str | None
    claimed_by: str | None
    claimed_until: datetime | None
    failure_reason: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


@dataclass(frozen=True)
class CallbackRecord:
    """A caller asked to be called back (console only: holds the full number)."""

    id: int
    call_sid: str | None
    created_at: datetime
    phone_masked: str | None
    phone_e164: str | None
    reason: str | None
    status: str
    handled_by: str | None
    handled_at: datetime | None


@dataclass(frozen=True)
class AgentRecord:
    """A console user; the store keeps the password hash the caller computed."""

    id: int
    username: str
    password_hash: str
    created_at: datetime
    failed_logins: int
    locked_until: datetime | None
    session_generation: int | None = 0  # v4: raised at logout; older sessions no longer count


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key, known only by its hash."""

    id: int
    name: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TextRecord:
    """The confirmation text of one booking (v8): queued with it, sent once it is booked.

    ``status``: ``waiting`` (for the booking, or for the send pass), ``sending`` (handed to
    Twilio: recorded before the request), ``sent``, ``retrying`` (Twilio said it did not take
    it), ``failed`` (Twilio refused it) or ``unknown`` (no answer from Twilio recorded: never
    resent on its own, an agent decides).
    """

    booking_key: str
    created_at: datetime
    updated_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    to_e164: str
    from_e164: str
    body: str
    twilio_sid: str | None
    last_error: str | None
    claimed_by: str | None
    sending_since: datetime | None


@dataclass(frozen=True)
class CallFact:
    """What the History page's figures need of one call (``ivr.insights``)."""

    call_sid: str
    created_at: datetime  # UTC, naive
    outcome: str | None
    transferred: bool
    caller_key: str | None
    steps: frozenset[str]  # every step the call visited (its "step" events)
    gave_up: bool  # the bot gave up at some step after repeated tries


@dataclass(frozen=True)
class OutcomeCount:
    """Calls started on one UTC day with one outcome (``None``: still in progress / unknown)."""

    day: date
    outcome: str | None
    count: int

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``(day, outcome, count)``."""
        return iter((self.day, self.outcome, self.count))


# --------------------------------------------------------------------------------------------
# Current schema (what the queries use; MIGRATIONS build it step by step)

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


class TokenSlot:
    """The Clinicea token row while `Store.locked_token` holds it (token None: none yet)."""

    def __init__(self, store: Store, conn: Connection, account: str, token: str | None,
                 expires_at: float | None) -> None:
        self._store, self._conn, self._account = store, conn, account
        self.token = token
        self.expires_at = expires_at

    def replace(self, token: str, expires_at: float) -> None:
        """Store a fresh token, valid until `expires_at` (wall-clock epoch seconds)."""
        self._store._write_token(self._conn, self._account, token, expires_at)
        self.token, self.expires_at = token, expires_at

    def clear(self) -> None:
        """Forget the token (Clinicea refused it)."""
        self._store._write_token(self._conn, self._account, None, None)
        self.token = self.expires_at = None


_metadata = sa.MetaData()
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PK = rowid

calls = sa.Table(
    "calls",
    _metadata,
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
    _metadata,
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
    _metadata,
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
    _metadata,
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
    _metadata,
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
    _metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_hash", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("last_used_at", sa.DateTime()),
)

clinicea_tokens = sa.Table(  # v6: the Clinicea login shared by a deployment's hosts
    "clinicea_tokens",
    _metadata,
    sa.Column("account", sa.String(64), primary_key=True),  # a hash of URL, user and key
    sa.Column("token", sa.Text()),
    sa.Column("expires_at", sa.Float()),  # wall-clock seconds since the epoch
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

slot_claims = sa.Table(  # v7
    "slot_claims",
    _metadata,
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
    _metadata,
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

_schema_meta = sa.MetaData()
schema_version = sa.Table(
    "schema_version",
    _schema_meta,
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.DateTime(), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
)

# --------------------------------------------------------------------------------------------
# Statements of the per-webhook path, built once with bound parameters.
#
# Why: building a Core statement per call (coercions) and generating its cache key (a walk of
# the whole statement) cost more CPU than SQLite's own work. A statement object that is
# reused keeps its memoised cache key, so executing it again only binds the new values.

_CREATE_CALL_COLUMNS = (
    "call_sid", "created_at", "updated_at", "version", "step", "turn", "caller_masked", "state",
    "language", "caller_key",
)
_LOAD_CALL = sa.select(calls).where(calls.c.call_sid == sa.bindparam("p_sid"))
_INSERT_EVENTS = call_events.insert()


@functools.cache
def _save_call_stmt(
    *,
    first_name: bool,
    language: bool,
    outcome: str | None,
    outcome_step: bool,
    transferred: bool,
) -> sa.Update:
    """The compare-and-swap UPDATE of `Store.save_call` for one combination of its options.

    Parameters: ``p_sid``, ``p_expected``, ``p_now``, ``p_state``, ``p_step``, ``p_turn``,
    ``p_reply``, ``p_reply_turn`` and, when their flag is set, ``p_first_name``,
    ``p_language``, ``p_outcome_step``.
    """
    values: dict[str, Any] = {
        "version": calls.c.version + 1,
        "updated_at": sa.bindparam("p_now", type_=calls.c.updated_at.type),
        "state": sa.bindparam("p_state", type_=calls.c.state.type),
        "step": sa.bindparam("p_step", type_=calls.c.step.type),
        "turn": sa.bindparam("p_turn", type_=calls.c.turn.type),
        "last_reply": sa.bindparam("p_reply", type_=calls.c.last_reply.type),
        "last_reply_turn": sa.bindparam("p_reply_turn", type_=calls.c.last_reply_turn.type),
    }
    if first_name:
        values["patient_first_name"] = sa.bindparam(
            "p_first_name", type_=calls.c.patient_first_name.type
        )
    if language:
        values["language"] = sa.bindparam("p_language", type_=calls.c.language.type)
    if outcome is not None:
        values["outcome"] = _outcome_value(outcome)
        if outcome_step:
            values["outcome_step"] = sa.case(
                (
                    _weaker_or_none(outcome),
                    sa.bindparam("p_outcome_step", type_=calls.c.outcome_step.type),
                ),
                else_=calls.c.outcome_step,
            )
    if transferred:
        values["transferred_at"] = sa.func.coalesce(
            calls.c.transferred_at, sa.bindparam("p_now", type_=calls.c.transferred_at.type)
        )
        if outcome is None:
            values["outcome"] = _outcome_value("transferred")
    return (
        calls.update()
        .where(
            calls.c.call_sid == sa.bindparam("p_sid"),
            calls.c.version == sa.bindparam("p_expected"),
        )
        .values(**values)
    )


@functools.cache
def _finish_call_stmts(outcome: str) -> tuple[sa.Update, sa.Update]:
    """`Store.finish_call`'s two UPDATEs for ``outcome``: record it, else only stamp the end.

    Parameters: ``p_sid``, ``p_now``, ``p_outcome_step``."""
    now = sa.bindparam("p_now", type_=calls.c.updated_at.type)
    record = (
        calls.update()
        .where(calls.c.call_sid == sa.bindparam("p_sid"), _weaker_or_none(outcome))
        .values(
            outcome=outcome,
            outcome_step=sa.bindparam("p_outcome_step", type_=calls.c.outcome_step.type),
            updated_at=now,
            ended_at=sa.func.coalesce(calls.c.ended_at, now),
        )
    )
    end_only = (
        calls.update()
        .where(calls.c.call_sid == sa.bindparam("p_sid"), calls.c.ended_at.is_(None))
        .values(ended_at=now, updated_at=now)
    )
    return record, end_only


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


# --------------------------------------------------------------------------------------------
# Migrations: additive steps, each its own frozen DDL (never the current tables above, which
# grow over time).


# The write probe: changes the newest schema_version row and changes it back, in one
# transaction (no new table needed). Rewriting it unchanged is not enough: SQLite then writes
# nothing, and a full disk would pass.
_NEWEST_VERSION = schema_version.c.version == sa.select(
    sa.func.max(schema_version.c.version)).scalar_subquery()
_PROBE_WRITE = (
    sa.update(schema_version).where(_NEWEST_VERSION)
    .values(description=schema_version.c.description + "~"),
    sa.update(schema_version).where(_NEWEST_VERSION)
    .values(description=sa.func.substr(schema_version.c.description, 1,
                                       sa.func.length(schema_version.c.description) - 1)),
)


def _migration_1(conn: Connection) -> None:
    """Calls, call events, the bookings outbox and callback requests."""
    md = sa.MetaData()
    sa.Table(
        "calls",
        md,
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(100), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("caller_masked", sa.String(40)),
        sa.Column("patient_first_name", sa.String(100)),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("last_reply", sa.Text()),
        sa.Column("last_reply_turn", sa.Integer()),
        sa.Column("outcome", sa.String(20)),
        sa.Column("outcome_step", sa.String(100)),
        sa.Column("language", sa.String(20)),
        sa.Column("ended_at", sa.DateTime()),
        sa.Index("ix_calls_created_at", "created_at"),
    )
    sa.Table(
        "call_events",
        md,
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("step", sa.String(100)),
        sa.Column("text", sa.Text()),
        sa.Index("ix_call_events_at", "at"),
        sa.Index("ix_call_events_call_sid", "call_sid"),
    )
    sa.Table(
        "bookings",
        md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
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
        sa.UniqueConstraint("idempotency_key", name="uq_bookings_idempotency_key"),
        sa.Index("ix_bookings_status_next", "status", "next_attempt_at"),
        sa.Index("ix_bookings_call_sid", "call_sid"),
    )
    sa.Table(
        "callback_requests",
        md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("phone_masked", sa.String(40)),
        sa.Column("phone_e164", sa.String(40)),
        sa.Column("reason", sa.Text()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("handled_by", sa.String(100)),
        sa.Column("handled_at", sa.DateTime()),
        sa.Index("ix_callback_requests_status", "status"),
    )
    md.create_all(conn)


def _add_column(conn: Connection, table: str, column: str, type_: sa.types.TypeEngine) -> None:
    """``ALTER TABLE ... ADD COLUMN`` (nullable, so every existing row stays valid)."""
    preparer = conn.dialect.identifier_preparer
    ddl = type_.compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column)} {ddl}"
    )


def _migration_2(conn: Connection) -> None:
    """When a call was transferred; why a booking failed and who handled it."""
    _add_column(conn, "calls", "transferred_at", sa.DateTime())
    _add_column(conn, "bookings", "failure_reason", sa.Text())
    _add_column(conn, "bookings", "handled_by", sa.String(100))
    _add_column(conn, "bookings", "handled_at", sa.DateTime())


def _migration_3(conn: Connection) -> None:
    """Console agents (lockout counters) and API keys."""
    md = sa.MetaData()
    sa.Table(
        "agents",
        md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime()),
        sa.UniqueConstraint("username", name="uq_agents_username"),
    )
    sa.Table(
        "api_keys",
        md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime()),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    md.create_all(conn)


def _migration_4(conn: Connection) -> None:
    """A console agent's session generation: logout and removal end the agent's sessions."""
    _add_column(conn, "agents", "session_generation", sa.Integer())


def _migration_5(conn: Connection) -> None:
    """One callback request per call: a unique key on ``callback_requests.call_sid``.

    Duplicates recorded before (a retried fallback or status webhook) keep the oldest row's
    link to the call; the later ones stay, for the agents, without it."""
    table = sa.table("callback_requests", sa.column("id"), sa.column("call_sid"))
    first = (
        sa.select(sa.func.min(table.c.id))
        .where(table.c.call_sid.is_not(None))
        .group_by(table.c.call_sid)
    )
    conn.execute(
        table.update()
        .where(table.c.call_sid.is_not(None), table.c.id.not_in(first))
        .values(call_sid=None)
    )
    conn.execute(sa.text(
        "CREATE UNIQUE INDEX uq_callback_requests_call_sid ON callback_requests (call_sid)"
    ))


def _migration_6(conn: Connection) -> None:
    """The Clinicea token every host of a deployment shares (PostgreSQL; see auth.py)."""
    md = sa.MetaData()
    sa.Table(
        "clinicea_tokens",
        md,
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("token", sa.Text()),
        sa.Column("expires_at", sa.Float()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    md.create_all(conn)


def _migration_7(conn: Connection) -> None:
    """Holds on offered times and claims of open bookings: one row per (doctor, grid start)."""
    md = sa.MetaData()
    sa.Table(
        "slot_claims",
        md,
        sa.Column("doctor_id", sa.String(100), primary_key=True),
        sa.Column("start", sa.DateTime(), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("expires_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Index("ix_slot_claims_owner", "owner"),
    )
    md.create_all(conn)


def _migration_8(conn: Connection) -> None:
    """Confirmation texts, one row per booking (keyed by its idempotency key)."""
    md = sa.MetaData()
    sa.Table(
        "booking_texts",
        md,
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
    md.create_all(conn)


def _migration_9(conn: Connection) -> None:
    """A keyed hash of the caller's number, for repeat callers in the History figures."""
    _add_column(conn, "calls", "caller_key", sa.String(64))


#: (version, description, step). Append only; never edit a released step.
MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "calls, call_events, bookings, callback_requests", _migration_1),
    (2, "calls.transferred_at, bookings.failure_reason/handled_by/handled_at", _migration_2),
    (3, "agents, api_keys", _migration_3),
    (4, "agents.session_generation", _migration_4),
    (5, "callback_requests: unique call_sid", _migration_5),
    (6, "clinicea_tokens", _migration_6),
    (7, "slot_claims", _migration_7),
    (8, "booking_texts", _migration_8),
    (9, "calls.caller_key", _migration_9),
)
LATEST_VERSION = MIGRATIONS[-1][0]

_PG_MIGRATION_LOCK = 0x49565253  # "IVRS": pg_advisory_xact_lock key for migrate()

# --------------------------------------------------------------------------------------------
# Helpers


def normalize_url(url: str) -> str:
    """Rewrite ``postgres://`` / ``postgresql://`` (any driver) to ``postgresql+psycopg://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("postgresql+") and not url.startswith("postgresql+psycopg://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _private_file(path: str) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does, whatever the umask: it
    holds patient data. SQLite gives its -wal and -shm files the database file's mode. An
    existing database (and those files) made before this is narrowed the same way. A file we
    cannot touch is left for SQLite to report."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError:
        pass
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)
        except OSError:
            pass


def _unavailable(url: str, exc: Exception) -> StoreUnavailable:
    """The one line for a database that cannot be opened or written (no password in it)."""
    parsed = make_url(url)
    orig = getattr(exc, "orig", None) or exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
    if parsed.get_backend_name() == "sqlite":
        return StoreUnavailable(
            f"IVR_DATABASE_URL: cannot use the SQLite database {parsed.database!r}: {detail}"
            " (is the file or its directory read-only, or the disk full?)"
        )
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
    return StoreUnavailable(f"IVR_DATABASE_URL: cannot reach PostgreSQL at {where}: {detail}")


def _utc_naive(value: datetime) -> datetime:
    """Aware -> UTC naive; naive is taken as UTC already."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _system_now() -> datetime:
    return datetime.now(UTC)


def _dumps(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise StoreError(f"expected a dict, got {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _weaker_outcomes(outcome: str) -> list[str]:
    """Outcomes that ``outcome`` may replace (strictly weaker ones)."""
    rank = _OUTCOME_RANK[outcome]
    return [name for name, r in _OUTCOME_RANK.items() if r < rank]


def _check_outcome(outcome: str) -> None:
    if outcome not in _OUTCOME_RANK:
        raise StoreError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")


def _weaker_or_none(outcome: str) -> sa.ColumnElement[bool]:
    """SQL for "the row has no outcome yet, or one that ``outcome`` may replace"."""
    return sa.or_(calls.c.outcome.is_(None), calls.c.outcome.in_(_weaker_outcomes(outcome)))


def _outcome_value(outcome: str) -> sa.ColumnElement[Any]:
    """SQL for "set ``outcome`` unless the row already has a stronger one"."""
    _check_outcome(outcome)
    return sa.case((_weaker_or_none(outcome), sa.literal(outcome)), else_=calls.c.outcome)


def _call(row: Any) -> CallRecord:
    m = row._mapping
    return CallRecord(
        call_sid=m["call_sid"],
        version=m["version"],
        step=m["step"],
        turn=m["turn"],
        state=json.loads(m["state"]),
        last_reply=m["last_reply"],
        last_reply_turn=m["last_reply_turn"],
        outcome=m["outcome"],
        caller_masked=m["caller_masked"],
        patient_first_name=m["patient_first_name"],
        language=m["language"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
        outcome_step=m["outcome_step"],
        transferred_at=m["transferred_at"],
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


def _as_datetime(value: Any) -> datetime:
    """A DateTime column's value (SQLite may hand back text in raw selects)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _release_booking_claim(conn: Connection, key: str) -> None:
    """The booking is settled without an appointment: its time is free again."""
    conn.execute(slot_claims.delete().where(
        slot_claims.c.owner == key, slot_claims.c.kind == BOOKING))


def _event(row: Any) -> CallEvent:
    m = row._mapping
    return CallEvent(
        id=m["id"],
        call_sid=m["call_sid"],
        at=m["at"],
        kind=m["kind"],
        step=m["step"],
        text=m["text"],
    )


def _callback(row: Any) -> CallbackRecord:
    m = row._mapping
    return CallbackRecord(**{k: m[k] for k in CallbackRecord.__dataclass_fields__})


def _agent(row: Any) -> AgentRecord:
    m = row._mapping
    return AgentRecord(**{k: m[k] for k in AgentRecord.__dataclass_fields__})


def _api_key(row: Any) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(**{k: m[k] for k in ApiKeyRecord.__dataclass_fields__})


def _text(row: Any) -> TextRecord:
    m = row._mapping
    return TextRecord(**{k: m[k] for k in TextRecord.__dataclass_fields__})


# --------------------------------------------------------------------------------------------
# The store


class Store:
    """All database access. Thread-safe; one instance per process is enough.

    Build it in the process that uses it (after a gunicorn fork), or call
    ``store.engine.dispose(close=False)`` in the child, so processes never share a connection.
    """

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime] | None = None,
        echo: bool = False,
        lock_seconds: float | None = None,
    ) -> None:
        """`lock_seconds` (default `DEFAULT_LOCK_SECONDS`) bounds every wait for a lock:
        SQLite's busy timeout, PostgreSQL's `lock_timeout` (its `statement_timeout` is
        `STATEMENT_TIMEOUT_FACTOR` times it). Past it the operation fails (`OperationalError`)
        instead of holding a webhook past Twilio's 15 s."""
        self.url = normalize_url(url)
        lock = DEFAULT_LOCK_SECONDS if lock_seconds is None else lock_seconds
        self._now_fn = now or _system_now
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self._lock: threading.RLock | None = None
        if self.dialect == "postgresql" and importlib.util.find_spec("psycopg") is None:
            raise StoreUnavailable(
                "IVR_DATABASE_URL: a PostgreSQL URL needs the PostgreSQL driver, which is not"
                " installed: pip install 'clinic-ivr[postgres]'"
            )
        if self.dialect == "sqlite":
            memory = parsed.database in (None, "", ":memory:") or "mode=memory" in self.url
            if not memory and parsed.database and not parsed.query.get("uri"):
                _private_file(parsed.database)
            kwargs: dict[str, Any] = {
                "connect_args": {"check_same_thread": False, "timeout": lock},
            }
            if memory:
                kwargs["poolclass"] = StaticPool
                self._lock = threading.RLock()  # one shared connection: one transaction at once
            # hide_parameters: a failed statement's log line must not carry patient data.
            self.engine: Engine = sa.create_engine(self.url, echo=echo, hide_parameters=True,
                                                   **kwargs)
            self._install_sqlite_hooks(self.engine, wal=not memory, busy_ms=int(lock * 1000))
        elif self.dialect == "postgresql":
            # Added to the URL's own `options` (a search_path, say), which connect_args replaces.
            given = parsed.query.get("options", "")
            options = " ".join([*((given,) if isinstance(given, str) else given),
                                f"-c lock_timeout={int(lock * 1000)}",
                                f"-c statement_timeout="
                                f"{int(lock * STATEMENT_TIMEOUT_FACTOR * 1000)}"]).strip()
            self.engine = sa.create_engine(
                self.url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=20,
                connect_args={"options": options}, hide_parameters=True,
            )
        else:
            raise StoreError(f"unsupported database URL scheme: {parsed.drivername}")
        # Built once: the values are bound per call (see the prebuilt statements above).
        self._create_call_stmt = self._insert_ignoring_conflict(
            calls, {c: sa.bindparam(c, type_=calls.c[c].type) for c in _CREATE_CALL_COLUMNS},
            ["call_sid"],
        )
        self._enqueue_stmt = self._insert_ignoring_conflict(
            bookings, {c: sa.bindparam(c, type_=bookings.c[c].type) for c in _ENQUEUE_COLUMNS},
            ["idempotency_key"],
        )

    # -- plumbing ------------------------------------------------------------------------------

    @staticmethod
    def _install_sqlite_hooks(engine: Engine, *, wal: bool, busy_ms: int) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
                if wal:
                    cur.execute("PRAGMA journal_mode = WAL")
                cur.execute("PRAGMA foreign_keys = ON")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("ivr_write", False)
            # Straight to the driver: conn.exec_driver_sql would run SQLAlchemy's whole execute
            # path (events, result set-up) for a statement that returns nothing, on every
            # transaction.
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if write else "BEGIN"
            )

    def now(self) -> datetime:
        """The current time as naive UTC (from the injected clock)."""
        return _utc_naive(self._now_fn())

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Connection]:
        """One short transaction; on SQLite a write transaction takes the write lock up front."""
        with self._lock or nullcontext():
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(ivr_write=True)
                with conn.begin():
                    yield conn

    def _insert_ignoring_conflict(
        self, table: sa.Table, values: dict[str, Any], index_elements: Sequence[str]
    ) -> sa.Insert:
        if self.dialect == "postgresql":
            return (
                pg_dialect.insert(table)
                .values(**values)
                .on_conflict_do_nothing(index_elements=list(index_elements))
            )
        return (
            sqlite_dialect.insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=list(index_elements))
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def ping(self) -> bool:
        """Health check: True when ``SELECT 1`` answers."""
        try:
            with self._tx(write=False) as conn:
                return conn.execute(sa.text("SELECT 1")).scalar() == 1
        except SQLAlchemyError:
            return False

    def writable(self) -> bool:
        """Health check: True when a one-row write commits. A full disk, a read-only file or a
        lock held past the lock wait make it False (reads may still answer)."""
        try:
            with self._tx(write=True) as conn:
                for statement in _PROBE_WRITE:
                    conn.execute(statement)
            return True
        except SQLAlchemyError:
            return False

    # -- schema --------------------------------------------------------------------------------

    def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""
        with self._tx(write=False) as conn:
            if not sa.inspect(conn).has_table("schema_version"):
                return 0
            return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0

    def migrate(self, target: int | None = None) -> int:
        """Create or upgrade the schema up to ``target`` (default: latest); returns the version.

        Idempotent. Concurrent callers (threads or processes) serialise on a lock; should one
        still lose a race on the ``schema_version`` table, it retries and finds the work done.
        """
        target = LATEST_VERSION if target is None else target
        last_error: Exception | None = None
        for attempt in range(5):
            try:
                return self._migrate_once(target)
            except (IntegrityError, OperationalError, ProgrammingError) as exc:
                last_error = exc
                time.sleep(0.05 * (attempt + 1))
        assert last_error is not None
        if isinstance(last_error, OperationalError):
            raise _unavailable(self.url, last_error) from last_error
        raise last_error

    def _migrate_once(self, target: int) -> int:
        with self._tx(write=True) as conn:
            if self.dialect == "postgresql":
                # Start-up, not a webhook: wait for another process's migration however long.
                conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
                conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            schema_version.create(conn, checkfirst=True)
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
            for version, description, step in MIGRATIONS:
                if current < version <= target:
                    step(conn)
                    conn.execute(
                        schema_version.insert().values(
                            version=version, applied_at=self.now(), description=description
                        )
                    )
                    current = version
            return current

    # -- calls ---------------------------------------------------------------------------------

    def load_call(self, call_sid: str) -> CallRecord | None:
        """The call's row, or None."""
        with self._tx(write=False) as conn:
            row = conn.execute(_LOAD_CALL, {"p_sid": call_sid}).first()
        return None if row is None else _call(row)

    def create_call(
        self,
        call_sid: str,
        *,
        caller_masked: str | None,
        state: dict[str, Any],
        step: str,
        language: str | None = None,
        caller_key: str | None = None,
    ) -> CallRecord:
        """Insert a new call at version 1 / turn 0; if it exists already, return that row.

        ``caller_key`` is a keyed hash of the caller's number (``ivr.insights.caller_key``), so
        repeat callers can be counted without keeping their number beside the figures.
        """
        now = self.now()
        dumped = _dumps(state)
        values = {
            "call_sid": call_sid,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "step": step,
            "turn": 0,
            "caller_masked": caller_masked,
            "state": dumped,
            "language": language,
            "caller_key": caller_key,
        }
        with self._tx() as conn:
            inserted = conn.execute(self._create_call_stmt, values).rowcount == 1
            if not inserted:  # a retried webhook or another process: that row wins
                return _call(conn.execute(_LOAD_CALL, {"p_sid": call_sid}).one())
        # This caller wrote the row, so it is known without reading it back.
        return CallRecord(
            call_sid=call_sid,
            version=1,
            step=step,
            turn=0,
            state=json.loads(dumped),
            last_reply=None,
            last_reply_turn=None,
            outcome=None,
            caller_masked=caller_masked,
            patient_first_name=None,
            language=language,
            created_at=now,
            updated_at=now,
            ended_at=None,
        )

    def save_call(
        self,
        call_sid: str,
        *,
        expected_version: int,
        state: dict[str, Any],
        step: str,
        turn: int,
        last_reply: str | None,
        last_reply_turn: int | None,
        patient_first_name: str | None = None,
        outcome: str | None = None,
        outcome_step: str | None = None,
        language: str | None = None,
        events: Iterable[tuple[str, str | None, str | None]] = (),
        transferred: bool = False,
    ) -> bool:
        """Compare-and-swap: write only if the row is still at ``expected_version``.

        Returns True and bumps the version by one when this caller won; False when the call is
        unknown or someone else already advanced it. ``patient_first_name``, ``language`` and
        ``outcome`` are left unchanged when None; an outcome never replaces a stronger one.
        The turn's ``events`` (kind, step, masked text) and ``transferred`` (as
        `mark_transferred`) are written in the same transaction, and only when this caller won:
        one commit per webhook.
        """
        rows = [{"call_sid": call_sid, "kind": k, "step": st, "text": t} for k, st, t in events]
        for row in rows:
            if row["kind"] not in EVENT_KINDS:
                raise StoreError(
                    f"unknown event kind {row['kind']!r}; expected one of {sorted(EVENT_KINDS)}"
                )
        if outcome is not None:
            _check_outcome(outcome)
        now = self.now()
        params: dict[str, Any] = {
            "p_sid": call_sid,
            "p_expected": expected_version,
            "p_now": now,
            "p_state": _dumps(state),
            "p_step": step,
            "p_turn": turn,
            "p_reply": last_reply,
            "p_reply_turn": last_reply_turn,
        }
        if patient_first_name is not None:
            params["p_first_name"] = patient_first_name
        if language is not None:
            params["p_language"] = language
        with_outcome_step = outcome is not None and outcome_step is not None
        if with_outcome_step:
            params["p_outcome_step"] = outcome_step
        stmt = _save_call_stmt(
            first_name=patient_first_name is not None,
            language=language is not None,
            outcome=outcome,
            outcome_step=with_outcome_step,
            transferred=transferred,
        )
        with self._tx() as conn:
            if conn.execute(stmt, params).rowcount != 1:
                return False
            if rows:
                conn.execute(_INSERT_EVENTS, [row | {"at": now} for row in rows])
        return True

    def finish_call(self, call_sid: str, outcome: str, outcome_step: str | None = None) -> bool:
        """Record the call's end and outcome (unless a stronger outcome is already recorded).

        Strength: booked > transferred > callback > answered > failed > abandoned. ``ended_at``
        is set the first time only. Returns True when this outcome was recorded. Does not bump
        the version.
        """
        _check_outcome(outcome)
        record, end_only = _finish_call_stmts(outcome)
        params = {"p_sid": call_sid, "p_now": self.now(), "p_outcome_step": outcome_step}
        with self._tx() as conn:
            won = conn.execute(record, params).rowcount == 1
            if not won:
                conn.execute(end_only, params)
        return won

    def mark_transferred(self, call_sid: str) -> None:
        """The call was handed to a person: stamp ``transferred_at`` (first time only) and set the
        outcome to ``transferred`` unless it is already ``booked``. Does not bump the version."""
        now = self.now()
        with self._tx() as conn:
            conn.execute(
                calls.update()
                .where(calls.c.call_sid == call_sid)
                .values(
                    transferred_at=sa.func.coalesce(calls.c.transferred_at, now),
                    outcome=_outcome_value("transferred"),
                    updated_at=now,
                )
            )

    def calls_in_progress(self, limit: int = 100) -> list[CallRecord]:
        """Calls with no outcome and no end yet, newest first (the agents' live view)."""
        stmt = (
            sa.select(calls)
            .where(calls.c.outcome.is_(None), calls.c.ended_at.is_(None))
            .order_by(calls.c.created_at.desc(), calls.c.call_sid)
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            return [_call(r) for r in conn.execute(stmt)]

    def recent_calls(self, since: datetime, limit: int = 100) -> list[CallRecord]:
        """Calls created at or after ``since``, newest first."""
        stmt = (
            sa.select(calls)
            .where(calls.c.created_at >= _utc_naive(since))
            .order_by(calls.c.created_at.desc(), calls.c.call_sid)
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            return [_call(r) for r in conn.execute(stmt)]

    def outcome_counts_by_day(self, days: int) -> list[OutcomeCount]:
        """Calls per UTC day and outcome over the last ``days`` days (today included), oldest
        day first; calls without an outcome count under ``None``."""
        start = datetime.combine(
            self.now().date() - timedelta(days=max(days, 1) - 1), datetime.min.time()
        )
        day = sa.func.date(calls.c.created_at, type_=sa.Date())
        stmt = (
            sa.select(day.label("day"), calls.c.outcome, sa.func.count().label("n"))
            .where(calls.c.created_at >= start)
            .group_by(day, calls.c.outcome)
        )
        with self._tx(write=False) as conn:
            rows = conn.execute(stmt).all()
        out = []
        for d, outcome, n in rows:
            if isinstance(d, str):  # pragma: no cover - depends on the driver
                d = date.fromisoformat(d[:10])
            elif isinstance(d, datetime):  # pragma: no cover
                d = d.date()
            out.append(OutcomeCount(day=d, outcome=outcome, count=int(n)))
        out.sort(key=lambda c: (c.day, c.outcome is None, c.outcome or ""))
        return out

    def call_facts(self, since: datetime) -> list[CallFact]:
        """Every call started at or after ``since`` (UTC), with the steps it visited, oldest
        first: two reads, whatever the number of calls."""
        since = _utc_naive(since)
        call_rows = sa.select(
            calls.c.call_sid, calls.c.created_at, calls.c.outcome, calls.c.transferred_at,
            calls.c.caller_key,
        ).where(calls.c.created_at >= since).order_by(calls.c.created_at, calls.c.call_sid)
        event_rows = (
            sa.select(call_events.c.call_sid, call_events.c.kind, call_events.c.step,
                      call_events.c.text)
            .join(calls, calls.c.call_sid == call_events.c.call_sid)
            .where(calls.c.created_at >= since, call_events.c.kind.in_(("step", "error")))
        )
        steps: dict[str, set[str]] = {}
        gave_up: set[str] = set()
        with self._tx(write=False) as conn:
            rows = conn.execute(call_rows).all()
            for sid, kind, step, text in conn.execute(event_rows):
                if kind == "step" and step:
                    steps.setdefault(sid, set()).add(step)
                elif kind == "error" and (text or "").startswith("gave up"):
                    gave_up.add(sid)
        return [
            CallFact(call_sid=sid, created_at=created, outcome=outcome,
                     transferred=transferred_at is not None or outcome == "transferred",
                     caller_key=key, steps=frozenset(steps.get(sid, ())), gave_up=sid in gave_up)
            for sid, created, outcome, transferred_at, key in rows
        ]

    # -- events --------------------------------------------------------------------------------

    def add_event(self, call_sid: str, kind: str, step: str | None, text: str | None) -> None:
        """Append an event; ``text`` must already be masked (the store does not mask)."""
        if kind not in EVENT_KINDS:
            raise StoreError(f"unknown event kind {kind!r}; expected one of {sorted(EVENT_KINDS)}")
        with self._tx() as conn:
            conn.execute(
                call_events.insert().values(
                    call_sid=call_sid, at=self.now(), kind=kind, step=step, text=text
                )
            )

    def events(self, call_sid: str) -> list[CallEvent]:
        """The call's events in the order they were added."""
        stmt = (
            sa.select(call_events)
            .where(call_events.c.call_sid == call_sid)
            .order_by(call_events.c.at, call_events.c.id)
        )
        with self._tx(write=False) as conn:
            return [_event(r) for r in conn.execute(stmt)]

    def purge_events(self, older_than: timedelta) -> int:
        """Delete call events older than ``older_than`` and scrub calls untouched since then.

        A scrubbed call keeps its outcome, step, masked number and times (the console's history
        and chart) but loses its flow state (the caller's number, the names and birth dates of
        the patients found), its first name and its last TwiML (which spoke them). Bookings are
        kept. Returns the number of events deleted.
        """
        cutoff = self.now() - older_than
        with self._tx() as conn:
            removed = conn.execute(call_events.delete().where(call_events.c.at < cutoff)).rowcount
            conn.execute(
                calls.update()
                .where(calls.c.updated_at < cutoff, calls.c.last_reply.is_not(None))
                .values(
                    state="{}",
                    last_reply=None,
                    patient_first_name=None,
                    caller_key=None,
                )
            )
        return removed

    # -- the shared Clinicea token ------------------------------------------------------------

    @contextmanager
    def locked_token(self, account: str, *, wait: float | None) -> Iterator[TokenSlot]:
        """Hold `account`'s token row for the block, so one process logs in at a time.

        Yields a `TokenSlot` (its current token; `replace` / `clear` it in the same
        transaction). Another holder blocks the caller (PostgreSQL: a row lock, SQLite: the
        write lock) for at most `wait` seconds, then StoreError.
        """
        now = self.now()
        try:
            with self._tx() as conn:
                if self.dialect == "postgresql" and wait is not None:
                    # SET does not take bind parameters; the value is a number we made.
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")
                conn.execute(self._insert_ignoring_conflict(
                    clinicea_tokens, {"account": account, "updated_at": now}, ["account"]))
                row = conn.execute(
                    sa.select(clinicea_tokens.c.token, clinicea_tokens.c.expires_at)
                    .where(clinicea_tokens.c.account == account).with_for_update()
                ).one()
                yield TokenSlot(self, conn, account, row.token, row.expires_at)
        except OperationalError as exc:
            raise StoreError("the shared Clinicea token is locked or unreachable") from exc

    def _write_token(self, conn: Connection, account: str, token: str | None,
                     expires_at: float | None) -> None:
        conn.execute(
            clinicea_tokens.update().where(clinicea_tokens.c.account == account)
            .values(token=token, expires_at=expires_at, updated_at=self.now())
        )

    # -- bookings outbox -----------------------------------------------------------------------

    def enqueue_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload
    ) -> BookingRecord:
        """Insert a pending booking, or return the existing one with the same idempotency key."""
        now = self.now()
        values = {
            "idempotency_key": key,
            "call_sid": call_sid,
            "created_at": now,
            "updated_at": now,
            "status": "pending",
            "attempts": 0,
            "payload": payload.dumps(),
        }
        with self._tx() as conn:
            conn.execute(self._enqueue_stmt, values)
            row = conn.execute(_BOOKING_BY_KEY, {"p_key": key}).one()
        return _booking(row)

    def claim_booking(self, key: str, *, worker: str, lease: timedelta) -> BookingRecord | None:
        """Atomically claim one booking for ``worker``; the row only if this caller won."""
        now = self.now()
        params = {"p_key": key, "p_now": now, "p_worker": worker, "p_until": now + lease}
        with self._tx() as conn:
            if conn.execute(_CLAIM_BY_KEY, params).rowcount != 1:
                return None
            row = conn.execute(_BOOKING_BY_KEY, params).one()
        return _booking(row)

    def claim_due_bookings(
        self, *, worker: str, lease: timedelta, limit: int = 10
    ) -> list[BookingRecord]:
        """Claim up to ``limit`` due bookings, oldest due first (PostgreSQL: SKIP LOCKED)."""
        now = self.now()
        pick = (
            sa.select(bookings.c.id)
            .where(_claimable())
            .order_by(
                sa.func.coalesce(bookings.c.next_attempt_at, bookings.c.created_at), bookings.c.id
            )
            .limit(limit)
        )
        if self.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        claimed: list[BookingRecord] = []
        params: dict[str, Any] = {"p_now": now, "p_worker": worker, "p_until": now + lease}
        with self._tx() as conn:
            ids = list(conn.execute(pick, params).scalars())
            for booking_id in ids:  # per-row conditional update: only rows still claimable
                params["p_id"] = booking_id
                if conn.execute(_CLAIM_BY_ID, params).rowcount == 1:
                    claimed.append(_booking(conn.execute(_BOOKING_BY_ID, params).one()))
        return claimed

    def _transition(self, key: str, from_statuses: Iterable[str], values: dict[str, Any],
                    then: Callable[[Connection], object] | None = None) -> bool:
        values = {**values, "updated_at": self.now()}
        stmt = _transition_stmt(tuple(from_statuses), tuple(values))
        params = {f"p_{column}": value for column, value in values.items()}
        with self._tx() as conn:
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
            then=lambda conn: conn.execute(
                slot_claims.update()
                .where(slot_claims.c.owner == key, slot_claims.c.kind == BOOKING)
                .values(expires_at=self.now() + BOOKED_CLAIM_TTL)
            ),
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
                "next_attempt_at": _utc_naive(next_attempt_at),
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
            then=lambda conn: _release_booking_claim(conn, key),
        )

    def mark_handled(self, key: str, by: str) -> bool:
        """An agent dealt with a booking the outbox could not: status ``handled``."""
        return self._transition(
            key,
            ("pending", "retrying", "failed"),
            {
                "status": "handled",
                "handled_by": by,
                "handled_at": self.now(),
                "claimed_by": None,
                "claimed_until": None,
                "next_attempt_at": None,
            },
            then=lambda conn: _release_booking_claim(conn, key),
        )

    def get_booking(self, key_or_id: str | int) -> BookingRecord | None:
        """A booking by idempotency key (str) or id (int)."""
        stmt, params = (
            (_BOOKING_BY_ID, {"p_id": key_or_id})
            if isinstance(key_or_id, int)
            else (_BOOKING_BY_KEY, {"p_key": key_or_id})
        )
        with self._tx(write=False) as conn:
            row = conn.execute(stmt, params).first()
        return None if row is None else _booking(row)

    def bookings(
        self, statuses: Iterable[str] | None = None, limit: int = 100
    ) -> list[BookingRecord]:
        """Bookings, newest first, optionally only those in ``statuses``."""
        stmt = sa.select(bookings).order_by(bookings.c.created_at.desc(), bookings.c.id.desc())
        if statuses is not None:
            stmt = stmt.where(bookings.c.status.in_(tuple(statuses)))
        with self._tx(write=False) as conn:
            return [_booking(r) for r in conn.execute(stmt.limit(limit))]

    def outbox_depth(self) -> dict[str, int]:
        """Number of bookings per status (every status present, zero included)."""
        stmt = sa.select(bookings.c.status, sa.func.count()).group_by(bookings.c.status)
        depth = dict.fromkeys(BOOKING_STATUSES, 0)
        with self._tx(write=False) as conn:
            for status, n in conn.execute(stmt):
                depth[status] = int(n)
        return depth

    def oldest_pending_age(self) -> timedelta | None:
        """Age of the oldest booking not yet booked/failed/handled; None when there is none."""
        stmt = sa.select(sa.func.min(bookings.c.created_at)).where(
            bookings.c.status.in_(OPEN_BOOKING_STATUSES)
        )
        with self._tx(write=False) as conn:
            oldest = conn.execute(stmt).scalar()
        if oldest is None:
            return None
        if isinstance(oldest, str):  # pragma: no cover - SQLite min() over text, untyped
            oldest = datetime.fromisoformat(oldest)
        return max(self.now() - oldest, timedelta(0))

    # -- slot claims: holds on offered times, claims of open bookings ---------------------------

    def _claim_stmt(self) -> sa.Insert:
        """Take (doctor_id, start) for ``p_owner``/``p_kind``: insert, or take over a row that
        has expired, is already ours, or is the hold ``p_hold_owner`` that becomes this claim.
        The primary key makes the insert itself the check (no read-then-write)."""
        insert = pg_dialect.insert if self.dialect == "postgresql" else sqlite_dialect.insert
        now = sa.bindparam("p_now", type_=sa.DateTime())
        stmt = insert(slot_claims).values(
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

    def _take(self, conn: Connection, *, owner: str, kind: str, doctor_id: str,
              steps: Iterable[datetime], until: datetime | None, hold_owner: str) -> set[datetime]:
        """Try to take every step; the steps now owned by ``owner``/``kind``."""
        wanted = sorted(set(steps))  # one order everywhere: no lock-order deadlock on PostgreSQL
        if not wanted:
            return set()
        stmt = self._claim_stmt()
        base = {"p_now": self.now(), "p_doctor": doctor_id, "p_owner": owner, "p_kind": kind,
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
        until = _utc_naive(until)
        with self._tx() as conn:
            owned = self._take(conn, owner=call_sid, kind=HOLD, doctor_id=doctor_id,
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
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(slot_claims.c.doctor_id, slot_claims.c.start).where(
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD)
            ).all()
            gone = sorted((d, _as_datetime(st)) for d, st in rows
                          if (d, _as_datetime(st)) not in keep_set)  # lock order: as _take
            for doctor_id, start in gone:
                conn.execute(slot_claims.delete().where(
                    slot_claims.c.doctor_id == doctor_id, slot_claims.c.start == start,
                    slot_claims.c.owner == call_sid, slot_claims.c.kind == HOLD))
        return len(gone)

    def held_by(self, call_sid: str) -> list[tuple[str, datetime]]:
        """The call's live holds as (doctor_id, grid start), earliest first."""
        now = self.now()
        with self._tx(write=False) as conn:
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
        now = self.now()
        c = slot_claims.c
        stmt = sa.select(c.start).where(
            c.doctor_id == doctor_id, c.start >= start, c.start < end,
            sa.or_(c.expires_at.is_(None), c.expires_at > now),
        )
        if except_call is not None:
            stmt = stmt.where(sa.not_(sa.and_(c.owner == except_call, c.kind == HOLD)))
        with self._tx(write=False) as conn:
            return sorted(_as_datetime(v) for v in conn.execute(stmt).scalars())

    def enqueue_claimed_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload, doctor_id: str,
        steps: Sequence[datetime],
    ) -> BookingRecord:
        """`enqueue_booking` and the claim on the booking's time, in one transaction.

        The call's hold on those steps (``call_sid``) becomes the booking's claim; a step
        claimed or held live by anyone else raises `SlotUnavailable` and nothing is written.
        A key that exists already returns its row unchanged (a repeated webhook)."""
        now = self.now()
        values = {
            "idempotency_key": key, "call_sid": call_sid, "created_at": now, "updated_at": now,
            "status": "pending", "attempts": 0, "payload": payload.dumps(),
        }
        # The booking row first, then its claim: the order mark_booked/mark_failed lock them
        # in too (the other order deadlocked on PostgreSQL against a concurrent mark_booked).
        with self._tx() as conn:
            # RETURNING, not rowcount: PostgreSQL's rowcount is not 1 here (implicit RETURNING).
            inserted = conn.execute(self._enqueue_stmt.returning(bookings.c.id),
                                    values).first() is not None
            if inserted:
                owned = self._take(conn, owner=key, kind=BOOKING, doctor_id=doctor_id,
                                   steps=steps, until=None, hold_owner=call_sid or "")
                if not set(steps) <= owned:  # raising rolls the booking row back too
                    raise SlotUnavailable(f"{doctor_id} at {min(steps):%Y-%m-%d %H:%M} is taken")
            row = conn.execute(_BOOKING_BY_KEY, {"p_key": key}).one()
        return _booking(row)

    def purge_claims(self) -> int:
        """Delete expired holds and claims (they are replaceable anyway); returns how many."""
        c = slot_claims.c
        with self._tx() as conn:
            return conn.execute(slot_claims.delete().where(
                c.expires_at.is_not(None), c.expires_at <= self.now())).rowcount or 0

    # -- callbacks -----------------------------------------------------------------------------

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
            "created_at": self.now(),
            "phone_e164": phone_e164,
            "phone_masked": phone_masked,
            "reason": reason,
            "status": "open",
        }
        with self._tx() as conn:
            if call_sid is None:
                result = conn.execute(callback_requests.insert().values(**values))
                inserted = result.inserted_primary_key
                assert inserted is not None  # a plain INSERT always has its new key
                return int(inserted[0])
            conn.execute(self._insert_ignoring_conflict(callback_requests, values, ["call_sid"]))
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
        with self._tx(write=False) as conn:
            return [_callback(r) for r in conn.execute(stmt.limit(limit))]

    def mark_callback_handled(self, callback_id: int, by: str) -> bool:
        """Close an open callback request; False if unknown or already handled."""
        with self._tx() as conn:
            return (
                conn.execute(
                    callback_requests.update()
                    .where(
                        callback_requests.c.id == callback_id, callback_requests.c.status == "open"
                    )
                    .values(status="handled", handled_by=by, handled_at=self.now())
                ).rowcount
                == 1
            )

    # -- agents and API keys -------------------------------------------------------------------

    def add_agent(self, username: str, password_hash: str) -> AgentRecord:
        """Create a console agent; raises AlreadyExists for a taken username."""
        try:
            with self._tx() as conn:
                conn.execute(
                    agents.insert().values(
                        username=username,
                        password_hash=password_hash,
                        created_at=self.now(),
                        failed_logins=0,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"agent {username!r} already exists") from exc
        agent = self.get_agent(username)
        assert agent is not None
        return agent

    def get_agent(self, username: str) -> AgentRecord | None:
        """The agent, or None."""
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(agents).where(agents.c.username == username)).first()
        return None if row is None else _agent(row)

    def set_agent_password(self, username: str, password_hash: str) -> bool:
        """Replace an agent's password hash; False when the agent is unknown."""
        with self._tx() as conn:
            return (
                conn.execute(
                    agents.update()
                    .where(agents.c.username == username)
                    .values(password_hash=password_hash)
                ).rowcount
                == 1
            )

    def record_login_failure(
        self, username: str, lock_until: datetime | None = None
    ) -> AgentRecord | None:
        """Count a failed login (atomically); lock the agent until ``lock_until`` if given."""
        values: dict[str, Any] = {"failed_logins": agents.c.failed_logins + 1}
        if lock_until is not None:
            values["locked_until"] = _utc_naive(lock_until)
        with self._tx() as conn:
            conn.execute(agents.update().where(agents.c.username == username).values(**values))
            row = conn.execute(sa.select(agents).where(agents.c.username == username)).first()
        return None if row is None else _agent(row)

    def reset_login_failures(self, username: str) -> None:
        """After a good login: zero the counter and lift any lock."""
        with self._tx() as conn:
            conn.execute(
                agents.update()
                .where(agents.c.username == username)
                .values(failed_logins=0, locked_until=None)
            )

    def count_login_attempt(self, username: str, now: datetime) -> AgentRecord | None:
        """Count a sign-in attempt before its password is checked (atomically): a lock that ran
        out by ``now`` is lifted and its count started afresh first. The returned record holds
        this attempt's own count, so concurrent attempts each see a different number."""
        now = _utc_naive(now)
        where = agents.c.username == username
        with self._tx() as conn:
            conn.execute(
                agents.update()
                .where(where, agents.c.locked_until.is_not(None), agents.c.locked_until <= now)
                .values(failed_logins=0, locked_until=None)
            )
            conn.execute(agents.update().where(where).values(
                failed_logins=agents.c.failed_logins + 1))
            row = conn.execute(sa.select(agents).where(where)).first()
        return None if row is None else _agent(row)

    def lock_agent(self, username: str, until: datetime) -> None:
        """Refuse the agent's sign-in until ``until`` (a lock already set is kept)."""
        with self._tx() as conn:
            conn.execute(
                agents.update()
                .where(agents.c.username == username, agents.c.locked_until.is_(None))
                .values(locked_until=_utc_naive(until))
            )

    def end_agent_sessions(self, username: str) -> bool:
        """Raise the agent's session generation: every session signed in before ends."""
        generation = sa.func.coalesce(agents.c.session_generation, 0) + 1
        with self._tx() as conn:
            result = conn.execute(
                agents.update().where(agents.c.username == username)
                .values(session_generation=generation)
            )
        return result.rowcount == 1

    def remove_agent(self, username: str) -> bool:
        """Delete a console agent (its sessions end with it); False when unknown."""
        with self._tx() as conn:
            result = conn.execute(agents.delete().where(agents.c.username == username))
        return result.rowcount == 1

    def revoke_api_keys(self, name: str) -> int:
        """Delete every API key called ``name``; returns how many there were."""
        with self._tx() as conn:
            result = conn.execute(api_keys.delete().where(api_keys.c.name == name))
        return int(result.rowcount or 0)

    def add_api_key(self, name: str, key_hash: str) -> ApiKeyRecord:
        """Store an API key by its hash; raises AlreadyExists for a duplicate hash."""
        try:
            with self._tx() as conn:
                conn.execute(
                    api_keys.insert().values(name=name, key_hash=key_hash, created_at=self.now())
                )
                row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).one()
        except IntegrityError as exc:
            raise AlreadyExists(f"API key {name!r} duplicates an existing key") from exc
        return _api_key(row)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with that hash (stamping ``last_used_at``), or None."""
        now = self.now()
        with self._tx() as conn:
            conn.execute(
                api_keys.update().where(api_keys.c.key_hash == key_hash).values(last_used_at=now)
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _api_key(row)

    # -- confirmation texts (v4) ---------------------------------------------------------------

    def queue_text(self, booking_key: str, *, to_e164: str, from_e164: str, body: str) -> bool:
        """Queue the booking's confirmation text (status ``waiting``); True if newly queued.

        One row per booking: queueing again (a retried webhook) keeps the first row. Queue it
        BEFORE the booking row is written, so a booking never becomes booked without its text;
        a text whose booking never gets booked is never sent.
        """
        now = self.now()
        stmt = self._insert_ignoring_conflict(
            booking_texts,
            {"booking_key": booking_key, "created_at": now, "updated_at": now,
             "status": "waiting", "attempts": 0, "to_e164": to_e164, "from_e164": from_e164,
             "body": body},
            ["booking_key"],
        ).returning(booking_texts.c.booking_key)  # rowcount is -1 here on psycopg
        with self._tx() as conn:
            return conn.execute(stmt).first() is not None

    def claim_due_texts(self, *, worker: str, limit: int = 20) -> list[TextRecord]:
        """Mark up to ``limit`` due texts of booked bookings ``sending``; the rows this won.

        The mark is committed before Twilio is asked, so a text is handed to Twilio at most
        once per claim: a crash after it leaves the row ``sending`` (see
        ``expire_sending_texts``), never ``waiting``.
        """
        now = self.now()
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
        with self._tx(write=False) as conn:  # the usual answer, without taking the write lock
            if conn.execute(pick).first() is None:
                return []
        if self.dialect == "postgresql":
            pick = pick.with_for_update(of=booking_texts, skip_locked=True)
        claimed: list[TextRecord] = []
        with self._tx() as conn:
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
        values: dict[str, Any] = {"status": status, "updated_at": self.now(),
                                  "last_error": error, "claimed_by": None,
                                  "next_attempt_at": (None if next_attempt_at is None
                                                      else _utc_naive(next_attempt_at))}
        if twilio_sid is not None:
            values["twilio_sid"] = twilio_sid
        with self._tx() as conn:
            return conn.execute(
                booking_texts.update()
                .where(booking_texts.c.booking_key == booking_key,
                       booking_texts.c.status.in_(tuple(from_statuses)))
                .values(**values)
            ).rowcount == 1

    def expire_sending_texts(self, older_than: timedelta, error: str) -> int:
        """Texts ``sending`` for longer than ``older_than`` (their sender stopped): ``unknown``.

        Twilio may or may not have them, so they are never sent again on their own."""
        now = self.now()
        with self._tx() as conn:
            return conn.execute(
                booking_texts.update()
                .where(booking_texts.c.status == "sending",
                       booking_texts.c.sending_since < now - older_than)
                .values(status="unknown", last_error=error, claimed_by=None, updated_at=now)
            ).rowcount

    def get_text(self, booking_key: str) -> TextRecord | None:
        """The booking's confirmation text, or None (none was queued)."""
        with self._tx(write=False) as conn:
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
        with self._tx(write=False) as conn:
            return [_text(r) for r in conn.execute(stmt)]
