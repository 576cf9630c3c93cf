"""The two WSGI apps the benchmark serves under gunicorn, and the sandbox process.

- `ivr_app(now)`: the real app (`ivr.app.create_app` on `ivr.runtime.build_runtime`, settings
  from the environment the benchmark sets), its clinic clock pinned to `now` so every run
  meets the same calendar, the same opening hours and agents on duty, whatever the wall clock
  says.
- `baseline_app()`: a bare Flask app answering every POST with one fixed TwiML `<Gather>`:
  the floor any Flask webhook under the same gunicorn settings pays.
- `python -m bench.apps sandbox PORT NOW LATENCY_MS JITTER_MS`: the sandbox Clinicea on its own
  (its own process, so it never competes with the app or the callers for a GIL), seeded for
  `now` and answering every request after `LATENCY_MS +- JITTER_MS`.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from flask import Flask, Response

BASELINE_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="/voice/step/menu?t=1&amp;k=answer" input="dtmf speech" numDigits="1" '
    'timeout="5" actionOnEmptyResult="true"><Say voice="Polly.Amy" language="en-GB">'
    "To book an appointment, press 1 or say book. To speak to someone, press 0.</Say>"
    "</Gather></Response>"
)


def ivr_app(now: str) -> Flask:
    """The real app with a fixed clinic clock (`now`: ISO 8601, clinic-local)."""
    from ivr.app import create_app
    from ivr.clock import FixedClock
    from ivr.config import Settings
    from ivr.runtime import build_runtime

    # gunicorn.conf.py (the launcher) has set up the logs and migrated the schema.
    clock = FixedClock(datetime.fromisoformat(now))
    return create_app(build_runtime(Settings.from_env(), clock=clock))


def baseline_app() -> Flask:
    """Bare Flask: a fixed TwiML `<Gather>` for any POST, 200 for GET /healthz."""
    app = Flask("baseline")

    @app.post("/voice/<path:_rest>")
    def voice(_rest: str) -> Response:
        return Response(BASELINE_TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", mimetype="text/plain")

    return app


def _serve_sandbox(port: int, now: str, latency_ms: int, jitter_ms: int) -> None:
    from ivr.clock import FixedClock
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    state = SandboxState(FixedClock(datetime.fromisoformat(now)))
    if latency_ms:
        state.faults.latency(latency_ms, jitter_ms)
    sandbox = EmbeddedSandbox(state, port=port)
    print(sandbox.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "sandbox":
        sys.exit("usage: python -m bench.apps sandbox PORT NOW LATENCY_MS JITTER_MS")
    _serve_sandbox(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
