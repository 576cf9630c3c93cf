"""/healthz, /metrics, the X-IVR-Own-Ms header and the JSON logs, after whole simulated calls."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import runpy
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ivr import logs
from ivr.config import ConfigError, Settings
from ivr.ops import Histogram, Metrics, Snapshot, SnapshotDir, metrics_of
from ivr.sandbox.seed import DEMO_PATIENTS
from tests.calls import rig

BILAL = DEMO_PATIENTS["Bilal Ahmed"].e164


def _book_by_keypad(r):  # noqa: ANN001, ANN202
    call = r.call(BILAL)
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    assert "booked" in call.heard
    return call


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_healthz_ok_without_patient_data():
    with rig() as r:
        client = r.app.test_client()
        res = client.get("/healthz")
        assert res.status_code == 200
        assert res.get_json() == {"status": "ok", "store": "ok", "clinicea": "ok"}
        assert res.headers["Cache-Control"] == "no-store"


def test_healthz_caches_the_clinicea_check():
    with rig() as r:
        client = r.app.test_client()
        client.get("/healthz")
        logins = r.runtime.client.counters["login"]
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
        assert r.runtime.client.counters["login"] == logins


def test_healthz_degraded_when_clinicea_refuses_and_503_when_the_store_is_down():
    with rig(clinicea_password="wrong") as r:
        client = r.app.test_client()
        res = client.get("/healthz")
        assert res.status_code == 200
        assert res.get_json() == {"status": "degraded", "store": "ok", "clinicea": "refused"}
        r.runtime.store.ping = lambda: False  # type: ignore[method-assign]
        res = client.get("/healthz")
        assert res.status_code == 503
        assert res.get_json()["store"] == "down"


def test_metrics_after_a_booking_call():
    with rig() as r:
        call = _book_by_keypad(r)
        assert call.ended
        res = r.app.test_client().get("/metrics")
        assert res.status_code == 200
        assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = res.get_data(as_text=True)
        s = _samples(text)
        assert s['ivr_calls_today{outcome="booked"}'] == 1
        assert s['ivr_calls_7d{outcome="booked"}'] == 1
        assert s['ivr_outbox_bookings{status="booked"}'] == 1
        assert s["ivr_outbox_oldest_pending_seconds"] == 0
        assert s['ivr_webhook_seconds_count{step="incoming"}'] == 1
        assert s['ivr_webhook_seconds_count{step="menu"}'] == 1
        assert s['ivr_webhook_seconds_count{step="status"}'] == 1
        assert s['ivr_webhook_own_seconds_bucket{step="menu",le="+Inf"}'] == 1
        for op in ("login", "search", "past_visits", "appointments_by_date", "book"):
            assert s[f'ivr_clinicea_request_seconds_count{{operation="{op}"}}'] >= 1, op
        assert "ivr_clinicea_errors_total" in text
        assert not any(k.startswith("ivr_clinicea_errors_total{") for k in s)
        assert s["ivr_store_up"] == 1
        assert "+923216315551" not in text and "Bilal" not in text


def test_metrics_count_clinicea_errors_by_operation():
    with rig() as r:
        r.sandbox.faults.fail_next(503, times=1, operation="search")
        r.call(BILAL)
        s = _samples(r.app.test_client().get("/metrics").get_data(as_text=True))
        assert s['ivr_clinicea_errors_total{operation="search",error="503"}'] == 1
        assert s['ivr_clinicea_request_seconds_count{operation="search"}'] == 2  # the retry


def test_own_time_header_excludes_clinicea_wait():
    with rig() as r:
        r.sandbox.faults.latency(60, 0)
        call = r.call(BILAL)  # search + past visits: >= 120 ms inside Clinicea
        res = r.phone.post_raw("/voice/step/menu?t=1&k=answer",
                               {**r.phone.webhook_params(BILAL, call_sid=call.sid,
                                                         call_status="in-progress"),
                                "Digits": "1"})
        assert res.status_code == 200
        own = float(res.headers["X-IVR-Own-Ms"])
        waited = float(res.headers["X-IVR-Clinicea-Ms"])
        assert waited >= 0
        assert own >= 0
        first = r.phone.post_raw("/voice/incoming", r.phone.webhook_params("+923001112223"))
        assert float(first.headers["X-IVR-Clinicea-Ms"]) >= 60
        assert metrics_of(r.app).webhook.count("menu") >= 1


def test_unknown_step_names_do_not_create_series():
    metrics = Metrics(steps=["menu"])
    assert metrics.step_label("/voice/step/menu") == "menu"
    assert metrics.step_label("/voice/step/zzz-made-up") == "other"
    assert metrics.step_label("/voice/incoming") == "incoming"


def test_histogram_exposition():
    h = Histogram("x_seconds", "help", ["a"], [0.1, 1.0])
    h.observe(0.05, 'q"1')
    h.observe(2.0, 'q"1')
    lines = h.expose()
    assert 'x_seconds_bucket{a="q\\"1",le="0.1"} 1' in lines
    assert 'x_seconds_bucket{a="q\\"1",le="1.0"} 1' in lines
    assert 'x_seconds_bucket{a="q\\"1",le="+Inf"} 2' in lines
    assert 'x_seconds_count{a="q\\"1"} 2' in lines


def test_json_log_lines_carry_the_call_sid(caplog):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with rig(log_level="INFO") as r:
            caplog.set_level(logging.INFO)
            r.sandbox.faults.fail_next(503, times=1, operation="search")  # a logged retry
            call = r.call(BILAL)
    finally:
        root.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    # The search retry the fault above causes (the one line this test is about).
    retry = [line for line in lines if "search: retrying" in line["message"]]
    assert retry, lines
    assert retry[0]["call_sid"] == call.sid
    assert retry[0]["level"] == "INFO"
    assert retry[0]["logger"] == "ivr.clinicea.client"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", retry[0]["time"])
    # caplog still sees the records
    assert any("retrying" in rec.getMessage() for rec in caplog.records)


def test_json_formatter_outside_a_request_and_with_exceptions():
    fmt = logs.JsonFormatter()
    rec = logging.makeLogRecord({"name": "x", "levelname": "ERROR", "msg": "boom %s",
                                 "args": (1,)})
    out = json.loads(fmt.format(rec))
    assert out["message"] == "boom 1" and "call_sid" not in out
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec.exc_info = sys.exc_info()
    with logs.bind_call_sid("CA" + "0" * 32):
        out = json.loads(fmt.format(rec))
    assert out["call_sid"] == "CA" + "0" * 32
    assert out["exc_type"] == "ValueError" and "bad" in out["exc"]


def test_configure_is_idempotent_and_only_lowers_the_root_level():
    root = logging.getLogger()
    before_level, before = root.level, list(root.handlers)
    try:
        h1 = logs.configure("WARNING")
        h2 = logs.configure("INFO")
        assert h1 is h2
        assert sum(1 for h in root.handlers if h is h1) == 1
        assert root.level <= logging.INFO
    finally:
        root.handlers[:] = before
        root.setLevel(before_level)


def test_warm_up_logs_in_before_the_first_call():
    from ivr.ops import warm_up

    with rig() as r:
        assert r.runtime.client.counters["login"] == 0
        warm_up(r.app, wait=True)
        assert r.runtime.client.counters["login"] == 1
        r.call(BILAL)
        assert r.runtime.client.counters["login"] == 1


def test_a_returning_patients_keypad_booking_costs_four_clinicea_requests():
    """Search, past visits, the day's calendar for the offered times, the booking: the booking's
    check that the time is still free reads the calendar the times were just offered from."""
    with rig() as r:
        _book_by_keypad(r)
        used = Counter(q.operation for q in r.sandbox.requests() if q.operation != "login")
        assert used == {"search": 1, "past_visits": 1, "appointments_by_date": 1, "book": 1}


def test_the_booking_helper_threads_clinicea_time_is_not_own_time():
    with rig() as r:
        r.sandbox.faults.latency(250, 0)
        _book_by_keypad(r)
        s = _samples(r.app.test_client().get("/metrics").get_data(as_text=True))
        # The booking step posts (>= 250 ms inside Clinicea, in the `book-<CallSid>:1` helper
        # thread; the calendar check uses the cached day) while the webhook waits: none of it
        # is own time.
        assert s['ivr_webhook_seconds_sum{step="book"}'] >= 0.25
        assert s['ivr_webhook_own_seconds_sum{step="book"}'] < 0.125


# --------------------------------------------------------------------------- several workers


def _scrape(r) -> dict[str, float]:  # noqa: ANN001
    return _samples(r.app.test_client().get("/metrics").get_data(as_text=True))


def _eventually(check, timeout: float = 5.0):  # noqa: ANN001, ANN202
    """`check()` until it holds (a worker's last figures reach disk within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _webhook_counts(s: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in s.items() if k.startswith("ivr_webhook_seconds_count{")}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_scrape_of_either_worker_shows_both_workers_calls(tmp_path):
    shared = {"metrics_dir": str(tmp_path), "metrics_run": "start-1"}
    with rig(**shared) as a, rig(**shared) as b:
        _book_by_keypad(a)
        _book_by_keypad(b)
        r = b.call("+923001112223")  # an unknown caller, on one worker only
        r.hang_up()
        ma, mb = metrics_of(a.app), metrics_of(b.app)
        steps = {"incoming", "menu", "book", "status", "register"}
        expected = {f'ivr_webhook_seconds_count{{step="{step}"}}':
                    ma.webhook.count(step) + mb.webhook.count(step) for step in steps}
        expected = {k: v for k, v in expected.items() if v}
        assert expected['ivr_webhook_seconds_count{step="incoming"}'] == 3
        assert expected['ivr_webhook_seconds_count{step="book"}'] == 2
        searches = ma.clinicea.count("search") + mb.clinicea.count("search")
        assert searches == 3

        def merged(worker) -> dict[str, float]:  # noqa: ANN001
            s = _scrape(worker)
            for key, value in expected.items():
                assert s[key] == value, (key, s[key], value)
            assert s['ivr_webhook_own_seconds_count{step="book"}'] == 2
            assert s['ivr_webhook_seconds_bucket{step="incoming",le="+Inf"}'] == 3
            assert s['ivr_clinicea_request_seconds_count{operation="search"}'] == searches
            assert s["ivr_metrics_workers_merged"] == 2
            return s

        for worker in (a, b, a):
            s = _eventually(lambda w=worker: merged(w))
        # Sums: the merged histogram's sum is both workers' sums.
        live = ma.webhook.snapshot()[("incoming",)][1] + mb.webhook.snapshot()[("incoming",)][1]
        assert abs(s['ivr_webhook_seconds_sum{step="incoming"}'] - live) < 1e-9
        # Memory stays per process, labelled by pid (both "workers" are this process here).
        assert s[f'ivr_process_resident_memory_bytes{{pid="{os.getpid()}"}}'] > 0
        assert "ivr_process_resident_memory_bytes " not in "\n".join(s)
        # Each worker's file: atomically replaced (no temp left), 0600 in a 0700 directory.
        run_dir = tmp_path / "run-start-1"
        files = sorted(p.name for p in run_dir.iterdir())
        assert len(files) == 2 and all(n.endswith(".json") for n in files), files
        assert all(oct(os.stat(run_dir / n).st_mode & 0o777) == "0o600" for n in files)
        assert oct(os.stat(run_dir).st_mode & 0o777) == "0o700"


def test_without_a_run_stamp_nothing_is_published(tmp_path):
    with rig(metrics_dir=str(tmp_path)) as a, rig(metrics_dir=str(tmp_path)) as b:
        _book_by_keypad(a)
        s = _scrape(b)
        assert not _webhook_counts(s)
        assert s["ivr_metrics_workers_merged"] == 1
        assert metrics_of(a.app).publisher is None
    assert list(tmp_path.iterdir()) == []


def test_an_exited_workers_last_figures_keep_counting(tmp_path):
    from ivr.ops import flush

    shared = {"metrics_dir": str(tmp_path), "metrics_run": "start-1"}
    with rig(**shared) as gone:
        _book_by_keypad(gone)
        flush(gone.app)  # gunicorn's worker_exit hook
        counts = _webhook_counts(_samples("\n".join(metrics_of(gone.app).expose())))
    with rig(**shared) as survivor:
        s = _scrape(survivor)
        assert _webhook_counts(s) == counts
        assert s["ivr_metrics_workers_merged"] == 2
        survivor.call(BILAL).hang_up()
        s = _eventually(lambda: _check_incoming(survivor, counts))
        assert s['ivr_webhook_seconds_count{step="status"}'] == 2


def _check_incoming(r, before: dict[str, float]) -> dict[str, float]:  # noqa: ANN001
    s = _scrape(r)
    key = 'ivr_webhook_seconds_count{step="incoming"}'
    assert s[key] == before[key] + 1
    return s


def test_a_previous_starts_snapshots_are_not_merged(tmp_path):
    """Runs are server starts: an earlier start's directory is never read, and is removed once
    its gunicorn master is gone; another live master's run is left alone."""
    old = Metrics(steps=["menu"])
    for _ in range(5):
        old.webhook.observe(0.1, "incoming")
        old.clinicea_errors.inc("search", "503")
    snapshot = old.snapshot().to_json(old)
    dead, alive = _dead_pid(), os.getppid()
    earlier_start = f"{dead}-1000"  # master exited
    same_master_pid = f"{os.getpid()}-1000"  # an earlier start whose master had our run's pid
    other_server = f"{alive}-1000"  # another server still running on this host
    for run in (earlier_start, same_master_pid, other_server, "manual-old"):
        SnapshotDir(str(tmp_path), run).write(snapshot)
    this_start = f"{os.getpid()}-2000"
    with rig(metrics_dir=str(tmp_path), metrics_run=this_start) as r:
        r.call(BILAL).hang_up()
        s = _eventually(lambda: _check_incoming(r, {'ivr_webhook_seconds_count{step="incoming"}':
                                                    0}))
        assert s["ivr_metrics_workers_merged"] == 1
        assert not any(k.startswith("ivr_clinicea_errors_total{") for k in s)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f"run-{this_start}", f"run-{other_server}", "run-manual-old"])


def test_a_snapshot_with_other_buckets_or_labels_is_left_out():
    mine = Metrics(steps=["menu"])
    mine.webhook.observe(0.1, "menu")
    mine.webhook_own.observe(0.02, "menu")
    data = mine.snapshot().to_json(mine)
    data["histograms"]["ivr_webhook_seconds"]["buckets"] = [0.1, 1.0]
    data["counters"]["ivr_webhook_errors_total"]["labels"] = ["path"]
    data["histograms"]["ivr_webhook_own_seconds"]["series"].append([["x"], [1, 2], "bad"])
    snap = Snapshot.from_json(data, mine)
    assert snap is not None
    assert "ivr_webhook_seconds" not in snap.histograms
    assert "ivr_webhook_errors_total" not in snap.counters
    assert snap.histograms["ivr_webhook_own_seconds"] == mine.webhook_own.snapshot()
    assert Snapshot.from_json({"format": 99}, mine) is None
    assert Snapshot.from_json([], mine) is None
    lines = mine.render([mine.snapshot(), snap])
    assert 'ivr_webhook_seconds_count{step="menu"} 1' in lines  # not double counted
    assert 'ivr_webhook_own_seconds_count{step="menu"} 2' in lines


def test_the_gunicorn_start_stamp_reaches_the_settings(monkeypatch):
    monkeypatch.delenv("IVR_METRICS_RUN", raising=False)
    conf = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
    conf["on_starting"](None)
    settings = Settings.from_env(dict(os.environ))
    assert re.fullmatch(rf"{os.getpid()}-\d+", settings.metrics_run or "")
    assert Settings.from_env({}).metrics_run is None
    assert Settings.from_env({"IVR_METRICS_DIR": "/var/lib/ivr"}).metrics_dir == "/var/lib/ivr"
    with pytest.raises(ConfigError, match="IVR_METRICS_RUN"):
        Settings.from_env({"IVR_METRICS_RUN": "../elsewhere"})
