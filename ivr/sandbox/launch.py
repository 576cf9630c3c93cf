"""The demo's embedded sandbox Clinicea, started by whoever builds a demo runtime.

Demo mode is "no `CLINICEA_BASE_URL`": the app then books into the stand-in Clinicea
(`ivr.sandbox`), run on a local port in this process and reached over real HTTP. Starting it is
the launcher's decision, never a side effect of building the app: `ivr demo`, `ivr worker`, the
Procfile's app factory (`ivr.app.create_app()` with no runtime) and the test rig call
`demo_sandbox`/`start_sandbox` and hand the result to `ivr.runtime.build_runtime`, whose
`Runtime.close()` stops it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.clock import Clock, SystemClock
from ivr.config import Settings

if TYPE_CHECKING:
    from ivr.sandbox import EmbeddedSandbox, SandboxState

__all__ = ["demo_sandbox", "start_sandbox"]


def start_sandbox(settings: Settings, clock: Clock | None = None,
                  state: SandboxState | None = None) -> EmbeddedSandbox:
    """An embedded sandbox Clinicea on a free local port, started (`IVR_SANDBOX_FAULTS`
    applied). `state` is a test's own calendar; by default a fresh seeded one on `clock`."""
    # Imported here: the sandbox is a Flask app, and a process on a real Clinicea (the booking
    # worker) imports no web framework.
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    state = state or SandboxState(clock or SystemClock(settings.clinic.timezone))
    if settings.sandbox_faults:
        state.faults.apply_spec(settings.sandbox_faults)
    sandbox = EmbeddedSandbox(state)
    sandbox.start()
    return sandbox


def demo_sandbox(settings: Settings, *, clinicea_url: str | None = None,
                 clock: Clock | None = None,
                 state: SandboxState | None = None) -> EmbeddedSandbox | None:
    """`start_sandbox` in demo mode when no other Clinicea is given (`clinicea_url`: `ivr
    serve`'s sandbox process), else None."""
    if settings.clinicea_base_url is not None or clinicea_url is not None:
        return None
    return start_sandbox(settings, clock, state)
