"""/healthz, /metrics, the X-IVR-Own-Ms header and the JSON logs, after whole simulated calls."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from ivr import logs
from ivr.ops import Metrics, metrics_of
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
    """Every sample, read by Prometheus' own parser: `name{label="value",...}` (labels sorted)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def test_healthz_ok_without_patient_data(make_rig):
    r = make_rig()
    client = r.app.test_client()
    res = client.get("/healthz")
    assert res.status_code == 200
    assert res.get_json() == {"status": "ok", "store": "ok", "clinicea": "ok"}
    assert res.headers["Cache-Control"] == "no-store"


def test_healthz_caches_the_clinicea_check(make_rig):
    r = make_rig()
    client = r.app.test_client()
    client.get("/healthz")
    logins = r.runtime.client.counters["login"]
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
    assert r.runtime.client.counters["login"] == logins


def test_healthz_degraded_when_clinicea_refuses_and_503_when_the_store_is_down(make_rig):
    r = make_rig(clinicea_password="wrong")
    client = r.app.test_client()
    res = client.get("/healthz")
    assert res.status_code == 200
    assert res.get_json() == {"status": "degraded", "store": "ok", "clinicea": "refused"}
    r.runtime.store.ping = lambda: False  # type: ignore[method-assign]
    res = client.get("/healthz")
    assert res.status_code == 503
    assert res.get_json()["store"] == "down"


def test_metrics_after_a_booking_call(make_rig):
    r = make_rig()
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
    assert s['ivr_webhook_own_seconds_bucket{le="+Inf",step="menu"}'] == 1
    for op in ("login", "search", "past_visits", "appointments_by_date", "book"):
        assert s[f'ivr_clinicea_request_seconds_count{{operation="{op}"}}'] >= 1, op
    assert "ivr_clinicea_errors_total" in text
    assert not any(k.startswith("ivr_clinicea_errors_total{") for k in s)
    assert s["ivr_store_up"] == 1
    assert "+923216315551" not in text and "Bilal" not in text


def test_metrics_count_clinicea_errors_by_operation(make_rig):
    r = make_rig()
    r.sandbox.faults.fail_next(503, times=1, operation="search")
    r.call(BILAL)
    s = _samples(r.app.test_client().get("/metrics").get_data(as_text=True))
    assert s['ivr_clinicea_errors_total{error="503",operation="search"}'] == 1
    assert s['ivr_clinicea_request_seconds_count{operation="search"}'] == 2  # the retry


def test_own_time_header_excludes_clinicea_wait(make_rig):
    r = make_rig()
    r.sandbox.faults.latency(200, 0)
    started = time.perf_counter()
    first = r.phone.post_raw("/voice/incoming", r.phone.webhook_params(BILAL))
    wall_ms = (time.perf_counter() - started) * 1000
    assert first.status_code == 200
    own = float(first.headers["X-IVR-Own-Ms"])
    waited = float(first.headers["X-IVR-Clinicea-Ms"])
    assert waited >= 400  # search and past visits, 200 ms each inside Clinicea
    # The handling time is at most what the caller waited, so own time plus Clinicea time
    # fits in it only if own time leaves Clinicea out (with it, the sum would be >= 800).
    assert 0 <= own and own + waited <= wall_ms + 1
    assert metrics_of(r.app).sample("ivr_webhook_seconds_count", step="incoming") >= 1


def test_unknown_step_names_do_not_create_series():
    metrics = Metrics(steps=["menu"])
    assert metrics.step_label("/voice/step/menu") == "menu"
    assert metrics.step_label("/voice/step/zzz-made-up") == "other"
    assert metrics.step_label("/voice/incoming") == "incoming"


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


def test_warm_up_logs_in_before_the_first_call(make_rig):
    from ivr.ops import warm_up

    r = make_rig()
    assert r.runtime.client.counters["login"] == 0
    warm_up(r.app, wait=True)
    assert r.runtime.client.counters["login"] == 1
    r.call(BILAL)
    assert r.runtime.client.counters["login"] == 1


def test_a_returning_patients_keypad_booking_costs_four_clinicea_requests(make_rig):
    """Search, past visits, the day's calendar for the offered times, the booking: the booking's
    check that the time is still free reads the calendar the times were just offered from."""
    r = make_rig()
    _book_by_keypad(r)
    used = Counter(q.operation for q in r.sandbox.requests() if q.operation != "login")
    assert used == {"search": 1, "past_visits": 1, "appointments_by_date": 1, "book": 1}


def test_the_booking_helper_threads_clinicea_time_is_not_own_time(make_rig):
    r = make_rig()
    r.sandbox.faults.latency(250, 0)
    _book_by_keypad(r)
    s = _samples(r.app.test_client().get("/metrics").get_data(as_text=True))
    # The booking step posts (>= 250 ms inside Clinicea, in the `book-<CallSid>:1` helper
    # thread; the calendar check uses the cached day) while the webhook waits: none of it
    # is own time.
    assert s['ivr_webhook_seconds_sum{step="book"}'] >= 0.25
    assert s['ivr_webhook_own_seconds_sum{step="book"}'] < 0.125
