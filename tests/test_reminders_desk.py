"""The desk's side of appointment reminders: the console page, the API and /metrics, through
Flask's test client on a rig fixed at Monday 23 November 2026, 10:00 (the day after is the one
today's run reminds)."""

from __future__ import annotations

import re
from urllib.parse import quote

from ivr.app import runtime_of
from tests.agents import api_headers, csrf_of, signed_in
from tests.openapi_check import conforming
from tests.reminder_seed import key_of, seed_reminders

BILAL, AYESHA, HIRA, USMAN = (key_of(n) for n in (
    "Bilal Ahmed", "Ayesha Siddiqui", "Hira Malik", "Usman Tariq"))


def rows_of(page: str) -> list[tuple[str, str]]:
    """(key, status) of each reminder row, in page order."""
    return re.findall(r'<tr class="reminder[^"]*" data-key="([^"]+)" data-status="([^"]+)"',
                      page)


def test_the_page_shows_tomorrows_answers_for_the_desk_first(make_rig):
    r = make_rig()
    seed_reminders(r.runtime.store)
    client = signed_in(r.app)
    page = client.get("/console/reminders")  # no day: the day today's run reminds
    assert page.status_code == 200
    text = page.text
    assert 'value="2026-11-24"' in text and 'href="/console/reminders"' in text
    # Cancel and move requests first (by appointment time), then the rest by time.
    assert rows_of(text) == [(AYESHA, "cancel_requested"), (HIRA, "move_requested"),
                             (USMAN, "queued"), (BILAL, "confirmed")]
    assert "11:00, 11:40" in text  # Usman's two appointments, one reminder
    assert "+92*******551" in text and "+923216315551" not in text  # masked numbers only
    assert "can I come on Friday instead?" in text
    counts = dict(re.findall(r'data-status="([a-z_]+)"><strong>(\d+)</strong>', text))
    assert counts == {"queued": "1", "confirmed": "1", "move_requested": "1",
                      "cancel_requested": "1"}
    assert text.count(">Done</button>") == 2  # only what the desk acts on


def test_done_marks_a_reminder_handled_and_it_leaves_the_desk_list(make_rig):
    r = make_rig()
    store = r.runtime.store
    seed_reminders(store)
    client = signed_in(r.app)
    page = client.get("/console/reminders?day=2026-11-24").text
    url = f"/console/reminders/{AYESHA}/handled"
    assert client.post(url, data={"day": "2026-11-24"}).status_code == 400  # no CSRF token
    done = client.post(url, data={"csrf_token": csrf_of(page), "day": "2026-11-24"})
    assert done.status_code == 302 and done.headers["Location"].endswith("day=2026-11-24")
    record = store.get_reminder(AYESHA)
    assert record is not None and record.handled_by == "amina"
    after = client.get("/console/reminders?day=2026-11-24").text
    assert "Marked done." in after and "done by amina" in after
    assert after.count(">Done</button>") == 1
    again = client.post(url, data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    assert "already done" in again.text


def test_another_day_and_a_bad_day(make_rig):
    r = make_rig()
    seed_reminders(r.runtime.store)
    client = signed_in(r.app)
    empty = client.get("/console/reminders?day=2026-11-25")
    assert empty.status_code == 200 and 'id="no-reminders"' in empty.text
    bad = client.get("/console/reminders?day=tomorrow")
    assert bad.status_code == 400 and rows_of(bad.text)  # the error, and the default day


def test_the_page_needs_a_signed_in_agent(make_rig):
    r = make_rig()
    response = r.app.test_client().get("/console/reminders")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_the_api_lists_reminders_and_marks_one_handled(make_rig):
    r = make_rig()
    seed_reminders(r.runtime.store)
    client = conforming(r.app.test_client())
    headers = api_headers(r.app)
    assert client.get("/api/reminders").status_code == 401
    body = client.get("/api/reminders?day=2026-11-24", headers=headers).json
    assert [x["key"] for x in body["reminders"]] == [AYESHA, HIRA, USMAN, BILAL]
    assert body["counts"] == {"queued": 1, "confirmed": 1, "move_requested": 1,
                              "cancel_requested": 1}
    usman = body["reminders"][2]
    assert usman["phone_masked"] == "+92*******567" and usman["first_name"] == "Usman"
    assert [a["start"] for a in usman["appointments"]] == ["2026-11-24T11:00",
                                                           "2026-11-24T11:40"]
    assert "+923451234567" not in str(body)
    only = client.get("/api/reminders?status=cancel_requested", headers=headers).json
    assert [x["key"] for x in only["reminders"]] == [AYESHA]
    assert client.get("/api/reminders?status=lost", headers=headers).status_code == 400
    assert client.get("/api/reminders?day=24-11-2026", headers=headers).status_code == 400

    done = client.post(f"/api/reminders/{quote(AYESHA, safe='')}/handled", headers=headers)
    assert done.status_code == 200
    assert done.json["key"] == AYESHA and done.json["handled_by"] == "api:convox"
    again = client.post(f"/api/reminders/{AYESHA}/handled", headers=headers)
    assert again.status_code == 409
    missing = client.post("/api/reminders/2026-11-24/p:nobody/handled", headers=headers)
    assert missing.status_code == 404
    # A key with "//" in it is a key like any other (no redirect to a merged path).
    assert client.post("/api/reminders//x//y/handled", headers=headers).status_code == 404


def test_metrics_count_reminders_and_the_confirmation_ratio(make_rig):
    r = make_rig()
    store = runtime_of(r.app).store
    seed_reminders(store)
    text = r.app.test_client().get("/metrics").text
    assert 'ivr_reminders{day="ahead",status="confirmed"} 1.0' in text
    assert 'ivr_reminders{day="ahead",status="queued"} 1.0' in text
    assert 'ivr_reminders{day="today",status="confirmed"} 0.0' in text
    # Confirmed over those that reached someone: Bilal, Ayesha, Hira (Usman not sent yet).
    assert "ivr_reminder_confirmation_ratio 0.3333" in text


def test_the_senders_counters():
    from ivr.metrics import Metrics

    metrics = Metrics(steps=())
    metrics.reminder_sent("call")
    metrics.reminder_sent("sms")
    metrics.reminder_sent("pigeon")
    metrics.reminder_call_ended("no-answer")
    assert metrics.sample("ivr_reminders_sent_total", channel="call") == 1
    assert metrics.sample("ivr_reminders_sent_total", channel="other") == 1
    assert metrics.sample("ivr_reminder_calls_total", call_status="no-answer") == 1
