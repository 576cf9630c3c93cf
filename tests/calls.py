"""Whole calls for tests: the app on the sandbox, driven by the Twilio call simulator.

Tests ask for the ``make_rig`` fixture (``tests/conftest.py``), which opens ``rig`` and closes it;
`app_for(settings, ...)` builds an app the way the launchers do (the tests that need several
apps on one database or calendar use it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from flask import Flask

from ivr import logs
from ivr.app import create_app, runtime_of
from ivr.clock import Clock, FixedClock, SystemClock
from ivr.config import Settings
from ivr.runtime import Runtime, build_runtime
from ivr.sandbox import SandboxState
from ivr.sandbox.launch import demo_sandbox
from ivr.simulator import TwilioSimulator
from ivr.store import Store
from tests.demo import CLINIC_NUMBER, MONDAY_10AM


@dataclass
class Rig:
    """An app wired to a sandbox Clinicea, a store and a simulator that calls it."""

    app: Flask
    runtime: Runtime
    sandbox: SandboxState
    clock: FixedClock
    phone: TwilioSimulator
    seeded: frozenset[str] = frozenset()  # appointment ids the sandbox started with

    def call(self, from_: str, **kw: Any):  # noqa: ANN201 - ivr.simulator.Call
        """Place a call from `from_` to the clinic."""
        return self.phone.call(from_=from_, **kw)

    def appointments(self) -> list[dict[str, Any]]:
        """The sandbox calendar as its admin API shows it."""
        return self.sandbox.calendar()  # type: ignore[attr-defined]


@contextmanager
def rig(now: datetime = MONDAY_10AM, **settings: Any) -> Iterator[Rig]:
    """A fresh app, sandbox and SQLite store for one test."""
    clock = FixedClock(now)
    sandbox = SandboxState(clock)
    cfg = Settings.for_tests(**settings)
    app = app_for(cfg, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", cfg.twilio_auth_token, http=http,
                            to=CLINIC_NUMBER, seed=7)
    try:
        seeded = frozenset(a["ID"] for a in sandbox.calendar())
        yield Rig(app, runtime_of(app), sandbox, clock, phone, seeded)
    finally:
        http.close()
        runtime_of(app).close()


def app_for(settings: Settings, *, clock: Clock | None = None,
            sandbox_state: SandboxState | None = None, store: Store | None = None) -> Flask:
    """The app as the launchers build it, for a test: logs at the settings' level, in demo
    mode an embedded sandbox on `sandbox_state` (the runtime stops it on `close()`), the
    runtime, the schema, then `create_app`."""
    logs.configure(settings.log_level)
    clock = clock or SystemClock(settings.clinic.timezone)
    sandbox = demo_sandbox(settings, clock=clock, state=sandbox_state)
    runtime = build_runtime(settings, clock=clock, store=store, sandbox=sandbox)
    runtime.store.migrate()
    return create_app(runtime)
