"""Smaller ones of issue 9, item 12: console ids, database file modes, start-up errors, one
callback per call."""

from __future__ import annotations

import pytest

from tests.agents import csrf_of, signed_in
from tests.calls import rig


@pytest.mark.parametrize("path", [
    "/console/bookings/99999999999999999999999",
    "/console/bookings/²",
    "/console/bookings/0",
    "/console/bookings/9223372036854775808",
])
def test_the_console_answers_404_for_a_booking_id_that_cannot_exist(path):
    with rig() as r:
        client = signed_in(r.app)
        assert client.get(path).status_code == 404


def test_the_console_answers_404_for_a_huge_callback_id():
    with rig() as r:
        client = signed_in(r.app)
        token = csrf_of(client.get("/console/outbox").text)
        for callback_id in ("99999999999999999999999", "9223372036854775808"):
            response = client.post(f"/console/callbacks/{callback_id}/handled",
                                   data={"csrf_token": token})
            assert response.status_code == 404, callback_id
