"""Whole calls through the Twilio call simulator against the app on the sandbox Clinicea."""

from __future__ import annotations

from ivr.sandbox.seed import DEMO_PATIENTS
from tests.calls import rig

BILAL = DEMO_PATIENTS["Bilal Ahmed"].e164


def test_returning_patient_books_by_keypad_only():
    with rig() as r:
        call = r.call(BILAL)
        assert "Hello Bilal" in call.heard
        assert "Dr. Nadia Farooq" in call.heard
        assert "7 Khayaban-e-Ittehad" in call.heard
        call.press("1")  # book
        assert "Dr. Farooq again" in call.last_heard
        call.press("1")  # same doctor
        call.press("1")  # first offered time
        call.silence()  # no reason
        assert "Press 1 to book it" in call.last_heard
        call.press("1")
        assert "booked" in call.heard
        assert call.ended
        booked = [a for a in r.appointments() if a["PatientID"] == DEMO_PATIENTS["Bilal Ahmed"].id
                  and a["AppointmentStatus"] == "Scheduled"]
        assert len(booked) == 1
        print(call.transcript_text())
