"""The API against its own OpenAPI document, with schemathesis generating the requests.

Every operation of `ivr/openapi.py` is called with generated parameters and bodies (a bounded
number of examples each, against the app on the sandbox Clinicea, in process): no answer is a
5xx, and every answer conforms to the document (status code, content type, body schema).
Schemathesis' own pytest plugin does not run under pytest 9, so the operations are
parametrized here and each one's hypothesis strategy drives a plain `@given`.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from jsonschema.exceptions import ValidationError
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ivr.openapi import document
from tests.agents import api_headers
from tests.calls import rig
from tests.openapi_check import check_response

SCHEMA = schemathesis.openapi.from_dict(document())
# What the document promises of every answer. Not `positive_data_acceptance`: a string the
# schema allows ("mobile": "") may still be a malformed phone number, answered 400 as documented.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


@pytest.fixture(scope="module")
def served():
    with rig() as r:
        yield r.app, api_headers(r.app)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_as_documented(served, label):
    app, headers = served

    @given(case=OPERATIONS[label].as_strategy())
    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(app=app, headers=headers, checks=CHECKS)

    check()


def test_the_response_check_refuses_what_the_document_does_not_say():
    # The wrapper every test_api.py client goes through: it must catch a drifting answer.
    check_response("GET", "/api/bookings/7", 404, "application/json", {"error": "no such"})
    with pytest.raises(AssertionError, match="not documented"):
        check_response("GET", "/api/bookings/7", 500, "application/json", {"error": "x"})
    with pytest.raises(ValidationError):
        check_response("GET", "/api/bookings/7", 200, "application/json",
                       {"id": "7", "idempotency_key": "k", "status": "booked"})
    with pytest.raises(ValidationError):
        check_response("GET", "/api/bookings/7", 200, "application/json",
                       {"id": 7, "idempotency_key": "k", "status": "lost"})
