"""What demo mode runs on: the demo clinic and the published demo secrets.

`DEMO_CLINIC` is the sandbox's `ivr/sandbox/demo_clinic.toml`, read by the same loader as any
clinic file (so the demo is validated too); the sandbox seeds its calendar from that file, so
the IVR and its sandbox name the same doctors by the same ids. The credentials the sandbox
accepts are the sandbox's own (`ivr.sandbox.state`); the Twilio token and console secret below
are ours. All of them are public on purpose, usable only in demo mode (`ivr check` flags them).
"""

from __future__ import annotations

from ivr.config.clinic import ClinicConfig, parse_clinic_config
from ivr.sandbox.seed import (
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_CLINIC_GULSHAN_ID,
    DEMO_CLINIC_TOML,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_DOCTOR_QURESHI_ID,
    DEMO_DOCTOR_SHEIKH_ID,
    DEMO_SERVICE_CONSULTATION_ID,
    DEMO_SERVICE_FOLLOWUP_ID,
    DEMO_SERVICE_VACCINATION_ID,
)
from ivr.sandbox.state import SANDBOX_API_KEY, SANDBOX_PASSWORD, SANDBOX_USERNAME

DEMO_TWILIO_AUTH_TOKEN = "demo-twilio-auth-token"
DEMO_SECRET_KEY = "demo-secret-key-not-for-production"

DEMO_CLINIC: ClinicConfig = parse_clinic_config(DEMO_CLINIC_TOML, "ivr/sandbox/demo_clinic.toml")

__all__ = [
    "DEMO_CLINIC",
    "DEMO_CLINIC_CLIFTON_ID",
    "DEMO_CLINIC_GULSHAN_ID",
    "DEMO_CLINIC_TOML",
    "DEMO_DOCTOR_FAROOQ_ID",
    "DEMO_DOCTOR_KHAN_ID",
    "DEMO_DOCTOR_QURESHI_ID",
    "DEMO_DOCTOR_SHEIKH_ID",
    "DEMO_SECRET_KEY",
    "DEMO_SERVICE_CONSULTATION_ID",
    "DEMO_SERVICE_FOLLOWUP_ID",
    "DEMO_SERVICE_VACCINATION_ID",
    "DEMO_TWILIO_AUTH_TOKEN",
    "SANDBOX_API_KEY",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
]
