"""`ivr serve`: a small supervisor and the processes it runs (docs/design.md "Process model").

Nothing that holds a connection, a file descriptor or a running thread exists before a fork:

- the **supervisor** (`ivr serve` itself) reads and validates the settings and starts the
  children below as fresh interpreters (`python -m ivr.serve ROLE`). It opens no database, no
  HTTP client and runs no thread; it restarts the booking worker if it dies, and stops
  everything when the web server stops or it is asked to stop (SIGTERM, SIGINT, SIGHUP);
- **web**: gunicorn (gthread). Its master loads nothing; each worker builds the runtime and the
  app (`build_runtime`, `create_app`) after the fork, so every worker opens its own database
  pool and httpx client;
- **worker**: the booking worker loop, one process, its own runtime (no Flask) and store;
- **sandbox** (demo mode only, no `CLINICEA_BASE_URL`): the stand-in Clinicea on a socket the
  supervisor bound, so web and worker book into one calendar.

Children die with the supervisor (Linux `PR_SET_PDEATHSIG`), and sit in its process group.

Web and worker record their metrics into one directory per server start (prometheus_client's
multiprocess mode, ivr/ops.py): the supervisor prepares it and puts `PROMETHEUS_MULTIPROC_DIR`
in the environment its children inherit, because the library reads it when it is imported.
Every line any of them writes is one JSON object (`ivr.logs`, gunicorn's included).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from ivr import logs
from ivr.config import ConfigError, Settings
from ivr.metricsdir import clean_up, prepare_dir, process_dead

log = logging.getLogger(__name__)

WEB_THREADS = 8
WEB_TIMEOUT = 30  # seconds; gunicorn restarts a worker stuck longer than this
STOP_SECONDS = 25.0  # a graceful stop (gunicorn's graceful_timeout is 20 s), then SIGKILL
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # booking worker restarts, growing while it dies


def serve(host: str, port: int, *, booking_worker: bool = True) -> int:
    """Run the web server (and the booking worker) until stopped; gunicorn's exit status."""
    from ivr.store import Store

    settings = Settings.from_env()  # a bad value stops here, with one line, before any child
    logs.configure(settings.log_level)
    # Inherited by every child, which imports prometheus_client only after (see the docstring).
    prepare_dir(settings.metrics_path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = settings.metrics_path
    # The schema once, here, so a database that cannot be opened stops the start-up before any
    # child; the engine is disposed before the first child starts (and exec drops the rest).
    store = Store(settings.database_url)
    try:
        store.migrate()
    finally:
        store.dispose()
    stopping = _StopFlag()
    children: dict[str, subprocess.Popen[bytes]] = {}
    clinicea_url: list[str] = []
    try:
        if settings.clinicea_base_url is None:
            listener = socket.create_server(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            children["sandbox"] = _spawn(["sandbox", "--fd", str(listener.fileno())],
                                         pass_fds=(listener.fileno(),))
            listener.close()  # the sandbox process holds it now
            clinicea_url = ["--clinicea-url", url]
        children["web"] = _spawn(["web", "--host", host, "--port", str(port), *clinicea_url])
        if booking_worker:
            children["worker"] = _spawn(["worker", *clinicea_url])
        log.info("clinic-ivr listening on http://%s:%s (%s)", host, port,
                 settings.clinicea_label)
        return _supervise(children, clinicea_url, stopping)
    finally:
        _stop_all(children)
        clean_up(settings.metrics_path, remove_dir=settings.metrics_dir is None)


class _StopFlag:
    """Set by SIGTERM/SIGINT/SIGHUP; the supervisor's loop then stops its children."""

    def __init__(self) -> None:
        self.signal: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._set)

    def _set(self, sig: int, _frame: object) -> None:
        self.signal = sig


def _supervise(children: dict[str, subprocess.Popen[bytes]], clinicea_url: list[str],
               stopping: _StopFlag) -> int:
    restarts = 0
    started = time.monotonic()
    while stopping.signal is None:
        time.sleep(0.2)
        for name in ("sandbox", "web"):
            proc = children.get(name)
            if proc is not None and proc.poll() is not None:
                # gunicorn restarts its own workers; its master gone means the server is gone
                # (port taken, bad app). The sandbox's calendar cannot be rebuilt either.
                log.error("ivr serve: the %s process exited (%s); stopping", name,
                          proc.returncode)
                return proc.returncode or 1
        worker = children.get("worker")
        if worker is not None and worker.poll() is not None:
            if time.monotonic() - started > 60:
                restarts = 0  # it ran for a while: start counting again
            delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
            log.error("ivr serve: the booking worker exited (%s); restarting in %.0f s",
                      worker.returncode, delay)
            _sleep_unless(stopping, delay)
            if stopping.signal is not None:
                break
            children["worker"] = _spawn(["worker", *clinicea_url])
            restarts += 1
            started = time.monotonic()
    return 0


def _sleep_unless(stopping: _StopFlag, seconds: float) -> None:
    end = time.monotonic() + seconds
    while stopping.signal is None and time.monotonic() < end:
        time.sleep(0.1)


def _spawn(args: Sequence[str], pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ivr.serve", *args], pass_fds=pass_fds,
                            preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to web and worker, then to the sandbox they book into; SIGKILL what lingers."""
    deadline = time.monotonic() + STOP_SECONDS
    for group in (("web", "worker"), ("sandbox",)):
        procs = [children[n] for n in group if n in children]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the children -------------------------------------------------------------------------


def run_web(host: str, port: int, clinicea_url: str | None) -> int:
    """gunicorn, the app built in each worker after the fork (nothing preloaded)."""
    from gunicorn.app.base import BaseApplication

    from ivr.app import create_app
    from ivr.runtime import build_runtime

    class _Web(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)
            # gthread, reading each request whole before a thread takes it (slow clients).
            self.cfg.set("worker_class", "ivr.webserver.BufferingWorker")
            self.cfg.set("threads", WEB_THREADS)
            self.cfg.set("timeout", WEB_TIMEOUT)
            self.cfg.set("preload_app", False)
            # Its server thread would run in the master while it forks workers, and its
            # default path (~/.gunicorn/gunicorn.ctl) is one per user: two deployments on one
            # host would take each other's.
            self.cfg.set("control_socket_disable", True)
            # Every line JSON, the access log included (ivr.logs, ivr.accesslog).
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", "ivr.accesslog.JsonAccessLogger")
            self.cfg.set("logconfig_dict", logs.gunicorn_logconfig(settings.log_level))
            self.cfg.set("child_exit", _child_exit)

        def load(self):  # noqa: ANN202 - in the worker, after the fork
            worker_settings = Settings.from_env()
            logs.configure(worker_settings.log_level)
            # The supervisor migrated the schema and, in demo mode, runs the sandbox.
            return create_app(build_runtime(worker_settings, clinicea_url=clinicea_url))

    settings = Settings.from_env()  # one line for a bad value here, not a traceback per worker
    _Web().run()
    return 0


def _child_exit(_server: object, worker: object) -> None:
    """gunicorn's `child_exit`: an exited worker's metrics keep counting (ivr.metricsdir)."""
    process_dead(worker.pid, Settings.from_env().metrics_path)  # type: ignore[attr-defined]


def run_worker(clinicea_url: str | None) -> int:
    """The booking worker loop until SIGTERM."""
    from ivr.runtime import build_runtime
    from ivr.worker import run_until_stopped

    settings = Settings.from_env()
    logs.configure(settings.log_level)
    # No Flask: the supervisor migrated the schema and, in demo mode, runs the sandbox.
    rt = build_runtime(settings, clinicea_url=clinicea_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        run_until_stopped(rt, stop)
    finally:
        rt.close()
    return 0


def run_sandbox_on(fd: int) -> int:
    """The demo's sandbox Clinicea on the socket the supervisor bound."""
    from ivr.clock import SystemClock
    from ivr.sandbox import SandboxState
    from ivr.sandbox.server import serve_on_socket

    settings = Settings.from_env()
    state = SandboxState(SystemClock(settings.clinic.timezone))
    if settings.sandbox_faults:
        state.faults.apply_spec(settings.sandbox_faults)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve_on_socket(fd, state)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m ivr.serve web|worker|sandbox ...`: one child of `ivr serve`."""
    p = argparse.ArgumentParser(prog="ivr.serve")
    sub = p.add_subparsers(dest="role", required=True)
    web = sub.add_parser("web")
    web.add_argument("--host", required=True)
    web.add_argument("--port", type=int, required=True)
    web.add_argument("--clinicea-url")
    worker = sub.add_parser("worker")
    worker.add_argument("--clinicea-url")
    sandbox = sub.add_parser("sandbox")
    sandbox.add_argument("--fd", type=int, required=True)
    args = p.parse_args(argv)
    logs.configure(logging.WARNING)
    try:
        if args.role == "web":
            return run_web(args.host, args.port, args.clinicea_url)
        if args.role == "worker":
            return run_worker(args.clinicea_url)
        return run_sandbox_on(args.fd)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
