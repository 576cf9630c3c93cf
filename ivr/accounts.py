"""Console agents and API keys: hashing, creation, sign-in checks with rate limiting.

- Agent passwords are hashed with werkzeug's scrypt (`generate_password_hash`); the store only
  ever sees the hash.
- API keys are `secrets.token_urlsafe(32)`; the store keeps their SHA-256 hex digest, so a
  stolen database does not give working keys. The key itself is returned once, on creation.
- Sign-in is rate limited twice: per account (5 failures lock it for 5 minutes, counted in the
  store so every process sees it) and per client address (an in-memory sliding window of
  20 attempts per 5 minutes, per process).

Time: `now` for the account lock is an instant; naive values are taken as UTC (the store's
convention), aware ones are converted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from werkzeug.security import check_password_hash, generate_password_hash

from ivr.store import AgentRecord, ApiKeyRecord, Store

__all__ = [
    "ADDRESS_LIMIT",
    "ADDRESS_WINDOW_SECONDS",
    "LOCK_AFTER_FAILURES",
    "LOCK_FOR",
    "API_KEY_NAME_RULE",
    "AddressLimiter",
    "LoginResult",
    "api_key_scope",
    "check_login",
    "create_agent",
    "create_api_key",
    "hash_api_key",
    "hash_password",
    "valid_api_key_name",
    "verify_api_key",
]

LOCK_AFTER_FAILURES = 5
LOCK_FOR = timedelta(minutes=5)
ADDRESS_LIMIT = 20
ADDRESS_WINDOW_SECONDS = 300.0
PASSWORD_METHOD = "scrypt"
log = logging.getLogger(__name__)
# A key's name is shown in logs and the console ("handled by api:<name>"): a safe, short word.
_API_KEY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
API_KEY_NAME_RULE = "letters, digits, '.', '_' and '-' only (1-64 characters, no spaces)"

# Checked when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)


def hash_password(password: str) -> str:
    """A salted scrypt hash of the password (werkzeug's format)."""
    return generate_password_hash(password, method=PASSWORD_METHOD)


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest the store keeps for an API key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_agent(store: Store, username: str, password: str) -> AgentRecord:
    """Create a console agent with a hashed password; raises `AlreadyExists` for a taken name
    and `ValueError` for an empty username or password."""
    username = username.strip()
    if not username or not password:
        raise ValueError("username and password must not be empty")
    return store.add_agent(username, hash_password(password))


def valid_api_key_name(name: str) -> bool:
    """Whether `name` may name an API key (`API_KEY_NAME_RULE`)."""
    return _API_KEY_NAME.match(name) is not None


def create_api_key(store: Store, name: str) -> str:
    """Create an API key called `name`; returns the key (shown once, stored only hashed).

    Raises `ValueError` for a name outside `API_KEY_NAME_RULE`."""
    name = name.strip()
    if not name:
        raise ValueError("an API key needs a name")
    if not valid_api_key_name(name):
        raise ValueError(f"invalid API key name {name[:80]!r}: use {API_KEY_NAME_RULE}")
    key = secrets.token_urlsafe(32)
    store.add_api_key(name, hash_api_key(key))
    return key


def api_key_scope(record: ApiKeyRecord) -> str:
    """A stable, never reused identity of an API key for scoping its Idempotency-Keys.

    A prefix of the key's digest: it does not depend on how the key's name is spelled, and
    unlike a row id it is not handed to a new key after this one is revoked."""
    return record.key_hash[:16]


def verify_api_key(store: Store, key: str | None) -> ApiKeyRecord | None:
    """The key's record (its last use is stamped), or None for a missing or unknown key."""
    if not key or len(key) > 200:
        return None
    return store.find_api_key(hash_api_key(key.strip()))


class AddressLimiter:
    """At most `limit` sign-in attempts per client address in a sliding `window` (seconds).

    In memory and per process: a brake on password guessing from one place, on top of the
    per-account lock kept in the store. Thread-safe.
    """

    def __init__(
        self,
        limit: int = ADDRESS_LIMIT,
        window: float = ADDRESS_WINDOW_SECONDS,
        monotonic: Callable[[], float] = _time.monotonic,
        max_addresses: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._monotonic = monotonic
        self._max_addresses = max_addresses
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, address: str) -> bool:
        """Count one attempt from `address`; False when it is over the limit (not counted)."""
        now = self._monotonic()
        with self._lock:
            hits = self._hits.get(address)
            if hits is None:
                if len(self._hits) >= self._max_addresses:
                    self._forget_idle(now)
                hits = self._hits[address] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _forget_idle(self, now: float) -> None:
        for address in [a for a, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[address]
        if len(self._hits) >= self._max_addresses:  # still full: drop the oldest entries
            for address in list(self._hits)[: len(self._hits) // 2]:
                del self._hits[address]


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a sign-in attempt; `reason` is what the login page may say."""

    ok: bool
    reason: Literal["ok", "bad_credentials", "locked", "too_many_attempts"]


def _utc_naive(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def check_login(
    store: Store,
    username: str,
    password: str,
    now: datetime,
    *,
    address: str | None = None,
    limiter: AddressLimiter | None = None,
) -> LoginResult:
    """Check a sign-in, applying the per-address and per-account limits (module docstring).

    A locked account answers "locked" even to the right password, without checking it. The
    attempt is counted *before* the password is checked, and the decision uses that atomic
    count: of any number of concurrent attempts at most `LOCK_AFTER_FAILURES` are checked.
    Failures, lockouts and refused addresses are logged (never the password; a name that is
    no agent's is logged by its length only: it may be a password typed in the wrong box)."""
    where = address or "?"
    if limiter is not None and address is not None and not limiter.allow(address):
        log.warning("console sign-in refused: too many attempts from %s", where)
        return LoginResult(False, "too_many_attempts")
    now = _utc_naive(now)
    username = (username or "").strip()
    agent = store.get_agent(username) if username and len(username) <= 100 else None
    if agent is None:
        check_password_hash(_DUMMY_HASH, password or "")
        log.warning("console sign-in failed from %s: no agent of that name (%d characters)",
                    where, len(username))
        return LoginResult(False, "bad_credentials")
    if agent.locked_until is not None and agent.locked_until > now:
        log.warning("console sign-in refused from %s: agent %s is locked", where, username)
        return LoginResult(False, "locked")
    counted = store.count_login_attempt(username, now)
    if counted is None:  # removed meanwhile
        return LoginResult(False, "bad_credentials")
    if counted.failed_logins > LOCK_AFTER_FAILURES or (
        counted.locked_until is not None and counted.locked_until > now
    ):
        store.lock_agent(username, now + LOCK_FOR)
        log.warning("console sign-in refused from %s: agent %s is locked", where, username)
        return LoginResult(False, "locked")
    if check_password_hash(counted.password_hash, password or ""):
        store.reset_login_failures(username)
        return LoginResult(True, "ok")
    if counted.failed_logins >= LOCK_AFTER_FAILURES:
        store.lock_agent(username, now + LOCK_FOR)
        log.warning("console agent %s locked for %d minutes after %d wrong passwords (last "
                    "from %s)", username, LOCK_FOR.seconds // 60, counted.failed_logins, where)
        return LoginResult(False, "locked")
    log.warning("console sign-in failed from %s: wrong password for agent %s", where, username)
    return LoginResult(False, "bad_credentials")


