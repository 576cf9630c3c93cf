"""The Clinicea login every host of a deployment shares: one token row per account, held under
a row lock (PostgreSQL) or the write lock (SQLite) while one process logs in (see
ivr/clinicea/auth.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ivr.store.database import Database
from ivr.store.errors import StoreError
from ivr.store.schema import clinicea_tokens


class TokenSlot:
    """The token row while `CliniceaTokens.locked_token` holds it (token None: none yet)."""

    def __init__(self, tokens: CliniceaTokens, conn: Connection, account: str, token: str | None,
                 expires_at: float | None) -> None:
        self._tokens, self._conn, self._account = tokens, conn, account
        self.token = token
        self.expires_at = expires_at

    def replace(self, token: str, expires_at: float) -> None:
        """Store a fresh token, valid until `expires_at` (wall-clock epoch seconds)."""
        self._tokens.write(self._conn, self._account, token, expires_at)
        self.token, self.expires_at = token, expires_at

    def clear(self) -> None:
        """Forget the token (Clinicea refused it)."""
        self._tokens.write(self._conn, self._account, None, None)
        self.token = self.expires_at = None


class CliniceaTokens:
    """The ``clinicea_tokens`` table."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    @contextmanager
    def locked_token(self, account: str, *, wait: float | None) -> Iterator[TokenSlot]:
        """Hold `account`'s token row for the block, so one process logs in at a time.

        Yields a `TokenSlot` (its current token; `replace` / `clear` it in the same
        transaction). Another holder blocks the caller (PostgreSQL: a row lock, SQLite: the
        write lock) for at most `wait` seconds, then StoreError.
        """
        now = self._db.now()
        try:
            with self._db.transaction() as conn:
                if self._db.dialect == "postgresql" and wait is not None:
                    # SET does not take bind parameters; the value is a number we made.
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(wait * 1000))}")
                conn.execute(self._db.insert_ignoring_conflict(
                    clinicea_tokens, {"account": account, "updated_at": now}, ["account"]))
                row = conn.execute(
                    sa.select(clinicea_tokens.c.token, clinicea_tokens.c.expires_at)
                    .where(clinicea_tokens.c.account == account).with_for_update()
                ).one()
                yield TokenSlot(self, conn, account, row.token, row.expires_at)
        except OperationalError as exc:
            raise StoreError("the shared Clinicea token is locked or unreachable") from exc

    def write(self, conn: Connection, account: str, token: str | None,
              expires_at: float | None) -> None:
        """Set ``account``'s token in the transaction `locked_token` holds."""
        conn.execute(
            clinicea_tokens.update().where(clinicea_tokens.c.account == account)
            .values(token=token, expires_at=expires_at, updated_at=self._db.now())
        )
