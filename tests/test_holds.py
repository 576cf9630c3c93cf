"""Holds on offered times (docs/design.md, Holds): never two bookings on one doctor's time.

Whole calls through the simulator against the sandbox Clinicea, which in most tests accepts
overlapping appointments (`allow_overlaps`), as many clinic systems do: only the IVR's own holds
and claims keep callers apart. Several app instances share one database, as several workers or
hosts do, so what one instance holds must be seen by the other through the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from flask import Flask

from flows.domain import Service
from ivr.app import runtime_of
from ivr.clock import FixedClock
from ivr.config import DEMO_CLINIC, ClinicConfig, Settings
from ivr.runtime import Runtime
from ivr.sandbox import SandboxState
from ivr.sandbox.seed import DEMO_PATIENTS
from ivr.simulator import Call, TwilioSimulator
from ivr.store import SlotUnavailable, Store
from tests.agents import api_headers, signed_in
from tests.calls import app_for
from tests.demo import BILAL, CLINIC_NUMBER, MONDAY_10AM
from tests.pg import fresh_schema_url
from tests.test_console import book_form
from tests.test_store import PAYLOAD


@dataclass
class Cluster:
    """Several app instances on one database and one sandbox calendar, one simulator each."""

    apps: list[Flask]
    phones: list[TwilioSimulator]
    sandbox: SandboxState
    clock: FixedClock
    seeded: frozenset[str]

    def runtime(self, i: int = 0) -> Runtime:
        return runtime_of(self.apps[i])

    def call(self, from_: str, instance: int = 0) -> Call:
        return self.phones[instance % len(self.phones)].call(from_=from_)

    def created(self) -> list[dict]:
        return [a for a in self.sandbox.calendar() if a["ID"] not in self.seeded]

    def offered(self, call: Call) -> list[str]:
        """The times the call was last offered (its stored state)."""
        record = self.runtime().store.load_call(call.sid)
        assert record is not None
        return list(record.state["data"].get("offered") or [])


@contextmanager
def cluster(url: str, *, instances: int = 2, overlaps: bool = True,
            clinic: ClinicConfig | None = None) -> Iterator[Cluster]:
    """`instances` apps on the database `url`; the store's clock is the test's clock, so a
    hold expires when the test moves the clock on."""
    fixed = FixedClock(MONDAY_10AM)
    sandbox = SandboxState(fixed)
    sandbox.faults.allow_overlaps(overlaps)
    apps: list[Flask] = []
    phones: list[TwilioSimulator] = []
    clients: list[httpx.Client] = []
    try:
        for i in range(instances):
            cfg = Settings.for_tests(database_url=url, **({"clinic": clinic} if clinic else {}))
            app = app_for(cfg, clock=fixed, sandbox_state=sandbox,
                          # A generous lock bound: concurrent callers on a busy machine must
                          # not turn into apologies here (the 3 s bound: test_limits.py).
                          store=Store(url, now=fixed.now, lock_seconds=30))
            apps.append(app)
            http = httpx.Client(transport=httpx.WSGITransport(app=app),
                                base_url="http://testserver")
            clients.append(http)
            phones.append(TwilioSimulator("http://testserver", cfg.twilio_auth_token, http=http,
                                          to=CLINIC_NUMBER, seed=100 + i))
        seeded = frozenset(a["ID"] for a in sandbox.calendar())
        yield Cluster(apps, phones, sandbox, fixed, seeded)
    finally:
        for http in clients:
            http.close()
        for app in apps:
            runtime_of(app).close()


def new_caller(call: Call, name: str) -> None:
    """A caller not in Clinicea registers and reaches the first doctor's menu of times."""
    call.press("1")  # register
    call.say(f"{name} tester")
    call.press("1")  # the name is right
    call.press("1")  # the first doctor
    assert "press 1" in call.last_heard.lower(), call.transcript_text()


def take_first_time(call: Call) -> None:
    """Press 1 for the first time offered, no reason, confirm."""
    call.press("1")
    call.silence()
    call.press("1")


def one_caller(c: Cluster, i: int) -> str:
    call = c.call(f"+9230088{i:05d}", instance=i)
    new_caller(call, f"caller{chr(97 + i % 26)}")
    take_first_time(call)
    assert "You're booked" in call.heard, call.transcript_text()
    assert "just taken" not in call.heard, call.transcript_text()
    return call.sid


def assert_n_callers_get_n_times(c: Cluster, n: int) -> None:
    with ThreadPoolExecutor(max_workers=n) as pool:
        sids = list(pool.map(lambda i: one_caller(c, i), range(n)))
    assert len(set(sids)) == n
    created = c.created()
    assert len(created) == n
    times = [(a["StaffID"], a["StartDateTime"]) for a in created]
    assert len(set(times)) == n, sorted(times)  # never two on one doctor's time
    # Nobody was sent to Clinicea for a time another caller had: one POST per booking.
    posts = [q for q in c.sandbox.requests() if q.operation == "register_and_book"]
    assert len(posts) == n


@pytest.mark.slow
@pytest.mark.parametrize("n", [6, 20])
def test_callers_at_once_after_the_first_time_get_different_times_sqlite(tmp_path: Path, n):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        assert_n_callers_get_n_times(c, n)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("n", [6, 20])
def test_callers_at_once_after_the_first_time_get_different_times_postgres(
    pg_database, n
):
    with cluster(fresh_schema_url(pg_database)) as c:
        assert_n_callers_get_n_times(c, n)


def test_a_held_time_is_not_offered_to_another_caller_until_it_expires(tmp_path: Path):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        first = c.call("+923008800001", instance=0)
        new_caller(first, "alpha")
        held = c.offered(first)
        second = c.call("+923008800002", instance=1)  # the other instance
        new_caller(second, "bravo")
        assert not set(held) & set(c.offered(second))
        c.clock.advance(minutes=c.runtime().settings.clinic.hold_minutes + 1)
        third = c.call("+923008800003", instance=1)
        new_caller(third, "charlie")
        # The first caller's holds have expired (the second's too): offered again.
        assert c.offered(third)[0] == held[0]


def test_hanging_up_releases_the_held_times(tmp_path: Path):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        first = c.call("+923008800001")
        new_caller(first, "alpha")
        held = c.offered(first)
        other = c.call("+923008800002", instance=1)
        new_caller(other, "bravo")
        assert held[0] not in c.offered(other)
        other.hang_up()
        first.hang_up()  # status callback: its times are free at once (no clock moved)
        later = c.call("+923008800003", instance=1)
        new_caller(later, "charlie")
        assert c.offered(later)[0] == held[0]
        assert c.runtime().store.held_by(first.sid) == []


def test_the_console_and_the_api_refuse_a_time_a_caller_holds(tmp_path: Path):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        call = c.call("+923008800001")
        new_caller(call, "alpha")
        held = c.offered(call)[0]
        doctor_id = c.runtime().store.load_call(call.sid).state["data"]["doctor_id"]
        app = c.apps[1]
        api = app.test_client()
        response = api.post("/api/bookings", headers=api_headers(app), json={
            "doctor_id": doctor_id, "start": held[:16], "patient_id": BILAL.id})
        assert response.status_code == 409, response.json
        console = signed_in(app)
        page = console.get("/console/caller", query_string={
            "mobile": BILAL.e164, "day": held[:10]}).text
        form = book_form(page, start=held[:16], doctor_id=doctor_id, notes="by the desk")
        refused = console.post("/console/caller/book", data=form)
        assert refused.status_code == 409
        assert "no longer free" in refused.text
        assert c.created() == []
        # The caller still gets the time they were offered.
        take_first_time(call)
        assert "You're booked" in call.heard, call.transcript_text()
        [appt] = c.created()
        assert appt["StartDateTime"] == held


def test_a_slow_caller_whose_hold_expired_is_offered_fresh_times(tmp_path: Path):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        slow = c.call("+923008800001")
        new_caller(slow, "alpha")
        first_time = c.offered(slow)[0]
        c.clock.advance(minutes=c.runtime().settings.clinic.hold_minutes + 1)
        quick = c.call("+923008800002", instance=1)
        new_caller(quick, "bravo")
        assert c.offered(quick)[0] == first_time  # the slow caller's hold has expired
        take_first_time(quick)
        assert "You're booked" in quick.heard
        take_first_time(slow)  # takes the time it heard long ago
        assert "just taken" in slow.last_heard, slow.transcript_text()
        assert first_time not in c.offered(slow)  # fresh times
        take_first_time(slow)
        assert "You're booked" in slow.last_heard, slow.transcript_text()
        times = [a["StartDateTime"] for a in c.created()]
        assert len(times) == 2 and len(set(times)) == 2


def test_three_callers_while_clinicea_refuses_the_first_attempt_are_never_told_one_time(
    tmp_path: Path,
):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}", overlaps=False) as c:
        c.sandbox.faults.fail_next(503, times=1, operation="register_and_book")
        calls = [c.call(f"+92300880000{i}", instance=i) for i in range(3)]
        for i, call in enumerate(calls):
            new_caller(call, f"caller{chr(97 + i)}")
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(take_first_time, calls))
        told = []
        for call in calls:
            assert "just taken" not in call.heard, call.transcript_text()
            assert "You're booked" in call.heard or "I've taken your request" in call.heard
            told.append(c.runtime().store.load_call(call.sid).state["data"]["start"])
        assert len(set(told)) == 3, told  # nobody was told a time another caller was told
        rt = c.runtime(1)
        worker = rt.services.outbox.worker("w")
        c.clock.advance(minutes=10)  # past the backoff
        worker.run_once()
        rows = rt.store.bookings()
        assert [b.status for b in rows] == ["booked"] * 3, [b.failure_reason for b in rows]
        assert sorted(a["StartDateTime"] for a in c.created()) == sorted(told)


def test_the_worker_ivr_serve_runs_drops_the_days_it_books_from_the_webs_calendar(
    tmp_path: Path,
):
    """One Outbox per process: what the worker books is dropped from the calendar the calls of
    that process offer times from, as a booking made in a call is."""
    from ivr.worker import build_worker

    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}", instances=1) as c:
        rt = c.runtime()
        call = c.call(BILAL.e164)
        for keys in ("1", "1", "1"):  # a returning patient: same doctor, first time
            call.press(keys)
        call.silence()
        day = datetime.fromisoformat(c.runtime().store.load_call(call.sid).state["data"]["start"])
        c.sandbox.faults.fail_next(503, times=1, operation="book")
        call.press("1")
        assert "I've taken your request" in call.last_heard
        rt.services.appointments_on(day.date())  # another call looks at that day meanwhile
        assert rt.services.calendar.get(day.date()) is not None
        c.clock.advance(minutes=10)  # past the retry's backoff
        assert build_worker(rt).run_once() == 1
        assert [b.status for b in rt.store.bookings()] == ["booked"]
        assert rt.services.calendar.get(day.date()) is None


def test_a_slot_longer_than_the_grid_holds_every_step_it_covers(tmp_path: Path):
    """A 40-minute visit on a 20-minute grid: a held 10:00 also keeps 10:20 from others."""
    long_visit = Service(DEMO_CLINIC.default_service_id, "Long consultation", 40)
    clinic = dataclasses.replace(DEMO_CLINIC, services=(long_visit,))
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}", clinic=clinic) as c:
        first = c.call("+923008800001")
        new_caller(first, "alpha")
        held = [datetime.fromisoformat(t) for t in c.offered(first)]
        second = c.call("+923008800002", instance=1)
        new_caller(second, "bravo")
        other = [datetime.fromisoformat(t) for t in c.offered(second)]
        # Every slot offered to the second caller starts after the first caller's last
        # held visit has ended (its 40 minutes), none inside it.
        assert min(other) >= max(held) + timedelta(minutes=40), (held, other)


def test_picking_a_time_lets_the_other_offered_times_go_and_changing_lets_it_go(
    tmp_path: Path,
):
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        first = c.call("+923008800001")
        new_caller(first, "alpha")
        offered = c.offered(first)
        first.press("1")  # takes the first: the other two are free for others at once
        second = c.call("+923008800002", instance=1)
        new_caller(second, "bravo")
        assert c.offered(second)[:2] == offered[1:], (offered, c.offered(second))
        second.hang_up()
        first.silence()
        assert "Press 1 to book it, 2 to change" in first.last_heard
        # The read-back keeps the picked time held...
        assert [t for _, t in c.runtime().store.held_by(first.sid)] == [
            datetime.fromisoformat(offered[0])]
        first.press("2")  # ...and "change" offers times again: what it holds is that offer
        assert {t.isoformat() for _, t in c.runtime().store.held_by(first.sid)} == set(
            c.offered(first))


# --- the store's key, on SQLite and PostgreSQL ------------------------------------------------

SLOT = datetime(2026, 11, 24, 10, 0)
NEXT = SLOT + timedelta(minutes=20)


def test_one_owner_per_time_holds_claims_expiry_and_release(store: Store, clock) -> None:
    soon = store.now() + timedelta(minutes=5)
    assert store.hold_slots("CA1", "D1", [[SLOT], [NEXT]], soon) == [True, True]
    assert store.hold_slots("CA2", "D1", [[SLOT], [NEXT, NEXT + timedelta(minutes=20)]],
                            soon) == [False, False]  # a two-step slot: all steps or none
    assert store.claimed_times("D1", SLOT, SLOT + timedelta(hours=1), except_call="CA2") == [
        SLOT, NEXT]
    with pytest.raises(SlotUnavailable):  # another caller's live hold: nothing is written
        store.enqueue_claimed_booking("API:1", call_sid=None, payload=PAYLOAD,
                                      doctor_id="D1", steps=[SLOT])
    assert store.get_booking("API:1") is None
    # The caller's own hold becomes the booking's claim, in the outbox row's transaction.
    record = store.enqueue_claimed_booking("CA1:1", call_sid="CA1", payload=PAYLOAD,
                                           doctor_id="D1", steps=[SLOT])
    assert record.status == "pending" and store.held_by("CA1") == [("D1", NEXT)]
    clock.advance(minutes=6)  # holds expire; an open booking's claim does not
    assert store.hold_slots("CA2", "D1", [[SLOT], [NEXT]], store.now() + timedelta(minutes=5)
                            ) == [False, True]
    assert store.mark_failed("CA1:1", "slot taken: test")  # a failed booking lets its time go
    assert store.hold_slots("CA2", "D1", [[SLOT]], store.now() + timedelta(minutes=5)) == [True]
    assert store.release_holds("CA2") == 2 and store.claimed_times(
        "D1", SLOT, SLOT + timedelta(hours=1)) == []


def test_a_time_asked_for_in_one_breath_is_held_against_a_second_caller(tmp_path: Path):
    """Issue 10 on top of the holds: the exact time a caller asks for is held while they hear
    the read-back, so a second caller asking for it in the same words hears it is not free and
    gets the nearest free times, and both are booked, on different times."""
    ask = "book me with Dr. Khan on Friday at 11 for a sore throat"
    with cluster(f"sqlite:///{tmp_path / 'ivr.db'}") as c:
        first = c.call(BILAL.e164, instance=0)
        first.say(ask)
        assert "11 a.m." in first.last_heard and "Press 1 to book it" in first.last_heard
        second = c.call(DEMO_PATIENTS["Hira Malik"].e164, instance=1)
        second.say(ask)
        assert "not free" in second.last_heard, second.transcript_text()
        first.press("1")
        second.press("1")  # the nearest free time offered instead
        assert "Press 1 to book it" in second.last_heard  # the reason was said already
        assert "11 a.m." not in second.last_heard
        second.press("1")
        assert "You're booked" in first.heard and "You're booked" in second.heard, (
            second.transcript_text())
        times = [(a["StaffID"], a["StartDateTime"]) for a in c.created()]
        assert len(times) == 2 and len(set(times)) == 2, times
        assert any(t.endswith("T11:00:00") for _, t in times)
