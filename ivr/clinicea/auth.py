"""The Clinicea session token: one login shared by every thread, renewed before it expires.

Clinicea's staff login (`getTokenByStaffUsernamePwd`) gives a token that lives about an hour
(`clinicea-api.md` §1); we renew it after `ttl` (55 minutes by default). Logins are serialised
by a lock: when 20 threads need a token at once, one logs in and the other 19 wait for its
token instead of stampeding the login endpoint (and possibly invalidating each other's tokens).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ivr.clinicea.errors import CliniceaUnavailable

__all__ = ["DEFAULT_TOKEN_TTL", "Credentials", "TokenCache"]

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


class TokenCache:
    """Holds the current token; `login` is called (under a lock) when there is none valid.

    `login(deadline)` returns a fresh token or raises (the error propagates to the caller that
    needed the token, and the next caller tries again).
    """

    def __init__(
        self,
        login: Callable[[float | None], str],
        *,
        ttl: float = DEFAULT_TOKEN_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._login = login
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
                # The clock is read before the login: the token's life began when we asked.
                started = self._monotonic()
                self._token = None
                self._token = self._login(deadline)
                self._expires_at = started + self._ttl
            return self._token
        finally:
            self._lock.release()

    def invalidate(self, stale: str) -> None:
        """Forget `stale` after Clinicea refused it (401).

        Only that exact token is dropped: if another thread already logged in again, its
        fresh token stays, so 20 threads hit by one expiry cause one re-login, not 20.
        """
        with self._lock:
            if self._token == stale:
                self._token = None
