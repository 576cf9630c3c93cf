"""Settings from the environment and the clinic TOML file (ivr/config/)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from ivr import config
from ivr.config import (
    DEFAULT_VOICES,
    DEMO_CLINIC,
    DEMO_TWILIO_AUTH_TOKEN,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    ConfigError,
    Settings,
    load_clinic_config,
    parse_clinic_config,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "clinic.example.toml"

MINIMAL = """
name = "Test Clinic"
timezone = "Asia/Karachi"
default_region = "PK"
transfer_number = "+922135550100"
slot_minutes = 20

[hours]
mon = "09:00-17:00"

[[clinics]]
id = "c1"
name = "Clinic One"
address = "1 Road"

[[doctors]]
id = "d1"
name = "Dr. One"
clinic_id = "c1"

[[doctors]]
id = "d2"
name = "Dr. Two"
clinic_id = "c1"

[[services]]
id = "s1"
name = "Consultation"
minutes = 20
"""


CLINIC_BLOCK = '[[clinics]]\nid = "c1"\nname = "Clinic One"\naddress = "1 Road"\n'


def edit(old: str, new: str) -> str:
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new, 1)


BAD = [
    (edit('"Asia/Karachi"', '"Mars/Base"'), "timezone: unknown time zone 'Mars/Base'"),
    (edit('mon = "09:00-17:00"', 'mon = "9-5"'), "hours.mon: '9-5' is not HH:MM-HH:MM or closed"),
    (edit('mon = "09:00-17:00"', 'mon = "09:00-25:00"'),
     "hours.mon: '09:00-25:00' is not HH:MM-HH:MM or closed"),
    (edit('mon = "09:00-17:00"', 'mon = "17:00-09:00"'),
     "hours.mon: '17:00-09:00' ends before it starts"),
    (edit('mon = "09:00-17:00"', 'mon = "09:00-13:00, 12:00-17:00"'),
     "hours.mon: '09:00-13:00, 12:00-17:00' has overlapping ranges"),
    (edit('mon = "09:00-17:00"', 'monday = "09:00-17:00"'),
     "hours: unknown key 'monday' (did you mean 'mon'?)"),
    (edit('mon = "09:00-17:00"', "mon = 9"), "hours.mon: must be a non-empty string, got 9"),
    (MINIMAL + '\n[agent_hours]\nfri = "all day"\n',
     "agent_hours.fri: 'all day' is not HH:MM-HH:MM or closed"),
    (edit('id = "d2"\n', ""), "doctors[1].id: missing"),
    (edit('id = "d2"', 'id = "d1"'), "doctors[1].id: duplicate id 'd1' (also doctors[0])"),
    (edit('clinic_id = "c1"', 'clinic_id = "c9"'),
     "doctors[0].clinic_id: 'c9' is not the id of any [[clinics]] entry"),
    (edit('clinic_id = "c1"', 'clinic_ids = "c1"'),
     "doctors[0]: unknown key 'clinic_ids' (did you mean 'clinic_id'?)"),
    (edit('clinic_id = "c1"', 'clinic_id = "c1"\naliases = "One"'),
     "doctors[0].aliases: must be a list of names"),
    (edit("slot_minutes = 20", "slot_minutes = -20"),
     "slot_minutes: must be a positive whole number, got -20"),
    (edit("slot_minutes = 20", "slot_minutes = 0"),
     "slot_minutes: must be a positive whole number, got 0"),
    (edit("slot_minutes = 20", "slot_minutes = 7.5"),
     "slot_minutes: must be a positive whole number, got 7.5"),
    (edit("slot_minutes = 20", "slot_minutes = true"),
     "slot_minutes: must be a positive whole number, got True"),
    (edit("slot_minutes = 20", 'slot_minutes = "20"'),
     "slot_minutes: must be a positive whole number, got '20'"),
    (edit("slot_minutes = 20", "slot_minute = 20"),
     "unknown key 'slot_minute' (did you mean 'slot_minutes'?)"),
    (edit('"PK"', '"XX"'), "default_region: 'XX' is not a region phonenumbers knows"),
    (edit('name = "Test Clinic"\n', ""), "name: missing"),
    (edit('"+922135550100"', '"not a number"'),
     "transfer_number: 'not a number' is not a phone number"),
    (edit("\nminutes = 20", "\nminutes = 0"),
     "services[0].minutes: must be a positive whole number, got 0"),
    (MINIMAL + "booking_days_ahead = -1\n",
     "services[0]: unknown key 'booking_days_ahead'"),  # TOML: it lands in the last table
    (MINIMAL.replace("slot_minutes = 20", "slot_minutes = 20\nbooking_max_attempts = 0"),
     "booking_max_attempts: must be a positive whole number, got 0"),
    (MINIMAL.replace("slot_minutes = 20", "slot_minutes = 20\nsms_confirmation = \"yes\""),
     "sms_confirmation: must be true or false, got 'yes'"),
    (MINIMAL.replace("slot_minutes = 20", 'slot_minutes = 20\ndefault_service = "s9"'),
     "default_service: 's9' is not the id of any [[services]] entry"),
    (MINIMAL.replace("slot_minutes = 20", 'slot_minutes = 20\nlanguages_offered = ["ur-PK"]'),
     "languages_offered: must include language 'en-GB'"),
    (MINIMAL.replace("slot_minutes = 20", 'slot_minutes = 20\nlanguage = "english please"'),
     "language: 'english please' is not a language tag like 'en-GB'"),
    (MINIMAL + '\n[endpoints]\nsearch = { method = "FETCH", path = "/x" }\n',
     "endpoints.search.method: 'FETCH' is not an HTTP method"),
    (MINIMAL + '\n[endpoints]\nsearch = { method = "GET", path = "x" }\n',
     "endpoints.search.path: must start with '/'"),
    (MINIMAL + '\n[endpoints]\nserch = { path = "/x" }\n',
     "endpoints: unknown operation 'serch' (known: ..."),
    (edit(CLINIC_BLOCK, ""), "clinics: missing"),
    ("clinics = []\n" + edit(CLINIC_BLOCK, ""),
     "clinics: needs at least one [[clinics]] entry"),
    (edit('address = "1 Road"', 'address = "1 Road"\nphone = "12"'),
     "clinics[0].phone: '12' is not a phone number"),
    (edit("[hours]\nmon", "[hour]\nmon"), "unknown key 'hour' (did you mean 'hours'?)"),
    (edit("[hours]\nmon", "[opening]\nmon"), "unknown key 'opening'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_clinic_value_gives_one_line_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_clinic_config(text, "clinic.toml")
    if message.endswith("..."):  # the rest lists another module's names
        assert str(caught.value).startswith(message[:-3])
    else:
        assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_toml_syntax_error_names_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_clinic_config(MINIMAL + "\nname = \n", "clinic.toml")
    message = str(caught.value)
    assert message.startswith("clinic.toml: not valid TOML: ")
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file$"):
        load_clinic_config(path)


def test_minimal_clinic_gets_defaults() -> None:
    clinic = parse_clinic_config(MINIMAL)
    assert clinic.language == "en-GB"
    assert clinic.languages_offered == ("en-GB",)
    assert clinic.voice_for("en-GB") == "Polly.Amy"
    assert clinic.agent_hours == clinic.hours  # [agent_hours] defaults to [hours]
    assert clinic.hours.ranges == {0: ((time(9), time(17)),)}  # missing days are closed
    assert clinic.default_service_id == "s1"
    assert clinic.booking_max_attempts == 8
    assert clinic.event_retention_days == 30
    assert clinic.booking_days_ahead == 30
    assert not clinic.sms_confirmation
    assert clinic.endpoints == {}
    assert clinic.doctors[0].aliases == ()


def test_example_file_loads() -> None:
    clinic = load_clinic_config(EXAMPLE)
    assert clinic.name == "Demo Clinic"
    assert clinic.hours.ranges[0] == ((time(9), time(13)), (time(14), time(17)))
    assert 6 not in clinic.hours.ranges and 6 not in clinic.agent_hours.ranges
    assert clinic.agent_hours.ranges[4] == ((time(9), time(18)),)
    assert clinic.clinics[0].phone == "+922134980102"  # normalised to E.164
    assert clinic.clinics[1].phone is None
    assert clinic.doctors[0].aliases == ("Ayesha", "Aisha", "Khan")
    assert clinic.default_service.name == "Consultation"
    assert clinic.services[1].minutes == 15
    assert clinic.endpoints == {
        "search": {"method": "GET", "path": "/api/v2/patients/searchPatientByMobileNumber"}
    }
    assert clinic.doctor_by_id(clinic.doctors[1].id) == clinic.doctors[1]
    assert clinic.clinic_by_id("nope") is None


def test_demo_clinic() -> None:
    clinic = DEMO_CLINIC
    assert clinic.name == "Harbour Family Clinic"
    assert clinic.timezone == "Asia/Karachi"
    assert clinic.default_region == "PK"
    assert clinic.transfer_number == "+922135550100"
    assert (clinic.slot_minutes, clinic.booking_days_ahead) == (20, 30)
    assert [c.name for c in clinic.clinics] == [
        "Harbour Family Clinic Clifton",
        "Harbour Family Clinic Gulshan",
    ]
    assert clinic.clinics[0].id == config.DEMO_CLINIC_CLIFTON_ID
    assert clinic.clinics[1].address == "12 Main Boulevard, Gulshan-e-Iqbal, Karachi"
    by_name = {d.name: d.clinic_id for d in clinic.doctors}
    assert by_name == {
        "Dr. Nadia Farooq": config.DEMO_CLINIC_CLIFTON_ID,
        "Dr. Omar Sheikh": config.DEMO_CLINIC_CLIFTON_ID,
        "Dr. Ayesha Khan": config.DEMO_CLINIC_GULSHAN_ID,
        "Dr. Bilal Qureshi": config.DEMO_CLINIC_GULSHAN_ID,
    }
    assert clinic.doctors[2].id == config.DEMO_DOCTOR_KHAN_ID
    assert [(s.name, s.minutes) for s in clinic.services] == [
        ("Consultation", 20),
        ("Follow-up", 20),
        ("Vaccination", 20),
    ]
    assert clinic.default_service_id == config.DEMO_SERVICE_CONSULTATION_ID
    monday, friday, saturday, sunday = (date(2025, 6, d) for d in (2, 6, 7, 8))
    assert clinic.hours.on(monday) == ((time(9), time(17)),)
    assert clinic.hours.on(friday) == ((time(9), time(13)),)
    assert clinic.hours.on(saturday) == ((time(10), time(14)),)
    assert clinic.hours.on(sunday) == ()
    assert clinic.agent_hours.on(friday) == ((time(9), time(18)),)
    assert clinic.agent_hours.is_open(datetime(2025, 6, 6, 17, 30))
    assert not clinic.hours.is_open(datetime(2025, 6, 6, 13, 0))


def test_demo_ids_are_unique_guids() -> None:
    ids = [value for name, value in vars(config).items() if name.startswith("DEMO_") and
           name.endswith("_ID")]  # fmt: skip
    assert len(ids) == 9 and len(set(ids)) == 9
    assert all(len(v) == 36 and v.count("-") == 4 for v in ids)


def test_every_demo_doctor_books_in_the_sandbox_as_the_clinic_file_names_them() -> None:
    """Demo mode's clinic is the sandbox's: each doctor the IVR offers books at their own site
    in the default service, and the sandbox's calendar names doctor, site and service as the
    clinic file does (what a caller hears read back)."""
    from ivr.clock import FixedClock
    from ivr.sandbox import DEMO_PATIENTS, SandboxState

    wednesday = date(2025, 11, 12)
    sandbox = SandboxState(FixedClock(datetime.combine(wednesday, time(8))))
    _, closing = DEMO_CLINIC.hours.on(wednesday)[-1]
    start = datetime.combine(wednesday, closing) - timedelta(minutes=DEMO_CLINIC.slot_minutes)
    sites = {c.id: c for c in DEMO_CLINIC.clinics}
    for doctor in DEMO_CLINIC.doctors:
        sandbox.book(DEMO_PATIENTS["Bilal Ahmed"].id, start, doctor.id, doctor.clinic_id,
                     DEMO_CLINIC.default_service_id)
    rows = sandbox.calendar(wednesday)
    assert sorted(
        (f"{r['StaffTitle']} {r['StaffFirstName']} {r['StaffLastName']}", r["ClinicName"],
         r["ClinicPhone"], r["ServiceName"], r["StartDateTime"]) for r in rows
    ) == sorted(
        (d.name, sites[d.clinic_id].name, sites[d.clinic_id].phone,
         DEMO_CLINIC.default_service.name, "2025-11-12T16:40:00") for d in DEMO_CLINIC.doctors
    )


def test_voice_defaults_are_extensible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DEFAULT_VOICES, "hi-IN", "Polly.Test")
    assert DEMO_CLINIC.voice_for("hi-IN") == "Polly.Test"  # read live, after DEMO_CLINIC exists
    offered = 'slot_minutes = 20\nlanguages_offered = ["en-GB", "ur-PK"]'
    voices = '\n[voices]\n"en-GB" = "Polly.Brian"\n'
    clinic = parse_clinic_config(MINIMAL.replace("slot_minutes = 20", offered) + voices)
    assert clinic.voice_for("en-GB") == "Polly.Brian"
    assert clinic.languages_offered == ("en-GB", "ur-PK")
    assert clinic.voice_for("xx") is None


# ----------------------------------------------------------------------------- Settings

REAL = {
    "CLINICEA_BASE_URL": "https://api.clinicea.example/",
    "CLINICEA_API_KEY": "k",
    "CLINICEA_USERNAME": "u",
    "CLINICEA_PASSWORD": "p",
    "TWILIO_AUTH_TOKEN": "t",
    "IVR_SECRET_KEY": "s",
}


def test_empty_environment_is_demo_mode() -> None:
    settings = Settings.from_env({})
    assert settings.demo
    assert settings.clinicea_base_url is None
    assert settings.clinic is DEMO_CLINIC
    assert settings.database_url == "sqlite:///ivr.db"
    assert settings.twilio_auth_token == DEMO_TWILIO_AUTH_TOKEN
    assert (settings.clinicea_api_key, settings.clinicea_username, settings.clinicea_password) == (
        SANDBOX_API_KEY,
        SANDBOX_USERNAME,
        SANDBOX_PASSWORD,
    )
    assert settings.proxy_hops == 0
    assert settings.twilio_account_sid is None and settings.public_url is None
    assert settings.log_level == "INFO"
    assert set(settings.demo_credentials_in_use()) == {
        "CLINICEA_API_KEY",
        "CLINICEA_USERNAME",
        "CLINICEA_PASSWORD",
        "TWILIO_AUTH_TOKEN",
        "IVR_SECRET_KEY",
    }


def test_real_environment() -> None:
    settings = Settings.from_env(
        REAL
        | {
            "TWILIO_ACCOUNT_SID": "AC123",
            "IVR_PUBLIC_URL": "https://ivr.example.com/",
            "IVR_DATABASE_URL": "postgresql+psycopg://db/ivr",
            "IVR_PROXY_HOPS": "1",
            "IVR_LOG_LEVEL": "debug",
            "IVR_CLINIC_CONFIG": str(EXAMPLE),
        }
    )
    assert not settings.demo
    assert settings.clinicea_base_url == "https://api.clinicea.example"
    assert settings.public_url == "https://ivr.example.com"
    assert settings.twilio_account_sid == "AC123"
    assert settings.database_url == "postgresql+psycopg://db/ivr"
    assert settings.proxy_hops == 1
    assert settings.log_level == "DEBUG"
    assert settings.clinic.name == "Demo Clinic"
    assert settings.clinic_config_path == str(EXAMPLE)
    assert settings.demo_credentials_in_use() == []
    for secret in ("'k'", "'p'", "'t'", "'s'"):
        assert secret not in repr(settings)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (("TWILIO_AUTH_TOKEN",), "TWILIO_AUTH_TOKEN: required when CLINICEA_BASE_URL is set"),
        (("IVR_SECRET_KEY",), "IVR_SECRET_KEY: required when CLINICEA_BASE_URL is set"),
        (("CLINICEA_PASSWORD",), "CLINICEA_PASSWORD: required when CLINICEA_BASE_URL is set"),
        (
            ("CLINICEA_API_KEY", "IVR_SECRET_KEY"),
            "CLINICEA_API_KEY, IVR_SECRET_KEY: required when CLINICEA_BASE_URL is set",
        ),
    ],
)
def test_missing_secrets_outside_demo_mode(missing: tuple[str, ...], message: str) -> None:
    env = {k: v for k, v in REAL.items() if k not in missing}
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)
    # A blank value is as good as missing.
    with pytest.raises(ConfigError):
        Settings.from_env(REAL | dict.fromkeys(missing, "  "))


def test_ivr_demo_forces_demo_mode() -> None:
    settings = Settings.from_env({"CLINICEA_BASE_URL": "http://127.0.0.1:9000", "IVR_DEMO": "1",
                                  "TWILIO_AUTH_TOKEN": "own-token", "IVR_SECRET_KEY": "own-key"})
    assert settings.demo
    assert settings.clinicea_base_url == "http://127.0.0.1:9000"
    assert settings.clinicea_api_key == config.SANDBOX_API_KEY


def test_demo_mode_keeps_given_secrets() -> None:
    settings = Settings.from_env({"TWILIO_AUTH_TOKEN": "real", "IVR_SANDBOX_FAULTS": "latency=50"})
    assert settings.twilio_auth_token == "real"
    assert settings.sandbox_faults == "latency=50"
    assert "TWILIO_AUTH_TOKEN" not in settings.demo_credentials_in_use()
    assert "IVR_SECRET_KEY" in settings.demo_credentials_in_use()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IVR_PROXY_HOPS": "-1"}, "IVR_PROXY_HOPS: must be a whole number >= 0, got '-1'"),
        ({"IVR_PROXY_HOPS": "two"}, "IVR_PROXY_HOPS: must be a whole number >= 0, got 'two'"),
        ({"IVR_DEMO": "maybe"}, "IVR_DEMO: must be 1 or 0, got 'maybe'"),
        ({"IVR_LOG_LEVEL": "loud"}, "IVR_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, "
                                    "CRITICAL, got 'LOUD'"),
        ({"CLINICEA_BASE_URL": "clinicea.example"},
         "CLINICEA_BASE_URL: must be an http:// or https:// URL, got 'clinicea.example'"),
        ({"IVR_PUBLIC_URL": "ftp://x"}, "IVR_PUBLIC_URL: must be an http:// or https:// URL, got 'ftp://x'"),
        ({"IVR_CLINIC_CONFIG": "/no/such/clinic.toml"}, "/no/such/clinic.toml: no such file"),
    ],
)  # fmt: skip
def test_bad_env_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value) == message


def test_bad_clinic_file_through_env(tmp_path: Path) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(MINIMAL.replace("Asia/Karachi", "Mars/Base"))
    with pytest.raises(ConfigError, match=r"^timezone: unknown time zone 'Mars/Base'$"):
        Settings.from_env({"IVR_CLINIC_CONFIG": str(path)})


def test_for_tests_and_replace() -> None:
    settings = Settings.for_tests()
    assert settings.demo and settings.clinic is DEMO_CLINIC
    assert settings.database_url == "sqlite://"
    changed = Settings.for_tests(proxy_hops=2, public_url="https://ivr.test")
    assert (changed.proxy_hops, changed.public_url) == (2, "https://ivr.test")
    again = dataclasses.replace(changed, clinic=dataclasses.replace(DEMO_CLINIC, slot_minutes=15))
    assert again.clinic.slot_minutes == 15 and again.proxy_hops == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.demo = False  # type: ignore[misc]


# --- [reminders] (docs/reminders.md) -------------------------------------------------------


def test_reminders_are_off_without_the_table_and_default_to_the_clinic() -> None:
    assert parse_clinic_config(MINIMAL).reminders is None
    clinic = parse_clinic_config(MINIMAL + '\n[reminders]\nat = "10:00"\n')
    r = clinic.reminders
    assert r is not None
    assert (r.at, r.days_ahead, r.channels, r.calls_per_second, r.language) == (
        time(10, 0), 1, ("call", "sms"), 1.0, "en-GB")
    assert r.calling_hours == clinic.hours


def test_reminders_read_every_key() -> None:
    clinic = parse_clinic_config(MINIMAL + (
        '\n[reminders]\nat = "9:30"\ndays_ahead = 2\nchannels = ["SMS"]\n'
        'calls_per_second = 2.5\nlanguage = "ur-PK"\nfrom_number = "021 3555 0199"\n'
        '[reminders.calling_hours]\nmon = "10:00-12:00"\n'))
    r = clinic.reminders
    assert r is not None
    assert (r.at, r.days_ahead, r.channels, r.calls_per_second, r.language) == (
        time(9, 30), 2, ("sms",), 2.5, "ur-PK")
    assert r.calling_hours.on(date(2026, 11, 23)) == ((time(10), time(12)),)  # a Monday
    assert r.from_number == "+922135550199"


@pytest.mark.parametrize(("block", "message"), [
    ('channels = ["fax"]',
     "reminders.channels: unknown reminder channel 'fax' (use call and/or sms)"),
    ("channels = []", "reminders.channels: list call and/or sms"),
    ('channels = "call"', 'reminders.channels: must be a list like ["call", "sms"]'),
    ("calls_per_second = 0", "reminders.calls_per_second: must be a number above 0"
                             " (at most 100), got 0"),
    ("days_ahead = 0", "reminders.days_ahead: must be a positive whole number, got 0"),
    ("dayz_ahead = 1", "reminders: unknown key 'dayz_ahead' (did you mean 'days_ahead'?)"),
])
def test_bad_reminder_keys_are_one_line_errors(block: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_clinic_config(MINIMAL + f'\n[reminders]\nat = "10:00"\n{block}\n')
    assert str(err.value) == message


def test_a_bad_run_time_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_clinic_config(MINIMAL + '\n[reminders]\nat = "25:00"\n')
    assert str(err.value) == "reminders.at: '25:00' is not a time like '10:00'"
    with pytest.raises(ConfigError) as err:
        parse_clinic_config(MINIMAL + "\n[reminders]\n")
    assert str(err.value) == "reminders.at: missing"


def test_the_example_clinic_file_has_a_commented_reminders_example() -> None:
    text = EXAMPLE.read_text()
    assert "# [reminders]" in text
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and any(
            line[2:].startswith(k) for k in ("[reminders", "at =", "days_ahead", "channels",
                                             "calls_per_second", "language =", "mon =",
                                             "from_number", "sun ="))
        else line for line in text.splitlines())
    # The example, uncommented, is a valid clinic file (the table moved to the end).
    start = uncommented.index("[reminders]")
    end = uncommented.index("# Overrides of the Clinicea endpoint table")
    clinic = parse_clinic_config(uncommented[:start] + uncommented[end:] + "\n"
                                 + uncommented[start:end])
    assert clinic.reminders is not None and clinic.reminders.channels == ("call", "sms")
