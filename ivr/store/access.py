"""Who may use the console and the API: console agents (password hashes the caller computed,
sign-in counters and locks, session generations) and API keys, known only by their hashes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ivr.store.database import Database, utc_naive
from ivr.store.errors import AlreadyExists
from ivr.store.records import AgentRecord, ApiKeyRecord
from ivr.store.schema import agents, api_keys


def _agent(row: Any) -> AgentRecord:
    m = row._mapping
    return AgentRecord(**{k: m[k] for k in AgentRecord.__dataclass_fields__})


def _api_key(row: Any) -> ApiKeyRecord:
    m = row._mapping
    return ApiKeyRecord(**{k: m[k] for k in ApiKeyRecord.__dataclass_fields__})


class Access:
    """The ``agents`` and ``api_keys`` tables."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``."""
        self._db = db

    def add_agent(self, username: str, password_hash: str) -> AgentRecord:
        """Create a console agent; raises AlreadyExists for a taken username."""
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    agents.insert().values(
                        username=username,
                        password_hash=password_hash,
                        created_at=self._db.now(),
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
        with self._db.transaction(write=False) as conn:
            row = conn.execute(sa.select(agents).where(agents.c.username == username)).first()
        return None if row is None else _agent(row)

    def set_agent_password(self, username: str, password_hash: str) -> bool:
        """Replace an agent's password hash; False when the agent is unknown."""
        with self._db.transaction() as conn:
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
            values["locked_until"] = utc_naive(lock_until)
        with self._db.transaction() as conn:
            conn.execute(agents.update().where(agents.c.username == username).values(**values))
            row = conn.execute(sa.select(agents).where(agents.c.username == username)).first()
        return None if row is None else _agent(row)

    def reset_login_failures(self, username: str) -> None:
        """After a good login: zero the counter and lift any lock."""
        with self._db.transaction() as conn:
            conn.execute(
                agents.update()
                .where(agents.c.username == username)
                .values(failed_logins=0, locked_until=None)
            )

    def count_login_attempt(self, username: str, now: datetime) -> AgentRecord | None:
        """Count a sign-in attempt before its password is checked (atomically): a lock that ran
        out by ``now`` is lifted and its count started afresh first. The returned record holds
        this attempt's own count, so concurrent attempts each see a different number."""
        now = utc_naive(now)
        where = agents.c.username == username
        with self._db.transaction() as conn:
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
        with self._db.transaction() as conn:
            conn.execute(
                agents.update()
                .where(agents.c.username == username, agents.c.locked_until.is_(None))
                .values(locked_until=utc_naive(until))
            )

    def end_agent_sessions(self, username: str) -> bool:
        """Raise the agent's session generation: every session signed in before ends."""
        generation = sa.func.coalesce(agents.c.session_generation, 0) + 1
        with self._db.transaction() as conn:
            result = conn.execute(
                agents.update().where(agents.c.username == username)
                .values(session_generation=generation)
            )
        return result.rowcount == 1

    def remove_agent(self, username: str) -> bool:
        """Delete a console agent (its sessions end with it); False when unknown."""
        with self._db.transaction() as conn:
            result = conn.execute(agents.delete().where(agents.c.username == username))
        return result.rowcount == 1

    def revoke_api_keys(self, name: str) -> int:
        """Delete every API key called ``name``; returns how many there were."""
        with self._db.transaction() as conn:
            result = conn.execute(api_keys.delete().where(api_keys.c.name == name))
        return int(result.rowcount or 0)

    def add_api_key(self, name: str, key_hash: str) -> ApiKeyRecord:
        """Store an API key by its hash; raises AlreadyExists for a duplicate hash."""
        try:
            with self._db.transaction() as conn:
                conn.execute(api_keys.insert().values(
                    name=name, key_hash=key_hash, created_at=self._db.now()))
                row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).one()
        except IntegrityError as exc:
            raise AlreadyExists(f"API key {name!r} duplicates an existing key") from exc
        return _api_key(row)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with that hash (stamping ``last_used_at``), or None."""
        now = self._db.now()
        with self._db.transaction() as conn:
            conn.execute(
                api_keys.update().where(api_keys.c.key_hash == key_hash).values(last_used_at=now)
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return None if row is None else _api_key(row)
