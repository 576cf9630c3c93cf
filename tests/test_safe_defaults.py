"""Safe defaults: no start without real secrets outside demo mode, no secret in a repr, the public
demo secrets good for nothing outside demo mode, and no real secret committed to the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ivr.config import (
    DEMO_SECRET_KEY,
    DEMO_TWILIO_AUTH_TOKEN,
    SANDBOX_PASSWORD,
    ConfigError,
    Settings,
)
from ivr.simulator import sign
from tests.calls import rig
from tests.demo import BILAL, ROOT

REAL = {
    "CLINICEA_BASE_URL": "https://api.clinicea.example/",
    "CLINICEA_API_KEY": "clinicea-api-key-5f1e",
    "CLINICEA_USERNAME": "desk-user",
    "CLINICEA_PASSWORD": "clinicea-password-9a7c",
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "IVR_SECRET_KEY": "ivr-secret-key-3b8d2e",
}
SECRETS = ("CLINICEA_API_KEY", "CLINICEA_PASSWORD", "TWILIO_AUTH_TOKEN", "IVR_SECRET_KEY")


# ----------------------------------------------------------------------------- start-up


@pytest.mark.parametrize("missing", [("TWILIO_AUTH_TOKEN",), ("IVR_SECRET_KEY",),
                                     ("TWILIO_AUTH_TOKEN", "IVR_SECRET_KEY")])
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_outside_demo_mode_the_app_will_not_start_without_its_secrets(missing, blank):
    env = {k: v for k, v in REAL.items() if k not in missing}
    if blank is not None:
        env |= dict.fromkeys(missing, blank)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert all(name in message for name in missing), message
    assert "\n" not in message
    assert not any(REAL[s] in message for s in SECRETS)  # naming, never echoing


def test_ivr_demo_off_with_a_clinicea_url_is_not_demo_mode():
    assert not Settings.from_env(REAL).demo
    assert not Settings.from_env(REAL | {"IVR_DEMO": "0"}).demo
    with pytest.raises(ConfigError):
        Settings.from_env({k: v for k, v in REAL.items() if k != "TWILIO_AUTH_TOKEN"}
                          | {"IVR_DEMO": "0"})


def test_no_secret_in_the_repr_of_settings():
    settings = Settings.from_env(REAL | {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                                        "IVR_PUBLIC_URL": "https://clinic.example"})
    shown = repr(settings) + str(settings) + f"{settings}"
    for name in SECRETS:
        assert REAL[name] not in shown, name
    assert "desk-user" in shown  # the repr is real, just without the secrets
    demo = Settings.from_env({})
    assert DEMO_TWILIO_AUTH_TOKEN not in repr(demo) and DEMO_SECRET_KEY not in repr(demo)


def test_no_database_password_in_the_repr_of_settings():
    settings = Settings.from_env(REAL | {
        "IVR_DATABASE_URL": "postgresql+psycopg://ivr:db-pass-7e1f@db.internal/ivr"})
    assert "db-pass-7e1f" not in repr(settings)


@pytest.mark.parametrize(("name", "value"), [("TWILIO_AUTH_TOKEN", DEMO_TWILIO_AUTH_TOKEN),
                                             ("IVR_SECRET_KEY", DEMO_SECRET_KEY)])
def test_outside_demo_mode_the_public_demo_secrets_are_refused_at_start(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(REAL | {name: value})


def test_demo_secrets_are_reported_by_settings_outside_demo_mode():
    """What `ivr check` prints as a PROBLEM."""
    settings = Settings.from_env(REAL | {"CLINICEA_PASSWORD": SANDBOX_PASSWORD})
    assert settings.demo_credentials_in_use() == ["CLINICEA_PASSWORD"]
    assert Settings.from_env(REAL).demo_credentials_in_use() == []


def test_outside_demo_mode_the_public_demo_token_validates_no_webhook():
    """Anyone can sign with the published demo token: outside demo mode it must sign nothing."""
    with rig(demo=False) as r:
        assert r.runtime.settings.twilio_auth_token == DEMO_TWILIO_AUTH_TOKEN
        params = r.phone.webhook_params(from_=BILAL.e164)
        forged = sign(r.phone.absolute("/voice/incoming"), params, DEMO_TWILIO_AUTH_TOKEN)
        reply = r.phone.post_raw("/voice/incoming", params, signature=forged)
        assert reply.status_code == 403
        assert r.runtime.store.load_call(params["CallSid"]) is None
    real_token = REAL["TWILIO_AUTH_TOKEN"]
    with rig(demo=False, twilio_auth_token=real_token) as r:
        r.phone = type(r.phone)("http://testserver", real_token, http=r.phone.http)
        params = r.phone.webhook_params(from_=BILAL.e164)
        assert r.phone.post_raw("/voice/incoming", params).status_code == 200
    with rig() as r:  # demo mode: the demo token is the token
        params = r.phone.webhook_params(from_=BILAL.e164)
        assert r.phone.post_raw("/voice/incoming", params).status_code == 200


# ----------------------------------------------------------------------------- the repository

ACCOUNT_SID = re.compile(r"\bAC[0-9a-fA-F]{32}\b")
HEX32 = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])")
PRIVATE_KEY = re.compile("-----BEGIN ((RSA|EC|DSA|OPENSSH|ENCRYPTED) )?" + "PRIVATE KEY-----")
API_KEY_SECRET = re.compile(r"\bSK[0-9a-fA-F]{32}\b")
AWS_KEY = re.compile(r"\bAKIA[0-9A-Z]{16}\b")


def _real_looking(token: str) -> bool:
    """Random-looking hex: several distinct characters, not a run or a simple pattern."""
    return len(set(token)) >= 10 and not re.search(r"(.)\1{5}", token)


def find_secrets(text: str) -> list[str]:
    """What looks like a committed credential in `text`."""
    found = []
    for sid in ACCOUNT_SID.finditer(text):
        window = text[max(sid.start() - 400, 0):sid.end() + 400]
        tokens = [t for t in HEX32.findall(window) if t != sid.group()[2:] and _real_looking(t)]
        if tokens:
            found.append(f"account SID {sid.group()} next to a token {tokens[0][:4]}...")
    found += [f"private key block: {m.group()}" for m in PRIVATE_KEY.finditer(text)]
    found += [f"API key SID {m.group()}" for m in API_KEY_SECRET.finditer(text)
              if _real_looking(m.group()[2:])]
    found += [f"AWS access key {m.group()}" for m in AWS_KEY.finditer(text)]
    return found


def test_the_secret_finder_finds_planted_secrets():
    sid = "AC" + "3f9a1c7e5b2d4086a1f3c5e7d9b2a4c6"
    assert find_secrets(f'TWILIO_ACCOUNT_SID="{sid}"\nTWILIO_AUTH_TOKEN="'
                        '8d2f6a0c4e9b1d7f3a5c8e0b2d4f6a19"')
    assert find_secrets("-----BEGIN " + "PRIVATE KEY-----\nMIIEv...")
    assert find_secrets("-----BEGIN RSA " + "PRIVATE KEY-----")
    assert find_secrets("key = AKIA" + "IOSFODNN7EXAMPLE")
    # Fakes that are plainly fakes are fine: a SID alone, a SID next to a placeholder.
    assert not find_secrets(f"account_sid = {sid}")
    assert not find_secrets(f"{sid} token=" + "0" * 32)
    assert not find_secrets("TWILIO_AUTH_TOKEN=your-auth-token")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover - not a checkout
        pytest.skip("not a git checkout")
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_real_looking_secret_is_committed():
    files = _tracked_files()
    assert ROOT / "ivr" / "config" / "demo.py" in files  # where the demo secrets live
    problems = []
    for path in files:
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        problems += [f"{path.relative_to(ROOT)}: {p}" for p in find_secrets(text)]
    assert problems == []


def test_no_secret_files_are_committed():
    names = [p.relative_to(ROOT).as_posix() for p in _tracked_files()]
    risky = [n for n in names if re.search(r"(^|/)\.env($|\.)|\.(pem|key|p12|pfx)$|id_rsa", n)
             and not n.endswith(".example")]
    assert risky == []
    assert not [n for n in names if n.endswith((".db", ".sqlite", ".sqlite3"))], \
        "a database file (call records) is committed"
