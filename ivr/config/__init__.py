"""Configuration: `Settings` from the environment and `ClinicConfig` from the clinic file.

- `settings`: `Settings.from_env()`, the only reader of `os.environ` in the project.
- `clinic`: `ClinicConfig` and `load_clinic_config(path)`, the clinic TOML file and its checks.
- `demo`: what demo mode runs on: `DEMO_CLINIC` (the sandbox's `demo_clinic.toml`) and the
  published demo secrets.
- `errors`: `ConfigError`, one line naming the key and what is wrong.

Everything is validated at start-up. Import from `ivr.config`; the names below are its API.
"""

from __future__ import annotations

from ivr.config.clinic import (
    DEFAULT_LANGUAGE,
    DEFAULT_VOICES,
    ClinicConfig,
    ReminderSettings,
    load_clinic_config,
    parse_clinic_config,
)
from ivr.config.demo import (
    DEMO_CLINIC,
    DEMO_CLINIC_CLIFTON_ID,
    DEMO_CLINIC_GULSHAN_ID,
    DEMO_CLINIC_TOML,
    DEMO_DOCTOR_FAROOQ_ID,
    DEMO_DOCTOR_KHAN_ID,
    DEMO_DOCTOR_QURESHI_ID,
    DEMO_DOCTOR_SHEIKH_ID,
    DEMO_SECRET_KEY,
    DEMO_SERVICE_CONSULTATION_ID,
    DEMO_SERVICE_FOLLOWUP_ID,
    DEMO_SERVICE_VACCINATION_ID,
    DEMO_TWILIO_AUTH_TOKEN,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from ivr.config.errors import ConfigError
from ivr.config.settings import DEFAULT_DATABASE_URL, LOG_LEVELS, Settings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_LANGUAGE",
    "DEFAULT_VOICES",
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
    "LOG_LEVELS",
    "ReminderSettings",
    "SANDBOX_API_KEY",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "ClinicConfig",
    "ConfigError",
    "Settings",
    "load_clinic_config",
    "parse_clinic_config",
]
