"""The sandbox Clinicea: a stand-in server speaking Clinicea's wire format (docs/design.md).

It never imports the Clinicea client; it speaks the wire format itself. Pieces:

- `state`: `SandboxState` (patients, calendar, tokens, faults, request log; thread-safe) and the
  default credentials `SANDBOX_API_KEY`, `SANDBOX_USERNAME`, `SANDBOX_PASSWORD`.
- `seed`: the demo clinic (`demo_seed(today)`, fixed GUIDs, `DEMO_PATIENTS`).
- `faults`: fault switches and the `IVR_SANDBOX_FAULTS` spec grammar.
- `app`: `create_sandbox_app(state)`, the Flask app (wire format + `/_sandbox/` admin API).
- `server`: `EmbeddedSandbox(state)` (thread, free port) and `run_sandbox(...)` (blocking).
"""

from __future__ import annotations

from ivr.sandbox.app import create_sandbox_app
from ivr.sandbox.faults import OPERATIONS, Faults, parse_faults_spec
from ivr.sandbox.seed import DEMO_PATIENTS, DemoPatient, Seed, demo_seed
from ivr.sandbox.server import EmbeddedSandbox, run_sandbox
from ivr.sandbox.state import (
    SANDBOX_API_KEY,
    SANDBOX_PASSWORD,
    SANDBOX_USERNAME,
    Credentials,
    SandboxError,
    SandboxState,
)

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
