"""The JSON API (`/api`) against the app on the sandbox Clinicea.

The clock is fixed at Monday 23 November 2026, 10:00 in Karachi.
"""

from __future__ import annotations

import re

import pytest

from ivr.accounts import create_api_key, hash_api_key, verify_api_key
from ivr.openapi import document
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_DOCTOR_KHAN_ID, DEMO_PATIENTS
from tests.agents import api_headers
from tests.calls import rig
from tests.demo import BILAL
from tests.openapi_check import conforming

NEW_MOBILE = "0300 9998877"
TUESDAY_1PM = "2026-11-24T13:00"


def created(r) -> list[dict]:
    return [a for a in r.appointments() if a["ID"] not in r.seeded]


@pytest.fixture
def api():
    with rig() as r:
        yield r, conforming(r.app.test_client()), api_headers(r.app)


def test_a_key_is_returned_once_and_stored_only_as_its_hash(make_rig):
    r = make_rig()
    store = r.runtime.store
    key = create_api_key(store, "convox")
    assert len(key) >= 40
    record = verify_api_key(store, key)
    assert record is not None and record.name == "convox"
    assert record.key_hash == hash_api_key(key) and key not in record.key_hash
    assert verify_api_key(store, key + "x") is None
    assert verify_api_key(store, "") is None and verify_api_key(store, None) is None


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-key"},
    {"X-API-Key": "wrong-key"},
    {"Authorization": "Basic YWxpOnNlc2FtZQ=="},
])
def test_missing_or_wrong_key_is_401(api, headers):
    _, client, _ = api
    for method, url in [("get", "/api/caller?mobile=03216315551"),
                        ("get", f"/api/slots?doctor_id={DEMO_DOCTOR_FAROOQ_ID}&day=2026-11-24"),
                        ("post", "/api/bookings"), ("get", "/api/bookings/1")]:
        response = getattr(client, method)(url, headers=headers)
        assert response.status_code == 401, url
        assert "API key" in response.json["error"]


def test_a_path_or_method_the_api_does_not_have_is_a_json_error(api):
    """A call-centre integration reading `error` must not get an HTML page."""
    _, client, headers = api
    for method, url, status in [("get", "/api/no-such-thing", 404), ("get", "/api", 404),
                                ("delete", "/api/caller?mobile=03216315551", 405)]:
        response = getattr(client, method)(url, headers=headers)
        assert response.status_code == status, url
        assert response.is_json and response.json["error"], url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
    # Outside /api Flask's own page stays.
    assert not client.get("/no-such-page").is_json


def test_x_api_key_header_works_too(api):
    r, client, _ = api
    key = create_api_key(r.runtime.store, "other")
    response = client.get("/api/caller?mobile=03216315551", headers={"X-API-Key": key})
    assert response.status_code == 200


def test_caller_lookup_in_national_format(api):
    _, client, headers = api
    response = client.get("/api/caller", query_string={"mobile": "0321 6315551"},
                          headers=headers)
    assert response.status_code == 200
    body = response.json
    assert body["mobile"] == BILAL.e164
    assert [p["first_name"] for p in body["patients"]] == ["Bilal"]
    visit = body["last_visit"]
    assert visit["doctor_name"] == "Dr. Nadia Farooq"
    assert visit["start"] == "2026-11-09T10:00"
    assert visit["clinic"]["address"].startswith("7 Khayaban-e-Ittehad")
    assert body["clinic"]["name"] and len(body["doctors"]) == 4
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_caller_family_number_and_unknown_number(api):
    _, client, headers = api
    family = client.get("/api/caller?mobile=+923001234567", headers=headers).json
    assert {p["first_name"] for p in family["patients"]} == {"Kamran", "Sana", "Zoya"}
    sana = next(p for p in family["patients"] if p["first_name"] == "Sana")
    chosen = client.get(f"/api/caller?mobile=03001234567&patient_id={sana['id']}",
                        headers=headers).json
    assert chosen["patient_id"] == sana["id"]
    assert chosen["last_visit"]["doctor_name"] == "Dr. Bilal Qureshi"
    nobody = client.get(f"/api/caller?mobile={NEW_MOBILE}", headers=headers).json
    assert nobody["patients"] == [] and nobody["last_visit"] is None


@pytest.mark.parametrize("mobile", ["", "hello", "12"])
def test_caller_with_a_bad_number_is_400(api, mobile):
    _, client, headers = api
    response = client.get("/api/caller", query_string={"mobile": mobile}, headers=headers)
    assert response.status_code == 400 and response.json["error"]


def test_slots(api):
    _, client, headers = api
    response = client.get(f"/api/slots?doctor_id={DEMO_DOCTOR_FAROOQ_ID}&day=2026-11-24",
                          headers=headers)
    assert response.status_code == 200
    starts = [s["start"] for s in response.json["slots"]]
    assert starts and all(s.startswith("2026-11-24T") for s in starts)
    assert "2026-11-24T09:00" not in starts  # seeded: Nida Aslam at opening time
    assert TUESDAY_1PM in starts


@pytest.mark.parametrize("query, message", [
    (f"doctor_id={DEMO_DOCTOR_FAROOQ_ID}&day=24/11/2026", "YYYY-MM-DD"),
    (f"doctor_id={DEMO_DOCTOR_FAROOQ_ID}", "YYYY-MM-DD"),
    ("doctor_id=nobody&day=2026-11-24", "doctor"),
])
def test_slots_bad_input_is_400(api, query, message):
    _, client, headers = api
    response = client.get(f"/api/slots?{query}", headers=headers)
    assert response.status_code == 400 and message in response.json["error"]


def test_booking_for_a_known_patient_then_reading_it_back(api):
    r, client, headers = api
    response = client.post("/api/bookings", headers=headers, json={
        "doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id,
        "notes": "follow-up",
    })
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "booked" and body["appointment_id"]
    [appt] = created(r)
    assert appt["ID"] == body["appointment_id"] and appt["PatientID"] == BILAL.id
    assert appt["StartDateTime"] == "2026-11-24T13:00:00" and appt["Notes"] == "follow-up"
    by_id = client.get(f"/api/bookings/{body['id']}", headers=headers)
    by_key = client.get(f"/api/bookings/{body['idempotency_key']}", headers=headers)
    assert by_id.status_code == by_key.status_code == 200
    assert by_id.json == by_key.json and by_id.json["appointment_id"] == appt["ID"]
    assert client.get("/api/bookings/999", headers=headers).status_code == 404
    assert client.get("/api/bookings/nope", headers=headers).json == {"error": "no such booking"}


def test_idempotency_key_makes_a_repeat_return_the_same_booking(api):
    r, client, headers = api
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id}
    first = client.post("/api/bookings", headers={**headers, "Idempotency-Key": "call-42"},
                        json=body)
    again = client.post("/api/bookings", headers={**headers, "Idempotency-Key": "call-42"},
                        json=body)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"] and len(created(r)) == 1


def test_new_patient_with_consent_is_registered_and_booked(api):
    r, client, headers = api
    response = client.post("/api/bookings", headers=headers, json={
        "doctor_id": DEMO_DOCTOR_KHAN_ID, "start": "2026-11-24T14:00",
        "new_patient": {"first_name": "Ayaan", "last_name": "Khan", "mobile": NEW_MOBILE,
                        "consent": True},
    })
    assert response.status_code == 201 and response.json["status"] == "booked"
    [patient] = [p for p in r.sandbox.patients() if p["FirstName"] == "Ayaan"]
    assert response.json["patient_id"] == patient["ID"]
    found = client.get(f"/api/caller?mobile={NEW_MOBILE}", headers=headers).json
    assert [p["id"] for p in found["patients"]] == [patient["ID"]]


@pytest.mark.parametrize("consent", [None, False, "yes", 1])
def test_new_patient_without_consent_is_400_and_nothing_is_created(api, consent):
    r, client, headers = api
    new = {"first_name": "Ayaan", "last_name": "Khan", "mobile": NEW_MOBILE}
    if consent is not None:
        new["consent"] = consent
    before = len(r.sandbox.patients())
    response = client.post("/api/bookings", headers=headers, json={
        "doctor_id": DEMO_DOCTOR_KHAN_ID, "start": "2026-11-24T14:00", "new_patient": new,
    })
    assert response.status_code == 400
    assert response.json == {"error": "consent is required to register a new patient"}
    assert len(r.sandbox.patients()) == before and created(r) == []
    assert r.runtime.store.bookings() == []


@pytest.mark.parametrize("kwargs, message", [
    ({"data": "not json", "content_type": "application/json"}, "JSON object"),
    ({"json": ["a", "list"]}, "JSON object"),
    ({"json": {"start": TUESDAY_1PM, "patient_id": BILAL.id}}, "doctor_id"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "patient_id": BILAL.id}}, "start"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": "24/11/2026 13:00",
               "patient_id": BILAL.id}}, "YYYY-MM-DDTHH:MM"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM}}, "patient_id"),
    ({"json": {"doctor_id": "nobody", "start": TUESDAY_1PM, "patient_id": BILAL.id}},
     "doctor"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM,
               "patient_id": BILAL.id, "notes": "x" * 501}}, "notes"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM,
               "new_patient": {"first_name": "A", "last_name": "", "mobile": NEW_MOBILE,
                               "consent": True}}}, "last_name"),
    ({"json": {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM,
               "new_patient": {"first_name": "A", "last_name": "B", "mobile": "12",
                               "consent": True}}}, "phone number"),
])
def test_malformed_booking_is_400_with_a_message(api, kwargs, message):
    r, client, headers = api
    response = client.post("/api/bookings", headers=headers, **kwargs)
    assert response.status_code == 400, response.json
    assert message in response.json["error"]
    assert created(r) == []


def test_slot_taken_is_409(api):
    r, client, headers = api
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id}
    assert client.post("/api/bookings", headers=headers, json=body).status_code == 201
    other = DEMO_PATIENTS["Hira Malik"].id
    response = client.post("/api/bookings", headers=headers, json={**body, "patient_id": other})
    assert response.status_code == 409 and "no longer free" in response.json["error"]
    seeded = client.post("/api/bookings", headers=headers, json={
        **body, "start": "2026-11-24T09:00"})  # Nida Aslam's seeded appointment
    assert seeded.status_code == 409
    assert len(created(r)) == 1


def test_clinicea_down_is_503_for_lookups_and_recorded_for_bookings(api):
    r, client, headers = api
    r.sandbox.faults.fail_next(503, times=None)
    caller = client.get("/api/caller?mobile=03216315551", headers=headers)
    slots = client.get(f"/api/slots?doctor_id={DEMO_DOCTOR_KHAN_ID}&day=2026-11-25",
                       headers=headers)
    assert caller.status_code == slots.status_code == 503
    assert "not answering" in caller.json["error"]
    booking = client.post("/api/bookings", headers=headers, json={
        "doctor_id": DEMO_DOCTOR_KHAN_ID, "start": "2026-11-25T13:00", "patient_id": BILAL.id})
    assert booking.status_code == 201
    assert booking.json["status"] in ("pending", "retrying")
    assert "as soon as Clinicea answers" in booking.json["message"]
    [row] = r.runtime.store.bookings()
    assert row.idempotency_key == booking.json["idempotency_key"]


# --- the OpenAPI document ------------------------------------------------------------------


def _api_routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out.add((path, method.lower()))
    return out


def test_openapi_document_describes_exactly_the_routes(api):
    r, client, _ = api
    response = client.get("/api/openapi.json")  # no key needed
    assert response.status_code == 200
    doc = response.json
    assert doc == document()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == _api_routes(r.app)


def test_openapi_document_is_valid():
    from openapi_spec_validator import validate

    validate(document())


# --- review fixes: each of these answered 500, 201 or the wrong 4xx before ------------------


@pytest.mark.parametrize("booking_id", [
    "99999999999999999999999999",  # beyond SQLite's integers: was OverflowError, 500
    "9223372036854775808",
    "%C2%B2",  # "²": str.isdigit() is True, int() refuses it: was ValueError, 500
    "%D9%A3",  # Arabic-Indic digit three
])
def test_reading_a_booking_by_an_id_that_cannot_exist_is_404(api, booking_id):
    _, client, headers = api
    response = client.get(f"/api/bookings/{booking_id}", headers=headers)
    assert response.status_code == 404
    assert response.json == {"error": "no such booking"}


def test_unknown_patient_id_is_400_and_left_out_of_the_agents_outbox(api):
    r, client, headers = api
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": "no-such-id"}
    response = client.post("/api/bookings", headers={**headers, "Idempotency-Key": "call-7"},
                           json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"].startswith("Clinicea refused the booking")
    assert "patient" in response.json["error"].lower()
    assert created(r) == []
    # Nobody has to call anyone back: the caller of the API was told.
    [row] = r.runtime.store.bookings()
    assert row.status == "handled" and row.handled_by
    assert r.runtime.store.bookings(statuses=("pending", "retrying", "failed")) == []
    # The same request again says the same.
    again = client.post("/api/bookings", headers={**headers, "Idempotency-Key": "call-7"},
                        json=body)
    assert again.status_code == 400 and again.json == response.json
    assert created(r) == [] and len(r.runtime.store.bookings()) == 1


@pytest.mark.parametrize("change", [
    {"doctor_id": DEMO_DOCTOR_KHAN_ID},
    {"start": "2026-11-24T14:00"},
    {"notes": "something else"},
    {"patient_id": DEMO_PATIENTS["Hira Malik"].id},
])
def test_an_idempotency_key_reused_for_another_booking_is_409(api, change):
    r, client, headers = api
    keyed = {**headers, "Idempotency-Key": "call-43"}
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id,
            "notes": "follow-up"}
    first = client.post("/api/bookings", headers=keyed, json=body)
    assert first.status_code == 201
    other = client.post("/api/bookings", headers=keyed, json={**body, **change})
    assert other.status_code == 409, other.json
    assert "Idempotency-Key" in other.json["error"] and "different" in other.json["error"]
    assert len(created(r)) == 1
    # The key still answers for its own booking, and another key books the other request.
    same = client.post("/api/bookings", headers=keyed, json=body)
    assert same.status_code == 201 and same.json["id"] == first.json["id"]
    fresh = client.post("/api/bookings", headers={**headers, "Idempotency-Key": "call-44"},
                        json={**body, **change})
    if "doctor_id" in change or "start" in change:
        assert fresh.status_code == 201 and len(created(r)) == 2
    else:  # the same slot, which the first booking holds now
        assert fresh.status_code == 409 and "no longer free" in fresh.json["error"]


def test_the_same_body_with_notes_spaced_differently_is_the_same_booking(api):
    r, client, headers = api
    keyed = {**headers, "Idempotency-Key": "call-45"}
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id,
            "notes": "follow-up"}
    first = client.post("/api/bookings", headers=keyed, json=body)
    again = client.post("/api/bookings", headers=keyed, json={**body, "notes": " follow-up "})
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"] and len(created(r)) == 1


@pytest.mark.parametrize("start", ["2020-01-01T09:40", "2026-11-23T09:40", "2026-11-23T10:00"])
def test_a_start_in_the_past_is_400(api, start):
    r, client, headers = api
    response = client.post("/api/bookings", headers=headers, json={
        "doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": start, "patient_id": BILAL.id})
    assert response.status_code == 400, response.json
    assert "in the past" in response.json["error"]
    assert created(r) == [] and r.runtime.store.bookings() == []


def test_openapi_documents_the_booking_errors():
    responses = document()["paths"]["/api/bookings"]["post"]["responses"]
    assert {"400", "409"} <= set(responses)
    assert "Idempotency-Key" in responses["409"]["description"]
    assert "past" in responses["400"]["description"]
    assert "Clinicea" in responses["400"]["description"]
