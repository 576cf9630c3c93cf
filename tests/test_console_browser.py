"""The console in a real browser: Debian's Chromium driven by Playwright, against the app
served by a real werkzeug server in a thread, on the sandbox Clinicea.

Skipped with a reason when /usr/bin/chromium or Playwright is missing (never
`playwright install`). With `IVR_SCREENSHOTS=1` the screen-pop is saved to
`docs/screenshots/screen-pop.png`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ivr.accounts import create_agent
from ivr.sandbox.seed import DEMO_PATIENTS
from tests.agents import PASSWORD
from tests.calls import rig
from tests.demo import BILAL

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "screen-pop.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on a real HTTP server on a free local port."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="console-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console(browser) -> Iterator[tuple[Any, Any, str]]:
    """(rig, page, base URL) with an agent signed in."""
    with rig() as r, served(r.app) as base:
        create_agent(r.runtime.store, "amina", PASSWORD)
        context = browser.new_context(viewport={"width": 1200, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        expected = "the server responded with a status of 400"  # a refused form, on purpose
        page.goto(f"{base}/console/login")
        page.fill("input[name=username]", "amina")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/console/caller")
        try:
            yield r, page, base
        finally:
            context.close()
        errors = [e for e in errors if expected not in e]
        assert errors == [], errors  # no CSP violation, no script error, no missing file


def created(r) -> list[dict]:
    return [a for a in r.appointments() if a["ID"] not in r.seeded]


def test_agent_books_for_a_returning_caller_from_the_screen_pop(console):
    r, page, base = console
    page.goto(f"{base}/console/caller?mobile=0321%206315551")
    assert page.text_content(".patient-name") == "Bilal Ahmed"
    assert page.text_content(".visit-date") == "Monday 9 November 2026, 10:00"
    assert page.text_content(".visit-doctor") == "Dr. Nadia Farooq"
    assert "7 Khayaban-e-Ittehad" in page.text_content(".visit-address")
    if os.environ.get("IVR_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    # Another day: the "show times" form reloads the free times.
    page.fill("#day", "2026-11-24")
    page.click("#show-times")
    page.wait_for_url("**day=2026-11-24**")
    page.select_option("#start", "2026-11-24T13:00")
    page.fill("#notes", "knee pain")
    page.click("#book-button")
    page.wait_for_selector("#confirmation")
    assert page.text_content("h1") == "Booked"
    assert page.text_content(".when") == "Tuesday 24 November 2026, 13:00"
    assert page.text_content(".doctor") == "Dr. Nadia Farooq"
    assert "7 Khayaban-e-Ittehad" in page.text_content(".address")
    [appt] = created(r)
    assert page.text_content(".appointment-id") == appt["ID"]
    assert appt["PatientID"] == BILAL.id and appt["StartDateTime"] == "2026-11-24T13:00:00"


def test_unknown_caller_is_registered_only_after_the_consent_tick(console):
    r, page, base = console
    patients_before = len(r.sandbox.patients())
    page.goto(f"{base}/console/caller?mobile=0300%209998877")
    assert "No patient in Clinicea has this number" in page.text_content("#caller")
    page.fill("#first_name", "Ayaan")
    page.fill("#last_name", "Khan")
    page.click("#book-button")  # no consent tick: the browser refuses to send the form
    assert page.eval_on_selector("#consent", "el => el.validity.valueMissing") is True
    assert page.url.startswith(f"{base}/console/caller")
    assert len(r.sandbox.patients()) == patients_before and created(r) == []
    assert r.runtime.store.bookings() == []
    # Even with the browser's check removed, the server refuses and says why.
    page.eval_on_selector("#consent", "el => el.removeAttribute('required')")
    page.click("#book-button")
    page.wait_for_selector("#error")
    assert "without the caller's consent nothing is registered" in page.text_content("#error")
    assert page.input_value("#first_name") == "Ayaan"
    assert len(r.sandbox.patients()) == patients_before and created(r) == []
    page.check("#consent")
    page.click("#book-button")
    page.wait_for_selector("#confirmation")
    assert page.text_content("h1") == "Booked"
    [patient] = [p for p in r.sandbox.patients() if p["FirstName"] == "Ayaan"]
    [appt] = created(r)
    assert appt["PatientID"] == patient["ID"]
    assert page.text_content(".appointment-id") == appt["ID"]


def test_live_view_updates_without_a_reload(console):
    r, page, base = console
    page.goto(f"{base}/console/live")
    assert "No calls in the IVR right now." in page.text_content("#in-progress")
    page.evaluate("window.__same_page = true")
    call = r.call(BILAL.e164)
    call.press("1")
    page.wait_for_selector("#in-progress td.caller", timeout=10_000)
    assert page.text_content("#in-progress td.caller") == "+92*******551"
    assert page.text_content("#in-progress td.patient") == "Bilal"
    assert "pressed" in page.text_content("#in-progress td.answers")
    assert page.evaluate("window.__same_page") is True  # no reload happened


def test_history_draws_the_funnel_and_busiest_hours_in_the_browser(console):
    r, page, base = console
    booked = r.call(BILAL.e164)
    for key in ("1", "1", "1"):
        booked.press(key)
    booked.silence()
    booked.press("1")
    assert booked.ended
    r.call(DEMO_PATIENTS["Hira Malik"].e164).hang_up()  # heard the menu, then left
    page.goto(f"{base}/console/history")
    page.wait_for_selector("#insights[data-ready='1']")
    assert page.locator("#funnel .funnel-bar").count() == 5
    counts = page.eval_on_selector_all(
        "#funnel .funnel-count", "els => els.map(e => [e.dataset.stage, e.textContent])")
    assert dict(counts) == {"answered": "2 (100%)", "menu": "2 (100%)", "choosing": "1 (50%)",
                            "readback": "1 (50%)", "booked": "1 (50%)"}
    assert page.locator("#hours rect.heat").count() == 7 * 24
    calls = page.eval_on_selector_all("#hours rect.heat", "els => els.map(e => +e.dataset.calls)")
    assert sum(calls) == 2  # in this hour's cell (or two, across an hour's turn)
    assert page.locator("#hours rect.heat-4").count() in (1, 2)
    assert "0 of 2 calls (0%) reached a person" in page.text_content("#person-after-failure")


def test_the_desk_sees_the_reminders_answers_and_marks_one_done(console):
    from tests.reminder_seed import key_of, seed_reminders

    r, page, base = console
    seed_reminders(r.runtime.store)
    page.click("nav >> text=Reminders")
    page.wait_for_url(f"{base}/console/reminders")
    assert page.input_value("input[name=day]") == "2026-11-24"  # the day today's run reminds
    assert "1 Confirmed" in page.text_content("#counts")
    assert "1 Wants to cancel" in page.text_content("#counts")
    cancel = page.locator(f'tr[data-key="{key_of("Ayesha Siddiqui")}"]')
    planned = page.locator(f'tr[data-key="{key_of("Usman Tariq")}"]')
    confirmed = page.locator(f'tr[data-key="{key_of("Bilal Ahmed")}"]')
    assert "Wants to cancel" in cancel.text_content() and "10:00" in cancel.text_content()
    assert "Waiting to be sent" in planned.text_content()
    assert "11:00, 11:40" in planned.text_content()
    assert "Confirmed" in confirmed.text_content() and "Bilal" in confirmed.text_content()
    assert "+92*******551" in confirmed.text_content()
    # The desk's answers come first, each with Done; a confirmed one has none.
    keys = page.eval_on_selector_all("tr.reminder", "rows => rows.map(r => r.dataset.key)")
    assert keys[0] == key_of("Ayesha Siddiqui")
    assert confirmed.locator("button").count() == 0
    cancel.locator("button", has_text="Done").click()
    page.wait_for_selector("text=Marked done.")
    assert "done by amina" in page.locator(
        f'tr[data-key="{key_of("Ayesha Siddiqui")}"]').text_content()
    record = r.runtime.store.get_reminder(key_of("Ayesha Siddiqui"))
    assert record is not None and record.handled_by == "amina"
    # Another day from the picker.
    page.fill("input[name=day]", "2026-11-25")
    page.click("#reminder-day button[type=submit]")
    page.wait_for_selector("#no-reminders")
