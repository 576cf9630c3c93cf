"""Operations: `GET /healthz`, `GET /metrics` (Prometheus text format) and the timers feeding them.

`install(app, metrics)` (called by `create_app`) registers the blueprint and three request hooks:

- **before_request** on `/voice/...`: start a timer, open a per-request accumulator of the time
  spent inside Clinicea requests (`ivr.metrics.request_times`, a context variable fed by the
  client's `on_request` hook), and bind the CallSid for the JSON logs (`ivr.logs.call_sid_var`)
  and, in the WSGI environ, for the access log. Both variables hold for the whole request.
- **after_request**: observe `ivr_webhook_seconds{step}` and `ivr_webhook_own_seconds{step}`, and
  answer two headers: `X-IVR-Own-Ms` (handling time minus Clinicea time: what the app itself
  costs) and `X-IVR-Clinicea-Ms`. The benchmark reads them (`bench/`).
- **teardown_request**: unbind both context variables.

The booking attempt runs in a helper thread (`ivr.clinicea_services`) while the webhook thread
waits for it; the thread runs in a copy of the webhook's context, so its Clinicea time is
credited to the same request (and its log lines carry the CallSid): the booking webhook's own
time does not include Clinicea's. The metrics themselves (`Metrics`) live in `ivr.metrics`,
without Flask.

**One host's figures, whichever worker is scraped** (`prometheus_client`, its multiprocess
mode). The histograms and counters are `prometheus_client` objects on a registry per app
(`Metrics.registry`: tests build many apps in one process). When `PROMETHEUS_MULTIPROC_DIR` is
in the environment as the library is imported, every process records into files there instead,
and `/metrics` sums them all with the library's `MultiProcessCollector`: every gunicorn worker,
those that exited since the server started (their files stay; `child_exit` calls
`mark_process_dead`), and the booking worker process, which records its Clinicea requests into
the same directory. The library picks its value class at import, so the directory must be in
the environment before the first import in every recording process: gunicorn.conf.py exports
it at its top (before any worker forks), `ivr serve` before it starts its children, `ivr worker`
before it builds the app; `Settings.metrics_dir` says which (`PROMETHEUS_MULTIPROC_DIR`, else
`<temp dir>/ivr-metrics-<hash of user, working directory and database URL>`, so the web server
and the booking worker of one deployment agree). Each server start prepares it (`prepare_dir`:
files of processes that are gone are removed, a live booking worker's stay). Without it (tests,
`ivr demo`, `flask run`) a process's figures are its own.

The gauges are read at scrape time by a custom collector (`Gauges`): the store-backed figures
(calls by outcome, the outbox, appointment reminders by status and the confirmation ratio;
global), the History page's figures (`ivr.insights`) and the
memory of this worker and its live sibling workers (by `pid` label, never summed).
See docs/benchmark.md.

`/healthz` is unauthenticated and cheap: `SELECT 1` on the store and a one-row write probe
(`Store.writable`: a full disk or a read-only database is "cannot_write", 503), and whether a
Clinicea token is obtainable (the client's cached token counts; a login only when none is
valid). The Clinicea result is cached for `CLINICEA_CHECK_TTL` seconds so load balancers polling
every second do not hammer Clinicea. 200 `{"status": "ok"}` when both are fine, 200 `"degraded"`
when only Clinicea is not, 503 when the store is down or cannot write.
No patient data, no error text.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr import insights, logs
from ivr.metrics import CLINICEA_BUCKETS, WEBHOOK_BUCKETS, Metrics, RequestTimes, request_times
from ivr.metricsdir import recorded_pids

if TYPE_CHECKING:
    from ivr.runtime import Runtime

__all__ = [
    "CLINICEA_BUCKETS",
    "CLINICEA_CHECK_TTL",
    "WEBHOOK_BUCKETS",
    "Gauges",
    "Metrics",
    "bp",
    "install",
    "metrics_of",
    "multiprocess_dir",
    "warm_up",
]

CLINICEA_CHECK_TTL = 10.0
OWN_HEADER = "X-IVR-Own-Ms"
CLINICEA_HEADER = "X-IVR-Clinicea-Ms"
_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_EXTENSION = "ivr.ops"

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


def metrics_of(app: Flask) -> Metrics:
    """The app's `Metrics` (installed by `install`)."""
    return app.extensions[_EXTENSION].metrics


# --------------------------------------------------------------------------- several processes


def multiprocess_dir(settings: Any) -> str | None:
    """The directory `prometheus_client` records into, or None when values are in memory.

    The library decided when it was imported (`PROMETHEUS_MULTIPROC_DIR` in the environment
    then, which `Settings.metrics_dir` holds): the launchers export it first (gunicorn.conf.py,
    `ivr serve`, `ivr worker`).
    """
    if values.ValueClass is values.MutexValue:
        return None
    return settings.metrics_path


# --------------------------------------------------------------------------- health


class CliniceaCheck:
    """Whether a Clinicea token is obtainable, cached for `ttl` seconds; one probe at a time."""

    def __init__(self, probe: Callable[[], object], ttl: float = CLINICEA_CHECK_TTL,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._result: str | None = None
        self._at = -math.inf

    def status(self) -> str:
        """"ok", "unreachable" or "refused" (credentials), from cache when fresh."""
        if self._result is not None and self._monotonic() - self._at < self._ttl:
            return self._result
        if not self._lock.acquire(blocking=self._result is None):
            return self._result or "unknown"  # someone else is probing: last known answer
        try:
            if self._result is not None and self._monotonic() - self._at < self._ttl:
                return self._result
            from ivr.clinicea.errors import CliniceaAuthError

            try:
                self._probe()
                result = "ok"
            except CliniceaAuthError:
                result = "refused"
            except Exception:
                result = "unreachable"
            self._result, self._at = result, self._monotonic()
            return result
        finally:
            self._lock.release()


def _token_probe(client: Any) -> Callable[[], object]:
    """A probe that asks the client's token cache for a token (a login only when needed)."""
    tokens = getattr(client, "_tokens", None)
    if tokens is None or not hasattr(tokens, "get"):
        return lambda: None

    def probe() -> object:
        return tokens.get(time.monotonic() + 3.0)

    return probe


@dataclass
class _Ops:
    metrics: Metrics
    clinicea: CliniceaCheck
    gauges: Gauges


def _ops() -> _Ops:
    return current_app.extensions[_EXTENSION]


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Store and Clinicea health as JSON; 503 when the store is down or cannot write."""
    rt: Runtime = current_app.extensions["ivr"]
    store = "ok" if rt.store.ping() else "down"
    if store == "ok" and not rt.store.writable():
        store = "cannot_write"  # a full disk or a read-only database loses bookings
    store_ok = store == "ok"
    clinicea = _ops().clinicea.status()
    status = "ok" if store_ok and clinicea == "ok" else "degraded"
    body = {"status": status, "store": store, "clinicea": clinicea}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if store_ok else 503


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (version 0.0.4): the host's figures (see module docstring)."""
    ops = _ops()
    path = multiprocess_dir(current_app.extensions["ivr"].settings)
    if path is None:
        registry = ops.metrics.registry  # this process's own, the gauges registered on it
    else:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        registry.register(ops.gauges)
    response = Response(generate_latest(registry), mimetype="text/plain")
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    response.headers["Cache-Control"] = "no-store"
    return response


def _gauge(name: str, help_: str, series: Iterable[tuple[dict[str, str], float]],
           labels: Sequence[str] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_, labels=list(labels))
    for values_, value in series:
        family.add_metric([values_[k] for k in labels], value)
    return family


class Gauges(Collector):
    """The figures read at scrape time rather than counted: store, History page, memory."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    def describe(self) -> list[Metric]:
        """Nothing: the families are only known by querying the store (no query at start)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The gauge families of this scrape."""
        path = multiprocess_dir(self._rt.settings)
        pids = recorded_pids(path) if path is not None else set()
        yield _gauge("ivr_metrics_workers_merged", "Processes whose figures are summed into "
                     "the histograms and counters (web workers, those that exited since start, "
                     "and the booking worker).", [({}, max(len(pids), 1))])
        yield from _store_families(self._rt.store)
        yield from _reminder_families(self._rt)
        yield from _insight_families(self._rt.store, self._rt.settings.clinic.timezone)
        yield from _process_families(pids)


def _store_families(store: Any) -> list[GaugeMetricFamily]:
    up = "1 when the store answered the metrics queries."
    try:
        today: dict[str, int] = {}
        week: dict[str, int] = {}
        counts = store.outcome_counts_by_day(7)
        last_day = max((c.day for c in counts), default=None)
        for c in counts:
            outcome = c.outcome or "in_progress"
            week[outcome] = week.get(outcome, 0) + c.count
            if c.day == last_day and last_day == store.now().date():
                today[outcome] = today.get(outcome, 0) + c.count
        depth = store.outbox_depth()
        oldest = store.oldest_pending_age()
    except Exception:
        return [_gauge("ivr_store_up", up, [({}, 0)])]
    return [
        _gauge("ivr_store_up", up, [({}, 1)]),
        _gauge("ivr_store_writable", "1 when a write to the store commits (0: disk full, "
               "read-only or locked).", [({}, 1 if store.writable() else 0)]),
        _gauge("ivr_calls_today", "Calls started today (UTC) by outcome (from the store; "
               "in_progress = no outcome yet).",
               [({"outcome": k}, v) for k, v in sorted(today.items())], ["outcome"]),
        _gauge("ivr_calls_7d", "Calls started in the last 7 days (UTC) by outcome.",
               [({"outcome": k}, v) for k, v in sorted(week.items())], ["outcome"]),
        _gauge("ivr_outbox_bookings", "Bookings in the outbox by status.",
               [({"status": k}, v) for k, v in sorted(depth.items())], ["status"]),
        _gauge("ivr_outbox_oldest_pending_seconds",
               "Age of the oldest booking Clinicea has not confirmed (0 when none).",
               [({}, oldest.total_seconds() if oldest is not None else 0.0)]),
    ]


#: The statuses of a reminder that reached Twilio and has an outcome (the ratio's denominator).
REMINDED = ("sent", "confirmed", "move_requested", "moved", "cancel_requested", "no_answer")


def _reminder_families(rt: Runtime) -> list[GaugeMetricFamily]:
    """Reminders by status for today's appointments and for the day today's run reminds, and
    the confirmation ratio of the latest run that reminded anyone."""
    reminders = rt.settings.clinic.reminders
    today = rt.clock.now().date()
    ahead = today + timedelta(days=reminders.days_ahead if reminders else 1)
    try:
        counts = {label: rt.store.reminder_counts(day)
                  for label, day in (("today", today), ("ahead", ahead))}
    except Exception:
        return []  # ivr_store_up already says the store did not answer
    ratio = 0.0
    for label in ("ahead", "today"):  # the latest run first
        reached = sum(counts[label][s] for s in REMINDED)
        if reached:
            ratio = counts[label]["confirmed"] / reached
            break
    return [
        _gauge("ivr_reminders", "Appointment reminders by status: day=today for today's "
               "appointments, day=ahead for those today's run reminds.",
               [({"day": label, "status": s}, n)
                for label in ("today", "ahead") for s, n in counts[label].items()],
               ["day", "status"]),
        _gauge("ivr_reminder_confirmation_ratio", "Confirmed reminders over those that reached "
               "Twilio with an outcome (sent, confirmed, move or cancel requested, moved, no "
               "answer), of the latest run that reminded anyone (0 when none).",
               [({}, ratio)]),
    ]


def _insight_families(store: Any, timezone: str) -> list[GaugeMetricFamily]:
    """The History page's figures (`ivr.insights`, the last 14 clinic-local days)."""
    zone = ZoneInfo(timezone)
    try:
        today = insights.local_today(store.now(), zone)
        figures = insights.compute(store.call_facts(insights.window_start(zone, today)),
                                   zone, today)
    except Exception:
        return []  # ivr_store_up already says the store did not answer
    span = f"the last {insights.WINDOW_DAYS} clinic-local days"
    return [
        _gauge("ivr_funnel_calls", f"Calls over {span} that reached each booking stage.",
               [({"stage": s.key}, s.calls) for s in figures.funnel], ["stage"]),
        _gauge("ivr_containment_ratio", f"Calls over {span} the robot settled alone (booked, "
               "no call back from that number within a day) over all calls.",
               [({}, figures.containment or 0.0)]),
        _gauge("ivr_booked_rang_back_calls", f"Booked calls over {span} whose caller rang "
               "again within a day.", [({}, figures.rang_back)]),
        _gauge("ivr_person_after_failure_ratio", f"Calls over {span} that reached a person "
               "after the robot gave up understanding, over all calls.",
               [({}, figures.person_after_failure_share or 0.0)]),
        _gauge("ivr_calls_by_hour", f"Calls over {span} by clinic-local weekday and hour.",
               [({"weekday": insights.WEEKDAYS[d], "hour": f"{h:02d}"}, n)
                for d, row in enumerate(figures.by_hour) for h, n in enumerate(row)],
               ["weekday", "hour"]),
    ]


def _process_families(pids: Iterable[int]) -> list[GaugeMetricFamily]:
    """Memory of this process and of its live sibling workers among `pids`, by `pid` label.

    A sibling is a live process with the same parent (the gunicorn master), so a dead
    worker's pid reused by an unrelated process is never reported; memory is never summed.
    """
    me, parent = os.getpid(), os.getppid()
    rss: list[tuple[dict[str, str], float]] = []
    peak: list[tuple[dict[str, str], float]] = []
    for pid in sorted({me, *pids}):
        status = _proc_status(pid)
        if status is None:
            if pid == me:
                return []  # not Linux
            continue
        if pid != me and status.get("PPid") != parent:
            continue
        if "VmRSS" in status:
            rss.append(({"pid": str(pid)}, status["VmRSS"] * 1024))
        if "VmHWM" in status:
            peak.append(({"pid": str(pid)}, status["VmHWM"] * 1024))
    out = []
    if rss:
        out.append(_gauge("ivr_process_resident_memory_bytes",
                          "Resident memory of each live worker (pid label).", rss, ["pid"]))
    if peak:
        out.append(_gauge("ivr_process_peak_resident_memory_bytes",
                          "Peak resident memory (VmHWM) of each live worker (pid label).",
                          peak, ["pid"]))
    return out


def _proc_status(pid: int) -> dict[str, int] | None:
    """VmRSS and VmHWM (kB) and PPid from /proc/<pid>/status; None when unreadable."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "PPid"):
                    out[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return out


# --------------------------------------------------------------------------- wiring


def warm_up(app: Flask, *, wait: bool = False) -> threading.Thread:
    """Obtain a Clinicea token now (gunicorn's `post_worker_init`), not on the first call.

    Runs the health check's probe in a daemon thread so a worker whose Clinicea is down still
    boots and serves apologies; `wait` joins it (tests).
    """
    check = app.extensions[_EXTENSION].clinicea
    thread = threading.Thread(target=check.status, name="clinicea-warm-up", daemon=True)
    thread.start()
    if wait:
        thread.join()
    return thread



def install(app: Flask, metrics: Metrics, *, clinicea_probe: Callable[[], object] | None = None,
            check_ttl: float = CLINICEA_CHECK_TTL) -> None:
    """Register /healthz and /metrics and the /voice timers on `app` (after `ivr` runtime)."""
    rt: Runtime = app.extensions["ivr"]
    probe = clinicea_probe or _token_probe(rt.client)
    gauges = Gauges(rt)
    metrics.registry.register(gauges)
    app.extensions[_EXTENSION] = _Ops(metrics, CliniceaCheck(probe, check_ttl), gauges)
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        if not request.path.startswith("/voice/"):
            return
        raw_sid = request.form.get("CallSid", "").strip()
        sid = raw_sid if _CALL_SID.match(raw_sid) else None
        if sid:  # for the access log, written after the response (ivr.accesslog)
            request.environ[logs.CALL_SID_ENVIRON] = sid
        times = RequestTimes()
        g.ivr_ops = (time.perf_counter(), times, request_times.set(times),
                     logs.call_sid_var.set(sid))

    @app.after_request
    def _stop_timer(response: Response) -> Response:
        state = g.get("ivr_ops")
        if state is None:
            return response
        started, times, _, _ = state
        total = time.perf_counter() - started
        waited = times.clinicea_seconds
        own = max(total - waited, 0.0)
        step = metrics.step_label(request.path)
        metrics.webhook.labels(step).observe(total)
        metrics.webhook_own.labels(step).observe(own)
        if response.status_code >= 500:
            metrics.webhook_errors.labels(step).inc()
        response.headers[OWN_HEADER] = f"{own * 1000:.2f}"
        response.headers[CLINICEA_HEADER] = f"{waited * 1000:.2f}"
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        state = g.pop("ivr_ops", None)
        if state is None:
            return
        _, _, times_token, sid_token = state
        try:
            request_times.reset(times_token)
            logs.call_sid_var.reset(sid_token)
        except ValueError:  # pragma: no cover - a different context (should not happen)
            request_times.set(None)
            logs.call_sid_var.set(None)
