"""The clinic file: `ClinicConfig` and the TOML loader that validates it.

`load_clinic_config(path)` reads a clinic TOML file (`IVR_CLINIC_CONFIG`; every key is in
`docs/clinic.example.toml`) into a frozen `ClinicConfig`: identity, hours, sites, doctors,
services and behaviour. A bad value raises `ConfigError` with one line naming the key and
what is wrong, e.g. `timezone: unknown time zone 'Mars/Base'`; unknown keys are errors too.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from flows.domain import WEEKDAYS, ClinicSite, Doctor, Service, WeeklyHours
from flows.reminders.plan import parse_channels
from ivr.config.errors import ConfigError
from ivr.phone import parse_phone

DEFAULT_LANGUAGE = "en-GB"

# Twilio <Say> voice per prompt language. Language packs may add entries at import time;
# `ClinicConfig.voice_for` reads this live, so late additions still count.
# Urdu: Polly has no Urdu voice; Google's ur-IN voice reads Urdu script (docs/understanding.md).
DEFAULT_VOICES: dict[str, str] = {
    "en-GB": "Polly.Amy",
    "en-US": "Polly.Joanna",
    "ur-PK": "Google.ur-IN-Wavenet-A",
    "ur-IN": "Google.ur-IN-Wavenet-A",
}


@dataclass(frozen=True)
class ReminderSettings:
    """The clinic file's `[reminders]` (docs/reminders.md): when the day's run starts, which
    day it reminds, how, how fast and when calls may be placed."""

    at: time  # clinic-local start of the day's run
    days_ahead: int = 1
    channels: tuple[str, ...] = ("call", "sms")  # flows.reminders.plan.CHANNELS, that order
    calls_per_second: float = 1.0  # the Twilio account's limit
    calling_hours: WeeklyHours = field(default_factory=lambda: WeeklyHours({}))
    language: str = DEFAULT_LANGUAGE
    from_number: str | None = None  # E.164: the clinic's Twilio number calls and texts come from


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
    reminders: ReminderSettings | None = None  # None: no `[reminders]`, reminders are off

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
    "hold_minutes", "reminders",
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
        reminders=_reminders(top.table("reminders", None), hours, language, region),
    )
    return config


_AT = re.compile(r"(\d{1,2}):(\d{2})")


def _reminders(table: _Table | None, hours: WeeklyHours, language: str,
               region: str) -> ReminderSettings | None:
    """`[reminders]`, or None when the file has none (reminders off)."""
    if table is None:
        return None
    table.only(("at", "days_ahead", "channels", "calls_per_second", "language",
                "calling_hours", "from_number"))
    raw_at = table.text("at")
    match = _AT.fullmatch(raw_at)
    try:
        if match is None:
            raise ValueError
        at = time(int(match[1]), int(match[2]))
    except ValueError:
        raise ConfigError(f"{table.key('at')}: {raw_at!r} is not a time like '10:00'") from None
    channels_raw = table.get("channels", ["call", "sms"])
    if not isinstance(channels_raw, list) or not all(isinstance(c, str) for c in channels_raw):
        raise ConfigError(f"{table.key('channels')}: must be a list like [\"call\", \"sms\"]")
    try:
        channels = parse_channels(channels_raw)
    except ValueError as exc:
        raise ConfigError(f"{table.key('channels')}: {exc}") from None
    if not channels:
        raise ConfigError(f"{table.key('channels')}: list call and/or sms")
    rate = table.get("calls_per_second", 1)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100:
        raise ConfigError(
            f"{table.key('calls_per_second')}: must be a number above 0 (at most 100),"
            f" got {rate!r}")
    calling = table.table("calling_hours", None)
    from_number = table.text("from_number", None)
    return ReminderSettings(
        at=at,
        days_ahead=table.positive_int("days_ahead", 1),
        channels=channels,
        calls_per_second=float(rate),
        calling_hours=hours if calling is None else _weekly_hours(calling),
        language=_language(table.text("language", language), table.key("language")),
        from_number=None if from_number is None else _phone(from_number, region,
                                                            table.key("from_number")),
    )


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
