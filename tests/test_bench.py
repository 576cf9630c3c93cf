"""The benchmark's own smoke run (seconds long), so `python -m bench` cannot rot."""

from __future__ import annotations

import pytest

from bench import report, run
from bench.run import Sample, caller_seconds, pct, step_of
from ivr.simulator import Dialed, Heard, Pressed, Silence


@pytest.mark.slow
def test_quick_run_measures_scenarios_and_a_round(tmp_path):
    result = run(calls=[2], quick=True, workers=2, threads=4, latency_ms=20, jitter_ms=5, pace=0.01,
                 out_dir=tmp_path)
    names = [s.name for s in result.scenarios]
    assert len(names) == 3
    assert all(s.completed for s in result.scenarios), result.scenarios
    returning = result.scenarios[0]
    assert returning.requests["search"] == 1
    assert returning.requests["book"] == 1
    assert result.scenarios[2].requests.get("book", 0) == 0  # a transfer books nothing
    assert [r.mode for r in result.rounds] == ["paced", "stress"]
    for r in result.rounds:
        assert r.calls == 2 and r.booked == 2
        assert r.errors == 0, r.error_examples
    r = result.rounds[1]
    assert r.webhooks >= 12 and r.baseline_webhooks >= 12
    assert r.app_latency.p50 > 0 and r.baseline_latency.p50 > 0
    assert r.server_own.p99 > 0
    assert len(r.peak_rss_mb) == 2 and all(m > 10 for m in r.peak_rss_mb)
    assert r.logins == 1  # two workers, one shared token
    md = (tmp_path / "latest.md").read_text()
    assert "| 2 |" in md and "## Targets" in md
    assert (tmp_path / "latest.png").stat().st_size > 1000
    assert (tmp_path / "latest.json").exists()


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
    from pg import postgres_url_or_skip

    server = postgres_url_or_skip()
    result = run(calls=[2], quick=True, workers=2, threads=4, latency_ms=20, jitter_ms=5,
                 pace=0.01, out_dir=tmp_path, stress=False, postgres=server)
    assert all(s.completed for s in result.scenarios), result.scenarios
    assert result.rounds[0].booked == 2 and result.rounds[0].errors == 0
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
