"""The Clinicea client: against scripted HTTP first, then against the sandbox over real HTTP.

The scripted part uses respx routes on an httpx.MockTransport; every fault ends in a typed value
or a typed error. Its clock is fake: retry waits advance it, so nothing sleeps for real. The
sandbox part runs every operation against `EmbeddedSandbox` with the demo seed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from ivr.clinicea import (
    AppointmentRequest,
    BookingResult,
    CliniceaAuthError,
    CliniceaClient,
    CliniceaOutcomeUnknown,
    CliniceaRejected,
    CliniceaUnavailable,
    Credentials,
    NewPatientRequest,
)
from ivr.clock import FixedClock
from ivr.phone import PhoneNumber, parse_phone
from ivr.sandbox import (
    DEMO_PATIENTS,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    DemoPatient,
    EmbeddedSandbox,
    SandboxState,
    demo_seed,
)
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_SERVICE_CONSULTATION_ID,
    SeedAppointment,
)
from tests.demo import BOOK, BY_DATE, LOGIN, PAST, REGISTER, SEARCH

BASE = "http://clinicea.test"

CREDS = Credentials(api_key="key-1", username="desk", password="s3cret")
PHONE = parse_phone("+923216315551", "PK")
assert isinstance(PHONE, PhoneNumber)

PATIENT = {
    "ID": "p-1",
    "FileNo": "F-100",
    "FullName": "Bilal Ahmed",
    "FirstName": "Bilal",
    "LastName": "Ahmed",
    "Mobile": "03216315551",
    "MobileCountryCode": "+92",
    "DateOfBirth": "1985-04-12T00:00:00",
}


def row(id_: str, start: str, status: str = "Check Out", **extra: object) -> dict[str, object]:
    """An appointment row as the wire format has it."""
    return {
        "ID": id_,
        "StartDateTime": start,
        "EndDateTime": start[:11] + "23:59:00",
        "AppointmentStatus": status,
        "StaffID": "d-1",
        "StaffTitle": "Dr.",
        "StaffFirstName": "Ayesha",
        "StaffLastName": "Khan",
        "ServiceID": "s-1",
        "ServiceName": "Consultation",
        "PatientID": "p-1",
        "PatientName": "Bilal Ahmed",
        "PatientMobile": "03216315551",
        "ClinicID": "c-1",
        "ClinicName": "Demo Clinic Clifton",
        "ClinicAddress1": "12 Khayaban-e-Ittehad",
        "ClinicAddress2": "Phase 6",
        "ClinicCity": "Karachi",
        **extra,
    }


class FakeClock:
    """Monotonic time that only moves when the client sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api() -> respx.Router:
    router = respx.Router(base_url=BASE, assert_all_called=False)
    router.get(LOGIN, name="login").respond(json="tok-1")
    return router


def make_client(api: respx.Router, clock: FakeClock, **options: Any) -> CliniceaClient:
    http = httpx.Client(
        base_url=BASE,
        transport=httpx.MockTransport(api.handler),
        timeout=httpx.Timeout(5.0, connect=2.0),
    )
    return CliniceaClient(
        http,
        CREDS,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        **options,
    )


@pytest.fixture
def client(api: respx.Router, clock: FakeClock) -> CliniceaClient:
    return make_client(api, clock)


def query(call: respx.models.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.url.query.decode()).items()}


def raw_query(call: respx.models.Call) -> str:
    return call.request.url.query.decode()


def booking(start: datetime = datetime(2025, 3, 4, 10, 20)) -> AppointmentRequest:
    return AppointmentRequest(
        patient_id="p-1",
        start=start,
        doctor_id="d-1",
        clinic_id="c-1",
        service_id="s-1",
        notes="back pain",
    )


# --- login --------------------------------------------------------------------------------


def test_login_sends_the_credentials_and_the_token_goes_on_every_call(api, client):
    api.get(SEARCH).respond(json=[PATIENT])
    client.search_patients(PHONE)
    client.search_patients(PHONE)

    assert query(api["login"].calls[0]) == {
        "apiKey": "key-1",
        "loginUserName": "desk",
        "pwd": "s3cret",
    }
    assert api["login"].call_count == 1
    assert [query(c)["api_key"] for c in api.calls if c.request.url.path == SEARCH] == [
        "tok-1",
        "tok-1",
    ]


@pytest.mark.parametrize("body", [{"Token": "tok-9"}, {"token": "tok-9"}, ["tok-9"]])
def test_login_tolerates_a_token_inside_an_object(api, client, body):
    api["login"].respond(json=body)
    api.get(SEARCH).respond(json=[PATIENT])
    client.search_patients(PHONE)
    assert query(api.calls.last)["api_key"] == "tok-9"


def test_login_refused_is_an_auth_error(api, client):
    api["login"].respond(401, text="Invalid username or password")
    api.get(SEARCH).respond(json=[PATIENT])
    with pytest.raises(CliniceaAuthError) as caught:
        client.search_patients(PHONE)
    assert caught.value.operation == "login"
    assert caught.value.status == 401


def test_login_answer_without_a_token_is_unavailable(api, client):
    api["login"].respond(json={"Something": "else"})
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.operation == "login"


def test_token_is_renewed_after_its_ttl(api, clock):
    client = make_client(api, clock, token_ttl=55 * 60)
    api["login"].side_effect = [httpx.Response(200, json=t) for t in ("tok-1", "tok-2")]
    api.get(SEARCH).respond(json=[PATIENT])

    client.search_patients(PHONE)
    clock.now += 54 * 60
    client.search_patients(PHONE)
    assert api["login"].call_count == 1
    clock.now += 2 * 60
    client.search_patients(PHONE)

    assert api["login"].call_count == 2
    assert query(api.calls.last)["api_key"] == "tok-2"


class LoginCountingServer:
    """A thread-safe fake: counts logins, and accepts only the latest token it issued."""

    def __init__(self) -> None:
        self.logins = 0
        self.valid: str | None = None
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == LOGIN:
            with self._lock:
                self.logins += 1
                self.valid = f"tok-{self.logins}"
                token = self.valid
            time.sleep(0.05)  # a slow login widens the window for a stampede
            return httpx.Response(200, json=token)
        if request.url.params.get("api_key") != self.valid:
            return httpx.Response(401, text="Token expired")
        return httpx.Response(200, json=[PATIENT])


def run_in_threads(count: int, work) -> list[BaseException]:
    """Start `count` threads at the same instant; the errors they raised."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker() -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:  # collected and asserted by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_twenty_threads_asking_at_once_cause_exactly_one_login():
    server = LoginCountingServer()
    client = CliniceaClient(
        httpx.Client(base_url=BASE, transport=httpx.MockTransport(server)), CREDS
    )

    errors = run_in_threads(20, lambda: client.search_patients(PHONE))

    assert errors == []
    assert server.logins == 1
    assert client.counters == {"login": 1, "search": 20}


def test_an_expired_token_seen_by_twenty_threads_causes_one_relogin():
    server = LoginCountingServer()
    client = CliniceaClient(
        httpx.Client(base_url=BASE, transport=httpx.MockTransport(server)), CREDS
    )
    client.search_patients(PHONE)
    server.valid = None  # the server expires every token

    errors = run_in_threads(20, lambda: client.search_patients(PHONE))

    assert errors == []
    assert server.logins == 2


def test_401_once_logs_in_again_and_retries(api, client):
    api["login"].side_effect = [httpx.Response(200, json=t) for t in ("tok-1", "tok-2")]
    search = api.get(SEARCH)
    search.side_effect = [httpx.Response(401, text="Token expired"), httpx.Response(200, json=[])]

    assert client.search_patients(PHONE) == []
    assert api["login"].call_count == 2
    assert [query(c)["api_key"] for c in search.calls] == ["tok-1", "tok-2"]


def test_401_twice_is_an_auth_error(api, client):
    api.get(SEARCH).respond(401, text="Token expired")
    with pytest.raises(CliniceaAuthError) as caught:
        client.search_patients(PHONE)
    assert caught.value.operation == "search"
    assert caught.value.status == 401
    assert api["login"].call_count == 2


def test_401_on_a_booking_relogs_and_resends_once(api, client):
    api["login"].side_effect = [httpx.Response(200, json=t) for t in ("tok-1", "tok-2")]
    book = api.post(BOOK)
    book.side_effect = [
        httpx.Response(401, text="Token expired"),
        httpx.Response(200, json={"AppointmentID": "a-1", "PatientID": "p-1"}),
    ]
    assert client.book_for_patient(booking()) == BookingResult("a-1", "p-1")
    assert book.call_count == 2


# --- the operations -----------------------------------------------------------------------


def test_search_sends_the_national_number_and_the_country_code(api, client):
    search = api.get(SEARCH).respond(json=[PATIENT])
    [patient] = client.search_patients(PHONE)

    assert "patmobile=3216315551&countrycode=%2B92" in raw_query(search.calls.last)
    assert patient.id == "p-1"
    assert patient.first_name == "Bilal"
    assert patient.full_name == "Bilal Ahmed"
    assert patient.file_no == "F-100"
    assert patient.date_of_birth == date(1985, 4, 12)


def test_search_returns_every_patient_sharing_the_number(api, client):
    family = [
        {**PATIENT, "ID": f"p-{i}", "FirstName": name, "FullName": f"{name} Raza"}
        for i, name in enumerate(["Ali", "Sara", "Zainab"])
    ]
    api.get(SEARCH).respond(json=family)
    found = client.search_patients(PHONE)
    assert [p.first_name for p in found] == ["Ali", "Sara", "Zainab"]


def test_search_tolerates_a_single_object(api, client):
    api.get(SEARCH).respond(json=PATIENT)
    assert [p.id for p in client.search_patients(PHONE)] == ["p-1"]


@pytest.mark.parametrize("response", [httpx.Response(204), httpx.Response(200, content=b"")])
def test_search_with_nobody_found_is_an_empty_list(api, client, response):
    api.get(SEARCH).mock(return_value=response)
    assert client.search_patients(PHONE) == []


def test_past_visits_are_completed_only_newest_first_with_the_clinic(api, client):
    api.get(PAST).respond(
        json=[
            row("v-1", "2024-01-10T10:00:00"),
            row("v-2", "2024-03-05T11:20:00", "Cancelled"),
            row("v-3", "2024-05-20T09:00:00", "checkout"),
            row("v-4", "2024-06-01T09:00:00", "No Show"),
            row("v-5", "2024-02-01T09:00:00", "COMPLETED"),
            row("v-6", "2024-07-01T09:00:00", "Scheduled"),
        ]
    )
    visits = client.past_completed_visits("p-1")

    assert [v.id for v in visits] == ["v-3", "v-5", "v-1"]
    last = visits[0]
    assert last.start == datetime(2024, 5, 20, 9, 0)
    assert last.doctor_name == "Dr. Ayesha Khan"
    assert last.doctor_id == "d-1"
    assert last.clinic is not None
    assert last.clinic.name == "Demo Clinic Clifton"
    assert last.clinic.address == "12 Khayaban-e-Ittehad, Phase 6, Karachi"


def test_past_visits_sends_the_patient_id(api, client):
    past = api.get(PAST).respond(204)
    assert client.past_completed_visits("p-77") == []
    assert query(past.calls.last)["patientID"] == "p-77"


def test_completed_statuses_are_configurable(api, clock):
    client = make_client(api, clock, completed_statuses={"Done"})
    api.get(PAST).respond(
        json=[row("v-1", "2024-01-10T10:00:00"), row("v-2", "2024-01-11T10:00:00", "done")]
    )
    assert [v.id for v in client.past_completed_visits("p-1")] == ["v-2"]


def test_appointments_on_reads_every_page(api, client):
    page1 = [row(f"a-{i}", "2025-03-04T09:00:00", "Scheduled") for i in range(100)]
    page2 = [row(f"b-{i}", "2025-03-04T10:00:00", "Cancelled") for i in range(30)]
    by_date = api.get(BY_DATE)
    by_date.side_effect = [httpx.Response(200, json=page1), httpx.Response(200, json=page2)]

    found = client.appointments_on(date(2025, 3, 4))

    assert len(found) == 130
    assert [query(c) | {"api_key": ""} for c in by_date.calls] == [
        {"appointmentDate": "2025-03-04", "pageNo": "1", "pageSize": "100", "api_key": ""},
        {"appointmentDate": "2025-03-04", "pageNo": "2", "pageSize": "100", "api_key": ""},
    ]
    assert found[0].is_active and not found[-1].is_active


def test_appointments_on_stops_at_a_204_page(api, client):
    page1 = [row(f"a-{i}", "2025-03-04T09:00:00", "Scheduled") for i in range(100)]
    by_date = api.get(BY_DATE)
    by_date.side_effect = [httpx.Response(200, json=page1), httpx.Response(204)]
    assert len(client.appointments_on(date(2025, 3, 4))) == 100
    assert by_date.call_count == 2


def test_appointments_on_gives_up_when_pages_never_end(api, client):
    page = [row(f"a-{i}", "2025-03-04T09:00:00", "Scheduled") for i in range(100)]
    api.get(BY_DATE).respond(json=page)
    with pytest.raises(CliniceaUnavailable):
        client.appointments_on(date(2025, 3, 4))


def test_booking_sends_literal_colons_and_returns_clinicea_ids(api, client):
    book = api.post(BOOK).respond(json={"AppointmentID": "a-1", "PatientID": "p-1"})

    result = client.book_for_patient(booking())

    assert result == BookingResult(appointment_id="a-1", patient_id="p-1")
    sent = raw_query(book.calls.last)
    assert "appointmentDateTime=2025-03-04T10:20:00" in sent
    assert "%3A" not in sent
    assert query(book.calls.last) == {
        "patientID": "p-1",
        "appointmentDateTime": "2025-03-04T10:20:00",
        "staffID": "d-1",
        "clinicID": "c-1",
        "serviceID": "s-1",
        "notes": "back pain",
        "api_key": "tok-1",
    }
    assert book.calls.last.request.content == b""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('"a-7"', BookingResult("a-7", "p-1")),
        ('{"ID": "a-7"}', BookingResult("a-7", "p-1")),
        ('[{"AppointmentID": "a-7", "PatientID": "p-1", "Extra": 1}]', BookingResult("a-7", "p-1")),
        ("<html>ok</html>", BookingResult(None, "p-1")),
        ("", BookingResult(None, "p-1")),
    ],
)
def test_booking_answers_are_read_tolerantly(api, client, body, expected):
    api.post(BOOK).respond(200, text=body)
    assert client.book_for_patient(booking()) == expected


def test_register_and_book_sends_the_new_patient_and_returns_both_ids(api, client):
    register = api.post(REGISTER).respond(json={"AppointmentID": "a-2", "PatientID": "p-new"})
    req = NewPatientRequest(
        first_name="Hina",
        last_name="Malik",
        mobile=PHONE,
        start=datetime(2025, 3, 4, 11, 0),
        doctor_id="d-1",
        clinic_id="c-1",
        service_id="s-1",
    )
    assert client.book_new_patient(req) == BookingResult("a-2", "p-new")
    sent = query(register.calls.last)
    assert sent["firstName"] == "Hina"
    assert sent["lastName"] == "Malik"
    assert sent["mobile"] == "3216315551"
    assert sent["mobileCountryCode"] == "+92"
    assert sent["appointmentDateTime"] == "2025-03-04T11:00:00"
    assert "notes=" in raw_query(register.calls.last)


# --- faults ------------------------------------------------------------------------------


def test_plain_text_400_is_rejected_with_its_message(api, client):
    api.post(BOOK).respond(400, text="The selected slot is not available")
    with pytest.raises(CliniceaRejected) as caught:
        client.book_for_patient(booking())
    assert caught.value.message == "The selected slot is not available"
    assert caught.value.status == 400
    assert caught.value.operation == "book"


@pytest.mark.parametrize("key", ["Message", "message", "error"])
def test_json_400_is_rejected_with_its_message(api, client, key):
    api.get(SEARCH).respond(400, json={key: "pageSize must be at least 10"})
    with pytest.raises(CliniceaRejected) as caught:
        client.search_patients(PHONE)
    assert caught.value.message == "pageSize must be at least 10"


def test_429_with_retry_after_waits_then_succeeds(api, client, clock):
    search = api.get(SEARCH)
    search.side_effect = [
        httpx.Response(429, headers={"Retry-After": "1"}, text="Too many requests"),
        httpx.Response(200, json=[PATIENT]),
    ]
    assert len(client.search_patients(PHONE)) == 1
    assert clock.sleeps == [1.0]
    assert search.call_count == 2


def test_429_with_a_retry_after_beyond_the_budget_gives_up_at_once(api, client, clock):
    search = api.get(SEARCH).respond(429, headers={"Retry-After": "30"})
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.status == 429
    assert search.call_count == 1
    assert clock.sleeps == []


def test_500_on_a_read_is_unavailable_without_retry(api, client):
    search = api.get(SEARCH).respond(500, text="Internal Server Error")
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.status == 500
    assert search.call_count == 1


def test_503_is_retried_then_succeeds(api, client):
    search = api.get(SEARCH)
    search.side_effect = [httpx.Response(503), httpx.Response(200, json=[PATIENT])]
    assert len(client.search_patients(PHONE)) == 1
    assert search.call_count == 2


def test_503_every_time_is_unavailable_after_two_retries(api, client, clock):
    search = api.get(SEARCH).respond(503)
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.status == 503
    assert search.call_count == 3
    assert sum(clock.sleeps) < 1.0


def test_a_get_timeout_is_retried(api, client):
    search = api.get(SEARCH)
    search.side_effect = [httpx.ReadTimeout("slow"), httpx.Response(200, json=[PATIENT])]
    assert len(client.search_patients(PHONE)) == 1
    assert search.call_count == 2


def test_connection_refused_every_time_is_unavailable(api, client):
    search = api.get(SEARCH).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.status is None
    assert search.call_count == 3


def test_retries_stop_when_the_budget_is_spent(api, clock):
    client = make_client(api, clock, budget=1.0)
    search = api.get(SEARCH).respond(503, headers={"Retry-After": "0.6"})
    with pytest.raises(CliniceaUnavailable):
        client.search_patients(PHONE)
    assert search.call_count == 2  # 0.6 s fits once in the 1 s budget, not twice


@pytest.mark.parametrize(
    "fault", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("closed"), httpx.ReadError("x")]
)
def test_a_post_with_no_answer_is_outcome_unknown_and_sent_once(api, client, fault):
    book = api.post(BOOK).mock(side_effect=fault)
    with pytest.raises(CliniceaOutcomeUnknown) as caught:
        client.book_for_patient(booking())
    assert caught.value.operation == "book"
    assert book.call_count == 1
    assert client.counters["book"] == 1


def test_a_post_that_could_not_connect_is_unavailable_and_not_resent(api, client):
    book = api.post(BOOK).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(CliniceaUnavailable):
        client.book_for_patient(booking())
    assert book.call_count == 1


@pytest.mark.parametrize("status", [429, 503])
def test_a_post_refused_as_busy_is_unavailable_and_not_resent(api, client, status):
    book = api.post(BOOK).respond(status, headers={"Retry-After": "1"})
    with pytest.raises(CliniceaUnavailable):
        client.book_for_patient(booking())
    assert book.call_count == 1


def test_a_post_answered_500_is_outcome_unknown(api, client):
    book = api.post(REGISTER).respond(500)
    req = NewPatientRequest("Hina", "Malik", PHONE, datetime(2025, 3, 4, 11), "d-1", "c-1", "s-1")
    with pytest.raises(CliniceaOutcomeUnknown) as caught:
        client.book_new_patient(req)
    assert caught.value.status == 500
    assert book.call_count == 1


def test_malformed_json_on_a_read_is_unavailable(api, client):
    api.get(SEARCH).respond(
        200, text='[{"ID": "p-1",', headers={"Content-Type": "application/json"}
    )
    with pytest.raises(CliniceaUnavailable) as caught:
        client.search_patients(PHONE)
    assert caught.value.status == 200


def test_extra_fields_are_ignored_and_missing_optional_fields_are_none(api, client):
    api.get(SEARCH).respond(json=[{"ID": "p-1", "FullName": "Bilal Ahmed", "Surprise": [1, 2]}])
    [patient] = client.search_patients(PHONE)
    assert patient.first_name == "Bilal"
    assert patient.last_name is None
    assert patient.mobile is None
    assert patient.date_of_birth is None


def test_a_row_without_its_id_is_unavailable(api, client):
    api.get(PAST).respond(json=[{"StartDateTime": "2024-01-10T10:00:00"}])
    with pytest.raises(CliniceaUnavailable) as caught:
        client.past_completed_visits("p-1")
    assert caught.value.operation == "past_visits"


def test_errors_never_carry_the_phone_number_or_credentials(api, client):
    api.get(SEARCH).respond(400, text="No patient with mobile 3216315551")
    with pytest.raises(CliniceaRejected) as caught:
        client.search_patients(PHONE)
    text = str(caught.value) + repr(caught.value)
    assert "3216315551" not in text
    assert "s3cret" not in text and "tok-1" not in text


# --- counters, hook, endpoints, construction ----------------------------------------------


def test_counters_and_the_request_hook_see_every_attempt(api, clock):
    seen: list[tuple[str, int | str]] = []
    client = make_client(api, clock, on_request=lambda op, s, out: seen.append((op, out)))
    search = api.get(SEARCH)
    search.side_effect = [httpx.ConnectError("refused"), httpx.Response(200, json=[])]

    client.search_patients(PHONE)

    assert client.counters == {"login": 1, "search": 2}
    assert seen == [("login", 200), ("search", "ConnectError"), ("search", 200)]


def test_a_clinic_can_override_an_endpoint(api, clock):
    client = make_client(
        api,
        clock,
        endpoints={
            "search": {
                "path": "/api/v1/patients/searchByMobileNumber",
                "params": {"mobile": "patMobile"},
            }
        },
    )
    moved = api.get("/api/v1/patients/searchByMobileNumber").respond(json=[PATIENT])
    client.search_patients(PHONE)
    sent = query(moved.calls.last)
    assert sent["patMobile"] == "3216315551"
    assert sent["countrycode"] == "+92"  # not overridden: the default name stays


def test_an_unknown_operation_in_the_config_is_a_value_error(api, clock):
    with pytest.raises(ValueError, match="unknown operation 'serach'"):
        make_client(api, clock, endpoints={"serach": {"path": "/x"}})


def test_from_settings_builds_a_client_with_timeouts_and_the_clinic_endpoints():
    settings = SimpleNamespace(
        clinicea_base_url="http://configured.test",
        clinicea_api_key="k",
        clinicea_username="u",
        clinicea_password="p",
        clinic=SimpleNamespace(endpoints={"search": {"path": "/moved"}}),
    )
    with respx.mock(assert_all_called=False) as mock:
        mock.get(BASE + LOGIN).respond(json="tok")
        moved = mock.get(BASE + "/moved").respond(json=[])
        with CliniceaClient.from_settings(settings, base_url=BASE) as client:
            assert client.search_patients(PHONE) == []
        timeout = moved.calls.last.request.extensions["timeout"]
        assert timeout["connect"] <= 2.0 and timeout["read"] <= 5.0

        mock.get("http://configured.test" + LOGIN).respond(json="tok")
        other = mock.get("http://configured.test/moved").respond(json=[])
        with CliniceaClient.from_settings(settings) as client:
            client.search_patients(PHONE)
        assert other.call_count == 1


def test_from_settings_without_a_url_is_a_value_error():
    settings = SimpleNamespace(
        clinicea_base_url=None,
        clinicea_api_key="k",
        clinicea_username="u",
        clinicea_password="p",
        clinic=SimpleNamespace(endpoints={}),
    )
    with pytest.raises(ValueError):
        CliniceaClient.from_settings(settings)


def test_credentials_repr_hides_the_secrets():
    assert "s3cret" not in repr(CREDS) and "key-1" not in repr(CREDS)


# --- against the sandbox, over real HTTP -------------------------------------------------

SANDBOX_NOW = datetime(2025, 3, 5, 8, 0)  # a Wednesday morning, before opening


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[EmbeddedSandbox]:
    # One server for the module (stopping one costs half a second); `sandbox` resets its
    # state (seed data, tokens, faults) before every test.
    with EmbeddedSandbox(SandboxState(FixedClock(SANDBOX_NOW))) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: EmbeddedSandbox) -> tuple[SandboxState, str]:
    sandbox_server.state.reset()
    return sandbox_server.state, sandbox_server.base_url


def sandbox_client(base_url: str, **options: Any) -> CliniceaClient:
    http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(5.0, connect=2.0))
    creds = Credentials(SANDBOX_API_KEY, SANDBOX_USERNAME, SANDBOX_PASSWORD)
    return CliniceaClient(http, creds, **options)


@pytest.fixture
def live(sandbox):
    with sandbox_client(sandbox[1]) as client:
        yield client


def demo(name: str) -> DemoPatient:
    return DEMO_PATIENTS[name]


def test_sandbox_search_finds_the_family_of_three(live):
    found = live.search_patients(parse_phone("03001234567", "PK"))
    assert sorted(p.first_name for p in found) == ["Kamran", "Sana", "Zoya"]
    assert {p.last_name for p in found} == {"Ahmed"}


def test_sandbox_search_for_an_unknown_number_is_empty(live):
    assert live.search_patients(parse_phone("+923009999999", "PK")) == []


def test_sandbox_patient_without_a_completed_visit_has_none(live):
    assert live.past_completed_visits(demo("Mariam Hussain").id) == []
    assert live.past_completed_visits(demo("Hira Malik").id) == []


def test_sandbox_past_visits_are_completed_newest_first(live):
    bilal = demo("Bilal Ahmed")
    [patient] = live.search_patients(parse_phone(bilal.e164, "PK"))
    assert patient.id == bilal.id

    visits = live.past_completed_visits(patient.id)

    assert len(visits) == 2  # the newer Cancelled row is filtered out
    assert visits[0].start > visits[1].start
    assert visits[0].doctor_name == "Dr. Nadia Farooq"
    assert visits[0].clinic is not None
    assert visits[0].clinic.name == "Harbour Family Clinic Clifton"
    assert "Karachi" in (visits[0].clinic.address or "")


def test_sandbox_appointments_by_date_across_pages():

    seed = demo_seed(SANDBOX_NOW.date())
    day = date(2025, 3, 20)
    patient = demo("Bilal Ahmed").id
    doctor = seed.staff[0]
    extra = tuple(
        SeedAppointment(
            id=f"00000000-0000-4000-8000-{i:012d}",
            patient_id=patient,
            staff_id=doctor.id,
            clinic_id=doctor.clinic_id,
            service_id=seed.services[0].id,
            start=datetime(2025, 3, 20, 9, 0),
            end=datetime(2025, 3, 20, 9, 20),
            status="Cancelled" if i % 2 else "Scheduled",
        )
        for i in range(130)
    )
    state = SandboxState(
        FixedClock(SANDBOX_NOW), seed=replace(seed, appointments=seed.appointments + extra)
    )
    with EmbeddedSandbox(state) as server, sandbox_client(server.base_url) as client:
        found = client.appointments_on(day)
        assert len(found) == 130
        assert len({a.id for a in found}) == 130
        assert client.counters["appointments_by_date"] == 2
        assert sum(a.is_active for a in found) == 65


def test_sandbox_booking_can_be_read_back(live):

    start = datetime(2025, 3, 12, 15, 0)  # next Wednesday afternoon: free
    req = AppointmentRequest(
        patient_id=demo("Bilal Ahmed").id,
        start=start,
        doctor_id=DEMO_DOCTOR_FAROOQ_ID,
        clinic_id=DEMO_CLINIC_CLIFTON_ID,
        service_id=DEMO_SERVICE_CONSULTATION_ID,
        notes="follow-up: knee",
    )
    result = live.book_for_patient(req)

    assert result.patient_id == demo("Bilal Ahmed").id
    [booked] = [a for a in live.appointments_on(start.date()) if a.id == result.appointment_id]
    assert booked.start == start
    assert booked.doctor_id == DEMO_DOCTOR_FAROOQ_ID
    assert booked.patient_id == demo("Bilal Ahmed").id
    assert booked.is_active

    with pytest.raises(CliniceaRejected) as caught:
        live.book_for_patient(req)  # the same slot again
    assert "not available" in caught.value.message


def test_sandbox_register_and_book_creates_a_patient_a_search_finds(live):

    phone = parse_phone("0300 5551234", "PK")
    assert live.search_patients(phone) == []
    req = NewPatientRequest(
        first_name="Hina",
        last_name="Qadir",
        mobile=phone,
        start=datetime(2025, 3, 12, 15, 40),
        doctor_id=DEMO_DOCTOR_FAROOQ_ID,
        clinic_id=DEMO_CLINIC_CLIFTON_ID,
        service_id=DEMO_SERVICE_CONSULTATION_ID,
    )
    result = live.book_new_patient(req)

    assert result.appointment_id and result.patient_id
    [patient] = live.search_patients(phone)
    assert patient.id == result.patient_id
    assert (patient.first_name, patient.last_name) == ("Hina", "Qadir")


def test_sandbox_expired_tokens_cause_one_relogin(sandbox, live):
    state, _ = sandbox
    live.search_patients(PHONE)
    state.faults.expire_tokens()
    assert [p.id for p in live.search_patients(PHONE)] == [demo("Bilal Ahmed").id]
    assert live.counters["login"] == 2


def test_sandbox_wrong_password_is_an_auth_error(sandbox):

    http = httpx.Client(base_url=sandbox[1])
    with CliniceaClient(http, Credentials(SANDBOX_API_KEY, SANDBOX_USERNAME, "wrong")) as client:
        with pytest.raises(CliniceaAuthError):
            client.search_patients(PHONE)


def test_sandbox_503_with_retry_after_is_retried(sandbox, live):
    state, _ = sandbox
    state.faults.fail_next(503, operation="search", retry_after=0)
    assert len(live.search_patients(PHONE)) == 1
    assert live.counters["search"] == 2


def test_sandbox_malformed_json_is_unavailable(sandbox, live):
    state, _ = sandbox
    state.faults.malformed_next(operation="search")
    with pytest.raises(CliniceaUnavailable):
        live.search_patients(PHONE)


def test_sandbox_a_hung_booking_is_outcome_unknown_and_sent_once(sandbox):

    state, base_url = sandbox
    start = datetime(2025, 3, 12, 16, 0)
    req = AppointmentRequest(
        demo("Bilal Ahmed").id,
        start,
        DEMO_DOCTOR_FAROOQ_ID,
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_SERVICE_CONSULTATION_ID,
    )
    with sandbox_client(base_url, budget=0.5) as client:
        client.search_patients(PHONE)  # log in first, so the budget is the booking's alone
        state.faults.store_then_hang(2.0, operation="book")
        with pytest.raises(CliniceaOutcomeUnknown):
            client.book_for_patient(req)
        assert client.counters["book"] == 1
        # It was stored: the slot now shows as taken.
        assert any(a.start == start for a in client.appointments_on(start.date()))


def test_a_failing_request_hook_does_not_fail_the_call(api, clock):
    def broken(operation: str, seconds: float, outcome: int | str) -> None:
        raise RuntimeError("metrics backend down")

    client = make_client(api, clock, on_request=broken)
    api.get(SEARCH).respond(json=[PATIENT])
    assert len(client.search_patients(PHONE)) == 1


def test_upcoming_appointments_drop_cancelled_rows_soonest_first(api, client):
    upcoming = api.get("/api/v2/appointments/getAppointmentsByPatient").respond(
        json=[
            row("a-1", "2024-06-03T10:00:00", "Scheduled"),
            row("a-2", "2024-06-01T09:00:00", "Cancelled"),
            row("a-3", "2024-06-02T09:00:00", "Confirmed"),
            row("a-4", "2024-06-01T08:00:00", "No Show"),
        ]
    )
    assert [a.id for a in client.upcoming_appointments("p-9")] == ["a-3", "a-1"]
    sent = query(upcoming.calls.last)
    assert (sent["patientID"], sent["appointmentType"], sent["pageNo"], sent["pageSize"]) == (
        "p-9", "0", "1", "10")


def test_threads_hit_by_one_503_come_back_at_different_times(api):
    """32 clients (a host's webhook threads) each refused once: their retries are spread out,
    not all sent at the same instant."""
    waits = []
    for _ in range(32):
        clock = FakeClock()
        search = api.get(SEARCH)
        search.side_effect = [httpx.Response(503), httpx.Response(200, json=[PATIENT])]
        assert len(make_client(api, clock).search_patients(PHONE)) == 1
        waits.extend(clock.sleeps)
    assert len(waits) == 32 and all(0 < w <= 0.2 for w in waits)
    assert len(set(waits)) >= 16, waits
