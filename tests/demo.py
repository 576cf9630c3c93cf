"""The demo clinic's people, numbers and moments, and the Clinicea paths, named once for tests.

The patients are the sandbox seed's (``ivr.sandbox.seed.DEMO_PATIENTS``); tests call them by first
name. The Clinicea paths are written out, not imported from the client, so a test notices when
the client starts calling a different endpoint.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ivr.sandbox.seed import DEMO_PATIENTS

ROOT = Path(__file__).resolve().parents[1]  # the repository

# Monday 23 November 2026, 10:00 in Karachi: inside booking and agent hours.
MONDAY_10AM = datetime(2026, 11, 23, 10, 0)
# Saturday 28 November 2026, 19:00: after agent hours, reception closed.
SATURDAY_EVENING = datetime(2026, 11, 28, 19, 0)

CLINIC_NUMBER = "+922135550199"  # the number callers dial

BILAL = DEMO_PATIENTS["Bilal Ahmed"]  # the call-script caller: a past visit with Dr. Farooq
HIRA = DEMO_PATIENTS["Hira Malik"]  # no appointments at all, no date of birth
USMAN = DEMO_PATIENTS["Usman Tariq"]  # newest past row is a No Show
HAMZA = DEMO_PATIENTS["Hamza Iqbal"]  # stored with a leading 00
AYESHA = DEMO_PATIENTS["Ayesha Siddiqui"]  # a visit with Dr. Qureshi at Gulshan
FAMILY = DEMO_PATIENTS["Kamran Ahmed"].e164  # one number, several patients (Kamran, Sana, Zoya)
NEW_CALLER = "+923009998877"  # in no patient's record

# Clinicea API paths the client calls and the sandbox serves.
LOGIN = "/api/v2/login/getTokenByStaffUsernamePwd"
SEARCH = "/api/v2/patients/searchPatientByMobileNumber"
PAST = "/api/v2/appointments/getPatientPastCompletedAppointment"
BY_DATE = "/api/v3/appointments/getAppointmentsByDate"
BOOK = "/api/v2/appointments/postAppointmentByPatientID"
REGISTER = "/api/v2/appointments/postAppointment"
