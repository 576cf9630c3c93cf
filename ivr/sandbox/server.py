"""Running the sandbox Clinicea: embedded in a thread (tests, `ivr demo`) or on its own."""

from __future__ import annotations

import os
import re
import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ivr.sandbox.app import create_sandbox_app
from ivr.sandbox.state import SandboxState

_SECRETS = re.compile(r"\b(api_key|apikey|pwd)=[^&\s]*", re.IGNORECASE)


class _Handler(WSGIRequestHandler):
    """Keeps an `api_key` header (werkzeug drops header names with underscores) and masks
    tokens, API keys and passwords in the access log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path
        self.path = _SECRETS.sub(r"\1=***", path)
        try:
            super().log_request(code, size)
        finally:
            self.path = path

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        for key, value in self.headers.items():
            if key.lower() == "api_key" and "HTTP_API_KEY" not in environ:
                environ["HTTP_API_KEY"] = value
        return environ


class _QuietHandler(_Handler):
    """No access log on stderr (embedded use)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class EmbeddedSandbox:
    """The sandbox on a free 127.0.0.1 port, served by a threaded werkzeug server in a daemon
    thread (real HTTP). `start()` returns the base URL; `stop()` shuts it down. As a context
    manager it starts on enter and stops on exit::

        with EmbeddedSandbox(SandboxState(FixedClock(now))) as sandbox:
            httpx.get(sandbox.base_url + "/_sandbox/appointments")
    """

    def __init__(self, state: SandboxState, *, host: str = "127.0.0.1", port: int = 0,
                 quiet: bool = True) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.quiet = quiet
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT` (only while started)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> str:
        """Start serving (idempotent); returns the base URL."""
        if self._server is None:
            server = make_server(self.host, self.port, create_sandbox_app(self.state),
                                 threaded=True,
                                 request_handler=_QuietHandler if self.quiet else _Handler)
            self._server = server
            self._pid = os.getpid()
            self._thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                            name="sandbox-clinicea", daemon=True)
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and free the port (requests still sleeping in faults are abandoned)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            if self._pid == os.getpid():
                server.shutdown()
            # else: a forked copy, whose serving thread stayed in the parent; shutdown() would
            # wait forever for it (a demo gunicorn worker once hung 30 s here at exit).
            server.server_close()
        if thread is not None and thread.is_alive():
            thread.join(timeout=5)

    def __enter__(self) -> EmbeddedSandbox:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def run_sandbox(host: str = "127.0.0.1", port: int = 8081, faults_spec: str | None = None,
                timezone: str = "Asia/Karachi", *, strict: bool = True) -> None:
    """Serve the demo sandbox until interrupted (the `ivr sandbox` command).

    Seeded for today in `timezone`; `faults_spec` uses the grammar of `ivr.sandbox.faults`
    (ValueError when it is bad, before anything listens).
    """
    from ivr.clock import SystemClock
    from ivr.sandbox.state import SANDBOX_API_KEY, SANDBOX_PASSWORD, SANDBOX_USERNAME

    state = SandboxState(SystemClock(timezone), strict=strict)
    state.faults.apply_spec(faults_spec)
    server = make_server(host, port, create_sandbox_app(state), threaded=True,
                         request_handler=_Handler)
    url = f"http://{host}:{server.server_port}"
    print(f"Sandbox Clinicea on {url} (clinic time {state.clock.now():%Y-%m-%d %H:%M}, "
          f"{timezone})", flush=True)
    print(f"  api key {SANDBOX_API_KEY!r}, login {SANDBOX_USERNAME!r} / {SANDBOX_PASSWORD!r}",
          flush=True)
    print(f"  calendar: {url}/_sandbox/appointments   requests: {url}/_sandbox/requests",
          flush=True)
    if faults_spec:
        print(f"  faults: {faults_spec}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_on_socket(fd: int, state: SandboxState) -> None:
    """Serve `state` on an inherited listening socket until the process is stopped.

    `ivr serve` binds the socket and starts this in its own process, so the web and booking
    worker processes share one sandbox calendar and no server thread crosses a fork.
    """
    server = make_server("127.0.0.1", 0, create_sandbox_app(state), threaded=True,
                         request_handler=_QuietHandler, fd=fd)
    try:
        server.serve_forever()
    finally:
        server.server_close()
