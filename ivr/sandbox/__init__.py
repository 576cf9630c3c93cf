"""The sandbox Clinicea: a stand-in server speaking Clinicea's wire format (docs/design.md).

It never imports the Clinicea client; it speaks the wire format itself. Pieces:

- `demo_clinic.toml`: the demo clinic (sites, doctors, services, hours, fixed GUIDs), a clinic
  file that demo mode serves too (`ivr.config.DEMO_CLINIC`).
- `state`: `SandboxState` (patients, calendar, tokens, faults, request log; thread-safe) and the
  default credentials `SANDBOX_API_KEY`, `SANDBOX_USERNAME`, `SANDBOX_PASSWORD`.
- `seed`: the demo clinic's data (`demo_seed(today)`, the GUIDs read from the file,
  `DEMO_PATIENTS`).
- `faults`: fault switches and the `IVR_SANDBOX_FAULTS` spec grammar.
- `app`: `create_sandbox_app(state)`, the Flask app (wire format + `/_sandbox/` admin API).
- `server`: `EmbeddedSandbox(state)` (thread, free port) and `run_sandbox(...)` (blocking).

`app` and `server` load on first use: `ivr.config` reads the demo clinic and the credentials
from here, and a process that serves nothing (a booking worker, `ivr migrate`) loads no Flask.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ivr.sandbox.faults import OPERATIONS, Faults, parse_faults_spec
from ivr.sandbox.seed import DEMO_PATIENTS, DemoPatient, Seed, demo_seed
from ivr.sandbox.state import (
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    Credentials,
    SandboxError,
    SandboxState,
)

if TYPE_CHECKING:
    from ivr.sandbox.app import create_sandbox_app
    from ivr.sandbox.server import EmbeddedSandbox, run_sandbox

_ON_FIRST_USE = {
    "create_sandbox_app": "ivr.sandbox.app",
    "EmbeddedSandbox": "ivr.sandbox.server",
    "run_sandbox": "ivr.sandbox.server",
}


def __getattr__(name: str) -> Any:
    """`create_sandbox_app`, `EmbeddedSandbox` and `run_sandbox`, imported when first asked for."""
    if name in _ON_FIRST_USE:
        return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEMO_PATIENTS",
    "OPERATIONS",
    "SANDBOX_API_KEY",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "Credentials",
    "DemoPatient",
    "EmbeddedSandbox",
    "Faults",
    "SandboxError",
    "SandboxState",
    "Seed",
    "create_sandbox_app",
    "demo_seed",
    "parse_faults_spec",
    "run_sandbox",
]
