"""Parsing Clinicea's JSON into typed values, and the endpoint table's overrides."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ivr.clinicea import DEFAULT_ENDPOINTS, Appointment, Endpoint, Patient, Visit, merge_endpoints
from ivr.clinicea.models import (
    ResponseFormatError,
    format_datetime,
    parse_booking,
    parse_token,
    status_key,
)


def test_patient_with_every_field():
    patient = Patient.from_api(
        {
            "ID": "p-1",
            "FileNo": 1042,
            "FullName": "Sana Ahmed",
            "FirstName": "Sana",
            "LastName": "Ahmed",
            "Mobile": "0300 1234567",
            "MobileCountryCode": "+92",
            "DateOfBirth": "1984-09-21T00:00:00",
        }
    )
    assert patient == Patient(
        id="p-1",
        first_name="Sana",
        last_name="Ahmed",
        full_name="Sana Ahmed",
        mobile="0300 1234567",
        mobile_country_code="+92",
        file_no="1042",
        date_of_birth=date(1984, 9, 21),
    )


def test_year_one_is_no_date():
    patient = Patient.from_api({"ID": "p-1", "DateOfBirth": "0001-01-01T00:00:00"})
    assert patient.date_of_birth is None


@pytest.mark.parametrize("value", [None, "", "not a date", 19840921, "   "])
def test_unreadable_dates_are_none(value):
    assert Patient.from_api({"ID": "p-1", "DateOfBirth": value}).date_of_birth is None


def test_full_name_is_built_from_the_parts_when_missing():
    patient = Patient.from_api({"ID": "p-1", "FirstName": "Ali", "LastName": "Raza"})
    assert patient.full_name == "Ali Raza"


def test_a_patient_without_an_id_cannot_be_used():
    with pytest.raises(ResponseFormatError):
        Patient.from_api({"FullName": "Nobody"})


def test_a_patient_that_is_not_an_object_cannot_be_used():
    with pytest.raises(ResponseFormatError):
        Patient.list_from_api(["p-1"])


def test_visit_clinic_address_skips_blank_parts():
    visit = Visit.from_api(
        {
            "ID": "v-1",
            "StartDateTime": "2024-05-20T09:00:00",
            "ClinicName": "Clifton",
            "ClinicAddress1": "12 Main Road",
            "ClinicAddress2": "",
            "ClinicCity": "Karachi",
        }
    )
    assert visit.clinic is not None
    assert visit.clinic.address == "12 Main Road, Karachi"
    assert visit.end is None
    assert visit.doctor_name is None


def test_a_visit_row_without_clinic_fields_has_no_clinic():
    visit = Visit.from_api({"ID": "v-1", "StartDateTime": "2024-05-20T09:00:00"})
    assert visit.clinic is None


def test_a_row_with_the_unset_start_date_cannot_be_used():
    with pytest.raises(ResponseFormatError):
        Appointment.from_api({"ID": "a-1", "StartDateTime": "0001-01-01T00:00:00"})


@pytest.mark.parametrize(
    ("status", "active"),
    [
        ("Scheduled", True),
        ("Confirmed", True),
        ("Cancelled", False),
        ("no show", False),
        ("NoShow", False),
        (None, True),
    ],
)
def test_appointment_is_active(status, active):
    row = {"ID": "a-1", "StartDateTime": "2025-03-04T09:00:00", "AppointmentStatus": status}
    assert Appointment.from_api(row).is_active is active


def test_appointment_patient_name_falls_back_on_its_parts():
    row = {
        "ID": "a-1",
        "StartDateTime": "2025-03-04T09:00:00",
        "PatientFirstName": "Ali",
        "PatientLastName": "Raza",
    }
    assert Appointment.from_api(row).patient_name == "Ali Raza"


def test_completed_visits_tolerate_a_single_object():
    row = {"ID": "v-1", "StartDateTime": "2024-05-20T09:00:00", "AppointmentStatus": "Check Out"}
    assert [v.id for v in Visit.completed_from_api(row)] == ["v-1"]
    assert Visit.completed_from_api(None) == []


def test_status_key_ignores_case_and_spaces():
    assert status_key("Check Out") == status_key("checkout") == status_key(" CHECK  OUT ")


def test_datetimes_are_written_without_microseconds_or_zone():
    assert format_datetime(datetime(2025, 3, 4, 9, 5, 7, 123456)) == "2025-03-04T09:05:07"


@pytest.mark.parametrize(
    ("payload", "token"),
    [("abc", "abc"), ({"Token": "abc"}, "abc"), ({"token": "abc"}, "abc"), (["abc"], "abc")],
)
def test_token_shapes(payload, token):
    assert parse_token(payload) == token


@pytest.mark.parametrize("payload", [None, "", {"Tok": "x"}, 42])
def test_no_token(payload):
    with pytest.raises(ResponseFormatError):
        parse_token(payload)


def test_booking_shapes():
    assert parse_booking({"AppointmentID": "a", "PatientID": "p"}).appointment_id == "a"
    assert parse_booking({"ID": "a"}).appointment_id == "a"
    assert parse_booking("a").appointment_id == "a"
    assert parse_booking([]).appointment_id is None
    assert parse_booking(17).appointment_id is None


def test_endpoint_override_merges_params_and_upper_cases_the_method():
    table = merge_endpoints({"book": {"method": "put", "params": {"doctor_id": "practitionerID"}}})
    assert table["book"].method == "PUT"
    assert table["book"].path == DEFAULT_ENDPOINTS["book"].path
    assert table["book"].wire("doctor_id") == "practitionerID"
    assert table["book"].wire("patient_id") == "patientID"
    assert DEFAULT_ENDPOINTS["book"].wire("doctor_id") == "staffID"  # defaults untouched


def test_an_endpoint_object_replaces_the_entry():
    table = merge_endpoints({"login": Endpoint("GET", "/login", {"api_key": "key"})})
    assert table["login"].path == "/login"


@pytest.mark.parametrize(
    "overrides",
    [
        {"serach": {"path": "/x"}},
        {"search": {"url": "/x"}},
        {"search": {"method": "FETCH"}},
        {"search": {"path": "api/no/slash"}},
        {"search": {"params": {"mobile": 1}}},
        {"search": "/x"},
    ],
)
def test_bad_endpoint_overrides_are_value_errors(overrides):
    with pytest.raises(ValueError):
        merge_endpoints(overrides)
