"""Configuration: `Settings` from the environment and `ClinicConfig` from the clinic TOML file.

This is the only module that reads `os.environ`. Everything is validated at start-up; a bad
value raises `ConfigError` with one line naming the key and what is wrong, e.g.
`timezone: unknown time zone 'Mars/Base'`.

Demo mode (no `CLINICEA_BASE_URL`, or `IVR_DEMO=1`) runs against the embedded sandbox with the
built-in `DEMO_CLINIC` and documented, public demo secrets; outside demo mode every secret must
be set. `IVR_DEMO=1` beside a `CLINICEA_BASE_URL` (a sandbox elsewhere, or maybe a real
Clinicea) still needs a `TWILIO_AUTH_TOKEN` and `IVR_SECRET_KEY` of its own.
See `docs/clinic.example.toml` for every clinic key.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from flows.domain import WEEKDAYS, ClinicSite, Doctor, Service, WeeklyHours
from ivr.phone import parse_phone

# --- DEMO_IDS: fixed Clinicea GUIDs of the demo clinic. They must equal the sandbox seed's
# (ivr/sandbox/seed.py); tests/test_config.py checks that they do. ---
DEMO_CLINIC_CLIFTON_ID = "6f1c2a0e-3b7d-4c1a-9e2f-0a1b2c3d4e01"
DEMO_CLINIC_GULSHAN_ID = "6f1c2a0e-3b7d-4c1a-9e2f-0a1b2c3d4e02"
DEMO_DOCTOR_FAROOQ_ID = "7a2d3b1f-4c8e-4d2b-8f30-1b2c3d4e5f01"  # Clifton
DEMO_DOCTOR_SHEIKH_ID = "7a2d3b1f-4c8e-4d2b-8f30-1b2c3d4e5f02"  # Clifton
DEMO_DOCTOR_KHAN_ID = "7a2d3b1f-4c8e-4d2b-8f30-1b2c3d4e5f03"  # Gulshan
DEMO_DOCTOR_QURESHI_ID = "7a2d3b1f-4c8e-4d2b-8f30-1b2c3d4e5f04"  # Gulshan
DEMO_SERVICE_CONSULTATION_ID = "8b3e4c20-5d9f-4e3c-9a41-2c3d4e5f6a01"
DEMO_SERVICE_FOLLOWUP_ID = "8b3e4c20-5d9f-4e3c-9a41-2c3d4e5f6a02"
DEMO_SERVICE_VACCINATION_ID = "8b3e4c20-5d9f-4e3c-9a41-2c3d4e5f6a03"

# --- Demo secrets: public on purpose, only ever used in demo mode (`ivr check` flags them). ---
DEMO_TWILIO_AUTH_TOKEN = "demo-twilio-auth-token"
DEMO_SECRET_KEY = "demo-secret-key-not-for-production"
SANDBOX_API_KEY = "sandbox-api-key"
SANDBOX_USERNAME = "frontdesk"
SANDBOX_PASSWORD = "sandbox-password"

DEFAULT_DATABASE_URL = "sqlite:///ivr.db"
DEFAULT_LANGUAGE = "en-GB"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Twilio <Say> voice per prompt language. Language packs may add entries at import time;
# `ClinicConfig.voice_for` reads this live, so late additions still count.
# Urdu: Polly has no Urdu voice; Google's ur-IN voice reads Urdu script (docs/understanding.md).
DEFAULT_VOICES: dict[str, str] = {
    "en-GB": "Polly.Amy",
    "en-US": "Polly.Joanna",
    "ur-PK": "Google.ur-IN-Wavenet-A",
    "ur-IN": "Google.ur-IN-Wavenet-A",
}


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message is one line: "<key>: <what>"."""

    def __init__(self, message: str) -> None:
        # One line, always: it is printed at start-up and by `ivr check`.
        super().__init__(" ".join(message.split()))


# ----------------------------------------------------------------------------- ClinicConfig


@dataclass(frozen=True)
class ClinicConfig:
    """The clinic as the IVR sees it: identity, hours, sites, doctors, services, behaviour."""

    name: str
    timezone: str  # IANA name, validated by zoneinfo
    default_region: str  # ISO region for national-format phone numbers, e.g. "PK"
    transfer_number: str  # E.164
    hours: WeeklyHours  # when appointments can be booked
    agent_hours: WeeklyHours  # when a person answers transfers
    clinics: tuple[ClinicSite, ...]
    doctors: tuple[Doctor, ...]
    services: tuple[Service, ...]
    default_service_id: str
    language: str = DEFAULT_LANGUAGE
    languages_offered: tuple[str, ...] = (DEFAULT_LANGUAGE,)
    voice: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VOICES))
    slot_minutes: int = 20
    booking_days_ahead: int = 30
    read_last_visit_service: bool = False
    verify_date_of_birth: bool = False
    sms_confirmation: bool = False
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # op -> method/path/params
    booking_max_attempts: int = 8
    event_retention_days: int = 30
    hold_minutes: int = 5  # how long a time offered to a caller is kept for them

    def voice_for(self, language: str) -> str | None:
        """The Twilio voice for a prompt language (clinic's [voices], then DEFAULT_VOICES)."""
        return self.voice.get(language) or DEFAULT_VOICES.get(language)

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def default_service(self) -> Service:
        """The service booked when the caller does not choose one."""
        return self.service_by_id(self.default_service_id)  # type: ignore[return-value]

    def clinic_by_id(self, clinic_id: str) -> ClinicSite | None:
        """The site with that Clinicea id, or None."""
        return next((c for c in self.clinics if c.id == clinic_id), None)

    def doctor_by_id(self, doctor_id: str) -> Doctor | None:
        """The doctor with that Clinicea staff id, or None."""
        return next((d for d in self.doctors if d.id == doctor_id), None)

    def service_by_id(self, service_id: str) -> Service | None:
        """The service with that Clinicea id, or None."""
        return next((s for s in self.services if s.id == service_id), None)


def load_clinic_config(path: str | Path) -> ClinicConfig:
    """Read and validate a clinic TOML file."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not valid TOML: not UTF-8 text") from None
    return parse_clinic_config(text, source)


def parse_clinic_config(text: str, source: str = "<string>") -> ClinicConfig:
    """Parse and validate clinic TOML text; `source` names it in syntax errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return _build_clinic(_Table(data, ""))


_TOP_LEVEL_KEYS = (
    "name", "timezone", "default_region", "language", "languages_offered", "voices",
    "transfer_number", "slot_minutes", "booking_days_ahead", "read_last_visit_service",
    "verify_date_of_birth", "sms_confirmation", "default_service", "booking_max_attempts",
    "event_retention_days", "hours", "agent_hours", "clinics", "doctors", "services", "endpoints",
    "hold_minutes",
)  # fmt: skip


def _build_clinic(top: _Table) -> ClinicConfig:
    top.only(_TOP_LEVEL_KEYS)  # first, so a typo is reported as a typo, not as "missing"
    name = top.text("name")
    timezone = top.text("timezone")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: unknown time zone {timezone!r}") from None
    region = top.text("default_region").upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"default_region: {region!r} is not a region phonenumbers knows")
    language = _language(top.text("language", DEFAULT_LANGUAGE), "language")
    offered = _languages_offered(top, language)
    voices = top.table("voices", {})
    voice = dict(DEFAULT_VOICES)
    for lang in voices.keys():
        voice[_language(lang, voices.key(lang))] = voices.text(lang)

    hours = _weekly_hours(top.table("hours"))
    agent_table = top.table("agent_hours", None)
    agent_hours = hours if agent_table is None else _weekly_hours(agent_table)

    clinics = tuple(_clinic_site(t, region) for t in top.tables("clinics"))
    _no_duplicates("clinics", [c.id for c in clinics])
    doctors = tuple(_doctor(t, {c.id for c in clinics}) for t in top.tables("doctors"))
    _no_duplicates("doctors", [d.id for d in doctors])
    services = tuple(_service(t) for t in top.tables("services"))
    _no_duplicates("services", [s.id for s in services])
    default_service = top.text("default_service", services[0].id)
    if default_service not in {s.id for s in services}:
        raise ConfigError(
            f"default_service: {default_service!r} is not the id of any [[services]] entry"
        )

    config = ClinicConfig(
        name=name,
        timezone=timezone,
        default_region=region,
        transfer_number=_phone(top.text("transfer_number"), region, "transfer_number"),
        hours=hours,
        agent_hours=agent_hours,
        clinics=clinics,
        doctors=doctors,
        services=services,
        default_service_id=default_service,
        language=language,
        languages_offered=offered,
        voice=voice,
        slot_minutes=top.positive_int("slot_minutes", 20),
        booking_days_ahead=top.positive_int("booking_days_ahead", 30),
        read_last_visit_service=top.flag("read_last_visit_service", False),
        verify_date_of_birth=top.flag("verify_date_of_birth", False),
        sms_confirmation=top.flag("sms_confirmation", False),
        endpoints=_endpoints(top.table("endpoints", {})),
        booking_max_attempts=top.positive_int("booking_max_attempts", 8),
        event_retention_days=top.positive_int("event_retention_days", 30),
        hold_minutes=top.positive_int("hold_minutes", 5),
    )
    return config


_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _language(value: str, key: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ConfigError(f"{key}: {value!r} is not a language tag like 'en-GB'")
    return value


def _languages_offered(top: _Table, language: str) -> tuple[str, ...]:
    values = top.get("languages_offered", [language])
    if not isinstance(values, list) or not values:
        raise ConfigError("languages_offered: must be a non-empty list of language tags")
    offered: list[str] = []
    for i, value in enumerate(values):
        key = f"languages_offered[{i}]"
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        if value in offered:
            raise ConfigError(f"{key}: {value!r} is listed twice")
        offered.append(_language(value, key))
    if language not in offered:
        raise ConfigError(f"languages_offered: must include language {language!r}")
    return tuple(offered)


_RANGE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _weekly_hours(table: _Table) -> WeeklyHours:
    table.only(WEEKDAYS, hint="days are mon, tue, wed, thu, fri, sat, sun")
    ranges: dict[int, tuple[tuple[time, time], ...]] = {}
    for index, day in enumerate(WEEKDAYS):
        if day in table.keys():
            ranges[index] = _day_ranges(table.text(day), table.key(day))
    return WeeklyHours({day: r for day, r in ranges.items() if r})


def _day_ranges(value: str, key: str) -> tuple[tuple[time, time], ...]:
    """ "09:00-13:00, 14:00-17:00" or "closed" -> sorted, non-overlapping (start, end) pairs."""
    if value.strip().lower() == "closed":
        return ()
    result: list[tuple[time, time]] = []
    for part in value.split(","):
        match = _RANGE.fullmatch(part.strip())
        try:
            if match is None:
                raise ValueError
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not HH:MM-HH:MM or closed") from None
        if end <= start:
            raise ConfigError(f"{key}: {part.strip()!r} ends before it starts")
        result.append((start, end))
    result.sort()
    for (_, end), (start, _) in zip(result, result[1:], strict=False):
        if start < end:
            raise ConfigError(f"{key}: {value!r} has overlapping ranges")
    return tuple(result)


def _clinic_site(t: _Table, region: str) -> ClinicSite:
    t.only(("id", "name", "address", "phone"))
    phone = t.text("phone", None)
    site = ClinicSite(
        id=t.text("id"),
        name=t.text("name"),
        address=t.text("address"),
        phone=None if phone is None else _phone(phone, region, t.key("phone")),
    )
    return site


def _doctor(t: _Table, clinic_ids: set[str]) -> Doctor:
    t.only(("id", "name", "clinic_id", "aliases"))
    doctor_id = t.text("id")
    name = t.text("name")
    clinic_id = t.text("clinic_id")
    if clinic_id not in clinic_ids:
        raise ConfigError(
            f"{t.key('clinic_id')}: {clinic_id!r} is not the id of any [[clinics]] entry"
        )
    aliases = t.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ConfigError(f"{t.key('aliases')}: must be a list of names")
    return Doctor(doctor_id, name, clinic_id, tuple(a.strip() for a in aliases))


def _service(t: _Table) -> Service:
    t.only(("id", "name", "minutes"))
    service = Service(t.text("id"), t.text("name"), t.positive_int("minutes"))
    return service


def _endpoints(table: _Table) -> dict[str, dict[str, Any]]:
    """Overrides of the Clinicea endpoint table, passed through as plain dicts.

    Validated here by the client's own merge (unknown operation, unknown key, bad method or
    path), so a typo stops start-up instead of failing a caller's booking later.
    """
    result = {op: dict(table.table(op).data) for op in table.keys()}
    if not result:
        return result
    from ivr.clinicea.endpoints import merge_endpoints  # late: keeps `import ivr.config` light

    try:
        merge_endpoints(result)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return result


def _phone(value: str, region: str, key: str) -> str:
    number = parse_phone(value, region)
    if number is None:
        raise ConfigError(f"{key}: {value!r} is not a phone number")
    return number.e164


def _no_duplicates(section: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(ids):
        if value in seen:
            raise ConfigError(
                f"{section}[{i}].id: duplicate id {value!r} (also {section}[{seen[value]}])"
            )
        seen[value] = i


_MISSING: Any = object()


class _Table:
    """A TOML table being read: typed getters that name the key in errors, and `only` to
    reject keys nobody reads (typo protection)."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def keys(self) -> list[str]:
        return list(self.data)

    def get(self, name: str, default: Any = _MISSING) -> Any:
        if name in self.data:
            return self.data[name]
        if default is _MISSING:
            raise ConfigError(f"{self.key(name)}: missing")
        return default

    def text(self, name: str, default: Any = _MISSING) -> Any:
        value = self.get(name, default)
        if value is default and default is not _MISSING:
            return value
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.key(name)}: must be a non-empty string, got {value!r}")
        return value.strip()

    def positive_int(self, name: str, default: Any = _MISSING) -> int:
        value = self.get(name, default)
        # bool is an int in Python; `slot_minutes = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(
                f"{self.key(name)}: must be a positive whole number, got {value!r}"
            )
        return value

    def flag(self, name: str, default: Any = _MISSING) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: must be true or false, got {value!r}")
        return value

    def table(self, name: str, default: Any = _MISSING) -> Any:
        value = self.get(name, default)
        if value is default and default is not _MISSING and not isinstance(value, dict):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{self.key(name)}: must be a table, got {value!r}")
        return _Table(value, self.key(name))

    def tables(self, name: str) -> list[_Table]:
        """A required, non-empty array of tables ([[name]])."""
        value = self.get(name)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{self.key(name)}: needs at least one [[{name}]] entry")
        result = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{self.key(name)}[{i}]: must be a table, got {item!r}")
            result.append(_Table(item, f"{self.key(name)}[{i}]"))
        return result

    def only(self, allowed: tuple[str, ...], hint: str | None = None) -> None:
        """Reject keys outside `allowed`, suggesting the closest allowed one."""
        for name in self.data:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                why = f" (did you mean {close[0]!r}?)" if close else f" ({hint})" if hint else ""
                where = f"{self.path}: " if self.path else ""
                raise ConfigError(f"{where}unknown key {name!r}{why}")


# ----------------------------------------------------------------------------- demo clinic

DEMO_CLINIC_TOML = f"""
name = "Harbour Family Clinic"
timezone = "Asia/Karachi"
default_region = "PK"
language = "en-GB"
transfer_number = "+922135550100"
slot_minutes = 20
booking_days_ahead = 30
read_last_visit_service = false
verify_date_of_birth = false
default_service = "{DEMO_SERVICE_CONSULTATION_ID}"

[hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-13:00"
sat = "10:00-14:00"
sun = "closed"

[agent_hours]
mon = "09:00-18:00"
tue = "09:00-18:00"
wed = "09:00-18:00"
thu = "09:00-18:00"
fri = "09:00-18:00"
sat = "10:00-14:00"
sun = "closed"

[[clinics]]
id = "{DEMO_CLINIC_CLIFTON_ID}"
name = "Harbour Family Clinic Clifton"
address = "7 Khayaban-e-Ittehad, Clifton, Karachi"
phone = "+922135871234"

[[clinics]]
id = "{DEMO_CLINIC_GULSHAN_ID}"
name = "Harbour Family Clinic Gulshan"
address = "12 Main Boulevard, Gulshan-e-Iqbal, Karachi"
phone = "+922134981234"

[[doctors]]
id = "{DEMO_DOCTOR_FAROOQ_ID}"
name = "Dr. Nadia Farooq"
clinic_id = "{DEMO_CLINIC_CLIFTON_ID}"
aliases = ["Nadia", "Farooq", "Farooqi"]

[[doctors]]
id = "{DEMO_DOCTOR_SHEIKH_ID}"
name = "Dr. Omar Sheikh"
clinic_id = "{DEMO_CLINIC_CLIFTON_ID}"
aliases = ["Omar", "Umar", "Sheikh", "Shaikh"]

[[doctors]]
id = "{DEMO_DOCTOR_KHAN_ID}"
name = "Dr. Ayesha Khan"
clinic_id = "{DEMO_CLINIC_GULSHAN_ID}"
aliases = ["Ayesha", "Aisha", "Khan"]

[[doctors]]
id = "{DEMO_DOCTOR_QURESHI_ID}"
name = "Dr. Bilal Qureshi"
clinic_id = "{DEMO_CLINIC_GULSHAN_ID}"
aliases = ["Bilal", "Qureshi", "Kureshi"]

[[services]]
id = "{DEMO_SERVICE_CONSULTATION_ID}"
name = "Consultation"
minutes = 20

[[services]]
id = "{DEMO_SERVICE_FOLLOWUP_ID}"
name = "Follow-up"
minutes = 20

[[services]]
id = "{DEMO_SERVICE_VACCINATION_ID}"
name = "Vaccination"
minutes = 20
"""

# Parsed by the same code as any clinic file, so the demo is validated too.
DEMO_CLINIC: ClinicConfig = parse_clinic_config(DEMO_CLINIC_TOML, "<demo clinic>")


# ----------------------------------------------------------------------------- Settings


@dataclass(frozen=True)
class Settings:
    """Process settings from the environment (secrets are kept out of repr)."""

    clinic: ClinicConfig
    demo: bool  # embedded sandbox and demo secrets allowed
    clinicea_base_url: str | None  # None: the embedded sandbox
    clinicea_api_key: str = field(repr=False)
    clinicea_username: str
    clinicea_password: str = field(repr=False)
    twilio_auth_token: str = field(repr=False)
    secret_key: str = field(repr=False)
    twilio_account_sid: str | None = None  # unset: no SMS
    # The secret of a Twilio webhook SharedKey: webhooks that carry
    # X-Twilio-Webhooks-Signature-Settings are checked with it (unset: they are refused).
    twilio_webhook_key: str | None = field(default=None, repr=False)
    public_url: str | None = None  # unset: the request's own URL
    # repr=False: a PostgreSQL URL carries its password.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    proxy_hops: int = 0  # X-Forwarded-* hops to trust
    sandbox_faults: str | None = None  # passed to the sandbox as is
    log_level: str = "INFO"
    # Longest wait for a database lock (ivr.store); tests set it small.
    database_lock_seconds: float | None = None
    clinic_config_path: str | None = None  # None: the built-in demo clinic
    # PROMETHEUS_MULTIPROC_DIR: where a server's processes record their metrics (ivr/ops.py);
    # None: `metrics_path`'s default. The launchers export the path (prometheus_client reads
    # the variable itself when it is imported).
    metrics_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (default `os.environ`); raises ConfigError."""
        env = _Env(os.environ if environ is None else environ)
        base_url = env.url("CLINICEA_BASE_URL")
        forced = env.flag("IVR_DEMO")  # read (and validated) even when the URL is unset
        demo = base_url is None or forced
        secrets = {
            "CLINICEA_API_KEY": SANDBOX_API_KEY,
            "CLINICEA_USERNAME": SANDBOX_USERNAME,
            "CLINICEA_PASSWORD": SANDBOX_PASSWORD,
            "TWILIO_AUTH_TOKEN": DEMO_TWILIO_AUTH_TOKEN,
            "IVR_SECRET_KEY": DEMO_SECRET_KEY,
        }
        if not demo:
            missing = [name for name in secrets if env.get(name) is None]
            if missing:
                raise ConfigError(
                    f"{', '.join(missing)}: required when CLINICEA_BASE_URL is set"
                    " (demo mode is off)"
                )
            # The demo token and key are published: anyone could sign webhooks or console
            # cookies with them, so a real deployment must not start on them.
            published = [name for name in ("TWILIO_AUTH_TOKEN", "IVR_SECRET_KEY")
                         if env.get(name) == secrets[name]]
            if published:
                raise ConfigError(
                    f"{', '.join(published)}: is the public demo value; set a secret of your"
                    " own (demo mode is off)"
                )
        elif base_url is not None:
            # IVR_DEMO=1 beside a Clinicea of its own: that Clinicea may be real, so the
            # published Twilio token and console secret would open real patients' records.
            own = [name for name in ("TWILIO_AUTH_TOKEN", "IVR_SECRET_KEY")
                   if env.get(name) in (None, secrets[name])]
            if own:
                raise ConfigError(
                    f"{', '.join(own)}: IVR_DEMO=1 with CLINICEA_BASE_URL set needs a secret of"
                    " your own, not the public demo value (or unset CLINICEA_BASE_URL for the"
                    " embedded sandbox)"
                )
        value = {name: env.get(name) or demo_value for name, demo_value in secrets.items()}
        clinic_path = env.get("IVR_CLINIC_CONFIG")
        return cls(
            clinic=DEMO_CLINIC if clinic_path is None else load_clinic_config(clinic_path),
            demo=demo,
            clinicea_base_url=base_url,
            clinicea_api_key=value["CLINICEA_API_KEY"],
            clinicea_username=value["CLINICEA_USERNAME"],
            clinicea_password=value["CLINICEA_PASSWORD"],
            twilio_auth_token=value["TWILIO_AUTH_TOKEN"],
            secret_key=value["IVR_SECRET_KEY"],
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID"),
            twilio_webhook_key=env.get("TWILIO_WEBHOOK_SHARED_KEY"),
            public_url=env.url("IVR_PUBLIC_URL"),
            database_url=env.get("IVR_DATABASE_URL") or DEFAULT_DATABASE_URL,
            proxy_hops=env.whole_number("IVR_PROXY_HOPS", 0),
            sandbox_faults=env.get("IVR_SANDBOX_FAULTS"),
            log_level=env.choice("IVR_LOG_LEVEL", LOG_LEVELS, "INFO"),
            clinic_config_path=clinic_path,
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR"),
        )

    @classmethod
    def for_tests(cls, **overrides: Any) -> Settings:
        """Demo settings with an in-memory SQLite store; any field can be overridden."""
        base = cls(
            clinic=DEMO_CLINIC,
            demo=True,
            clinicea_base_url=None,
            clinicea_api_key=SANDBOX_API_KEY,
            clinicea_username=SANDBOX_USERNAME,
            clinicea_password=SANDBOX_PASSWORD,
            twilio_auth_token=DEMO_TWILIO_AUTH_TOKEN,
            secret_key=DEMO_SECRET_KEY,
            database_url="sqlite://",
            log_level="WARNING",
        )
        return dataclasses.replace(base, **overrides)

    @property
    def metrics_path(self) -> str:
        """The metrics directory: `metrics_dir`, else one per user, working directory and
        database (`<temp dir>/ivr-metrics-<hash>`), so one deployment's web server and booking
        worker find the same one and two deployments on a host never share."""
        if self.metrics_dir:
            return os.path.abspath(self.metrics_dir)
        key = f"{os.getuid()}\n{os.getcwd()}\n{self.database_url}".encode()
        digest = hashlib.sha256(key).hexdigest()[:24]
        return os.path.join(tempfile.gettempdir(), f"ivr-metrics-{digest}")

    @property
    def demo_secrets_allowed(self) -> bool:
        """Whether the published demo Twilio token and console secret may open anything: only
        in demo mode on the embedded sandbox (never beside a configured Clinicea)."""
        return self.demo and self.clinicea_base_url is None

    @property
    def clinicea_label(self) -> str:
        """The Clinicea this process really talks to, for start-up banners."""
        if self.clinicea_base_url is None:
            return "the embedded sandbox Clinicea"
        return self.clinicea_base_url + (" (demo mode)" if self.demo else "")

    def demo_credentials_in_use(self) -> list[str]:
        """Names of the env vars whose value is a public demo/sandbox value (for `ivr check`)."""
        checks: list[tuple[str, Callable[[Settings], str], str]] = [
            ("CLINICEA_API_KEY", lambda s: s.clinicea_api_key, SANDBOX_API_KEY),
            ("CLINICEA_USERNAME", lambda s: s.clinicea_username, SANDBOX_USERNAME),
            ("CLINICEA_PASSWORD", lambda s: s.clinicea_password, SANDBOX_PASSWORD),
            ("TWILIO_AUTH_TOKEN", lambda s: s.twilio_auth_token, DEMO_TWILIO_AUTH_TOKEN),
            ("IVR_SECRET_KEY", lambda s: s.secret_key, DEMO_SECRET_KEY),
        ]
        return [name for name, read, demo_value in checks if read(self) == demo_value]


class _Env:
    """Typed reads of environment variables; empty or blank counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def url(self, name: str) -> str | None:
        value = self.get(name)
        if value is None:
            return None
        if not re.match(r"https?://[^/\s]+", value):
            raise ConfigError(f"{name}: must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    def flag(self, name: str) -> bool:
        value = (self.get(name) or "0").lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: must be 1 or 0, got {value!r}")

    def whole_number(self, name: str, default: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit():
            raise ConfigError(f"{name}: must be a whole number >= 0, got {value!r}")
        return int(value)

    def token(self, name: str) -> str | None:
        """A short name safe in a file name: letters, digits, `.`, `_`, `-` (1-64)."""
        value = self.get(name)
        if value is not None and not _TOKEN.fullmatch(value):
            raise ConfigError(
                f"{name}: must be 1-64 letters, digits, '.', '_' or '-', got {value!r}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.get(name) or default).upper()
        if value not in choices:
            raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
        return value
