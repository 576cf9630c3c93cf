"""Demo secrets beside a real Clinicea (issue 9, item 9).

`IVR_DEMO=1` with a `CLINICEA_BASE_URL` used to start on the published demo Twilio token and
console secret: a webhook signed with the demo token was served, and a console cookie forged
with the demo secret opened a patient's record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from ivr.clock import SystemClock
from ivr.config import DEMO_SECRET_KEY, DEMO_TWILIO_AUTH_TOKEN, ConfigError, Settings
from ivr.sandbox import EmbeddedSandbox, SandboxState
from tests.demo import ROOT
from tests.test_cli import run_ivr

REAL_URL = "https://clinic.clinicea.example"


@pytest.mark.parametrize("own", [
    {},
    {"TWILIO_AUTH_TOKEN": "own-token"},
    {"IVR_SECRET_KEY": "own-key"},
    {"TWILIO_AUTH_TOKEN": DEMO_TWILIO_AUTH_TOKEN, "IVR_SECRET_KEY": "own-key"},
    {"TWILIO_AUTH_TOKEN": "own-token", "IVR_SECRET_KEY": DEMO_SECRET_KEY},
])
def test_ivr_demo_with_a_base_url_refuses_the_demo_secrets(own):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"CLINICEA_BASE_URL": REAL_URL, "IVR_DEMO": "1", **own})
    assert "IVR_DEMO=1" in str(caught.value)


def test_ivr_serve_does_not_start_on_demo_secrets_beside_a_base_url(tmp_path: Path):
    done = run_ivr("serve", "--port", "1", cwd=tmp_path,
                   env={"CLINICEA_BASE_URL": REAL_URL, "IVR_DEMO": "1"})
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "TWILIO_AUTH_TOKEN" in line and "IVR_SECRET_KEY" in line


def test_the_demo_without_a_base_url_still_starts_on_the_demo_secrets():
    settings = Settings.from_env({})
    assert settings.demo and settings.twilio_auth_token == DEMO_TWILIO_AUTH_TOKEN
    assert settings.clinicea_label == "the embedded sandbox Clinicea"


def test_the_banner_names_the_clinicea_it_really_talks_to(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedSandbox(SandboxState(SystemClock("Asia/Karachi"))) as sandbox:
        base_url = sandbox.base_url
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_"))}
        env = {**clean, "PYTHONPATH": str(ROOT), "CLINICEA_BASE_URL": base_url,
               "IVR_DEMO": "1", "TWILIO_AUTH_TOKEN": "own-token", "IVR_SECRET_KEY": "own-key",
               "IVR_DATABASE_URL": f"sqlite:///{tmp_path / 'ivr.db'}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "ivr.cli", "serve", "--no-worker", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        try:
            assert proc.stderr is not None
            # The banner is one of the supervisor's log lines (JSON objects, like every line).
            for _ in range(50):
                banner = json.loads(proc.stderr.readline())["message"]
                if "listening" in banner:
                    break
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert "listening" in banner and base_url in banner, banner
    assert "embedded sandbox" not in banner


def test_hand_built_demo_settings_beside_a_clinicea_open_nothing_with_the_demo_secrets():
    """Settings built by hand (not from the environment) get the same refusal at the door."""
    import hashlib

    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface

    from ivr.accounts import create_agent
    from ivr.app import runtime_of
    from ivr.simulator import TwilioSimulator
    from tests.calls import app_for

    settings = Settings.for_tests(clinicea_base_url="http://127.0.0.1:9")
    app = app_for(settings)
    try:
        phone = TwilioSimulator("http://testserver", DEMO_TWILIO_AUTH_TOKEN,
                                http=httpx.Client(transport=httpx.WSGITransport(app=app),
                                                  base_url="http://testserver"))
        params = phone.webhook_params("+923216315551", to="+922135550199", call_sid="CA" + "1" * 32)
        assert phone.post_raw("/voice/incoming", params).status_code == 403
        store = runtime_of(app).store
        agent = create_agent(store, "amina", "correct horse battery staple")
        forger = Flask("forger")
        forger.secret_key = DEMO_SECRET_KEY
        cookie = SecureCookieSessionInterface().get_signing_serializer(forger).dumps({
            "agent": "amina", "generation": 0,
            "mark": hashlib.sha256(agent.password_hash.encode()).hexdigest()[:24],
            "since": runtime_of(app).clock.now().replace(
                tzinfo=ZoneInfo(settings.clinic.timezone)).astimezone(UTC).isoformat()})
        client = app.test_client()
        client.set_cookie("session", cookie)
        assert client.get("/console/live.json").status_code == 401
    finally:
        runtime_of(app).close()
