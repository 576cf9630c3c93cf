"""Demo secrets beside a real Clinicea (issue 9, item 9).

`IVR_DEMO=1` with a `CLINICEA_BASE_URL` used to start on the published demo Twilio token and
console secret: a webhook signed with the demo token was served, and a console cookie forged
with the demo secret opened a patient's record."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.clock import SystemClock
from ivr.config import DEMO_SECRET_KEY, DEMO_TWILIO_AUTH_TOKEN, ConfigError, Settings
from ivr.sandbox import EmbeddedSandbox, SandboxState
from tests.test_cli import run_ivr

ROOT = Path(__file__).resolve().parents[1]
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
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, start_new_session=True)
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert "listening" in banner and base_url in banner, banner
    assert "embedded sandbox" not in banner
