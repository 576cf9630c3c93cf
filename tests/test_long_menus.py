"""Ten or more choices behind a one-digit gather (issue 9, item 5).

A family of 12 on one number, a family of thousands, and a clinic with 12 doctors, through the
Twilio simulator against the sandbox Clinicea. A gather submits on the first key, so "press 12"
used to choose patient 1; a family of thousands gave a 5 MB TwiML (Twilio's limit is 64 kB)
and stored the whole list in the call state on every turn."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import httpx

from flows import menus
from ivr.app import runtime_of
from ivr.clock import FixedClock
from ivr.config import DEMO_CLINIC_CLIFTON_ID, DEMO_CLINIC_TOML, Settings, parse_clinic_config
from ivr.sandbox import SandboxState
from ivr.sandbox.seed import SeedPatient, SeedStaff, demo_seed
from ivr.simulator import TwilioSimulator
from tests.calls import Rig, app_for
from tests.demo import CLINIC_NUMBER, MONDAY_10AM

TWELVE = "+923007770000"
THOUSANDS = "+923008880000"
FIRST_NAMES = ["Aamir", "Bushra", "Danish", "Erum", "Faisal", "Ghazala", "Haris", "Iqra",
               "Junaid", "Komal", "Laiba", "Mustafa"]
EXTRA_DOCTORS = [("Tariq", "Jamil"), ("Saima", "Rauf"), ("Imran", "Baig"), ("Nida", "Aslam"),
                 ("Kashif", "Mirza"), ("Rabia", "Hassan"), ("Yasir", "Chaudhry"),
                 ("Zara", "Latif")]
TWILIO_TWIML_LIMIT = 64 * 1024


def _patient(n: int, first: str, mobile: str) -> SeedPatient:
    # Ids in seed order: the sandbox answers a search in id order.
    return SeedPatient(f"5e5e5e5e-0000-4000-8000-{n:012d}", f"M-{n:05d}", first,
                       "Family", mobile, "+92", date(1990, 1, 1 + n % 28))


def _doctor_id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"doctor-{n}"))


@contextmanager
def menu_rig(*, doctors: bool = False) -> Iterator[Rig]:
    """The usual rig with 12 patients on TWELVE, 3000 on THOUSANDS and, if asked, 12 doctors."""
    clock = FixedClock(MONDAY_10AM)
    seed = demo_seed(MONDAY_10AM.date())
    patients = [_patient(n, name, TWELVE) for n, name in enumerate(FIRST_NAMES)]
    patients += [_patient(100 + n, f"Name{n}", THOUSANDS) for n in range(3000)]
    staff = [SeedStaff(_doctor_id(n), "Dr.", first, last, DEMO_CLINIC_CLIFTON_ID)
             for n, (first, last) in enumerate(EXTRA_DOCTORS)]
    seed = dataclasses.replace(seed, patients=seed.patients + tuple(patients),
                               staff=seed.staff + (tuple(staff) if doctors else ()))
    settings: dict = {}
    if doctors:
        extra = "".join(
            f'\n[[doctors]]\nid = "{_doctor_id(n)}"\nname = "Dr. {first} {last}"\n'
            f'clinic_id = "{DEMO_CLINIC_CLIFTON_ID}"\naliases = ["{last}"]\n'
            for n, (first, last) in enumerate(EXTRA_DOCTORS))
        settings["clinic"] = parse_clinic_config(DEMO_CLINIC_TOML + extra, "<12 doctors>")
    sandbox = SandboxState(clock, seed=seed)
    cfg = Settings.for_tests(**settings)
    app = app_for(cfg, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", cfg.twilio_auth_token, http=http,
                            to=CLINIC_NUMBER, seed=7)
    try:
        yield Rig(app, runtime_of(app), sandbox, clock, phone,
                  frozenset(a["ID"] for a in sandbox.calendar()))
    finally:
        http.close()
        runtime_of(app).close()


def _booked_patient(r: Rig) -> str:
    [appt] = [a for a in r.appointments() if a["ID"] not in r.seeded]
    return appt["PatientID"]


def _book_through(call) -> None:  # noqa: ANN001 - ivr.simulator.Call
    """From the greeting: book, first doctor, first time, no reason, confirm."""
    call.press("1")
    if "same doctor" in call.last_heard or "again" in call.last_heard:
        call.press("1")
    call.press("1")
    call.silence()
    call.press("1")


def test_the_twelfth_of_twelve_patients_on_one_number_is_reached_by_pages():
    with menu_rig() as r:
        call = r.call(TWELVE)
        assert "For Aamir, press 1" in call.heard and "For Iqra, press 8" in call.heard
        assert "Junaid" not in call.heard and "For more names, press 9" in call.heard
        call.press("9")
        assert "For Junaid, press 1" in call.last_heard
        assert "For Mustafa, press 4" in call.last_heard
        call.press("4")
        assert "Hello Mustafa" in call.last_heard
        call.press("1")
        call.press("1")
        call.press("1")
        call.silence()
        call.press("1")
        assert _booked_patient(r) == _patient(11, "Mustafa", TWELVE).id


def test_the_last_page_wraps_round_and_a_name_off_the_page_still_chooses():
    with menu_rig() as r:
        call = r.call(TWELVE)
        call.press("9")
        call.press("9")
        assert "For Aamir, press 1" in call.last_heard
        call.say("Laiba", confidence=0.95)  # on page 2, said while page 1 is read
        assert "Hello Laiba" in call.last_heard


def test_a_family_of_thousands_gives_a_small_twiml_and_a_small_call_state():
    with menu_rig() as r:
        call = r.call(THOUSANDS)
        assert "For Name0, press 1" in call.heard and "Name8" not in call.heard
        record = r.runtime.store.load_call(call.sid)
        assert record is not None
        assert len(record.last_reply or "") < 4096 < TWILIO_TWIML_LIMIT
        assert len(record.state["data"]["patients"]) == menus.MAX_KEPT
        assert len(json.dumps(record.state)) < 16 * 1024
        call.press("9")
        assert "For Name8, press 1" in call.last_heard
        call.press("3")
        assert "Hello Name10" in call.last_heard


def test_the_eleventh_of_twelve_doctors_is_reached_by_pages_and_by_name():
    with menu_rig(doctors=True) as r:
        call = r.call("+923331234567")  # Hira Malik: no last visit, so the doctor menu
        call.press("1")
        assert "Which doctor" in call.last_heard
        assert "Dr. Nadia Farooq, press 1" in call.last_heard
        assert "For more doctors, press 9" in call.last_heard
        assert "Dr. Zara Latif" not in call.last_heard
        call.press("9")
        assert "Dr. Yasir Chaudhry, press 3" in call.last_heard
        call.press("3")
        assert "Chaudhry" in call.last_heard  # its free times
        call.press("1")
        call.silence()
        call.press("1")
        [appt] = [a for a in r.appointments() if a["ID"] not in r.seeded]
        assert appt["StaffID"] == _doctor_id(6)
    with menu_rig(doctors=True) as r:
        call = r.call("+923331234567")
        call.press("1")
        call.say("Doctor Latif", confidence=0.95)  # on page 2, by name from page 1
        assert "Latif" in call.last_heard and "free" in call.last_heard


def test_nine_or_fewer_choices_keep_keys_one_to_nine():
    page = menus.Page(9)
    assert not page.paged and page.picked("9") == 8
    assert menus.Page(10).picked("9") is None and menus.Page(10).is_more("9")
    assert menus.page_of(12, 7).number == 1 and menus.page_of(12, "x").number == 0
