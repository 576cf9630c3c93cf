"""The application factory: wires settings, clock, Clinicea, the store and the flow together.

`create_app()` with no arguments reads the environment (production, the Procfile, `ivr serve`).
Tests pass `Settings.for_tests(...)`, a `FixedClock` and, if they like, their own Clinicea
client or store. With no `CLINICEA_BASE_URL` the embedded sandbox Clinicea is started on a
local port and the client talks to it over real HTTP.
"""

from __future__ import annotations

import atexit
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from flows.booking import FLOW
from flows.engine import Engine, Reply
from flows.lang import catalogue_for, text
from ivr import logs, ops, twiml
from ivr.calendar import DayCalendar
from ivr.clinicea import CliniceaClient
from ivr.clinicea.auth import StoreToken
from ivr.clock import Clock, SystemClock
from ivr.config import DEMO_SECRET_KEY, Settings
from ivr.outbox import Outbox
from ivr.phone import parse_phone
from ivr.plaintext import CleanRequest
from ivr.sandbox import EmbeddedSandbox, SandboxState
from ivr.services import CliniceaServices
from ivr.sms import TwilioSms
from ivr.store import Store
from ivr.voice import Inbound, VoiceTurns

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024  # Twilio's forms are a few hundred bytes; bound everything
BOOKING_LEAD_MINUTES = 60  # a caller cannot take a slot that starts within the hour


@dataclass
class Runtime:
    """Everything a request needs, kept in `app.extensions["ivr"]` (no globals)."""

    settings: Settings
    clock: Clock
    client: CliniceaClient
    store: Store
    services: CliniceaServices
    engine: Engine
    voices: dict[str, twiml.Voice]
    sandbox: EmbeddedSandbox | None = None
    # Told of every apology and its reason (`ivr.ops.Metrics.apology` counts them).
    on_apology: Callable[[str], None] = field(default=lambda reason: None)
    turns: VoiceTurns = field(init=False)

    def __post_init__(self) -> None:
        self.turns = VoiceTurns(self)

    def turn(self, inbound: Inbound, kind: str, step: str | None, turn: int) -> str:
        """TwiML for one webhook; its Clinicea lookups share one time limit (ivr.services)."""
        with self.services.webhook_budget(), self.services.for_call(inbound.call_sid):
            return self.turns.run(inbound, kind, step, turn)

    def render(self, reply: Reply, next_turn: int) -> str:
        """A reply as TwiML, its action URLs carrying the next turn number."""
        base = (self.settings.public_url or "").rstrip("/")

        def url_for(kind: str, step: str) -> str:
            return f"{base}/voice/step/{quote(step)}?t={next_turn}&k={kind}"

        return twiml.render(reply, url_for, self.voices)

    def default_voice(self) -> twiml.Voice:
        """The clinic's main language voice."""
        return self.voices[self.settings.clinic.language]

    def say_restart(self, language: str) -> str:
        """ "Sorry, let's start again." for a call we lost track of."""
        return text(catalogue_for(language), "restart", {})

    def apology(self, *, reason: str, inbound: Inbound | None = None) -> str:
        """Something failed: apologise and hand over to a person, never an application error.

        During agent hours the transfer number is rung (its end comes back to
        `/voice/fallback?after=dial`, see `after_dial`); otherwise a caller whose number we
        know (Twilio's `From`) gets a callback request, anyone else is asked to call again.
        """
        log.warning("answering with an apology (%s)", reason)
        self.on_apology(reason)
        lang = catalogue_for(self.settings.clinic.language)
        voice = self.default_voice()
        clinic = self.settings.clinic
        now = self.clock.now()
        sorry = text(lang, "fallback", {})
        if clinic.transfer_number and clinic.agent_hours.is_open(now):
            return twiml.apology_with_transfer(
                f"{sorry} {text(lang, 'connecting', {})}", voice, clinic.transfer_number,
                action=f"{(self.settings.public_url or '').rstrip('/')}/voice/fallback?after=dial",
            )
        return twiml.say_only(f"{sorry} {self._callback(inbound, reason)}", voice, hangup=True)

    def after_dial(self, inbound: Inbound) -> str:
        """The apology's transfer ended: goodbye if someone answered, else a callback."""
        status = inbound.dial_status
        if status in ("busy", "no-answer", "failed"):
            said = self._callback(inbound, f"nobody answered the transfer, {status}")
            return twiml.say_only(said, self.default_voice(), hangup=True)
        return self.goodbye()

    def _callback(self, inbound: Inbound | None, reason: str) -> str:
        """Record a callback for the caller's number if known; what to tell the caller."""
        lang = catalogue_for(self.settings.clinic.language)
        caller = (parse_phone(inbound.caller, self.settings.clinic.default_region)
                  if inbound is not None and inbound.caller else None)
        if caller is None or inbound is None or not inbound.call_sid:
            return text(lang, "callback_no_number", {})
        try:
            self.services.request_callback(inbound.call_sid, caller.e164,
                                           f"after an error: {reason}")
        except Exception:  # the store is down too: say so, and promise no call back
            log.exception("could not record a callback after an error")
            self.on_apology("callback_not_recorded")
            return text(lang, "callback_not_recorded", {})
        return text(lang, "callback_done", {})

    def goodbye(self) -> str:
        """Thank the caller and hang up."""
        lang = catalogue_for(self.settings.clinic.language)
        return twiml.say_only(text(lang, "thanks_goodbye", {}), self.default_voice(), hangup=True)

    def finish(self, call_sid: str) -> None:
        """The call ended (status callback): record its outcome, or where it was abandoned."""
        from flows.engine import CallState
        from ivr.voice import STORE_OUTCOME

        self.services.end_call(call_sid)  # the times it held are free for others now
        record = self.store.load_call(call_sid)
        if record is None:
            return
        call = CallState.from_dict({**record.state, "call_sid": call_sid})  # purged: {}
        outcome = STORE_OUTCOME.get(call.outcome or "")
        if outcome is None:
            outcome = "transferred" if call.transferred else "abandoned"
        self.store.finish_call(call_sid, outcome, call.step or None)

    def close(self) -> None:
        """Release connections and stop the embedded sandbox."""
        self.client.close()
        self.store.dispose()
        if self.sandbox is not None:
            self.sandbox.stop()


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


def voices_for(settings: Settings) -> dict[str, twiml.Voice]:
    """The Twilio voice of every language the clinic speaks."""
    clinic = settings.clinic
    out: dict[str, twiml.Voice] = {}
    for locale in dict.fromkeys((clinic.language, *clinic.languages_offered)):
        voice = clinic.voice_for(locale) or "Polly.Amy"
        # A Google voice names its own locale ("Google.ur-IN-Wavenet-A" speaks ur-IN), which
        # may differ from the recognition locale (ur-PK).
        say_language = voice.split(".", 1)[1].rsplit("-", 2)[0] if voice.startswith(
            "Google.") else locale
        out[locale] = twiml.Voice(say_language=say_language, voice=voice,
                                  speech_language=locale)
    return out


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    client: CliniceaClient | None = None,
    store: Store | None = None,
    sandbox_state: SandboxState | None = None,
    clinicea_url: str | None = None,
) -> Flask:
    """Build the web app. Every collaborator can be injected; defaults come from settings.

    `clinicea_url` is a sandbox Clinicea running in another process (`ivr serve` in demo mode
    starts one for all its processes); it replaces the embedded one, demo rules unchanged.
    """
    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    metrics = ops.Metrics()
    clock = clock or SystemClock(settings.clinic.timezone)
    sandbox = None
    base_url = settings.clinicea_base_url or clinicea_url
    if client is None and base_url is None:
        state = sandbox_state or SandboxState(clock)
        if settings.sandbox_faults:
            state.faults.apply_spec(settings.sandbox_faults)
        sandbox = EmbeddedSandbox(state)
        base_url = sandbox.start()
    store = store or Store(settings.database_url, lock_seconds=settings.database_lock_seconds)
    # A configured (not embedded) Clinicea: the host's processes share one login token; on
    # PostgreSQL every host of the deployment shares it through the store (ivr.clinicea.auth).
    shared = {}
    if client is None and settings.clinicea_base_url is not None and \
            store.dialect == "postgresql":
        shared["shared_token"] = StoreToken(store, "\n".join((
            settings.clinicea_base_url.rstrip("/"), settings.clinicea_username,
            settings.clinicea_api_key)))
    client = client or CliniceaClient.from_settings(
        settings, base_url=base_url, on_request=metrics.on_clinicea_request,
        share_token=settings.clinicea_base_url is not None, **shared)
    store.migrate()
    # One Outbox per process: calls, the console and the worker attempt bookings through it,
    # and it drops the day it booked from the calendar cache they all read.
    outbox = Outbox(client, store, clock, settings.clinic, calendar=DayCalendar(client))
    services = CliniceaServices(client, store, clock, settings.clinic,
                                lead_minutes=BOOKING_LEAD_MINUTES, outbox=outbox)
    if settings.twilio_account_sid:
        services.sms = TwilioSms(settings.twilio_account_sid, settings.twilio_auth_token)
    engine = Engine(FLOW, services, transfer_number=settings.clinic.transfer_number)
    runtime = Runtime(settings, clock, client, store, services, engine, voices_for(settings),
                      sandbox, on_apology=metrics.apology)

    # httpx logs every URL at INFO; Clinicea URLs carry tokens and phone numbers.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    app = Flask("ivr")
    app.request_class = CleanRequest  # no character XML cannot hold gets in (ivr.plaintext)
    app.session_interface = _NoVoiceSessions()
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
    from ivr.voice import bp as voice_bp

    app.register_blueprint(voice_bp)
    from ivr.api import bp as api_bp
    from ivr.console import bp as console_bp

    app.register_blueprint(console_bp)  # /console: agents' screen-pop, live calls, outbox
    app.register_blueprint(api_bp)  # /api: the same lookups and booking as JSON
    ops.install(app, metrics)  # /healthz, /metrics, webhook timers
    if sandbox is not None:
        atexit.register(sandbox.stop)
    return app


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
    return app.extensions["ivr"]
