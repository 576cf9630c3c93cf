"""The benchmark's own smoke run (seconds long), so `python -m bench` cannot rot."""

from __future__ import annotations

import pytest

from bench import report, run
from bench.run import (
    CallResult,
    Sample,
    arrival_times,
    caller_seconds,
    count_double_booked,
    mean_in_progress,
    pct,
    step_of,
)
from ivr.simulator import Dialed, Heard, Pressed, Silence


@pytest.mark.slow
def test_quick_run_measures_scenarios_and_a_round(tmp_path):
    result = run(calls=[2], quick=True, workers=2, threads=4, latency_ms=20, jitter_ms=5, pace=0.01,
                 out_dir=tmp_path)
    names = [s.name for s in result.scenarios]
    assert len(names) == 5  # keypad, new, transfer, one breath returning and new
    assert all(s.completed for s in result.scenarios), result.scenarios
    # A whole request said at once: the request and the read-back, nothing else.
    breath = {s.name: s for s in result.scenarios}["one breath: returning patient"]
    assert breath.questions == 2 and breath.requests["book"] == 1
    assert breath.questions < result.scenarios[0].questions
    returning = result.scenarios[0]
    assert returning.requests["search"] == 1
    assert returning.requests["book"] == 1
    assert result.scenarios[2].requests.get("book", 0) == 0  # a transfer books nothing
    assert [r.mode for r in result.rounds] == ["poisson", "stress"]
    poisson, stress = result.rounds
    assert poisson.in_progress == 2 and poisson.calls == 4  # 2 in progress, 1 warm-up + 1
    assert stress.in_progress == 2 and stress.calls == 2
    assert poisson.arrivals_per_s == pytest.approx(2 / result.config["mean_call_s"], rel=0.01)
    assert poisson.mean_call_s > 0 and 0 <= poisson.in_progress_measured <= poisson.calls
    assert result.config["overlap"] in ("on", "unsupported")  # asked for by default
    for r in result.rounds:
        assert r.wanted == r.calls and r.booked == r.wanted, r.error_examples
        assert r.errors == 0, r.error_examples
        assert r.slot_taken >= 0
        assert r.double_booked == 0  # never two bookings on one doctor's time
        assert 2 <= r.requests_per_booked_call < 30
        assert set(r.own_ratio) == {"p50", "p95", "p99"}
        assert all(v > 0 for v in r.own_ratio.values())
        assert r.app_own.p50 <= r.app_own.p95 <= r.app_own.p99
    r = stress
    assert r.webhooks >= 12 and r.baseline_webhooks >= 12
    assert r.app_latency.p50 > 0 and r.baseline_latency.p50 > 0
    assert r.server_own.p99 > 0
    assert len(r.peak_rss_mb) == 2 and all(m > 10 for m in r.peak_rss_mb)
    assert r.logins == 1  # two workers, one shared token
    md = (tmp_path / "latest.md").read_text()
    assert "Poisson" in md and "| 2 at once | 2 | 2/2 |" in md and "## Targets" in md
    assert "booked / wanted = 100%" in md and 'slot taken" after the read-back' in md
    assert (tmp_path / "latest.png").stat().st_size > 1000
    assert (tmp_path / "latest.json").exists()


def test_poisson_arrivals_and_calls_in_progress():
    import random

    offsets = arrival_times(2000, 4.0, random.Random(1))
    assert offsets[0] == 0 and offsets == sorted(offsets)
    assert 2000 / offsets[-1] == pytest.approx(4.0, rel=0.1)  # the rate asked for
    calls = [CallResult("a", "book", [], started=0.0, ended=10.0),
             CallResult("b", "book", [], started=5.0, ended=20.0),
             CallResult("?", "unfinished", [])]
    assert mean_in_progress(calls, 0.0, 10.0) == pytest.approx(1.5)  # 10 s + 5 s over 10 s
    assert mean_in_progress(calls, 10.0, 20.0) == pytest.approx(1.0)


def test_double_bookings_are_overlaps_of_one_doctor():
    def row(i: int, staff: str, start: str, end: str, status: str = "Scheduled") -> dict:
        return {"ID": str(i), "StaffID": staff, "StartDateTime": f"2026-11-23T{start}:00",
                "EndDateTime": f"2026-11-23T{end}:00", "AppointmentStatus": status}

    rows = [row(1, "D1", "10:00", "10:20"), row(2, "D1", "10:20", "10:40"),  # back to back
            row(3, "D2", "10:00", "10:20"),  # another doctor, same time
            row(4, "D1", "10:00", "10:20", "Cancelled")]  # does not hold its time
    assert count_double_booked(rows) == 0
    rows += [row(5, "D1", "10:00", "10:20"),  # same time twice
             row(6, "D2", "10:10", "10:50")]  # a 40-minute service over a booked time
    assert count_double_booked(rows) == 2


def test_percentiles_and_steps():
    assert pct([1, 2, 3, 4], 50) == 2
    assert pct(list(range(1, 101)), 99) == 99
    assert step_of("/voice/step/menu") == "menu"
    assert step_of("/voice/incoming") == "incoming"


@pytest.mark.slow
@pytest.mark.postgres
def test_quick_run_on_postgres_books_and_leaves_no_database(tmp_path):
    """`--postgres`: the app stores its calls in a fresh database per start, dropped after."""
    import os

    import sqlalchemy as sa

    from tests.pg import postgres_url_or_skip

    server = postgres_url_or_skip()
    result = run(calls=[2], quick=True, workers=2, threads=4, latency_ms=20, jitter_ms=5,
                 pace=0.01, out_dir=tmp_path, stress=False, postgres=server)
    assert all(s.completed for s in result.scenarios), result.scenarios
    assert result.rounds[0].booked == result.rounds[0].wanted == 4
    assert result.rounds[0].errors == 0
    assert "store PostgreSQL" in (tmp_path / "latest.md").read_text()
    engine = sa.create_engine(server, poolclass=sa.NullPool)
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT datname FROM pg_database WHERE datname LIKE :mine"),
                            {"mine": f"ivr_bench_{os.getpid()}_%"}).scalars().all()
    engine.dispose()
    assert left == []


def test_caller_seconds_counts_words_keys_silences_and_waits():
    transcript = [Heard("one two three four five"), Pressed("1", "1"), Silence(),
                  Heard("You're booked for today"), Heard("Goodbye")]
    waits = [Sample("incoming", 0.5), Sample("menu", 0.5), Sample("status", 9.0)]
    # 5 words = 2 s, key 1 s, silence 5 s, 4 words 1.6 s, waits 1 s (status excluded)
    assert caller_seconds(transcript, waits) == pytest.approx(10.6)
    # A silence costs the gather's own timeout (the reason question waits 3 s).
    shorter = [Heard("one two three four five"), Pressed("1", "1"), Silence(3),
               Heard("You're booked for today")]
    assert caller_seconds(shorter, waits) == pytest.approx(8.6)
    assert caller_seconds([Heard("hello")], []) is None
    assert caller_seconds([Heard("hi there"), Dialed("+92", "completed")], [], "dial") == 0.8


def test_targets_table_without_rounds():
    result = report.markdown(run.__globals__["Report"](
        machine={"date": "d", "nproc": "2", "cpu": "c", "memory": "m", "python": "3",
                 "gunicorn": "g", "os": "o"},
        config={"workers": 2, "threads": 4, "worker_class": "gthread", "quick": True, "pace": 0,
                "clinicea_latency": "0", "clinic_clock": "x", "calls": []},
        scenarios=[], rounds=[]))
    assert "not measured" in result


def test_a_one_breath_caller_speaks_over_the_greeting_and_the_read_backs_instructions():
    from bench.run import drive_call
    from tests.calls import rig

    with rig() as r:
        one_breath = drive_call(r.phone, "+923216315551", "one_breath")
        keypad = drive_call(r.phone, "+923216315551", "book")
    assert one_breath.booked and one_breath.questions == 2
    assert "Hello Bilal" in one_breath.transcript
    assert "Your last visit" not in one_breath.transcript  # cut off by the request
    assert "Press 1 to book it" not in one_breath.transcript  # cut off by "yes"
    assert "Your last visit" in keypad.transcript  # the keypad caller listens to it all
    assert one_breath.caller_seconds is not None and keypad.caller_seconds is not None
    assert one_breath.caller_seconds < keypad.caller_seconds - 20
