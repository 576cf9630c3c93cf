"""The `ivr` command as a user runs it: demo, sandbox, check, migrate, purge."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ivr.cli import main
from tests.demo import ROOT


def run_ivr(*args: str, stdin: str = "", env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_"))}
    return subprocess.run(
        [sys.executable, "-m", "ivr.cli", *args], input=stdin, capture_output=True, text=True,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=cwd or ROOT, timeout=timeout,
    )


def test_demo_books_an_appointment_typed_at_the_terminal(tmp_path: Path):
    done = run_ivr("demo", stdin="1\n1\n1\n\n1\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "IVR: Hello Bilal, welcome back to Harbour Family Clinic." in done.stdout
    assert "You're booked for" in done.stdout
    assert "Booked in the sandbox Clinicea during this call:" in done.stdout
    assert "Dr. Nadia Farooq" in done.stdout.split("Booked in the sandbox")[1]
    # The call reads cleanly: no log lines between the prompts unless asked for.
    assert "ivr." not in done.stderr and '{"time"' not in done.stderr


def test_demo_logs_are_json_lines_each_once(tmp_path: Path):
    """`--logs` shows the app's log; every line is one JSON object, none printed twice."""
    done = run_ivr("demo", "--logs", stdin="1\n1\n1\n\n1\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any("patient search" in line for line in lines)
    assert all(json.loads(line)["message"] for line in lines), lines
    assert len({json.loads(line)["message"] + json.loads(line)["time"] for line in lines}) == \
        len(lines)


def test_demo_speaks_urdu_when_asked(tmp_path: Path):
    done = run_ivr("demo", "--language", "ur-PK", stdin="1\n1\n1\n\n1\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "دوبارہ خوش آمدید" in done.stdout
    assert "بک ہو گئی ہے" in done.stdout


def test_demo_withheld_caller_keys_their_number(tmp_path: Path):
    done = run_ivr("demo", "--from", "withheld", stdin="03216315551#\n/hangup\n", cwd=tmp_path)
    assert "Your number is hidden" in done.stdout and "Hello Bilal" in done.stdout


def test_demo_reminder_the_clinic_calls_and_bilal_confirms(tmp_path: Path):
    done = run_ivr("demo", "--reminder", stdin="1\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Bilal Ahmed booked with Dr. Farooq" in out
    assert "Your phone (+923216315551) rings: the clinic is calling." in out
    assert "IVR: Hello Bilal, this is Harbour Family Clinic with a reminder" in out
    assert "To confirm, press 1" in out
    assert "we'll see you then" in out
    assert "Call ended (completed)." in out
    assert "Bilal's reminder as: confirmed." in out
    assert not list(tmp_path.iterdir())  # a throwaway store: nothing left in the directory


def test_demo_reminder_cancel_waits_for_the_desk(tmp_path: Path):
    done = run_ivr("demo", "--reminder", stdin="3\n", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Bilal's reminder as: cancel_requested (for the desk to act on)." in done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sandbox_command_answers_a_login_and_a_search():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "sandbox", "--port", str(port)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                token = httpx.get(f"{base}/api/v2/login/getTokenByStaffUsernamePwd", params={
                    "apiKey": "sandbox-api-key", "loginUserName": "frontdesk",
                    "pwd": "sandbox-password"}).json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        found = httpx.get(f"{base}/api/v2/patients/searchPatientByMobileNumber",
                          params={"patmobile": "3216315551", "countrycode": "+92",
                                  "api_key": token})
        assert found.status_code == 200
        assert found.json()[0]["FullName"] == "Bilal Ahmed"
    finally:
        proc.terminate()
        proc.wait(10)


def test_check_passes_on_the_sandbox(monkeypatch: pytest.MonkeyPatch, capsys):
    for name in list(os.environ):
        if name.startswith(("CLINICEA_", "TWILIO_", "IVR_")):
            monkeypatch.delenv(name)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "logged in" in out and "all good" in out


def test_check_explains_a_wrong_password(monkeypatch: pytest.MonkeyPatch, capsys):
    from ivr.clock import SystemClock
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    with EmbeddedSandbox(SandboxState(SystemClock("Asia/Karachi"))) as sandbox:
        monkeypatch.setenv("CLINICEA_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("CLINICEA_API_KEY", "sandbox-api-key")
        monkeypatch.setenv("CLINICEA_USERNAME", "frontdesk")
        monkeypatch.setenv("CLINICEA_PASSWORD", "not-the-password")
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", "a-real-looking-token")
        monkeypatch.setenv("IVR_SECRET_KEY", "a-real-looking-secret")
        assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "username or password was refused" in out


def test_a_bad_setting_stops_with_one_line(tmp_path: Path):
    bad = tmp_path / "clinic.toml"
    bad.write_text('name = "X"\ntimezone = "Mars/Base"\n')
    done = run_ivr("check", env={"IVR_CLINIC_CONFIG": str(bad)})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "timezone" in line and "Mars/Base" in line


def test_migrate_and_purge_work_on_a_fresh_database(tmp_path: Path):
    env = {"IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    migrated = run_ivr("migrate", env=env)
    assert migrated.returncode == 0 and "schema at version" in migrated.stdout
    purged = run_ivr("purge", env=env)
    assert purged.returncode == 0 and "removed 0 call event(s)" in purged.stdout


def _serve(port: int, cwd: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_"))}
    proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port)],
                            env={**clean, "PYTHONPATH": str(ROOT)}, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: kill it whole
    for _ in range(150):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"ivr serve exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("ivr serve did not answer /healthz within 15 s")


@pytest.mark.slow
def test_serve_killed_mid_call_continues_the_call_after_a_restart(tmp_path: Path):
    """kill -9 of the server process between two webhooks; the next one, to the restarted server
    on the same database, carries on where the call was. `ivr call` talks to it too."""
    from ivr.config import DEMO_TWILIO_AUTH_TOKEN
    from ivr.simulator import TwilioSimulator

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(port, tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=15.0) as http:
            phone = TwilioSimulator(base, DEMO_TWILIO_AUTH_TOKEN, http=http)
            call = phone.call(from_="+923216315551")
            call.press("1")
            assert "Would you like Dr. Farooq again?" in call.last_heard
            _kill(proc)  # SIGKILL to gunicorn's master and its worker: no clean shutdown
            proc = _serve(port, tmp_path)
            call.press("1")
            assert "next free times" in call.last_heard and "start again" not in call.heard
            call.press("1")
            call.silence()
            call.press("1")
            assert "You're booked" in call.heard
        done = run_ivr("call", "--url", base, "--from", "known", stdin="1\n1\n1\n\n1\n",
                       cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "You're booked for" in done.stdout
    finally:
        _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
