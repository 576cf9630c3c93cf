"""One Clinicea login per host: the token shared between processes through a TokenFile."""

from __future__ import annotations

import os
import tempfile
import threading

from ivr.clinicea import CliniceaClient
from ivr.clinicea.auth import TokenCache, TokenFile
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.sandbox import EmbeddedSandbox, SandboxState
from tests.demo import MONDAY_10AM


class Logins:
    def __init__(self) -> None:
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self, _deadline: float | None) -> str:
        with self.lock:
            self.n += 1
            return f"token-{self.n}"


def test_two_processes_share_one_login(tmp_path):
    logins = Logins()
    a = TokenCache(logins, shared=TokenFile("k", str(tmp_path)))
    b = TokenCache(logins, shared=TokenFile("k", str(tmp_path)))
    assert a.get() == "token-1"
    assert b.get() == "token-1"
    assert logins.n == 1
    assert oct(os.stat(TokenFile("k", str(tmp_path)).path).st_mode & 0o777) == "0o600"


def test_a_refused_token_is_dropped_once_and_replaced_once(tmp_path):
    logins = Logins()
    a = TokenCache(logins, shared=TokenFile("k", str(tmp_path)))
    b = TokenCache(logins, shared=TokenFile("k", str(tmp_path)))
    stale = a.get()
    b.get()
    a.invalidate(stale)
    assert a.get() == "token-2"
    b.invalidate(stale)  # b saw the same 401: the fresh shared token survives
    assert b.get() == "token-2"
    assert logins.n == 2


def test_an_expired_or_unreadable_shared_token_means_a_login(tmp_path):
    logins = Logins()
    shared = TokenFile("k", str(tmp_path), clock=lambda: 1_000_000.0)
    shared.write("old", 1_000_000.5)  # expires within the safety second
    assert TokenCache(logins, shared=shared).get() == "token-1"
    with open(shared.path, "w") as fh:
        fh.write("not json")
    assert TokenCache(logins, shared=TokenFile("k", str(tmp_path))).get() == "token-2"
    other = TokenCache(logins, shared=TokenFile("other account", str(tmp_path)))
    assert other.get() == "token-3"


def test_concurrent_first_logins_across_caches(tmp_path):
    logins = Logins()
    caches = [TokenCache(logins, shared=TokenFile("k", str(tmp_path))) for _ in range(6)]
    got: list[str] = []
    threads = [threading.Thread(target=lambda c=c: got.append(c.get())) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["token-1"] * 6 and logins.n == 1


def test_clients_from_settings_share_the_token_against_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    state = SandboxState(FixedClock(MONDAY_10AM))
    with EmbeddedSandbox(state) as sandbox:
        settings = Settings.for_tests(clinicea_base_url=sandbox.base_url)
        clients = [CliniceaClient.from_settings(settings, share_token=True) for _ in range(3)]
        try:
            for c in clients:
                c.appointments_on(MONDAY_10AM.date())
            assert sum(c.counters["login"] for c in clients) == 1
            state.expire_tokens()
            for c in clients:
                c.appointments_on(MONDAY_10AM.date())
            assert sum(c.counters["login"] for c in clients) == 2
        finally:
            for c in clients:
                c.close()


def test_the_embedded_sandbox_keeps_a_token_per_process(make_rig):
    r = make_rig()
    assert r.runtime.client._tokens._shared is None


def test_hosts_share_the_token_through_the_store(tmp_path):
    """StoreToken (what PostgreSQL deployments use) behaves like the token file: one login for
    every cache, a refused token dropped once and replaced once."""
    from ivr.clinicea.auth import StoreToken
    from ivr.store import Store

    store = Store(f"sqlite:///{tmp_path / 'ivr.db'}")
    store.migrate()
    logins = Logins()
    a = TokenCache(logins, shared=StoreToken(store, "account"))
    b = TokenCache(logins, shared=StoreToken(store, "account"))
    stale = a.get()
    assert b.get() == stale == "token-1"
    a.invalidate(stale)
    assert a.get() == "token-2"
    b.invalidate(stale)  # the same 401 seen by b: the fresh shared token survives
    assert b.get() == "token-2"
    assert TokenCache(logins, shared=StoreToken(store, "another account")).get() == "token-3"
    assert logins.n == 3
    store.dispose()
