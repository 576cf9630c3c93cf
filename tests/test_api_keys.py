"""API key names and the Idempotency-Key scope (issue 9, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.accounts import create_api_key, hash_api_key
from ivr.cli import main
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID
from ivr.store import Store
from tests.demo import BILAL

TUESDAY_1PM = "2026-11-24T13:00"


@pytest.mark.parametrize("name", ["convox prod", "convox\tprod", "convox/prod", "ünï", "x" * 65])
def test_a_key_name_outside_the_safe_set_is_refused_with_one_line(
    name, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'ivr.db'}")
    assert main(["add-api-key", name]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no spaces" in err
    assert "Traceback" not in err
    with pytest.raises(ValueError):
        create_api_key(Store(f"sqlite:///{tmp_path / 'ivr.db'}"), name)


def test_a_safe_key_name_is_created(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'ivr.db'}")
    assert main(["add-api-key", "convox-prod_2.0"]) == 0
    assert "shown once" in capsys.readouterr().out


def test_a_retry_of_a_booking_with_a_key_named_with_a_space_returns_that_booking(make_rig):
    """A key created before names were checked ("convox prod") still gets its retries right:
    the Idempotency-Key is scoped by the key, not by its name's spelling."""
    r = make_rig()
    r.runtime.store.add_api_key("convox prod", hash_api_key("legacy-key-with-a-spaced-name"))
    client = r.app.test_client()
    headers = {"Authorization": "Bearer legacy-key-with-a-spaced-name",
               "Idempotency-Key": "call-42"}
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id}
    first = client.post("/api/bookings", headers=headers, json=body)
    again = client.post("/api/bookings", headers=headers, json=body)
    assert first.status_code == 201, first.json
    assert again.status_code == 201, again.json
    assert again.json["id"] == first.json["id"]
    assert "convox prod" not in first.json["idempotency_key"]


def test_two_keys_with_the_same_name_do_not_share_idempotency_keys(make_rig):
    r = make_rig()
    store = r.runtime.store
    one, two = create_api_key(store, "convox"), create_api_key(store, "convox")
    client = r.app.test_client()
    body = {"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM, "patient_id": BILAL.id}
    first = client.post("/api/bookings", json=body,
                        headers={"Authorization": f"Bearer {one}", "Idempotency-Key": "k1"})
    other = client.post("/api/bookings", json={**body, "start": "2026-11-24T13:20"},
                        headers={"Authorization": f"Bearer {two}", "Idempotency-Key": "k1"})
    assert first.status_code == 201 and other.status_code == 201, other.json
    assert first.json["id"] != other.json["id"]


def test_an_idempotency_key_too_long_to_keep_is_400_not_replaced(make_rig):
    r = make_rig()
    key = create_api_key(r.runtime.store, "convox")
    response = r.app.test_client().post(
        "/api/bookings",
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "k" * 190},
        json={"doctor_id": DEMO_DOCTOR_FAROOQ_ID, "start": TUESDAY_1PM,
              "patient_id": BILAL.id})
    assert response.status_code == 400 and "160" in response.json["error"]
