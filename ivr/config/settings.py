"""Process settings: `Settings`, read from the environment and validated at start-up.

`Settings.from_env()` is the one place in the project that reads `os.environ` (the launchers
only write `PROMETHEUS_MULTIPROC_DIR` for their children). A bad value raises `ConfigError`
with one line naming the variable and what is wrong.

Demo mode (no `CLINICEA_BASE_URL`, or `IVR_DEMO=1`) runs against the embedded sandbox with
`DEMO_CLINIC` and the published demo secrets (`ivr.config.demo`); outside demo mode every
secret must be set. `IVR_DEMO=1` beside a `CLINICEA_BASE_URL` (a sandbox elsewhere, or maybe a
real Clinicea) still needs a `TWILIO_AUTH_TOKEN` and `IVR_SECRET_KEY` of its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.config.clinic import ClinicConfig, load_clinic_config
from ivr.config.demo import (
    DEMO_CLINIC,
    DEMO_SECRET_KEY,
    DEMO_TWILIO_AUTH_TOKEN,
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
)
from ivr.config.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///ivr.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.get(name) or default).upper()
        if value not in choices:
            raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
        return value
