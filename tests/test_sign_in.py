"""Console sign-in and session ends (issue 9, item 10): concurrent wrong passwords, the client
address behind a proxy, what is logged, logout, removal, expiry, revoked API keys."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

import pytest
import werkzeug.security

from ivr import accounts
from ivr.accounts import LOCK_AFTER_FAILURES, check_login, create_agent, create_api_key
from ivr.cli import main
from ivr.store import Store
from tests.agents import PASSWORD, csrf_of, signed_in
from tests.calls import rig

SCREEN_POP = "/console/caller?mobile=03216315551"


def test_twelve_concurrent_wrong_passwords_get_at_most_five_full_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    store = Store(f"sqlite:///{tmp_path / 'ivr.db'}")
    store.migrate()
    create_agent(store, "amina", PASSWORD)
    checks = []
    real_check = werkzeug.security.check_password_hash

    def counted(pwhash: str, password: str) -> bool:  # werkzeug's own check, counted
        if password == "wrong":
            checks.append(1)
        return real_check(pwhash, password)

    monkeypatch.setattr(accounts, "check_password_hash", counted)
    now = datetime(2026, 11, 23, 5, 0)
    start = threading.Barrier(12)
    results: list[str] = []

    def attempt() -> None:
        start.wait()
        results.append(check_login(store, "amina", "wrong", now).reason)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checks) <= LOCK_AFTER_FAILURES
    assert results.count("bad_credentials") <= LOCK_AFTER_FAILURES - 1
    assert len(results) == 12 and set(results) <= {"bad_credentials", "locked"}
    assert check_login(store, "amina", PASSWORD, now).reason == "locked"
    store.engine.dispose()


def test_behind_a_proxy_each_client_address_has_its_own_limit(make_rig):
    r = make_rig(proxy_hops=1)
    create_agent(r.runtime.store, "amina", PASSWORD)
    client = r.app.test_client()
    token = csrf_of(client.get("/console/login").text)

    def attempt(address: str) -> int:
        return client.post("/console/login", headers={"X-Forwarded-For": address}, data={
            "csrf_token": token, "username": "nobody", "password": "x"}).status_code

    assert [attempt("203.0.113.7") for _ in range(20)] == [401] * 20
    assert attempt("203.0.113.7") == 429
    assert attempt("198.51.100.9") == 401  # another agent behind the same proxy


def test_sign_ins_through_an_unconfigured_proxy_are_warned_about_once(caplog):
    with rig() as r:
        client = r.app.test_client()
        token = csrf_of(client.get("/console/login").text)
        for _ in range(3):
            client.post("/console/login", headers={"X-Forwarded-For": "203.0.113.7"},
                        data={"csrf_token": token, "username": "x", "password": "y"})
    warned = [rec for rec in caplog.records if "IVR_PROXY_HOPS" in rec.getMessage()]
    assert len(warned) == 1


def test_failed_sign_ins_lockouts_and_429s_are_logged_without_the_password(caplog):
    with rig() as r:
        create_agent(r.runtime.store, "amina", PASSWORD)
        client = r.app.test_client()
        token = csrf_of(client.get("/console/login").text)
        caplog.set_level(logging.INFO)
        for _ in range(LOCK_AFTER_FAILURES):
            client.post("/console/login", data={
                "csrf_token": token, "username": "amina", "password": "s3cret-guess"})
        client.post("/console/login", data={
            "csrf_token": token, "username": "my-password-typed-here", "password": "s3cret-x"})
        for _ in range(20):
            client.post("/console/login", data={"csrf_token": token, "username": "x",
                                                "password": "s3cret-y"})
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "wrong password for agent amina" in text
    assert "agent amina locked" in text
    assert "too many attempts from" in text
    assert "no agent of that name (22 characters)" in text
    assert "s3cret" not in text and "my-password-typed-here" not in text


def test_logout_ends_the_session_and_an_old_cookie_opens_nothing(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    assert client.get(SCREEN_POP).status_code == 200
    saved = client.get_cookie("session").value
    token = csrf_of(client.get(SCREEN_POP).text)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    thief = r.app.test_client()
    thief.set_cookie("session", saved)
    response = thief.get(SCREEN_POP)
    assert response.status_code == 302 and "/console/login" in response.location
    assert thief.get("/console/live.json").status_code == 401
    # Signing in again works, with a new session.
    assert signed_in(r.app).get(SCREEN_POP).status_code == 200


def test_a_session_ends_twelve_hours_after_sign_in_however_busy(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    for _ in range(11):  # in use every hour: the cookie is re-sent, the end stays put
        r.clock.advance(hours=1)
        assert client.get("/console/live.json").status_code == 200
    r.clock.advance(hours=1, minutes=1)
    assert client.get("/console/live.json").status_code == 401


def test_remove_agent_ends_its_sessions_even_if_the_name_is_used_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, make_rig
):
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    r = make_rig(database_url=url)
    client = signed_in(r.app)
    assert client.get(SCREEN_POP).status_code == 200
    saved = client.get_cookie("session").value
    assert main(["remove-agent", "amina"]) == 0
    assert "removed" in capsys.readouterr().out
    assert client.get("/console/live.json").status_code == 401
    # Someone else gets the name: the removed agent's saved cookie still opens nothing.
    create_agent(r.runtime.store, "amina", "another password entirely")
    thief = r.app.test_client()
    thief.set_cookie("session", saved)
    assert thief.get("/console/live.json").status_code == 401
    assert main(["remove-agent", "nobody"]) == 1


def test_revoke_api_key_makes_its_key_401(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_rig):
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    r = make_rig(database_url=url)
    key = create_api_key(r.runtime.store, "convox")
    other = create_api_key(r.runtime.store, "crm")
    client = r.app.test_client()
    assert client.get("/api/caller?mobile=03216315551",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert main(["revoke-api-key", "convox"]) == 0
    assert client.get("/api/caller?mobile=03216315551",
                      headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert client.get("/api/caller?mobile=03216315551",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 200
    assert main(["revoke-api-key", "convox"]) == 1
