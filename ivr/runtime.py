"""The composition root: one process's object graph, built without Flask.

`build_runtime(settings, ...)` wires the settings, the clock, the Clinicea client, the store,
the outbox, the services, the engine, the voices and the metrics into a `Runtime`; `close()`
lets them go. The web app (`ivr.app.create_app`), the booking worker (`ivr worker`) and the
tests build it the same way. Building has no side effect on the process: no migration, no logging
set-up, no thread. The embedded sandbox Clinicea of a demo is started by whoever builds a demo
runtime (`ivr.sandbox.launch.start_sandbox`) and handed in; the runtime then owns it and stops it on
`close()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flows import reminders
from flows.booking import FLOW
from flows.engine import Engine
from ivr import twiml
from ivr.calendar import DayCalendar
from ivr.clinicea import CliniceaClient
from ivr.clinicea.auth import StoreToken
from ivr.clinicea_services import CliniceaServices
from ivr.clock import Clock, SystemClock
from ivr.config import ConfigError, Settings
from ivr.metrics import Metrics
from ivr.outbox import Outbox
from ivr.store import Store
from ivr.twilio_rest import TwilioCalls, TwilioSms

if TYPE_CHECKING:  # the sandbox is a Flask app: only a demo's launcher imports it
    from ivr.sandbox import EmbeddedSandbox

__all__ = ["BOOKING_LEAD_MINUTES", "Runtime", "build_runtime", "voices_for"]

BOOKING_LEAD_MINUTES = 60  # a caller cannot take a slot that starts within the hour


@dataclass
class Runtime:
    """Everything a request or a worker pass needs (the web app keeps it in
    `app.extensions["ivr"]`; no globals)."""

    settings: Settings
    clock: Clock
    client: CliniceaClient
    store: Store
    services: CliniceaServices
    outbox: Outbox
    engine: Engine
    voices: dict[str, twiml.Voice]
    metrics: Metrics
    sandbox: EmbeddedSandbox | None = None  # a demo's embedded Clinicea, stopped by `close`
    # The outbound reminder call (flows.reminders) on the same services; Twilio's Calls API
    # when an account is configured (docs/reminders.md).
    reminder_engine: Engine | None = None
    calls: TwilioCalls | None = None

    def engine_for(self, flow: str | None) -> Engine:
        """The engine of a call's flow by its stored name ("booking" when none is stored)."""
        if flow == "reminder" and self.reminder_engine is not None:
            return self.reminder_engine
        return self.engine

    def close(self) -> None:
        """Release connections and stop the embedded sandbox."""
        self.client.close()
        self.store.dispose()
        if self.sandbox is not None:
            self.sandbox.stop()


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


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    client: CliniceaClient | None = None,
    store: Store | None = None,
    clinicea_url: str | None = None,
    sandbox: EmbeddedSandbox | None = None,
) -> Runtime:
    """Wire one process's runtime. Every collaborator can be injected; defaults come from
    `settings`.

    Clinicea is, first that is given: `client`, `settings.clinicea_base_url`, `clinicea_url`
    (a sandbox Clinicea in another process: `ivr serve` in demo mode starts one for all its
    processes), the started `sandbox`. With none of them: `ConfigError` (a demo's launcher
    starts the sandbox, see `ivr.sandbox.launch`). The store is not migrated here (`ivr migrate`
    and the launchers do it).
    """
    metrics = Metrics()
    clock = clock or SystemClock(settings.clinic.timezone)
    base_url = settings.clinicea_base_url or clinicea_url or (
        sandbox.base_url if sandbox is not None else None)
    if client is None and base_url is None:
        raise ConfigError("CLINICEA_BASE_URL: not set, and no sandbox Clinicea was started "
                          "(ivr demo / ivr serve start one)")
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
    # One Outbox per process: calls, the console and the worker attempt bookings through it,
    # and it drops the day it booked from the calendar cache they all read.
    outbox = Outbox(client, store, clock, settings.clinic, calendar=DayCalendar(client))
    services = CliniceaServices(client, store, clock, settings.clinic,
                                lead_minutes=BOOKING_LEAD_MINUTES, outbox=outbox)
    calls = None
    if settings.twilio_account_sid:
        services.sms = TwilioSms(settings.twilio_account_sid, settings.twilio_auth_token)
        calls = TwilioCalls(settings.twilio_account_sid, settings.twilio_auth_token)
    engine = Engine(FLOW, services, transfer_number=settings.clinic.transfer_number)
    reminder_engine = Engine(reminders.FLOW, services,
                             transfer_number=settings.clinic.transfer_number)
    return Runtime(settings, clock, client, store, services, outbox, engine,
                   voices_for(settings), metrics, sandbox, reminder_engine=reminder_engine,
                   calls=calls)
