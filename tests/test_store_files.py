"""Smaller ones of issue 9, item 12: console ids, database file modes, start-up errors, one
callback per call."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.simulator import TwilioSimulator
from ivr.store import LATEST_VERSION, Store
from tests.agents import csrf_of, signed_in
from tests.demo import SATURDAY_EVENING
from tests.test_cli import ROOT, run_ivr


def _clean_env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_"))}
    return {**clean, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("path", [
    "/console/bookings/99999999999999999999999",
    "/console/bookings/²",
    "/console/bookings/0",
    "/console/bookings/9223372036854775808",
])
def test_the_console_answers_404_for_a_booking_id_that_cannot_exist(path, make_rig):
    r = make_rig()
    client = signed_in(r.app)
    assert client.get(path).status_code == 404


def test_the_console_answers_404_for_a_huge_callback_id(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    token = csrf_of(client.get("/console/outbox").text)
    for callback_id in ("99999999999999999999999", "9223372036854775808"):
        response = client.post(f"/console/callbacks/{callback_id}/handled",
                               data={"csrf_token": token})
        assert response.status_code == 404, callback_id


# --- the database's files are the owner's only ---------------------------------------------


def test_the_database_and_its_wal_and_shm_files_are_created_0600(tmp_path: Path):
    old = os.umask(0o022)  # the usual umask: without the fix the files come out 0644
    try:
        store = Store(f"sqlite:///{tmp_path / 'ivr.db'}")
        store.migrate()
        store.add_callback("CA1", "+923216315551", "+92*******551", "test")
        names = ["ivr.db", "ivr.db-wal", "ivr.db-shm"]
        for name in names:
            assert (tmp_path / name).exists(), name
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        store.dispose()
    finally:
        os.umask(old)


def test_an_existing_world_readable_database_is_narrowed_at_start(tmp_path: Path):
    Store(f"sqlite:///{tmp_path / 'ivr.db'}").migrate()
    os.chmod(tmp_path / "ivr.db", 0o644)
    Store(f"sqlite:///{tmp_path / 'ivr.db'}").migrate()
    assert stat.S_IMODE((tmp_path / "ivr.db").stat().st_mode) == 0o600


# --- a database that cannot be used stops the start with one line ---------------------------


def _one_line(done) -> str:  # noqa: ANN001 - subprocess.CompletedProcess
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    return line


def test_a_read_only_database_stops_ivr_migrate_with_one_line(tmp_path: Path):
    db = tmp_path / "ivr.db"
    db.touch()
    done = run_ivr("migrate", cwd=tmp_path,
                   env={"IVR_DATABASE_URL": f"sqlite:///file:{db}?mode=ro&uri=true"})
    line = _one_line(done)
    assert "IVR_DATABASE_URL" in line and "readonly" in line


def test_an_unreachable_postgresql_stops_ivr_migrate_with_one_line(tmp_path: Path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_ivr("migrate", cwd=tmp_path, env={
        "IVR_DATABASE_URL": f"postgresql://ivr:hunter2-secret@127.0.0.1:{port}/ivr"})
    line = _one_line(done)
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/ivr" in line
    assert "hunter2-secret" not in done.stderr


def test_a_postgresql_url_without_the_driver_says_which_extra_to_install(tmp_path: Path):
    # sys.modules[name] = None: Python's own way to say "this module is not there".
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['psycopg'] = None; "
         "from ivr.cli import main; sys.exit(main(['migrate']))"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**_clean_env(), "IVR_DATABASE_URL": "postgresql://ivr@127.0.0.1/ivr"})
    line = _one_line(done)
    assert "pip install 'clinic-ivr[postgres]'" in line


# --- one callback request per call ------------------------------------------------------------

BILAL = "+923216315551"


def test_a_retried_fallback_webhook_records_one_callback_for_the_call(make_rig):
    r = make_rig(now=SATURDAY_EVENING)
    phone = TwilioSimulator("http://testserver", r.runtime.settings.twilio_auth_token,
                            http=r.phone.http, voice_url="/voice/broken")
    call = phone.call(from_=BILAL)
    assert "call you back" in call.heard
    [(_, _, params)] = [q for q in call.requests if "/voice/fallback" in q[1]]
    for _ in range(2):  # Twilio retries the fallback (and the status callback)
        assert phone.post_raw("/voice/fallback", params).status_code == 200
        phone.post_raw("/voice/status", {**params, "CallStatus": "completed"})
    [callback] = r.runtime.store.callbacks()
    assert callback.call_sid == call.sid


def test_one_callback_per_call_sid_in_the_store_and_duplicates_survive_the_upgrade(db_url):
    old = Store(db_url)
    old.migrate(target=4)
    with old.engine.begin() as conn:  # as the code before the unique key recorded them
        for sid in ("CAdup", "CAdup", "CAone", None, None):
            conn.execute(sa.text(
                "INSERT INTO callback_requests (call_sid, created_at, phone_masked, reason,"
                " status) VALUES (:sid, :t, '+92*******551', 'busy', 'open')"),
                {"sid": sid, "t": SATURDAY_EVENING})
    assert len(old.callbacks()) == 5
    old.dispose()
    store = Store(db_url)
    assert store.migrate() == LATEST_VERSION
    rows = store.callbacks()
    assert len(rows) == 5  # nothing an agent may still need is lost
    assert sorted(r.call_sid for r in rows if r.call_sid) == ["CAdup", "CAone"]
    first = store.add_callback("CAnew", BILAL, "+92*******551", "no-answer")
    assert store.add_callback("CAnew", BILAL, "+92*******551", "retried") == first
    assert store.add_callback(None, None, None, "withheld") != store.add_callback(
        None, None, None, "withheld")
    with store.engine.connect() as conn:
        count = conn.execute(sa.text(
            "SELECT count(*) FROM callback_requests WHERE call_sid = 'CAnew'")).scalar()
    assert count == 1
    store.dispose()
