"""The agents' console through Flask's test client, on the sandbox Clinicea.

The clock is fixed at Monday 23 November 2026, 10:00 in Karachi.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ivr.accounts import (
    LOCK_AFTER_FAILURES,
    AddressLimiter,
    check_login,
    create_agent,
)
from ivr.app import runtime_of
from ivr.booking_payload import BookingPayload
from ivr.config import Settings
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_DOCTOR_KHAN_ID, DEMO_PATIENTS
from tests.agents import PASSWORD, api_headers, csrf_of, signed_in
from tests.calls import app_for
from tests.demo import BILAL

FAROOQ_BILAL = BookingPayload(DEMO_DOCTOR_FAROOQ_ID, datetime(2026, 11, 24, 13), BILAL.id, "", "")
NEW_MOBILE = "0300 9998877"
TUESDAY_1PM = "2026-11-24T13:00"
SCRIPT = "<script>alert(1)</script>"


def created(r) -> list[dict]:
    return [a for a in r.appointments() if a["ID"] not in r.seeded]


def book_form(page: str, **fields: str) -> dict[str, str]:
    """The booking form's hidden fields plus `fields`."""
    form = page[page.index('id="booking-form"'):]
    form = form[: form.index("</form>")]
    values = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    values = {k: html.unescape(v) for k, v in values.items()}
    values.update(fields)
    return values


# --- accounts ------------------------------------------------------------------------------


def test_passwords_are_hashed_and_checked(make_rig):
    r = make_rig()
    store = r.runtime.store
    agent = create_agent(store, "amina", PASSWORD)
    assert PASSWORD not in agent.password_hash and agent.password_hash.startswith("scrypt:")
    now = store.now()
    assert check_login(store, "amina", PASSWORD, now).ok
    assert not check_login(store, "amina", "wrong", now).ok
    assert not check_login(store, "nobody", PASSWORD, now).ok
    with pytest.raises(ValueError):
        create_agent(store, " ", PASSWORD)


def test_an_account_locks_for_five_minutes_after_five_failures(make_rig):
    r = make_rig()
    store = r.runtime.store
    create_agent(store, "amina", PASSWORD)
    now = datetime(2026, 11, 23, 5, 0)
    for _ in range(LOCK_AFTER_FAILURES - 1):
        assert check_login(store, "amina", "wrong", now).reason == "bad_credentials"
    assert check_login(store, "amina", "wrong", now).reason == "locked"
    assert check_login(store, "amina", PASSWORD, now + timedelta(minutes=4)).reason == "locked"
    aware = (now + timedelta(minutes=5, seconds=1)).replace(tzinfo=UTC)
    assert check_login(store, "amina", PASSWORD, aware).ok
    agent = store.get_agent("amina")
    assert agent.failed_logins == 0 and agent.locked_until is None


def test_the_address_limiter_is_a_sliding_window():
    clock = [0.0]
    limiter = AddressLimiter(limit=3, window=60, monotonic=lambda: clock[0])
    assert all(limiter.allow("10.0.0.1") for _ in range(3))
    assert not limiter.allow("10.0.0.1")
    assert limiter.allow("10.0.0.2")
    clock[0] = 59.9
    assert not limiter.allow("10.0.0.1")
    clock[0] = 60.0
    assert limiter.allow("10.0.0.1")


def test_sign_in_from_one_address_is_rate_limited(make_rig):
    r = make_rig()
    create_agent(r.runtime.store, "amina", PASSWORD)
    client = r.app.test_client()
    token = csrf_of(client.get("/console/login").text)
    statuses = []
    for i in range(21):
        response = client.post("/console/login", data={
            "csrf_token": token, "username": f"guess{i}", "password": "x"})
        statuses.append(response.status_code)
    assert statuses[:20] == [401] * 20 and statuses[20] == 429
    assert "Too many sign-in attempts" in response.text


# --- sign-in, sessions, CSRF, headers ------------------------------------------------------


def test_not_signed_in_redirects_to_login_and_back_to_the_screen_pop(make_rig):
    r = make_rig()
    create_agent(r.runtime.store, "amina", PASSWORD)
    client = r.app.test_client()
    for path in ("/console/caller?mobile=03216315551", "/console/live", "/console/outbox",
                 "/console/history", "/console/bookings/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login?next=" in response.location
    assert client.get("/console/live.json").status_code == 401
    response = client.get("/console/caller?mobile=0321%206315551")
    login_page = client.get(response.location)
    assert 'name="next" value="/console/caller?mobile=0321%206315551"' in login_page.text
    wrong = client.post("/console/login", data={
        "csrf_token": csrf_of(login_page.text), "username": "amina", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    good = client.post("/console/login", data={
        "csrf_token": csrf_of(login_page.text), "username": "amina", "password": PASSWORD,
        "next": "/console/caller?mobile=0321%206315551"})
    assert good.status_code == 302
    assert good.location == "/console/caller?mobile=0321%206315551"
    assert "Bilal Ahmed" in client.get(good.location).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console",
                                    "/voice/incoming", "/console\\@evil"])
def test_login_never_redirects_off_the_console(target, make_rig):
    r = make_rig()
    create_agent(r.runtime.store, "amina", PASSWORD)
    client = r.app.test_client()
    token = csrf_of(client.get("/console/login").text)
    response = client.post("/console/login", data={
        "csrf_token": token, "username": "amina", "password": PASSWORD, "next": target})
    assert response.location == "/console/caller"


def test_post_without_csrf_token_is_rejected(make_rig):
    r = make_rig()
    create_agent(r.runtime.store, "amina", PASSWORD)
    client = r.app.test_client()
    client.get("/console/login")
    no_token = client.post("/console/login", data={"username": "amina",
                                                   "password": PASSWORD})
    assert no_token.status_code == 400
    signed = signed_in(r.app, "amina")
    page = signed.get("/console/caller?mobile=03216315551").text
    form = book_form(page, start=TUESDAY_1PM)
    del form["csrf_token"]
    assert signed.post("/console/caller/book", data=form).status_code == 400
    forged = signed.post("/console/caller/book", data={**form, "csrf_token": "forged"})
    assert forged.status_code == 400
    assert signed.post("/console/logout").status_code == 400
    assert created(r) == [] and r.runtime.store.bookings() == []


def test_logout_ends_the_session(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    token = csrf_of(client.get("/console/live").text)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/live").status_code == 302


def test_security_headers_and_cookie_flags(make_rig):
    r = make_rig()
    client = r.app.test_client()
    for path in ("/console/login", "/api/openapi.json", "/api/caller"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
    page = r.app.test_client().get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # demo over plain http
    assert "<script>" not in page.text  # scripts only from static files


@pytest.mark.parametrize("overrides", [{"public_url": "https://ivr.example.com"},
                                       {"demo": False}])
def test_session_cookie_is_secure_over_https_or_outside_demo(overrides):
    cfg = dataclasses.replace(Settings.for_tests(), **overrides)
    app = app_for(cfg)
    try:
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["SESSION_COOKIE_HTTPONLY"] is True
        assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    finally:
        runtime_of(app).close()


# --- the screen-pop ------------------------------------------------------------------------


@pytest.mark.parametrize("mobile", ["0321 6315551", "+92 321 6315551", "923216315551",
                                    "0321-6315551"])
def test_screen_pop_shows_patient_last_visit_and_clinic(mobile, make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller", query_string={"mobile": mobile})
    assert page.status_code == 200
    text = page.text
    assert "Bilal Ahmed" in text
    assert "Monday 9 November 2026, 10:00" in text
    assert "Dr. Nadia Farooq" in text and "7 Khayaban-e-Ittehad" in text
    assert 'id="booking-form"' in text and "11:20</option>" in text


def test_screen_pop_books_through_the_outbox_and_confirms(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller?mobile=03216315551&day=2026-11-24").text
    form = book_form(page, start=TUESDAY_1PM, notes="knee pain")
    assert form["doctor_id"] == DEMO_DOCTOR_FAROOQ_ID and form["patient_id"] == BILAL.id
    assert form["booking_key"].startswith("console:")
    response = client.post("/console/caller/book", data=form)
    assert response.status_code == 302, response.text
    confirmation = client.get(response.location).text
    [appt] = created(r)
    assert appt["PatientID"] == BILAL.id and appt["StartDateTime"] == "2026-11-24T13:00:00"
    assert appt["Notes"] == "knee pain"
    assert "Booked" in confirmation and appt["ID"] in confirmation
    assert "Tuesday 24 November 2026, 13:00" in confirmation
    assert "Dr. Nadia Farooq" in confirmation and "7 Khayaban-e-Ittehad" in confirmation
    # A second submit of the same form (double click, back button) books nothing more.
    again = client.post("/console/caller/book", data=form)
    assert again.status_code == 302 and len(created(r)) == 1
    [row] = r.runtime.store.bookings()
    assert row.idempotency_key == form["booking_key"] and row.status == "booked"


def test_show_times_for_another_doctor_and_day(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller", query_string={
        "mobile": "03216315551", "doctor": DEMO_DOCTOR_KHAN_ID, "day": "2026-11-24"}).text
    assert f'value="{DEMO_DOCTOR_KHAN_ID}" selected' in page
    assert 'value="2026-11-24"' in page and "12 Main Boulevard" in page
    assert '"2026-11-24T09:00"' not in page  # seeded for Dr. Khan at opening time
    sunday = client.get("/console/caller", query_string={
        "mobile": "03216315551", "day": "2026-11-29"}).text
    assert "No free times" in sunday and 'id="book-button" disabled' in sunday


def test_a_shared_family_number_lists_the_patients_to_choose_from(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller?mobile=03001234567").text
    for name in ("Kamran Ahmed", "Sana Ahmed", "Zoya Ahmed"):
        assert name in page
    assert 'id="booking-form"' not in page
    sana = DEMO_PATIENTS["Sana Ahmed"].id
    chosen = client.get(f"/console/caller?mobile=03001234567&patient={sana}").text
    assert "Dr. Bilal Qureshi" in chosen and f'name="patient_id" value="{sana}"' in chosen
    someone_else = client.get("/console/caller?mobile=03001234567&patient=new").text
    assert 'id="consent"' in someone_else


def test_unknown_number_registers_only_with_consent(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller", query_string={"mobile": NEW_MOBILE,
                                                       "day": "2026-11-24"}).text
    assert "No patient in Clinicea has this number" in page
    assert 'id="consent"' in page and 'value="+923009998877"' in page
    form = book_form(page, start=TUESDAY_1PM, first_name="Ayaan", last_name="Khan",
                     new_mobile="+923009998877", notes="first visit")
    before = len(r.sandbox.patients())
    refused = client.post("/console/caller/book", data=form)
    assert refused.status_code == 400
    assert "without the caller&#39;s consent nothing is" in refused.text
    assert 'value="Ayaan"' in refused.text and "first visit" in refused.text  # kept
    assert len(r.sandbox.patients()) == before and created(r) == []
    assert r.runtime.store.bookings() == []
    booked = client.post("/console/caller/book", data={**form, "consent": "yes"})
    assert booked.status_code == 302
    confirmation = client.get(booked.location).text
    [patient] = [p for p in r.sandbox.patients() if p["FirstName"] == "Ayaan"]
    [appt] = created(r)
    assert appt["PatientID"] == patient["ID"] and appt["ID"] in confirmation
    assert "Ayaan Khan" in confirmation


def test_a_taken_slot_is_refused_with_the_form_kept(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller?mobile=03216315551&day=2026-11-24").text
    form = book_form(page, start="2026-11-24T09:00", notes="keep me")  # seeded, taken
    response = client.post("/console/caller/book", data=form)
    assert response.status_code == 409
    assert "no longer free" in response.text and "keep me" in response.text
    assert created(r) == []


def test_clinicea_down_lookup_says_so_and_booking_is_recorded(make_rig):
    r = make_rig()
    client = signed_in(r.app)
    page = client.get("/console/caller?mobile=03216315551&day=2026-11-24").text
    form = book_form(page, start=TUESDAY_1PM)
    r.sandbox.faults.fail_next(503, times=None)
    down = client.get("/console/caller?mobile=03216315551")
    assert down.status_code == 503
    assert "Clinicea is not answering right now" in down.text
    response = client.post("/console/caller/book", data=form)
    assert response.status_code == 302
    confirmation = client.get(response.location).text
    assert "Recorded; it will be booked as soon as Clinicea answers." in confirmation
    assert created(r) == []
    # The outbox page lists it; once Clinicea is back, "retry now" books it.
    r.sandbox.faults.clear()
    outbox = client.get("/console/outbox").text
    assert "retrying" in outbox and "Retry now" in outbox
    key = form["booking_key"]
    retried = client.post(f"/console/outbox/{key}/retry",
                          data={"csrf_token": csrf_of(outbox)})
    assert retried.status_code == 302
    assert "Booked in Clinicea." in client.get("/console/outbox").text
    assert r.runtime.store.get_booking(key).status == "booked"
    assert len(created(r)) == 1


def test_outbox_mark_handled_and_callbacks(make_rig):
    r = make_rig()
    store = r.runtime.store
    store.enqueue_booking("phone:CA1", call_sid="CA1", payload=FAROOQ_BILAL)
    store.mark_failed("phone:CA1", "Clinicea refused: patient archived")
    store.add_callback("CA2", "+923001112223", "+92*******223", "asked for a person")
    client = signed_in(r.app)
    page = client.get("/console/outbox").text
    assert "patient archived" in page and "+923001112223" in page
    assert "Retry now" not in page  # failed: book again by hand, then mark it handled
    token = csrf_of(page)
    client.post("/console/outbox/phone:CA1/handled", data={"csrf_token": token})
    assert store.get_booking("phone:CA1").handled_by == "amina"
    [callback] = store.callbacks()
    client.post(f"/console/callbacks/{callback.id}/handled", data={"csrf_token": token})
    assert store.callbacks() == []
    after = client.get("/console/outbox").text
    assert 'id="no-bookings"' in after and 'id="no-callbacks"' in after


# --- escaping ------------------------------------------------------------------------------


def test_script_in_a_patient_name_renders_as_text(make_rig):
    r = make_rig()
    response = r.app.test_client().post("/api/bookings", headers=api_headers(r.app), json={
        "doctor_id": DEMO_DOCTOR_KHAN_ID, "start": "2026-11-24T14:00",
        "new_patient": {"first_name": SCRIPT, "last_name": "<b>Bold</b>",
                        "mobile": NEW_MOBILE, "consent": True}})
    assert response.status_code == 201
    client = signed_in(r.app)
    page = client.get(f"/console/caller?mobile={NEW_MOBILE}").text
    assert SCRIPT not in page and "<b>Bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    outbox_and_booking = client.get(f"/console/bookings/{response.json['id']}").text
    assert SCRIPT not in outbox_and_booking


def test_script_in_a_transcript_renders_as_text_in_the_live_view(make_rig):
    r = make_rig()
    store = r.runtime.store
    store.create_call("CAxss", caller_masked="+92*******551", state={}, step="main_menu")
    store.add_event("CAxss", "said", "main_menu", SCRIPT)
    client = signed_in(r.app)
    page = client.get("/console/live").text
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    data = client.get("/console/live.json").json
    assert data["in_progress"][0]["answers"][0]["text"] == SCRIPT  # JSON; JS uses textContent


# --- live view and history -----------------------------------------------------------------


def test_live_view_shows_a_call_in_progress_from_the_simulator(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("1")
    client = signed_in(r.app)
    data = client.get("/console/live.json").json
    [live] = data["in_progress"]
    assert live["caller"] == "+92*******551" and BILAL.e164 not in str(data)
    assert live["patient"] == "Bilal" and live["step"]
    assert {"kind": "pressed"}.items() <= live["answers"][0].items()
    assert live["answers"][0]["text"] == "1"
    page = client.get("/console/live").text
    assert "+92*******551" in page and live["step"] in page
    assert 'src="/console/static/live.js"' in page


def test_live_view_lists_transferred_calls_with_their_context(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.press("0")  # speak to a person
    assert call.dialed
    client = signed_in(r.app)
    data = client.get("/console/live.json").json
    [moved] = data["transferred"]
    assert moved["caller"] == "+92*******551" and moved["transferred"]
    assert moved["answers"][0]["text"] == "0"


def test_history_counts_outcomes_and_states_the_containment_rate(make_rig):
    r = make_rig()
    store = r.runtime.store
    for sid, outcome in [("CA1", "booked"), ("CA2", "booked"), ("CA3", "transferred"),
                         ("CA4", "abandoned")]:
        store.create_call(sid, caller_masked="+92*******000", state={}, step="x")
        store.finish_call(sid, outcome)
    client = signed_in(r.app)
    page = client.get("/console/history").text
    assert "50%" in page and "(2 of 4 calls)" in page
    assert "booked by the phone robot, without a person" in page
    assert page.count("<rect ") == 3  # booked, transferred, abandoned bars for today
    assert 'class="total-booked">2<' in page and 'class="total-transferred">1<' in page


def test_history_without_calls(make_rig):
    r = make_rig()
    page = signed_in(r.app).get("/console/history").text
    assert "no calls yet" in page and "<rect " not in page


def test_an_unreadable_booking_row_is_shown_not_a_server_error(make_rig):
    r = make_rig()
    store = r.runtime.store
    store.enqueue_booking("phone:CA1", call_sid="CA1", payload=FAROOQ_BILAL)
    store.mark_failed("phone:CA1", "Clinicea refused: patient archived")
    with store.engine.begin() as conn:  # cut short by a full disk, or edited by hand
        conn.execute(sa.text("UPDATE bookings SET payload = '{\"doctor_id\": \"D'"))
    client = signed_in(r.app)
    outbox = client.get("/console/outbox")
    assert outbox.status_code == 200 and "patient archived" in outbox.text
    page = client.get("/console/bookings/phone:CA1")
    assert page.status_code == 200 and "patient archived" in page.text
    api = r.app.test_client().get("/api/bookings/phone:CA1", headers=api_headers(r.app))
    assert api.status_code == 200
    body = api.json
    assert (body["status"], body["doctor_id"], body["start"]) == ("failed", None, "")


def test_retry_now_leaves_a_booking_that_is_being_sent_alone(make_rig):
    r = make_rig()
    store = r.runtime.store
    store.enqueue_booking("phone:CA9", call_sid="CA9", payload=FAROOQ_BILAL)
    assert store.claim_booking("phone:CA9", worker="w1", lease=timedelta(minutes=1))
    client = signed_in(r.app)
    page = client.get("/console/outbox").text
    assert "Retry now" not in page and "Mark handled" not in page
    client.post("/console/outbox/phone:CA9/retry", data={"csrf_token": csrf_of(page)})
    row = store.get_booking("phone:CA9")
    assert row.status == "booking" and row.claimed_by == "w1" and created(r) == []
    assert "nothing to retry" in client.get("/console/outbox").text


def test_every_post_form_on_every_page_carries_the_csrf_token(make_rig):
    r = make_rig()
    store = r.runtime.store
    store.enqueue_booking("phone:CA1", call_sid="CA1", payload=FAROOQ_BILAL)
    store.add_callback("CA2", "+923001112223", "+92*******223", "asked for a person")
    client = signed_in(r.app)
    pages = ["/console/caller?mobile=03216315551", f"/console/caller?mobile={NEW_MOBILE}",
             "/console/caller?mobile=03001234567", "/console/outbox", "/console/live",
             "/console/history", "/console/bookings/phone:CA1"]
    posts = 0
    for path in pages:
        page = client.get(path).text
        forms = re.findall(r"<form\b[^>]*>.*?</form>", page, flags=re.S)
        for form in forms:
            if 'method="post"' in form:
                posts += 1
                assert f'name="csrf_token" value="{csrf_of(page)}"' in form, (path, form)
        assert "<script>" not in page and " on" + "click=" not in page
    assert posts >= 7 + 4  # sign-out on each page, booking, retry, handled x2
    login = r.app.test_client().get("/console/login").text
    assert 'name="csrf_token"' in login
