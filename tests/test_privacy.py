"""Privacy: what the logs and the call record keep, and what a caller hears before proving who
they are.

Whole calls run with every logger the app owns at DEBUG; then every log record (formatted as
the JSON lines production writes, extras and tracebacks included) and every call event in the
store is scanned for the demo patients' phone numbers, names and dates of birth.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable
from datetime import date, timedelta

import pytest

from flows.booking import FLOW
from flows.lang import en
from flows.steps import Ask
from ivr.config import DEMO_CLINIC
from ivr.logs import JsonFormatter
from ivr.sandbox.seed import DEMO_PATIENTS, DEMO_STAFF, demo_seed
from tests.demo import BILAL, FAMILY, HIRA, MONDAY_10AM, NEW_CALLER

NEW_NAME = ("Ayaan", "Zulfiqar")
BILAL_DOB = "14061985"
WRONG_DOB = "01011990"
DOCTOR_NAMES = [s.name for s in DEMO_STAFF] + [f"{s.first_name} {s.last_name}"
                                              for s in DEMO_STAFF]
PRIVATE_STEPS = {row.key for row in FLOW.rows if isinstance(row, Ask) and row.private}


# ----------------------------------------------------------------------------- what to look for


def _phone_forms(e164: str, stored: str | None = None) -> set[str]:
    national = e164[3:]
    forms = {e164, e164[1:], national, "0" + national, "00" + e164[1:]}
    if stored:
        forms |= {stored, re.sub(r"\D", "", stored)}
    return {f for f in forms if len(re.sub(r"\D", "", f)) >= 7}


def _dob_forms(born: date) -> set[str]:
    return {born.isoformat(), born.strftime("%d%m%Y"), born.strftime("%d/%m/%Y"),
            born.strftime("%d-%m-%Y"), born.strftime("%Y%m%d"), born.strftime("%m/%d/%Y")}


def _secrets() -> tuple[set[str], set[str], set[str]]:
    """(phone forms and dates of birth: never anywhere; full and last names: never anywhere;
    first names: never anywhere either, matched as whole words)."""
    exact: set[str] = set()
    names: set[str] = set()
    first: set[str] = set()
    for p in DEMO_PATIENTS.values():
        exact |= _phone_forms(p.e164, p.stored_mobile)
        names |= {p.name, p.last_name}
        first.add(p.first_name)
    for p in demo_seed(MONDAY_10AM.date()).patients:
        if p.date_of_birth:
            exact |= _dob_forms(p.date_of_birth)
    exact |= _phone_forms(NEW_CALLER)
    names |= {" ".join(NEW_NAME), NEW_NAME[1]}
    first.add(NEW_NAME[0])
    return exact, names, first


EXACT, NAMES, FIRST_NAMES = _secrets()


def _leaks(texts: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for text in texts:
        plain = text
        for doctor in DOCTOR_NAMES:  # "Dr. Bilal Qureshi" is staff, not the patient Bilal
            plain = plain.replace(doctor, "<doctor>")
        for needle in EXACT:
            if needle in plain:
                found.append((needle, text))
        for needle in NAMES | FIRST_NAMES:
            if re.search(rf"(?<![A-Za-z]){re.escape(needle)}(?![A-Za-z])", plain,
                         re.IGNORECASE):
                found.append((needle, text))
    return found


def _log_lines(records: Iterable[logging.LogRecord]) -> list[str]:
    fmt = JsonFormatter()
    return [fmt.format(r) for r in records] + [r.getMessage() for r in records]


@pytest.fixture
def debug_logs(caplog):
    """The root logger and every logger of ours (and werkzeug's) at DEBUG: the most a
    deployment logs with `IVR_LOG_LEVEL=DEBUG`. Libraries keep their own pins: httpx/httpcore
    (pinned by the app: they log every Clinicea URL) and SQLAlchemy's engine (it pins itself to
    WARNING: its INFO echo prints every bound parameter); see the test below."""
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("ivr", "flows", "werkzeug", "tests"):
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


# ----------------------------------------------------------------------------- whole calls


def _book_by_keypad(call) -> None:
    for keys in ("1", "1", "1"):
        call.press(keys)
    call.silence()
    call.press("1")
    assert "You're booked" in call.last_heard


def _run_calls(r) -> list:
    calls = []
    known = r.call(BILAL.e164)
    assert "Hello Bilal" in known.heard
    _book_by_keypad(known)
    calls.append(known)

    family = r.call(FAMILY)
    assert "For Sana, press 2" in family.heard
    family.press("2")
    _book_by_keypad(family)
    calls.append(family)

    new = r.call(NEW_CALLER)
    new.press("1")
    new.say(f"my name is {NEW_NAME[0].lower()} {NEW_NAME[1].lower()}")
    assert f"{NEW_NAME[0]} {NEW_NAME[1]}. Is that right?" in new.last_heard
    new.press("1")
    new.press("3")
    new.press("1")
    new.silence()
    new.press("1")
    assert "You're booked" in new.last_heard
    calls.append(new)

    hidden = r.call("anonymous")
    hidden.press("0" + BILAL.national + "#")
    assert "Hello Bilal" in hidden.last_heard
    hidden.press("0")  # and asks for a person
    calls.append(hidden)
    return calls


def _scan(r, calls, records) -> None:
    lines = _log_lines(records)
    assert any("patient search" in line for line in lines), "logging was not captured"
    assert _leaks(lines) == []
    for call in calls:
        events = r.runtime.store.events(call.sid)
        assert events, call.sid
        texts = [" ".join(filter(None, (e.kind, e.step, e.text))) for e in events]
        assert _leaks(texts) == [], call.sid
        for e in events:
            _check_event(e)
        record = r.runtime.store.load_call(call.sid)
        assert _leaks([record.caller_masked or ""]) == []


def _check_event(e) -> None:
    """Events hold prompt keys, step names, keys pressed at public steps, and masks."""
    text = e.text or ""
    if e.kind == "heard":
        assert text in en.PROMPTS or text.endswith("_hint") or text == "", e
    elif e.kind == "pressed" and e.step in PRIVATE_STEPS:
        assert re.fullmatch(r"\d+ digits", text), e
    elif e.kind == "pressed":
        assert len(text) <= 4, e
    elif e.kind == "said" and e.step in PRIVATE_STEPS:
        assert "not kept" in text, e


def test_no_number_name_or_birth_date_in_logs_or_call_events(debug_logs, make_rig):
    r = make_rig(log_level="DEBUG")
    calls = _run_calls(r)
    _scan(r, calls, debug_logs.records)


def test_the_birth_date_check_leaves_no_birth_date_behind(debug_logs, make_rig):
    clinic = dataclasses.replace(DEMO_CLINIC, verify_date_of_birth=True)
    r = make_rig(log_level="DEBUG", clinic=clinic)
    call = r.call(BILAL.e164)
    call.press(WRONG_DOB)
    call.press(BILAL_DOB)
    assert "Hello Bilal" in call.last_heard
    _scan(r, [call], debug_logs.records)
    pressed = [e for e in r.runtime.store.events(call.sid) if e.kind == "pressed"]
    assert [e.text for e in pressed] == ["8 digits", "8 digits"]


def test_library_loggers_that_print_patient_data_stay_quiet_even_at_debug(make_rig):
    """httpx logs every URL at INFO (Clinicea URLs carry phone numbers and tokens); SQLAlchemy's
    engine echo logs every bound parameter (call state, names). Neither is on at DEBUG."""
    r = make_rig(log_level="DEBUG")
    assert logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    for name in ("httpx", "httpcore", "sqlalchemy.engine", "sqlalchemy.engine.Engine"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
    assert r.runtime.store.engine.echo is False


def test_a_failing_call_logs_no_patient_data(debug_logs, make_rig):
    """Errors are logged with tracebacks: those must not carry patient data either."""
    r = make_rig(log_level="DEBUG")
    known = r.call(BILAL.e164)
    r.sandbox.faults.fail_next(503, times=None)
    known.press("1")
    known.press("1")
    hidden = r.call("anonymous")
    hidden.press("0" + BILAL.national + "#")
    assert any(rec.levelno >= logging.WARNING for rec in debug_logs.records)
    _scan(r, [known, hidden], debug_logs.records)


# ----------------------------------------------------------------------------- what is read out


SERVICES = [s.name for s in DEMO_CLINIC.services]


def test_the_service_of_the_last_visit_is_not_read_by_default(make_rig):
    assert DEMO_CLINIC.read_last_visit_service is False
    r = make_rig()
    for patient in DEMO_PATIENTS.values():
        call = r.call(patient.e164)
        if "Your last visit" in call.heard:
            assert not [s for s in SERVICES if s.lower() in call.heard.lower()], call.heard


def test_the_service_of_the_last_visit_is_read_when_the_clinic_turns_it_on(make_rig):
    clinic = dataclasses.replace(DEMO_CLINIC, read_last_visit_service=True)
    r = make_rig(clinic=clinic)
    call = r.call(BILAL.e164)
    assert "for Consultation, with Dr. Nadia Farooq" in call.heard


def _details(heard: str, patient=BILAL) -> list[str]:
    words = [patient.first_name, "last visit", "Farooq", "Khayaban", "welcome back"]
    return [w for w in words if w in heard]


@pytest.fixture
def dob_clinic():
    return dataclasses.replace(DEMO_CLINIC, verify_date_of_birth=True)


def test_birth_date_is_asked_before_any_detail_and_the_right_one_opens_them(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164)
    assert "date of birth" in call.heard
    assert _details(call.heard) == []
    assert {q.operation for q in r.sandbox.requests()} <= {"login", "search"}
    call.press(BILAL_DOB)
    assert "Hello Bilal" in call.last_heard
    assert "Your last visit was on" in call.last_heard and "Dr. Nadia Farooq" in call.heard
    call.press("1")
    assert "Dr. Farooq again" in call.last_heard


def test_a_wrong_birth_date_three_times_puts_the_caller_through_to_a_person(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164)
    call.press(WRONG_DOB)
    assert "doesn't match our records" in call.last_heard
    call.press("1406198")  # seven digits
    call.press("31021985")  # not a date
    assert call.dialed == [DEMO_CLINIC.transfer_number]
    assert _details(call.heard) == []
    assert {q.operation for q in r.sandbox.requests()} <= {"login", "search"}


def test_wrong_then_right_birth_date_gives_the_details(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164)
    call.press(WRONG_DOB)
    assert _details(call.heard) == []
    call.press(BILAL_DOB)
    assert "Hello Bilal" in call.last_heard and call.dialed == []


def test_a_patient_without_a_birth_date_on_file_cannot_pass_the_check(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(HIRA.e164)
    for guess in ("01011990", "00000000", "11111111"):
        call.press(guess)
    assert call.dialed == [DEMO_CLINIC.transfer_number]
    assert _details(call.heard, HIRA) == []


def test_silence_at_the_birth_date_check_reveals_nothing(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164)
    call.silence()
    call.silence()
    call.silence()
    assert _details(call.heard) == []
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_asking_for_a_person_at_the_birth_date_check_reveals_nothing(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164)
    call.press("0")
    assert _details(call.heard) == []
    assert call.dialed == [DEMO_CLINIC.transfer_number]


def test_a_withheld_caller_keys_the_number_then_the_birth_date(dob_clinic, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call("anonymous")
    call.press("0" + BILAL.national + "#")
    assert "date of birth" in call.last_heard and _details(call.heard) == []
    call.press(BILAL_DOB)
    assert "Hello Bilal" in call.last_heard


def test_a_family_member_is_checked_against_their_own_birth_date(dob_clinic, make_rig):
    """The family menu offers first names (product rule 3); nothing else before the check,
    and the chosen person's birth date is the one that counts."""
    r = make_rig(clinic=dob_clinic)
    call = r.call(FAMILY)
    call.press("2")  # Sana
    assert "date of birth" in call.last_heard and "last visit" not in call.heard
    call.press("03021980")  # Kamran's
    assert "Hello" not in call.last_heard
    call.press("21091984")  # Sana's
    assert "Hello Sana" in call.last_heard


def test_after_the_retention_purge_no_call_record_identifies_anyone(make_rig):
    r = make_rig()
    call = r.call(FAMILY)
    call.press("2")
    call.press("0")
    assert call.ended
    removed = r.runtime.store.purge_events(timedelta(days=-1))  # everything is "old"
    assert removed > 0 and r.runtime.store.events(call.sid) == []
    record = r.runtime.store.load_call(call.sid)
    kept = json.dumps(record.state, ensure_ascii=False)
    assert _leaks([kept]) == []


def test_unauthenticated_ops_endpoints_show_no_patient_data(make_rig):
    """/healthz and /metrics are open to load balancers and scrapers: counts and steps only."""
    r = make_rig()
    calls = _run_calls(r)
    client = r.app.test_client()
    for path in ("/healthz", "/metrics"):
        reply = client.get(path)
        assert reply.status_code == 200, path
        body = reply.get_data(as_text=True)
        assert _leaks([body]) == [], path
        assert not any(call.sid in body for call in calls), path


@pytest.mark.parametrize("skip_check", ["press 0", "three wrong dates"])
def test_an_unverified_caller_cannot_book_as_the_patient(dob_clinic, skip_check, make_rig):
    r = make_rig(clinic=dob_clinic)
    call = r.call(BILAL.e164, dial_outcome="no-answer")
    if skip_check == "press 0":
        call.press("0")
    else:
        for _ in range(3):
            call.press(WRONG_DOB)
    assert "everyone is busy" in call.last_heard
    call.press("1")  # book now
    for keys in ("1", "1"):
        if call.ended:
            break
        call.press(keys)
    if not call.ended:
        call.silence()
    if not call.ended:
        call.press("1")
    # The doctor menu and the clinic's address are not the patient's details.
    assert "Hello Bilal" not in call.heard and "last visit" not in call.heard
    assert "Without your date of birth I can't book" in call.heard
    assert [c.reason for c in r.runtime.store.callbacks()] != []
    booked = [a for a in r.appointments() if a["PatientID"] == BILAL.id
              and a["ID"] not in r.seeded]
    assert booked == []


ECHO = f"Patient {NEW_NAME[0]} {NEW_NAME[1]} ({NEW_CALLER}) rejected"


@pytest.mark.parametrize(("status", "times", "body"), [
    (500, None, None), (503, None, None), (429, None, None), (400, 1, ECHO), (500, 1, ECHO),
])
def test_clinicea_failures_at_registration_log_no_patient_data(
        debug_logs, status, times, body, make_rig):
    """A failed registration-and-booking (the request carries the new caller's name and number)
    and Clinicea error texts that echo them: neither reaches the logs or the call events."""
    r = make_rig(log_level="DEBUG")
    new = r.call(NEW_CALLER)
    new.press("1")
    new.say(f"my name is {NEW_NAME[0].lower()} {NEW_NAME[1].lower()}")
    new.press("1")
    new.press("3")
    new.press("1")
    new.silence()
    r.sandbox.faults.fail_next(status, times=times, operation="register_and_book",
                               body=body)
    new.press("1")
    assert new.ended
    failed = [q for q in r.sandbox.requests() if q.operation == "register_and_book"]
    assert failed and failed[0].status == status
    _scan(r, [new], debug_logs.records)
