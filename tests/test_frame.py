"""The booking call's typed frame: state saved by the old string-keyed code still loads and books.

Calls in progress during a deploy carry the state the previous version stored; the frame reads
it (same JSON keys, ISO strings), keeps a newer version's keys it does not know, and turns
values of the wrong shape into "not known yet" instead of a traceback mid-call.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time

from flows import menus
from flows.booking.frame import BookingFrame, Patient, Request, Visit
from flows.engine import CallState
from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID
from ivr.store import CallUpdate
from tests.demo import BILAL

# What the string-keyed code (before the frame) stored for a caller at the read-back.
OLD_DATA = {
    "clinic_number": "+922135550199",
    "patients": [{"id": "P1", "first_name": "Bilal", "last_name": "Ahmed",
                  "dob": "1990-05-04"}],
    "patient": {"id": "P1", "first_name": "Bilal", "last_name": "Ahmed", "dob": "1990-05-04"},
    "verified": True,
    "last_visit": {"start": "2026-10-02T11:00:00", "doctor_name": "Dr. Nadia Farooq",
                   "doctor_id": "D1", "address": "7 Khayaban-e-Ittehad", "site": "DHA",
                   "service": None},
    "doctor_id": "D1",
    "request": {"day": "2026-11-27", "start": "16:00", "end": "17:00", "either_half": False},
    "offered": ["2026-11-24T09:00:00", "2026-11-24T09:20:00"],
    "offered_day": "2026-11-24",
    "offer": {"start": "2026-11-24T09:40:00", "part": "morning"},
    "start": "2026-11-24T09:20:00",
    "notes": "sore throat",
    "new_name": ["Sana", "Khan"],
    "booking_seq": 2,
    "booking": {"status": "slot_taken", "appointment_id": None},
}


def test_state_saved_by_the_old_code_loads_typed_and_dumps_back_unchanged():
    raw = json.loads(json.dumps({"call_sid": "CA1", "step": "confirm", "data": OLD_DATA}))
    call = CallState.from_dict(raw, frame=BookingFrame.load)
    frame = call.data
    assert isinstance(frame, BookingFrame)
    assert frame.patient == Patient("P1", "Bilal", "Ahmed", date(1990, 5, 4))
    assert isinstance(frame.last_visit, Visit) and frame.last_visit.doctor_id == "D1"
    assert frame.request == Request(date(2026, 11, 27), time(16), time(17))
    assert frame.offered == [datetime(2026, 11, 24, 9), datetime(2026, 11, 24, 9, 20)]
    assert frame.start == datetime(2026, 11, 24, 9, 20) and frame.booking_seq == 2
    assert frame.new_name == ("Sana", "Khan") and frame.verified
    assert call.to_dict()["data"] == OLD_DATA  # nothing lost, the same JSON for the store


def test_a_newer_versions_keys_are_kept_and_bad_values_read_as_unknown():
    frame = BookingFrame.load({
        "future_key": {"x": 1}, "patients": "nobody", "offered": ["soon", 3],
        "start": "half past", "who_page": True, "patient": {"first_name": "no id"},
        "booking_seq": -4, "request": {"day": "someday"},
    })
    assert frame.patients is None and frame.offered == [] and frame.start is None
    assert frame.who_page == 0 and frame.patient is None and frame.booking_seq == 1
    assert frame.request is None
    assert frame.dump() == {"future_key": {"x": 1}}


def test_lists_in_stored_state_are_capped_on_load():
    many = [{"id": f"P{i}", "first_name": f"N{i}"} for i in range(500)]
    frame = BookingFrame.load({"patients": many, "offered": ["2026-11-24T09:00:00"] * 500})
    assert frame.patients is not None and len(frame.patients) == menus.MAX_KEPT
    assert len(frame.offered) == menus.MAX_KEPT


def test_a_call_whose_state_the_old_code_saved_books_after_the_deploy(make_rig):
    r = make_rig()
    call = r.call(BILAL.e164)
    call.say("book me with Dr. Farooq next Tuesday at 4 pm for a sore throat")
    assert "Tuesday the 1st of December at 4 p.m." in call.last_heard
    record = r.runtime.store.load_call(call.sid)
    assert record is not None
    new = record.state["data"]
    # The same call as the old code stored it: explicit nulls, the plain-key lists.
    old = {**new, "last_visit": None, "notes": "my back", "transfer_failed": None,
           "patients": [{**p, "dob": p.get("dob")} for p in new["patients"]]}
    saved = r.runtime.store.save_call(call.sid, CallUpdate(
        expected_version=record.version, state={**record.state, "data": old},
        step=record.step, turn=record.turn, last_reply=record.last_reply,
        last_reply_turn=record.turn - 1))
    assert saved
    call.say("yes please")
    assert "You're booked" in call.last_heard
    [appt] = [a for a in r.appointments() if a["PatientID"] == BILAL.id
              and a["ID"] not in r.seeded]
    assert appt["StaffID"] == DEMO_DOCTOR_FAROOQ_ID
    assert appt["StartDateTime"].startswith("2026-12-01T16:00")
    assert "my back" in (appt.get("Notes") or "")
