"""The Clinicea session token: one login shared by every thread, renewed before it expires.

Clinicea's staff login (`getTokenByStaffUsernamePwd`) gives a token that lives about an hour
(`clinicea-api.md` §1); we renew it after `ttl` (55 minutes by default). Logins are serialised
by a lock: when 20 threads need a token at once, one logs in and the other 19 wait for its
token instead of stampeding the login endpoint (and possibly invalidating each other's tokens).

Across processes (gunicorn workers, the booking worker) a `TokenFile` shares the token: a JSON
file in the temp directory, named by a hash of base URL and username, mode 0600, guarded by an
`flock` on a lock file. The first process to need a token logs in and writes it; the others
read it, so a host makes one login per token lifetime instead of one per process. A token
Clinicea refuses is removed from the file only if the file still holds that token.

Across hosts (PostgreSQL, several app hosts) a `StoreToken` shares it through the database
instead: one row per Clinicea account, locked (`SELECT ... FOR UPDATE`) while a process reads
it and, if it is missing or due, logs in and writes the new one, so N hosts make one login
per token lifetime. SQLite keeps the file: one host only, and a login must not hold SQLite's
single write lock for the length of an HTTP request.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.clinicea.errors import CliniceaUnavailable

if TYPE_CHECKING:
    from ivr.store import Store, TokenSlot

__all__ = ["DEFAULT_TOKEN_TTL", "Credentials", "StoreToken", "TokenCache", "TokenFile"]

DEFAULT_TOKEN_TTL = 55 * 60.0


@dataclass(frozen=True)
class Credentials:
    """What the staff login needs: the organisation's API key and a staff user's login."""

    api_key: str
    username: str
    password: str

    def __repr__(self) -> str:
        # Never let a password or key reach a log line through repr().
        return f"Credentials(api_key='***', username={self.username!r}, password='***')"


class TokenFile:
    """A token shared by every process of one user on one host (see the module docstring).

    `key` identifies the Clinicea account (base URL and username; hashed into the file name).
    Expiry is stored as wall-clock seconds since the epoch (`clock`), since processes do not
    share a monotonic clock.
    """

    def __init__(self, key: str, directory: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        folder = directory or tempfile.gettempdir()
        self.path = os.path.join(folder, f"ivr-clinicea-token-{digest}.json")
        self.lock_path = self.path[: -len(".json")] + ".lock"
        self.clock = clock

    @contextlib.contextmanager
    def locked(self, deadline: float | None, monotonic: Callable[[], float]) -> Iterator[None]:
        """Hold the cross-process lock; CliniceaUnavailable past `deadline` (monotonic)."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if deadline is not None and monotonic() >= deadline:
                        raise CliniceaUnavailable(
                            "timed out waiting for another process's login", operation="login"
                        ) from exc
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def read(self) -> tuple[str, float] | None:
        """(token, expires_at) if the file holds one of ours; None otherwise."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_uid != os.getuid():
                return None  # not written by us: never trust it
            with os.fdopen(fd, "rb") as fh:
                fd = -1
                data = json.loads(fh.read(4096) or b"null")
        except (OSError, ValueError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        if not isinstance(data, dict):
            return None
        token, expires = data.get("token"), data.get("expires_at")
        if not isinstance(token, str) or not isinstance(expires, (int, float)):
            return None
        return token, float(expires)

    def write(self, token: str, expires_at: float) -> None:
        """Replace the shared token atomically (mode 0600)."""
        folder = os.path.dirname(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".ivr-token-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"token": token, "expires_at": expires_at}, fh)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def discard(self, token: str) -> None:
        """Remove the shared token if it is `token`."""
        current = self.read()
        if current is not None and current[0] == token:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class StoreToken:
    """A token shared by every host of a deployment through the store (module docstring).

    Same interface as `TokenFile`: `locked` holds the account's row lock for the block (the
    caller's `TokenCache` lock keeps one thread of this process inside at a time); `read`,
    `write` and `discard` act on the locked row.
    """

    def __init__(self, store: Store, key: str, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._account = hashlib.sha256(key.encode()).hexdigest()[:32]
        self._slot: TokenSlot | None = None
        self.clock = clock

    @contextlib.contextmanager
    def locked(self, deadline: float | None, monotonic: Callable[[], float]) -> Iterator[None]:
        """Hold the row lock; CliniceaUnavailable past `deadline` (monotonic)."""
        from ivr.store import StoreError

        wait = None if deadline is None else max(0.0, deadline - monotonic())
        try:
            with self._store.locked_token(self._account, wait=wait) as slot:
                self._slot = slot
                try:
                    yield
                finally:
                    self._slot = None
        except StoreError as exc:
            raise CliniceaUnavailable(
                "timed out waiting for another host's login", operation="login") from exc

    def read(self) -> tuple[str, float] | None:
        """(token, expires_at) of the locked row, if it holds one."""
        slot = self._slot
        if slot is None or slot.token is None or slot.expires_at is None:
            return None
        return slot.token, float(slot.expires_at)

    def write(self, token: str, expires_at: float) -> None:
        """Replace the shared token (only inside `locked`)."""
        if self._slot is not None:
            self._slot.replace(token, expires_at)

    def discard(self, token: str) -> None:
        """Forget the shared token if it is `token` (only inside `locked`)."""
        if self._slot is not None and self._slot.token == token:
            self._slot.clear()


class TokenCache:
    """Holds the current token; `login` is called (under a lock) when there is none valid.

    `login(deadline)` returns a fresh token or raises (the error propagates to the caller that
    needed the token, and the next caller tries again). With `shared`, a token another process
    logged in for is used before logging in ourselves.
    """

    def __init__(
        self,
        login: Callable[[float | None], str],
        *,
        ttl: float = DEFAULT_TOKEN_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        shared: TokenFile | StoreToken | None = None,
    ) -> None:
        self._login = login
        self._shared = shared
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, deadline: float | None = None) -> str:
        """A valid token, logging in first if there is none or it is due for renewal.

        `deadline` (on the `monotonic` clock) bounds the wait for another thread's login and
        is passed on to `login(deadline)`; past it, CliniceaUnavailable is raised.
        """
        wait = -1.0 if deadline is None else max(0.0, deadline - self._monotonic())
        if not self._lock.acquire(timeout=wait):
            raise CliniceaUnavailable("timed out waiting for the login", operation="login")
        try:
            if self._token is None or self._monotonic() >= self._expires_at:
                self._token = None
                if self._shared is None:
                    self._renew(deadline)
                else:
                    with self._shared.locked(deadline, self._monotonic):
                        self._renew_shared(deadline, self._shared)
            assert self._token is not None
            return self._token
        finally:
            self._lock.release()

    def _renew(self, deadline: float | None) -> None:
        # The clock is read before the login: the token's life began when we asked.
        started = self._monotonic()
        self._token = self._login(deadline)
        self._expires_at = started + self._ttl

    def _renew_shared(self, deadline: float | None, shared: TokenFile | StoreToken) -> None:
        found = shared.read()
        now = shared.clock()
        if found is not None and found[1] - now > 1.0:
            self._token = found[0]
            self._expires_at = self._monotonic() + (found[1] - now)
            return
        started_wall = now
        self._renew(deadline)
        assert self._token is not None
        shared.write(self._token, started_wall + self._ttl)

    def invalidate(self, stale: str) -> None:
        """Forget `stale` after Clinicea refused it (401).

        Only that exact token is dropped: if another thread already logged in again, its
        fresh token stays, so 20 threads hit by one expiry cause one re-login, not 20.
        """
        with self._lock:
            if self._token == stale:
                self._token = None
            if self._shared is not None:
                try:
                    with self._shared.locked(self._monotonic() + 2.0, self._monotonic):
                        self._shared.discard(stale)
                except (OSError, CliniceaUnavailable):
                    pass  # the next login overwrites it anyway
