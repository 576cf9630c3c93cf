"""Whole calls for tests: the app on the sandbox, driven by the Twilio call simulator.

Tests ask for the ``make_rig`` fixture (``tests/conftest.py``), which opens ``rig`` and closes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from flask import Flask

from ivr.app import Runtime, create_app, runtime_of
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.sandbox import SandboxState
from ivr.simulator import TwilioSimulator
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
    app = create_app(cfg, clock=clock, sandbox_state=sandbox)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    phone = TwilioSimulator("http://testserver", cfg.twilio_auth_token, http=http,
                            to=CLINIC_NUMBER, seed=7)
    try:
        seeded = frozenset(a["ID"] for a in sandbox.calendar())
        yield Rig(app, runtime_of(app), sandbox, clock, phone, seeded)
    finally:
        http.close()
        runtime_of(app).close()
