"""The schema's history: numbered, append-only migration steps and `migrate()`, which applies them.

Each step is its own frozen DDL, never the current tables of `ivr.store.schema` (which grow over
time): never edit a released step, add one. Steps are additive only (new tables, new nullable
columns), so rows written under an older schema survive and older code keeps working on a newer
schema. The applied versions are rows of ``schema_version``. ``migrate()`` is idempotent and safe
when several processes run it at once (PostgreSQL: an advisory transaction lock; SQLite: the
``BEGIN IMMEDIATE`` write lock; a lost race on the ``schema_version`` row is retried).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from ivr.store.database import Database, unavailable
from ivr.store.schema import schema_version

# Frozen with the steps that use it (the current schema has its own).
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: INTEGER PK = rowid


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


def _migration_10(conn: Connection) -> None:
    """Appointment reminders: one per (day, patient), its appointments (each in one reminder a
    day), the days planned, and the numbers that opted out of texts."""
    md = sa.MetaData()
    sa.Table(
        "reminders",
        md,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("first_name", sa.String(100)),
        sa.Column("phone_e164", sa.String(40), nullable=False),
        sa.Column("phone_masked", sa.String(40)),
        sa.Column("channels", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(10)),
        sa.Column("call_sid", sa.String(64), unique=True),
        sa.Column("sms_sid", sa.String(64)),
        sa.Column("answered_by", sa.String(40)),
        sa.Column("reply", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime()),
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
    sa.Table(
        "reminder_items",
        md,
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("reminder_key", sa.String(200), sa.ForeignKey("reminders.key"),
                  nullable=False),
        sa.Column("appointment_id", sa.String(64), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("doctor_id", sa.String(64)),
        sa.Index("ix_reminder_items_reminder_key", "reminder_key"),
    )
    sa.Table(
        "reminder_runs",
        md,
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("planned_at", sa.DateTime(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
    )
    sa.Table(
        "sms_opt_outs",
        md,
        sa.Column("phone_e164", sa.String(40), primary_key=True),
        sa.Column("opted_out_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
    )
    md.create_all(conn)


def _migration_11(conn: Connection) -> None:
    """The account-wide pace of outbound calls: when each account's next call may start."""
    md = sa.MetaData()
    sa.Table(
        "call_pacing",
        md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("next_at", sa.DateTime(), nullable=False),
    )
    md.create_all(conn)


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
    (10, "reminders, reminder_items, reminder_runs, sms_opt_outs", _migration_10),
    (11, "call_pacing", _migration_11),
)
LATEST_VERSION = MIGRATIONS[-1][0]

_PG_MIGRATION_LOCK = 0x49565253  # "IVRS": pg_advisory_xact_lock key for migrate()


def current_version(db: Database) -> int:
    """The highest applied migration (0 for an empty database)."""
    with db.transaction(write=False) as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0


def migrate(db: Database, target: int | None = None) -> int:
    """Create or upgrade the schema up to ``target`` (default: latest); returns the version.

    Idempotent. Concurrent callers (threads or processes) serialise on a lock; should one
    still lose a race on the ``schema_version`` table, it retries and finds the work done.
    """
    target = LATEST_VERSION if target is None else target
    last_error: Exception | None = None
    for attempt in range(5):
        try:
            return _migrate_once(db, target)
        except (IntegrityError, OperationalError, ProgrammingError) as exc:
            last_error = exc
            time.sleep(0.05 * (attempt + 1))
    assert last_error is not None
    if isinstance(last_error, OperationalError):
        raise unavailable(db.url, last_error) from last_error
    raise last_error


def _migrate_once(db: Database, target: int) -> int:
    with db.transaction(write=True) as conn:
        if db.dialect == "postgresql":
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
                        version=version, applied_at=db.now(), description=description
                    )
                )
                current = version
        return current
