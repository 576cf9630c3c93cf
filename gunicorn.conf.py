"""Gunicorn settings for the web process (`Procfile`: `web: gunicorn --config gunicorn.conf.py
"ivr.app:create_app()"`). Figures behind the choices: docs/benchmark.md (`./dev bench`).

Worker class: **gthread**. A webhook spends most of its time waiting on Clinicea (one to three
HTTPS requests of ~150 ms each); the app's own work is a few milliseconds of CPU. Threads wait
on that I/O cheaply and share one process's Clinicea token, calendar cache and connection pool;
sync workers would need one process per in-flight webhook. Async workers (gevent) would need
monkey-patching under SQLAlchemy and httpx for no gain at these rates.

Workers: one per core (at least 2, so a crash or a slow garbage collection never leaves the
number without a process). Threads: 16 per worker, so 2 cores serve 32 webhooks at once; at
~0.3 s each that is ~100 webhooks/s, far beyond what 200 concurrent callers (one webhook every
few seconds each) produce. Override with WEB_CONCURRENCY and IVR_WEB_THREADS.

No `preload_app`: `create_app()` runs in each worker after the fork, so every worker opens its
own database pool (the SQLAlchemy engine must never cross a fork), its own httpx client and
its own Clinicea token (see docs/benchmark.md for what that costs in logins). That is also
why there is no `post_fork` hook: nothing is created before the fork that would need resetting.
The app factory has no side effects: this file is the launcher. It sets up the JSON logs (at
its top, in the master; the workers inherit them) and migrates the schema in `on_starting`
(in the master, once per start, its engine disposed before any worker forks).
`post_worker_init` (after the app is loaded in the worker) only warms the worker's Clinicea
token in the background, so the first caller after a deploy does not wait for a login.

Metrics across workers (ivr/ops.py, prometheus_client's multiprocess mode): this file exports
`PROMETHEUS_MULTIPROC_DIR` (`Settings.metrics_path`) at its top, in the master, before anything
imports prometheus_client, which picks its value class from the environment at import: every
worker (forked after) records into files there, and `/metrics` on any of them sums them all.
`on_starting` (once per server start, before any worker forks) prepares the directory (files of
processes that are gone are removed: a fresh start; a live `ivr worker` of this deployment keeps
its own). `child_exit` does the library's bookkeeping for an exited worker, whose counts stay.
Run the Procfile's `worker:` with the same settings and it records there too.

Logs (ivr/logs.py): every line is one JSON object, gunicorn's own too (`logconfig_dict`), and
the access log is JSON built from the request's values (`logger_class`, ivr/accesslog.py).

Fork safety (docs/design.md "Process model"): the settings are validated here, in the master,
before any worker exists (a bad value prints its one line and gunicorn exits 2, instead of a
traceback per worker); nothing else of the app is built in the master. gunicorn's control
socket is off: its server thread would run in the master while it forks workers, and its
default path (`~/.gunicorn/gunicorn.ctl`, one per user) would be shared by two deployments on
one host. Worker class `ivr.webserver.BufferingWorker`: gthread, except that a request is read
whole in the worker's event loop before a thread takes it, so slow senders cannot hold the
threads (ivr/webserver.py).

Timeout 30 s: a webhook's Clinicea work is bounded far below that (5 s budget per request,
10 s booking budget, Twilio gives up after 15 s); 30 s only catches a wedged worker.
"""

import multiprocessing
import os
import sys

from ivr import logs
from ivr.config import ConfigError, Settings

try:
    _settings = Settings.from_env()
except ConfigError as _exc:
    print(f"configuration error: {_exc}", file=sys.stderr)
    raise SystemExit(2) from None
# Before any import of prometheus_client (see the docstring); the workers inherit it.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _settings.metrics_path
logs.configure(_settings.log_level)  # lines of the master before gunicorn's logging is set up

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "ivr.webserver.BufferingWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("IVR_WEB_THREADS", "16"))
timeout = 30
graceful_timeout = 20
# Twilio reuses connections between a call's webhooks. The server must hold an idle connection
# longer than any client or proxy in front of it (httpx and many proxies drop theirs after 5-60
# s): when both sides time out together, a request sent on a connection the server is closing
# fails (the benchmark saw ReadError/RemoteProtocolError at 200 calls with 5 s on both sides).
keepalive = 75
control_socket_disable = True  # see the docstring: a thread in the master, a shared path
max_requests = 0  # no recycling: workers hold a warm token and calendar cache
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# One JSON object per request on stdout (ivr/accesslog.py; the app's JSON logs go to stderr).
accesslog = "-" if os.environ.get("IVR_ACCESS_LOG", "1") != "0" else None
logger_class = "ivr.accesslog.JsonAccessLogger"
errorlog = "-"
loglevel = _settings.log_level.lower()
# gunicorn's own lines (boot, worker exits, timeouts) as JSON too, like the app's (ivr.logs).
logconfig_dict = logs.gunicorn_logconfig(loglevel, access=accesslog is not None)


def post_worker_init(worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Log in to Clinicea in the background as soon as the worker's app exists."""
    app = getattr(worker, "wsgi", None)
    if app is not None and "ivr.ops" in getattr(app, "extensions", {}):
        from ivr.ops import warm_up

        warm_up(app)


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """A fresh metrics directory and the schema for this server start (in the master, before
    any fork; the store's engine is disposed before the first worker forks)."""
    from ivr.metricsdir import prepare_dir
    from ivr.store import Store

    try:
        prepare_dir(_settings.metrics_path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    store = Store(_settings.database_url)
    try:
        store.migrate()
    finally:
        store.dispose()  # nothing holding a connection crosses a fork


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """prometheus_client's bookkeeping for an exited worker (its counts stay in the sums)."""
    from ivr.metricsdir import process_dead

    process_dead(worker.pid, _settings.metrics_path)


def on_exit(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """The stopped workers' metrics files (a live `ivr worker`'s stay; ivr.metricsdir)."""
    from ivr.metricsdir import clean_up

    clean_up(_settings.metrics_path, remove_dir=_settings.metrics_dir is None)
