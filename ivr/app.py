"""The application factory, as in Flask's flaskr: take (or build) the runtime, register the
blueprints.

`create_app(runtime)` wraps a runtime built by `ivr.runtime.build_runtime` (the commands, the
test rig). `create_app()` with no argument is the factory WSGI servers name (the Procfile's
`gunicorn "ivr.app:create_app()"`, `flask --app`): it builds the runtime from the environment,
and in demo mode (no `CLINICEA_BASE_URL`) starts this process's own embedded sandbox Clinicea
(docs/design.md, "The app factory"). Building the app has no other side effect: logging is set
up by whoever starts the process, the schema by `ivr migrate` and the launchers
(gunicorn.conf.py's `on_starting`, `ivr serve`, `ivr demo`, `ivr worker`).
"""

from __future__ import annotations

import atexit
import logging
import secrets

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr import ops
from ivr.api import bp as api_bp
from ivr.config import DEMO_SECRET_KEY, Settings
from ivr.console import bp as console_bp
from ivr.runtime import Runtime, build_runtime
from ivr.sms_webhook import bp as sms_bp
from ivr.voice import bp as voice_bp
from ivr.webinput import CleanRequest

__all__ = ["MAX_REQUEST_BYTES", "create_app", "runtime_of"]

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # Twilio's forms are a few hundred bytes; bound everything


class _NoVoiceSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except for Twilio's webhooks, which never use one.

    Opening a session (a signing serializer, a cookie lookup) on every webhook was a measurable
    share of a webhook's CPU; the /voice handlers get Flask's null session instead.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """None (Flask's null session) under /voice/, else the signed-cookie session."""
        if request.path.startswith("/voice/"):
            return None
        return super().open_session(app, request)


def create_app(runtime: Runtime | None = None) -> Flask:
    """The web app on `runtime` (default: built from the environment, see the module
    docstring). `runtime_of(app)` gives it back; closing it is the builder's business."""
    if runtime is None:
        runtime = _runtime_from_env()
    app = Flask("ivr")
    app.request_class = CleanRequest  # no character XML cannot hold gets in (ivr.webinput)
    app.session_interface = _NoVoiceSessions()
    settings = runtime.settings
    app.config.update(
        SECRET_KEY=_console_secret(settings),
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
    )
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
            x_host=settings.proxy_hops, x_port=settings.proxy_hops,
        )
    app.extensions["ivr"] = runtime
    app.register_blueprint(voice_bp)  # /voice: Twilio's webhooks (ivr.calls answers them)
    app.register_blueprint(sms_bp)  # /sms: patients' texts (replies to reminders)
    app.register_blueprint(console_bp)  # /console: agents' screen-pop, live calls, outbox
    app.register_blueprint(api_bp)  # /api: the same lookups and booking as JSON
    ops.install(app, runtime.metrics)  # /healthz, /metrics, webhook timers
    return app


def _runtime_from_env() -> Runtime:
    """The runtime of the no-argument factory: settings from the environment; in demo mode an
    embedded sandbox Clinicea of this process's own (each gunicorn worker its own calendar:
    `ivr serve` runs one sandbox for all its processes)."""
    from ivr.sandbox.launch import demo_sandbox

    settings = Settings.from_env()
    sandbox = demo_sandbox(settings)
    if sandbox is not None:
        log.info("demo mode: this process books into its own embedded sandbox Clinicea "
                    "(%s); `ivr serve` shares one between processes", sandbox.base_url)
        atexit.register(sandbox.stop)
    return build_runtime(settings, sandbox=sandbox)


def _console_secret(settings: Settings) -> str:
    """The key console cookies are signed with. The published demo key opens nothing beside a
    real Clinicea (`Settings.from_env` refuses it there; this holds for hand-built settings):
    a random key instead, so sessions last only as long as the process."""
    if settings.secret_key == DEMO_SECRET_KEY and not settings.demo_secrets_allowed:
        log.warning("IVR_SECRET_KEY is the public demo key beside a real Clinicea: console "
                    "sessions are signed with a random key instead")
        return secrets.token_urlsafe(32)
    return settings.secret_key


def runtime_of(app: Flask) -> Runtime:
    """The app's runtime (for the CLI and tests)."""
    runtime: Runtime = app.extensions["ivr"]
    return runtime
