"""The database connection every part of the store shares: engine, transactions, lock bounds.

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
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ivr.store.errors import StoreError, StoreUnavailable
from ivr.store.schema import schema_version

#: Longest wait for a database lock (seconds). A webhook does at most three writes on its way
#: to an apology, two of them after its Clinicea work (8 s at most): 8 + 2 * 3 < 15 s.
DEFAULT_LOCK_SECONDS = 3.0
#: PostgreSQL's statement_timeout, as a multiple of the lock wait.
STATEMENT_TIMEOUT_FACTOR = 2

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


def unavailable(url: str, exc: Exception) -> StoreUnavailable:
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


def utc_naive(value: datetime) -> datetime:
    """Aware -> UTC naive; naive is taken as UTC already."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def system_now() -> datetime:
    """The system clock in UTC (the default "now")."""
    return datetime.now(UTC)


class Database:
    """One engine and its short transactions; the parts of the store share one instance.

    Thread-safe. Build it in the process that uses it (after a gunicorn fork), or call
    ``engine.dispose(close=False)`` in the child, so processes never share a connection.
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
        self._now_fn = now or system_now
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
        return utc_naive(self._now_fn())

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """One short transaction; on SQLite a write transaction takes the write lock up front."""
        with self._lock or nullcontext():
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(ivr_write=True)
                with conn.begin():
                    yield conn

    def insert(self, table: sa.Table) -> pg_dialect.Insert | sqlite_dialect.Insert:
        """The dialect's INSERT for ``table``: the one with ``on_conflict_do_*``."""
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def insert_ignoring_conflict(
        self, table: sa.Table, values: dict[str, Any], index_elements: Sequence[str]
    ) -> sa.Insert:
        """INSERT ``values`` into ``table``, doing nothing when ``index_elements`` conflict."""
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
            with self.transaction(write=False) as conn:
                return conn.execute(sa.text("SELECT 1")).scalar() == 1
        except SQLAlchemyError:
            return False

    def writable(self) -> bool:
        """Health check: True when a one-row write commits. A full disk, a read-only file or a
        lock held past the lock wait make it False (reads may still answer)."""
        try:
            with self.transaction(write=True) as conn:
                for statement in _PROBE_WRITE:
                    conn.execute(statement)
            return True
        except SQLAlchemyError:
            return False
