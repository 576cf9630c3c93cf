"""Holds across real processes: callers ringing at once, all after the first time offered,
against a Clinicea that accepts overlapping appointments. On SQLite the Procfile's gunicorn runs
two workers; on PostgreSQL two separate app servers answer the calls in turn. Every caller is
booked, each on a time of their own (docs/design.md, "Holds")."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID
from ivr.simulator import TwilioSimulator
from tests.demo import BILAL
from tests.pg import fresh_schema_url
from tests.test_process_model import (
    PY,
    REAL_SECRETS,
    _clinicea,
    _env,
    _free_port,
    _kill_group,
    _procfile_web,
)

CALLERS = 6

pytestmark = pytest.mark.slow


@contextmanager
def overbooking_clinicea() -> Iterator[str]:
    """The sandbox in its own process, storing overlapping appointments like many clinics."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([PY, "-m", "ivr.cli", "sandbox", "--port", str(port), "--faults",
                             "overlap"], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(f"{url}/_sandbox/faults", proc)
        assert httpx.get(f"{url}/_sandbox/faults").json()["allow_overlaps"] is True
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _wait(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@contextmanager
def web_server(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    port = _free_port()
    proc = _procfile_web(port, cwd, env)
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", proc)  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}"
    finally:
        _kill_group(proc)  # type: ignore[arg-type]


def _callers_at_once(bases: list[str]) -> list[str]:
    """CALLERS calls, each step taken by all callers together (a barrier between steps), each
    pressing 1 for the first time offered; the calls go to `bases` in turn. Returns what each
    caller heard last."""
    barrier = threading.Barrier(CALLERS)
    heard: list[str] = [""] * CALLERS
    errors: list[BaseException] = []

    def caller(i: int) -> None:
        base = bases[i % len(bases)]
        with httpx.Client(base_url=base, timeout=30) as http:
            phone = TwilioSimulator(base, REAL_SECRETS["TWILIO_AUTH_TOKEN"], http=http)
            try:
                barrier.wait()
                call = phone.call(BILAL.e164)
                for answer in ("1", "1", "1", None, "1"):  # book, Dr. Farooq, first time, -, yes
                    barrier.wait()
                    call.silence() if answer is None else call.press(answer)
                heard[i] = call.heard
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                barrier.abort()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    return heard


def _farooq_bookings(clinicea: str) -> list[str]:
    rows = []
    for day in _days(clinicea):
        rows += httpx.get(f"{clinicea}/_sandbox/appointments", params={"date": day}).json()
    return sorted(r["StartDateTime"] for r in rows
                  if r.get("StaffID") == DEMO_DOCTOR_FAROOQ_ID and r.get("PatientID") == BILAL.id
                  and r.get("AppointmentStatus") == "Scheduled")


def _days(clinicea: str) -> set[str]:
    rows = httpx.get(f"{clinicea}/_sandbox/appointments").json()
    return {r["StartDateTime"][:10] for r in rows}


def _check(heard: list[str], clinicea: str, before: list[str]) -> None:
    assert all("You're booked" in h for h in heard), heard
    assert not any("just taken" in h for h in heard), heard
    booked = [s for s in _farooq_bookings(clinicea) if s not in before]
    assert len(booked) == CALLERS and len(set(booked)) == CALLERS, booked


def test_callers_at_once_on_two_gunicorn_workers_and_sqlite_get_different_times(tmp_path: Path):
    with overbooking_clinicea() as clinicea:
        env = _env(**_clinicea(clinicea), WEB_CONCURRENCY="2", IVR_WEB_THREADS="4",
                   IVR_DATABASE_URL=f"sqlite:///{tmp_path / 'ivr.db'}")
        before = _farooq_bookings(clinicea)
        with web_server(tmp_path, env) as base:
            _check(_callers_at_once([base]), clinicea, before)


@pytest.mark.postgres
def test_callers_at_once_on_two_app_servers_and_postgresql_get_different_times(
        tmp_path: Path, pg_database: str):
    with overbooking_clinicea() as clinicea:
        env = _env(**_clinicea(clinicea), WEB_CONCURRENCY="1", IVR_WEB_THREADS="4",
                   IVR_DATABASE_URL=fresh_schema_url(pg_database))
        before = _farooq_bookings(clinicea)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with web_server(tmp_path / "a", env) as one, web_server(tmp_path / "b", env) as two:
            _check(_callers_at_once([one, two]), clinicea, before)
