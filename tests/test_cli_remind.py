"""`ivr remind` as a clinic runs it (docs/reminders.md): a clinic file with `[reminders]`
(IVR_CLINIC_CONFIG), the demo sandbox, a SQLite file. The dry run prints who would be reminded
and writes nothing; a real run texts each patient once; configuration mistakes are one line."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses

from ivr.cli import main
from ivr.clock import SystemClock
from ivr.config import DEMO_CLINIC, DEMO_CLINIC_TOML
from ivr.sandbox.seed import DEMO_PATIENTS, next_open_day
from ivr.store import Store
from tests.demo import CLINIC_NUMBER
from tests.test_cli import run_ivr
from tests.twilio_api import ACCOUNT

REMINDERS = f"""
[reminders]
at = "10:00"
channels = ["sms"]
from_number = "{CLINIC_NUMBER}"
"""
# The sandbox books the next open day after today; its Scheduled and Confirmed patients.
PATIENTS = ("Nida Aslam", "Saad Mirza", "Rabia Anwar", "Junaid Akhtar", "Sadia Noor",
            "Amna Yousaf")


def booked_day() -> date:
    """The day the demo sandbox (seeded on today's date in the clinic's zone) has bookings."""
    return next_open_day(SystemClock(DEMO_CLINIC.timezone).now().date())


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clinic = tmp_path / "clinic.toml"
    clinic.write_text(DEMO_CLINIC_TOML + REMINDERS, encoding="utf-8")
    return {"IVR_CLINIC_CONFIG": str(clinic),
            "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.db'}"}


def stored(env: dict[str, str]) -> list:  # noqa: ANN201
    store = Store(env["IVR_DATABASE_URL"])
    try:
        store.migrate()
        return store.reminders()
    finally:
        store.dispose()


def test_a_dry_run_prints_the_plan_masked_and_writes_nothing(env: dict[str, str],
                                                              tmp_path: Path) -> None:
    day = booked_day()
    done = run_ivr("remind", "--day", day.isoformat(), "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"reminders of {day.isoformat()}: {len(PATIENTS)} patient(s), "
                          "1 appointment(s) skipped")
    assert "status Cancelled" in out  # Ali Raza's cancelled appointment, said why
    assert "Reply 1 to confirm, 2 to move, 3 to cancel" in out
    assert out.rstrip().endswith("dry run: nothing written, nothing sent")
    for name in PATIENTS:
        patient = DEMO_PATIENTS[name]
        assert f"{patient.first_name}:" in out  # the first name, with a masked number
        assert patient.last_name not in out and name not in out
        assert patient.e164 not in out and patient.e164[3:] not in out
        assert f"+92*******{patient.e164[-3:]}" in out
    assert "Raza" not in out  # the cancelled patient is named nowhere
    assert stored(env) == []


def test_a_clinic_file_without_reminders_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run_ivr("remind", "--dry-run", cwd=tmp_path)  # the built-in demo clinic
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "configuration error: reminders: the clinic file has no [reminders] table"]
    assert done.stdout == ""


@pytest.mark.parametrize("day", ["24/11/2026", "next week", "2026-02-30"])
def test_a_bad_day_is_a_clear_error_not_a_traceback(env: dict[str, str], tmp_path: Path,
                                                    day: str) -> None:
    done = run_ivr("remind", "--day", day, "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"--day: {day!r} is not YYYY-MM-DD, today or tomorrow"]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "ivr.db").exists()  # refused before the database was made


def test_sending_without_a_from_number_is_one_line_and_exit_2(tmp_path: Path) -> None:
    clinic = tmp_path / "clinic.toml"
    clinic.write_text(DEMO_CLINIC_TOML + '[reminders]\nat = "10:00"\nchannels = ["sms"]\n',
                      encoding="utf-8")
    done = run_ivr("remind", env={"IVR_CLINIC_CONFIG": str(clinic),
                                  "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.db'}"},
                   cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("configuration error: reminders.from_number:")


def test_a_real_run_texts_each_patient_once_and_a_second_run_nobody(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        twilio: responses.RequestsMock, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("CLINICEA_", "TWILIO_", "IVR_")):
            monkeypatch.delenv(name)
    for name, value in {**env, "TWILIO_ACCOUNT_SID": ACCOUNT}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    day = booked_day().isoformat()
    assert main(["remind", "--day", day]) == 0
    out = capsys.readouterr().out
    assert f"reminders of {day}: {len(PATIENTS)} patient(s), {len(PATIENTS)} newly planned" in out
    assert f"sent: {len(PATIENTS)} text(s) sent, 0 call(s) placed" in out
    numbers = [parse_qs(c.request.body)["To"][0] for c in twilio.calls]
    assert sorted(numbers) == sorted(DEMO_PATIENTS[n].e164 for n in PATIENTS)
    rows = stored(env)
    assert len(rows) == len(PATIENTS) and all(r.status == "sent" for r in rows)
    # Run by hand again (or after a crash): nobody planned or texted twice.
    assert main(["remind", "--day", day]) == 0
    again = capsys.readouterr().out
    assert "0 newly planned" in again and "sent: 0 text(s) sent" in again
    assert len(twilio.calls) == len(PATIENTS)
