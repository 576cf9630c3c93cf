"""The sandbox Clinicea over real HTTP: wire format, strictness, faults, admin API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import httpx
import pytest

from ivr.clock import FixedClock
from ivr.sandbox import (
    DEMO_PATIENTS,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    EmbeddedSandbox,
    SandboxState,
    demo_seed,
    parse_faults_spec,
)
from ivr.sandbox.faults import Faults
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_CLINIC_GULSHAN_ID,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_DOCTOR_SHEIKH_ID,
    DEMO_SERVICE_CONSULTATION_ID,
    next_open_day,
)
from ivr.sandbox.state import national_number
from tests.demo import BILAL, BOOK, BY_DATE, LOGIN, PAST, REGISTER, SEARCH

NOW = datetime(2025, 11, 12, 10, 0)  # a Wednesday
TOMORROW = "2025-11-13"


ROW_FIELDS = {
    "ID", "StartDateTime", "EndDateTime", "AppointmentStatus", "StaffID", "StaffTitle",
    "StaffFirstName", "StaffLastName", "ServiceID", "ServiceName", "PatientID", "PatientName",
    "PatientFirstName", "PatientLastName", "PatientMobile", "ClinicID", "ClinicName",
    "ClinicAddress1", "ClinicAddress2", "ClinicCity", "ClinicState", "ClinicPostalCode",
    "ClinicPhone", "Notes",
}
PATIENT_FIELDS = {"ID", "FileNo", "FullName", "FirstName", "LastName", "Mobile",
                  "MobileCountryCode", "DateOfBirth"}


class Sandbox:
    """A running sandbox and an HTTP client logged in to it."""

    def __init__(self, state: SandboxState, clock: FixedClock, base_url: str) -> None:
        self.state = state
        self.clock = clock
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=5)
        self.token = self.login().json()

    def login(self, user: str = SANDBOX_USERNAME, pwd: str = SANDBOX_PASSWORD) -> httpx.Response:
        return self.http.get(LOGIN, params={"apiKey": SANDBOX_API_KEY, "loginUserName": user,
                                            "pwd": pwd})

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params={"api_key": self.token, **params})

    def raw(self, method: str, path_and_query: str, **kw: object) -> httpx.Response:
        """A request with a hand-built query string (literal colons), token appended."""
        sep = "&" if "?" in path_and_query else "?"
        return self.http.request(method, f"{path_and_query}{sep}api_key={self.token}", **kw)

    def book(self, start: str, patient_id: str = BILAL.id, staff: str = DEMO_DOCTOR_FAROOQ_ID,
             clinic: str = DEMO_CLINIC_CLIFTON_ID, **kw: object) -> httpx.Response:
        return self.raw("POST", f"{BOOK}?patientID={patient_id}&appointmentDateTime={start}"
                                f"&staffID={staff}&clinicID={clinic}"
                                f"&serviceID={DEMO_SERVICE_CONSULTATION_ID}&notes=IVR", **kw)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    clock = FixedClock(NOW)
    state = SandboxState(clock)
    with EmbeddedSandbox(state) as server:
        sb = Sandbox(state, clock, server.base_url)
        yield sb
        sb.http.close()


def _plain(r: httpx.Response) -> bool:
    return r.headers["content-type"].startswith("text/plain")


# -- login and tokens -------------------------------------------------------------------------


def test_login_returns_token_as_json_string(sandbox: Sandbox) -> None:
    r = sandbox.login()
    assert r.status_code == 200
    assert r.text.startswith('"') and isinstance(r.json(), str) and len(r.json()) > 10


def test_login_with_bad_password_is_401_plain_text(sandbox: Sandbox) -> None:
    r = sandbox.login(pwd="wrong")
    assert r.status_code == 401 and _plain(r) and r.text


def test_missing_and_unknown_token_is_401(sandbox: Sandbox) -> None:
    r = sandbox.http.get(SEARCH, params={"patmobile": BILAL.national, "countrycode": "+92"})
    assert r.status_code == 401 and _plain(r)
    r = sandbox.http.get(SEARCH, params={"patmobile": BILAL.national, "countrycode": "+92",
                                         "api_key": "not-a-token"})
    assert r.status_code == 401


def test_token_expires_after_an_hour_by_the_clock(sandbox: Sandbox) -> None:
    assert sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92").status_code == 200
    sandbox.clock.advance(minutes=61)
    r = sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92")
    assert r.status_code == 401 and _plain(r)


def test_raw_api_key_accepted_in_query_and_header(sandbox: Sandbox) -> None:
    params = {"patmobile": BILAL.national, "countrycode": "+92"}
    r = sandbox.http.get(SEARCH, params={**params, "api_key": SANDBOX_API_KEY})
    assert r.status_code == 200
    r = sandbox.http.get(SEARCH, params=params, headers={"api_key": SANDBOX_API_KEY})
    assert r.status_code == 200
    r = sandbox.http.get(SEARCH, params=params, headers={"api_key": sandbox.token})
    assert r.status_code == 200


# -- search -----------------------------------------------------------------------------------


SINGLES = [p for p in DEMO_PATIENTS.values() if p.e164 != "+923001234567"]


@pytest.mark.parametrize("patient", SINGLES, ids=lambda p: p.stored_mobile)
def test_search_finds_every_stored_format(sandbox: Sandbox, patient: object) -> None:
    r = sandbox.get(SEARCH, patmobile=patient.national, countrycode=patient.country_code)
    assert r.status_code == 200
    found = r.json()
    assert [p["ID"] for p in found] == [patient.id]
    assert set(found[0]) == PATIENT_FIELDS
    assert found[0]["Mobile"] == patient.stored_mobile


@pytest.mark.parametrize("typed", ["3216315551", "03216315551", "+923216315551", "923216315551"])
def test_search_normalises_the_query_too(sandbox: Sandbox, typed: str) -> None:
    r = sandbox.get(SEARCH, patmobile=typed, countrycode="+92")
    assert [p["FullName"] for p in r.json()] == ["Bilal Ahmed"]


def test_search_family_number_returns_three(sandbox: Sandbox) -> None:
    r = sandbox.get(SEARCH, patmobile="3001234567", countrycode="+92")
    assert sorted(p["FirstName"] for p in r.json()) == ["Kamran", "Sana", "Zoya"]


def test_search_unknown_number_is_204_empty(sandbox: Sandbox) -> None:
    r = sandbox.get(SEARCH, patmobile="3009999999", countrycode="+92")
    assert r.status_code == 204 and r.content == b""


def test_search_respects_country_code(sandbox: Sandbox) -> None:
    assert sandbox.get(SEARCH, patmobile="7700900123", countrycode="+92").status_code == 204
    assert sandbox.get(SEARCH, patmobile="7700900123", countrycode="+44").status_code == 200


def test_search_without_countrycode_is_400_when_strict(sandbox: Sandbox) -> None:
    r = sandbox.get(SEARCH, patmobile=BILAL.national)
    assert r.status_code == 400 and _plain(r)


def test_patient_fields_and_unknown_date_of_birth(sandbox: Sandbox) -> None:
    bilal = sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92").json()[0]
    assert bilal["DateOfBirth"] == "1985-06-14T00:00:00"
    assert bilal["MobileCountryCode"] == "+92"
    hira = DEMO_PATIENTS["Hira Malik"]
    found = sandbox.get(SEARCH, patmobile=hira.national, countrycode="+92").json()[0]
    assert found["DateOfBirth"] == "0001-01-01T00:00:00"


def test_national_number_normalisation() -> None:
    for raw in ("+92-300-1234567", "923001234567", "0300 1234567", "3001234567",
                "00923001234567", "+92 (300) 123-4567"):
        assert national_number(raw, "+92") == "3001234567"
    assert national_number("07700 900123", "+44") == "7700900123"


# -- past visits ------------------------------------------------------------------------------


def test_past_visits_returns_all_rows_oldest_first(sandbox: Sandbox) -> None:
    r = sandbox.get(PAST, patientID=BILAL.id)
    assert r.status_code == 200
    rows = r.json()
    assert [row["AppointmentStatus"] for row in rows] == ["Check Out", "Check Out", "Cancelled"]
    assert [row["StartDateTime"] for row in rows] == sorted(row["StartDateTime"] for row in rows)
    assert all(set(row) == ROW_FIELDS for row in rows)
    last_done = rows[1]
    assert last_done["StaffID"] == DEMO_DOCTOR_FAROOQ_ID
    assert last_done["StaffTitle"] == "Dr." and last_done["StaffLastName"] == "Farooq"
    assert last_done["ClinicID"] == DEMO_CLINIC_CLIFTON_ID
    assert last_done["ClinicAddress1"] == "7 Khayaban-e-Ittehad"
    assert last_done["ClinicAddress2"] == "Clifton" and last_done["ClinicCity"] == "Karachi"
    assert last_done["StartDateTime"] == (NOW.date() - timedelta(days=14)).isoformat() + "T10:00:00"
    assert rows[2]["ClinicID"] == DEMO_CLINIC_GULSHAN_ID  # the trap for clients not filtering


def test_past_visits_newest_no_show_and_none(sandbox: Sandbox) -> None:
    rows = sandbox.get(PAST, patientID=DEMO_PATIENTS["Usman Tariq"].id).json()
    assert rows[-1]["AppointmentStatus"] == "No Show"
    assert rows[-2]["AppointmentStatus"] == "Check Out"
    r = sandbox.get(PAST, patientID=DEMO_PATIENTS["Hira Malik"].id)
    assert r.status_code == 204 and r.content == b""


def test_past_visits_exclude_future_rows(sandbox: Sandbox) -> None:
    nida = DEMO_PATIENTS["Nida Aslam"]  # has a Scheduled appointment tomorrow
    rows = sandbox.get(PAST, patientID=nida.id).json()
    assert all(row["StartDateTime"] < NOW.isoformat() for row in rows)
    assert len(rows) == 1


# -- appointments by date ---------------------------------------------------------------------


def test_tomorrow_is_partly_booked(sandbox: Sandbox) -> None:
    rows = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=100).json()
    farooq = [(r["StartDateTime"][11:16], r["AppointmentStatus"]) for r in rows
              if r["StaffID"] == DEMO_DOCTOR_FAROOQ_ID]
    assert farooq == [("09:00", "Scheduled"), ("09:20", "Confirmed"), ("09:40", "Cancelled"),
                      ("10:00", "Scheduled")]
    khan = [r["StartDateTime"][11:16] for r in rows if r["StaffID"] == DEMO_DOCTOR_KHAN_ID]
    assert khan == ["09:00", "09:40", "10:20"]
    assert all(set(r) == ROW_FIELDS for r in rows)


@pytest.mark.parametrize(("params", "message"), [
    ({"pageNo": 1, "pageSize": 9}, "pageSize must be at least 10"),
    ({"pageNo": 0, "pageSize": 10}, "pageNo must be at least 1"),
    ({"pageNo": 1}, "pageSize is required"),
])
def test_paging_rules_are_400_plain_text(sandbox: Sandbox, params: dict, message: str) -> None:
    r = sandbox.get(BY_DATE, appointmentDate=TOMORROW, **params)
    assert r.status_code == 400 and _plain(r) and message in r.text


@pytest.mark.parametrize("bad", ["13/11/2025", "2025-11-13T00:00:00", "2025-2-3", "2025-13-01"])
def test_bad_date_format_is_400(sandbox: Sandbox, bad: str) -> None:
    r = sandbox.get(BY_DATE, appointmentDate=bad, pageNo=1, pageSize=10)
    assert r.status_code == 400 and _plain(r)


def test_empty_page_is_204_and_pages_split(sandbox: Sandbox) -> None:
    for minute in ("11:00", "11:20", "11:40", "12:00"):
        assert sandbox.book(f"{TOMORROW}T{minute}:00").status_code == 200
    page1 = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=10)
    page2 = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=2, pageSize=10)
    page3 = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=3, pageSize=10)
    assert len(page1.json()) == 10 and len(page2.json()) == 1
    assert page3.status_code == 204 and page3.content == b""
    empty_day = sandbox.get(BY_DATE, appointmentDate="2025-11-16", pageNo=1, pageSize=10)
    assert empty_day.status_code == 204


# -- booking ----------------------------------------------------------------------------------


def test_booking_shows_up_by_date(sandbox: Sandbox) -> None:
    r = sandbox.book(f"{TOMORROW}T11:00:00")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"AppointmentID", "PatientID"} and body["PatientID"] == BILAL.id
    rows = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=100).json()
    mine = [row for row in rows if row["ID"] == body["AppointmentID"]]
    assert len(mine) == 1
    row = mine[0]
    assert row["StartDateTime"] == f"{TOMORROW}T11:00:00"
    assert row["EndDateTime"] == f"{TOMORROW}T11:20:00"
    assert row["AppointmentStatus"] == "Scheduled" and row["PatientName"] == "Bilal Ahmed"
    assert row["Notes"] == "IVR" and row["ClinicName"] == "Harbour Family Clinic Clifton"


def test_double_booking_is_400_slot_not_available(sandbox: Sandbox) -> None:
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 200
    r = sandbox.book(f"{TOMORROW}T11:00:00", patient_id=DEMO_PATIENTS["Hira Malik"].id)
    assert r.status_code == 400 and _plain(r) and r.text == "The selected slot is not available"
    overlapping = sandbox.book(f"{TOMORROW}T10:50:00")
    assert overlapping.status_code == 400
    seeded = sandbox.book(f"{TOMORROW}T09:00:00")  # seeded Scheduled row
    assert seeded.status_code == 400
    other_doctor = sandbox.book(f"{TOMORROW}T11:00:00", staff=DEMO_DOCTOR_SHEIKH_ID)
    assert other_doctor.status_code == 200


def test_overlap_switch_stores_a_second_booking_on_the_same_time(sandbox: Sandbox) -> None:
    """Many clinic systems accept overbooking: the switch makes the sandbox one of them."""
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 200
    sandbox.state.faults.allow_overlaps(True)
    second = sandbox.book(f"{TOMORROW}T11:00:00", patient_id=DEMO_PATIENTS["Hira Malik"].id)
    assert second.status_code == 200
    rows = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=100).json()
    assert sum(row["StartDateTime"] == f"{TOMORROW}T11:00:00" for row in rows) == 2
    sandbox.state.faults.clear()  # off again: the old answer
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 400
    # The same switch by spec and over the admin API.
    faults = Faults()
    faults.apply_spec("overlap")
    assert faults.overlaps_allowed
    r = sandbox.http.post("/_sandbox/faults", json={"allow_overlaps": True})
    assert r.status_code == 200 and r.json()["allow_overlaps"] is True
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 200
    with pytest.raises(ValueError, match="overlap takes no value"):
        Faults().apply_spec("overlap=1")


def test_cancelled_slot_is_free(sandbox: Sandbox) -> None:
    assert sandbox.book(f"{TOMORROW}T09:40:00").status_code == 200


def test_encoded_colon_refused_in_strict_mode(sandbox: Sandbox) -> None:
    r = sandbox.book(f"{TOMORROW}T11%3A00%3A00")
    assert r.status_code == 400 and r.text == "Encoded colons are not accepted"
    assert sandbox.state.calendar(date(2025, 11, 13))[-1]["StartDateTime"] != f"{TOMORROW}T11:00:00"


def test_encoded_colon_accepted_when_not_strict() -> None:
    clock = FixedClock(NOW)
    with EmbeddedSandbox(SandboxState(clock, strict=False)) as server:
        sb = Sandbox(server.state, clock, server.base_url)
        assert sb.book(f"{TOMORROW}T11%3A00%3A00").status_code == 200
        sb.http.close()


@pytest.mark.parametrize("start", ["2025-11-13T11:00", "2025-11-13 11:00:00",
                                   "2025-11-13T11:00:00Z", "2025-11-13T11:00:00.000",
                                   "13-11-2025T11:00:00"])
def test_bad_datetime_format_is_400(sandbox: Sandbox, start: str) -> None:
    r = sandbox.book(start)
    assert r.status_code == 400 and _plain(r)


def test_booking_rejections(sandbox: Sandbox) -> None:
    past = sandbox.book("2025-11-12T09:00:00")
    assert past.status_code == 400 and "past" in past.text
    assert sandbox.book(f"{TOMORROW}T11:00:00", staff="00000000-0000-0000-0000-000000000000"
                        ).status_code == 400
    assert sandbox.book(f"{TOMORROW}T11:00:00", clinic="nope").status_code == 400
    assert sandbox.book(f"{TOMORROW}T11:00:00",
                        patient_id="00000000-0000-0000-0000-000000000000").status_code == 400
    missing = sandbox.raw("POST", f"{BOOK}?patientID={BILAL.id}")
    assert missing.status_code == 400 and _plain(missing)
    assert sandbox.http.get(BOOK).status_code == 405


def test_register_and_book_creates_the_patient(sandbox: Sandbox) -> None:
    r = sandbox.raw("POST", f"{REGISTER}?firstName=Ayaan&lastName=Khan&mobile=03211112222"
                            f"&mobileCountryCode=%2B92&appointmentDateTime={TOMORROW}T12:00:00"
                            f"&staffID={DEMO_DOCTOR_FAROOQ_ID}&clinicID={DEMO_CLINIC_CLIFTON_ID}"
                            f"&serviceID={DEMO_SERVICE_CONSULTATION_ID}&notes=new")
    assert r.status_code == 200
    ids = r.json()
    found = sandbox.get(SEARCH, patmobile="3211112222", countrycode="+92").json()
    assert [p["ID"] for p in found] == [ids["PatientID"]]
    assert found[0]["Mobile"] == "03211112222" and found[0]["MobileCountryCode"] == "+92"
    assert found[0]["FullName"] == "Ayaan Khan"
    rows = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=100).json()
    assert any(row["ID"] == ids["AppointmentID"] for row in rows)


def test_register_and_book_taken_slot_creates_nobody(sandbox: Sandbox) -> None:
    r = sandbox.raw("POST", f"{REGISTER}?firstName=Ayaan&lastName=Khan&mobile=03211112222"
                            f"&mobileCountryCode=%2B92&appointmentDateTime={TOMORROW}T09:00:00"
                            f"&staffID={DEMO_DOCTOR_FAROOQ_ID}&clinicID={DEMO_CLINIC_CLIFTON_ID}"
                            f"&serviceID={DEMO_SERVICE_CONSULTATION_ID}")
    assert r.status_code == 400
    assert sandbox.get(SEARCH, patmobile="3211112222", countrycode="+92").status_code == 204


def test_concurrent_bookings_of_one_slot_give_exactly_one(sandbox: Sandbox) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def attempt(patient_id: str) -> None:
        with httpx.Client(base_url=sandbox.base_url, timeout=5) as http:
            r = http.post(f"{BOOK}?patientID={patient_id}&appointmentDateTime={TOMORROW}T15:00:00"
                          f"&staffID={DEMO_DOCTOR_FAROOQ_ID}&clinicID={DEMO_CLINIC_CLIFTON_ID}"
                          f"&serviceID={DEMO_SERVICE_CONSULTATION_ID}&api_key={sandbox.token}")
        with lock:
            results.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(p.id,)) for p in SINGLES[:8]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [400] * 7


# -- faults -----------------------------------------------------------------------------------


def test_fault_latency(sandbox: Sandbox) -> None:
    sandbox.state.faults.latency(200, jitter_ms=20)
    started = time.monotonic()
    sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92")
    assert time.monotonic() - started >= 0.17
    sandbox.state.faults.latency(0)
    started = time.monotonic()
    sandbox.http.get("/_sandbox/requests")
    assert time.monotonic() - started < 0.15


def test_fault_fail_next_counts_and_matches_operation(sandbox: Sandbox) -> None:
    sandbox.state.faults.fail_next(503, times=2, operation="search")
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 200
    for _ in range(2):
        r = sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92")
        assert r.status_code == 503 and _plain(r) and "Retry-After" not in r.headers
    assert sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92").status_code == 200


def test_fault_429_sends_retry_after(sandbox: Sandbox) -> None:
    sandbox.state.faults.fail_next(429)
    r = sandbox.get(PAST, patientID=BILAL.id)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    sandbox.state.faults.fail_next(429, retry_after=7, body="slow down")
    r = sandbox.get(PAST, patientID=BILAL.id)
    assert r.headers["Retry-After"] == "7" and r.text == "slow down"


def test_fault_fail_on_book_stores_nothing(sandbox: Sandbox) -> None:
    sandbox.state.faults.fail_next(500, operation="book")
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 500
    assert sandbox.book(f"{TOMORROW}T11:00:00").status_code == 200


def test_fault_hang_next_times_out_client_then_recovers(sandbox: Sandbox) -> None:
    sandbox.state.faults.hang_next(0.6, operation="search")
    with pytest.raises(httpx.ReadTimeout):
        sandbox.http.get(SEARCH, params={"api_key": sandbox.token, "patmobile": BILAL.national,
                                         "countrycode": "+92"}, timeout=0.2)
    assert sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92").status_code == 200


def test_fault_expire_tokens(sandbox: Sandbox) -> None:
    sandbox.state.faults.expire_tokens()
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 401
    assert sandbox.http.get(PAST, params={"patientID": BILAL.id, "api_key": SANDBOX_API_KEY}
                            ).status_code == 200
    sandbox.token = sandbox.login().json()
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 200


def test_fault_malformed_next(sandbox: Sandbox) -> None:
    sandbox.state.faults.malformed_next(operation="search")
    r = sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert sandbox.get(SEARCH, patmobile=BILAL.national, countrycode="+92").json()


def test_fault_store_then_hang_stores_the_booking(sandbox: Sandbox) -> None:
    sandbox.state.faults.store_then_hang(0.6, "book")
    with pytest.raises(httpx.ReadTimeout):
        sandbox.book(f"{TOMORROW}T11:00:00", timeout=0.2)
    rows = sandbox.state.calendar(date(2025, 11, 13))
    assert any(r["StartDateTime"] == f"{TOMORROW}T11:00:00" and r["PatientID"] == BILAL.id
               for r in rows)
    assert sandbox.book(f"{TOMORROW}T11:00:00").text == "The selected slot is not available"


def test_faults_spec_grammar() -> None:
    faults = Faults()
    faults.apply_spec("latency=150:50, fail=503:2:book, fail=429:1:search:3, hang=2:search,"
                      "malformed=past_visits,store_then_hang=30:book,fail=500:*")
    snap = faults.snapshot()
    assert snap["latency"] == {"ms": 150.0, "jitter_ms": 50.0}
    assert [(f["status"], f["times"], f["operation"], f["retry_after"])
            for f in snap["fail_next"]] == [(503, 2, "book", None), (429, 1, "search", 3),
                                            (500, None, None, None)]
    assert snap["hang_next"] == [{"seconds": 2.0, "operation": "search"}]
    assert snap["malformed_next"] == [{"operation": "past_visits"}]
    assert snap["store_then_hang"] == [{"seconds": 30.0, "operation": "book"}]
    faults.apply_spec("expire_tokens")
    assert faults.snapshot()["token_generation"] == 1
    assert parse_faults_spec("") == () and parse_faults_spec(None) == ()


@pytest.mark.parametrize("spec", ["latency=abc", "fail=200", "fail=503:0", "fail=503:1:nope",
                                  "hang", "store_then_hang=3", "explode=1", "latency=-5"])
def test_faults_spec_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_faults_spec(spec)


# -- admin API --------------------------------------------------------------------------------


def test_admin_faults_json(sandbox: Sandbox) -> None:
    r = sandbox.http.post("/_sandbox/faults", json={
        "fail_next": {"status": 503, "times": 1, "operation": "past_visits"},
        "malformed_next": True})
    assert r.status_code == 200 and r.json()["fail_next"][0]["status"] == 503
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 503
    assert sandbox.http.get("/_sandbox/faults").json()["malformed_next"] == [{"operation": None}]
    bad = sandbox.http.post("/_sandbox/faults", json={"fail_next": {"status": "x"}})
    assert bad.status_code == 400 and _plain(bad)
    assert sandbox.http.post("/_sandbox/faults", json={"nope": 1}).status_code == 400
    assert sandbox.http.post("/_sandbox/faults", content=b"{").status_code == 400
    sandbox.http.post("/_sandbox/faults", json={"expire_tokens": True, "clear": True})
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 401


def test_admin_appointments_and_requests(sandbox: Sandbox) -> None:
    booked = sandbox.book(f"{TOMORROW}T11:00:00").json()
    day = sandbox.http.get("/_sandbox/appointments", params={"date": TOMORROW}).json()
    assert booked["AppointmentID"] in [row["ID"] for row in day]
    assert all(row["StartDateTime"].startswith(TOMORROW) for row in day)
    everything = sandbox.http.get("/_sandbox/appointments").json()
    assert len(everything) > len(day)
    assert sandbox.http.get("/_sandbox/appointments", params={"date": "x"}).status_code == 400
    log = sandbox.http.get("/_sandbox/requests").json()
    assert [(e["method"], e["operation"], e["status"]) for e in log] == [
        ("GET", "login", 200), ("POST", "book", 200)]
    assert log[0]["path"] == LOGIN and "sandbox-password" not in log[0]["query"]
    assert sandbox.token not in log[1]["query"] and "T11:00:00" in log[1]["query"]
    assert len(sandbox.http.get("/_sandbox/patients").json()) == len(demo_seed(NOW.date()).patients)


def test_admin_reset(sandbox: Sandbox) -> None:
    sandbox.book(f"{TOMORROW}T11:00:00")
    sandbox.state.faults.latency(10)
    assert sandbox.http.post("/_sandbox/reset").status_code == 200
    assert sandbox.http.get("/_sandbox/requests").json() == []
    assert sandbox.get(PAST, patientID=BILAL.id).status_code == 401  # tokens forgotten
    sandbox.token = sandbox.login().json()
    rows = sandbox.get(BY_DATE, appointmentDate=TOMORROW, pageNo=1, pageSize=100).json()
    assert len(rows) == 7
    assert sandbox.state.faults.snapshot()["latency"]["ms"] == 0


# -- seed -------------------------------------------------------------------------------------


def test_seed_tomorrow_skips_sunday() -> None:
    saturday = date(2025, 11, 15)
    assert next_open_day(saturday) == date(2025, 11, 17)
    seed = demo_seed(saturday)
    future = {a.start.date() for a in seed.appointments if a.start.date() > saturday}
    assert future == {date(2025, 11, 17)}
    friday_seed = demo_seed(date(2025, 11, 13))  # tomorrow is Friday, opens 09:00
    first = min(a.start for a in friday_seed.appointments if a.start.date() > date(2025, 11, 13))
    assert first == datetime(2025, 11, 14, 9, 0)
    sat_seed = demo_seed(date(2025, 11, 14))  # tomorrow is Saturday, opens 10:00
    first = min(a.start for a in sat_seed.appointments if a.start.date() > date(2025, 11, 14))
    assert first == datetime(2025, 11, 15, 10, 0)


def test_seed_has_no_sunday_visits_and_unique_ids() -> None:
    seed = demo_seed(date(2025, 11, 16))  # a Sunday
    assert all(a.start.weekday() != 6 for a in seed.appointments)
    ids = [a.id for a in seed.appointments] + [p.id for p in seed.patients]
    assert len(ids) == len(set(ids))
    assert len(seed.patients) >= 20
