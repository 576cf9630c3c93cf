"""Operations: `GET /healthz`, `GET /metrics` (Prometheus text format) and the timers feeding them.

`install(app, metrics)` (called by `create_app`) registers the blueprint and three request hooks:

- **before_request** on `/voice/...`: start a timer, open a per-request accumulator of the time
  spent inside Clinicea requests (a context variable fed by the client's `on_request` hook), and
  bind the CallSid for the JSON logs (`ivr.logs`).
- **after_request**: observe `ivr_webhook_seconds{step}` and `ivr_webhook_own_seconds{step}`, and
  answer two headers: `X-IVR-Own-Ms` (handling time minus Clinicea time: what the app itself
  costs) and `X-IVR-Clinicea-Ms`. The benchmark reads them (`bench/`).
- **teardown_request**: unbind both context variables.

The booking attempt runs in a helper thread named `book-<CallSid>:<n>` (`ivr.services`) while the
webhook thread waits for it; its Clinicea time is credited to that call's open request through a
small registry keyed by CallSid, so the booking webhook's own time does not include Clinicea's.

Metrics held in memory (webhook and Clinicea histograms, Clinicea errors) are **per process**:
under gunicorn with several workers each worker keeps its own and a scrape sees one worker's.
The store-backed figures (calls by outcome, the outbox) are global. See docs/benchmark.md.

`/healthz` is unauthenticated and cheap: `SELECT 1` on the store, and whether a Clinicea token is
obtainable (the client's cached token counts; a login only when none is valid). The Clinicea
result is cached for `CLINICEA_CHECK_TTL` seconds so load balancers polling every second do not
hammer Clinicea. 200 `{"status": "ok"}` when both are fine, 200 `"degraded"` when only Clinicea
is not, 503 when the store is down. No patient data, no error text.
"""

from __future__ import annotations

import contextvars
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from ivr import logs

__all__ = [
    "CLINICEA_BUCKETS",
    "CLINICEA_CHECK_TTL",
    "WEBHOOK_BUCKETS",
    "Histogram",
    "Metrics",
    "bp",
    "install",
    "metrics_of",
    "warm_up",
]

WEBHOOK_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
CLINICEA_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
CLINICEA_CHECK_TTL = 10.0
OWN_HEADER = "X-IVR-Own-Ms"
CLINICEA_HEADER = "X-IVR-Clinicea-Ms"
_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_HELPER_THREAD = re.compile(r"^book-(CA[0-9a-fA-F]{32})\b")
_EXTENSION = "ivr.ops"

bp = Blueprint("ops", __name__)


# --------------------------------------------------------------------------- primitives


class Histogram:
    """A Prometheus histogram with labels; thread-safe."""

    def __init__(self, name: str, help_: str, labels: Sequence[str],
                 buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_
        self.labels = tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        # label values -> [bucket counts..., +Inf count], sum
        self._series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, value: float, *label_values: str) -> None:
        """Record one observation (seconds) for `label_values`."""
        with self._lock:
            counts, total = self._series.setdefault(
                label_values, ([0] * (len(self.buckets) + 1), [0.0])
            )
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
            counts[-1] += 1
            total[0] += value

    def count(self, *label_values: str) -> int:
        """Observations recorded for `label_values`."""
        with self._lock:
            series = self._series.get(label_values)
            return series[0][-1] if series else 0

    def expose(self) -> list[str]:
        """The histogram in text exposition format."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            series = {k: (list(c), t[0]) for k, (c, t) in sorted(self._series.items())}
        for values, (counts, total) in series.items():
            base = dict(zip(self.labels, values, strict=True))
            for bound, n in zip(self.buckets, counts, strict=False):
                lines.append(_sample(f"{self.name}_bucket", {**base, "le": _num(bound)}, n))
            lines.append(_sample(f"{self.name}_bucket", {**base, "le": "+Inf"}, counts[-1]))
            lines.append(_sample(f"{self.name}_sum", base, total))
            lines.append(_sample(f"{self.name}_count", base, counts[-1]))
        return lines


class CounterVec:
    """A Prometheus counter with labels; thread-safe."""

    def __init__(self, name: str, help_: str, labels: Sequence[str]) -> None:
        self.name = name
        self.help = help_
        self.labels = tuple(labels)
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, by: float = 1.0) -> None:
        """Add `by` to the series `label_values`."""
        with self._lock:
            self._values[label_values] = self._values.get(label_values, 0.0) + by

    def value(self, *label_values: str) -> float:
        """The current value of one series (0 when never incremented)."""
        with self._lock:
            return self._values.get(label_values, 0.0)

    def expose(self) -> list[str]:
        """The counter in text exposition format."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items())
        for values, v in items:
            lines.append(_sample(self.name, dict(zip(self.labels, values, strict=True)), v))
        return lines


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return f"{value:.1f}" if isinstance(value, float) else str(value)
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{text}}} {_num(value)}" if text else f"{name} {_num(value)}"


def _gauge(name: str, help_: str, series: Iterable[tuple[dict[str, str], float]]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
    lines.extend(_sample(name, labels, value) for labels, value in series)
    return lines


# --------------------------------------------------------------------------- per-request time


@dataclass
class _RequestTimes:
    """Clinicea time spent on behalf of one webhook request (its thread and its helpers)."""

    call_sid: str | None
    clinicea_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        with self.lock:
            self.clinicea_seconds += seconds


_current: contextvars.ContextVar[_RequestTimes | None] = contextvars.ContextVar(
    "ivr_request_times", default=None
)


# --------------------------------------------------------------------------- metrics


class Metrics:
    """The process's in-memory metrics, and the hooks that feed them."""

    def __init__(self, steps: Iterable[str] | None = None) -> None:
        if steps is None:
            from flows.booking import FLOW

            steps = (row.key for row in FLOW.rows)
        # Webhook step labels are bounded: flow steps and the fixed endpoints; anything else
        # (a forged URL) is "other", so nobody can blow up the series count.
        self.steps = frozenset(steps) | {"incoming", "status", "fallback"}
        self.webhook = Histogram(
            "ivr_webhook_seconds", "Time to answer a Twilio webhook, by flow step.",
            ["step"], WEBHOOK_BUCKETS)
        self.webhook_own = Histogram(
            "ivr_webhook_own_seconds",
            "Time to answer a Twilio webhook minus time spent waiting on Clinicea, by step.",
            ["step"], WEBHOOK_BUCKETS)
        self.clinicea = Histogram(
            "ivr_clinicea_request_seconds", "Clinicea HTTP request time by operation "
            "(every attempt, logins and retries included).", ["operation"], CLINICEA_BUCKETS)
        self.clinicea_errors = CounterVec(
            "ivr_clinicea_errors_total", "Clinicea attempts that failed: HTTP 401/429/5xx or "
            "no answer (error = status code or exception name).", ["operation", "error"])
        self.webhook_errors = CounterVec(
            "ivr_webhook_errors_total", "Webhooks answered with a 5xx.", ["step"])
        self._open: dict[str, _RequestTimes] = {}
        self._open_lock = threading.Lock()

    # -- the Clinicea client's `on_request(operation, seconds, status_or_error)` hook

    def on_clinicea_request(self, operation: str, seconds: float, outcome: int | str) -> None:
        """Record one Clinicea attempt; credit its time to the webhook waiting for it."""
        self.clinicea.observe(seconds, operation)
        if isinstance(outcome, str):
            self.clinicea_errors.inc(operation, outcome)
        elif outcome == 401 or outcome == 429 or outcome >= 500:
            self.clinicea_errors.inc(operation, str(outcome))
        times = _current.get()
        if times is None:
            match = _HELPER_THREAD.match(threading.current_thread().name)
            if match:
                with self._open_lock:
                    times = self._open.get(match.group(1))
        if times is not None:
            times.add(seconds)

    # -- request timing

    def step_label(self, path: str) -> str:
        """The bounded `step` label of a /voice path."""
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "step":
            name = parts[2]
        elif len(parts) == 2:
            name = parts[1]
        else:
            name = "other"
        return name if name in self.steps else "other"

    def _begin(self, call_sid: str | None) -> _RequestTimes:
        times = _RequestTimes(call_sid)
        if call_sid:
            with self._open_lock:
                self._open[call_sid] = times
        return times

    def _end(self, times: _RequestTimes) -> None:
        if times.call_sid:
            with self._open_lock:
                if self._open.get(times.call_sid) is times:
                    del self._open[times.call_sid]

    def expose(self) -> list[str]:
        """The in-memory metrics in text exposition format."""
        return [*self.webhook.expose(), *self.webhook_own.expose(), *self.webhook_errors.expose(),
                *self.clinicea.expose(), *self.clinicea_errors.expose()]


def metrics_of(app: Flask) -> Metrics:
    """The app's `Metrics` (installed by `install`)."""
    return app.extensions[_EXTENSION].metrics


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


def _ops() -> _Ops:
    return current_app.extensions[_EXTENSION]


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Store and Clinicea health as JSON; 503 when the store is down."""
    rt = current_app.extensions["ivr"]
    store_ok = rt.store.ping()
    clinicea = _ops().clinicea.status()
    status = "ok" if store_ok and clinicea == "ok" else "degraded"
    body = {"status": status, "store": "ok" if store_ok else "down", "clinicea": clinicea}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if store_ok else 503


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition (version 0.0.4)."""
    rt = current_app.extensions["ivr"]
    lines = _ops().metrics.expose()
    lines.extend(_store_lines(rt.store))
    lines.extend(_process_lines())
    response = Response("\n".join(lines) + "\n", mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


def _store_lines(store: Any) -> list[str]:
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
        return _gauge("ivr_store_up", "1 when the store answered the metrics queries.", [({}, 0)])
    return [
        *_gauge("ivr_store_up", "1 when the store answered the metrics queries.", [({}, 1)]),
        *_gauge("ivr_calls_today", "Calls started today (UTC) by outcome (from the store; "
                "in_progress = no outcome yet).",
                [({"outcome": k}, v) for k, v in sorted(today.items())]),
        *_gauge("ivr_calls_7d", "Calls started in the last 7 days (UTC) by outcome.",
                [({"outcome": k}, v) for k, v in sorted(week.items())]),
        *_gauge("ivr_outbox_bookings", "Bookings in the outbox by status.",
                [({"status": k}, v) for k, v in sorted(depth.items())]),
        *_gauge("ivr_outbox_oldest_pending_seconds",
                "Age of the oldest booking Clinicea has not confirmed (0 when none).",
                [({}, oldest.total_seconds() if oldest is not None else 0.0)]),
    ]


def _process_lines() -> list[str]:
    rss = peak = None
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except OSError:  # not Linux
        return []
    out: list[str] = []
    if rss is not None:
        out += _gauge("ivr_process_resident_memory_bytes", "This worker's resident memory.",
                      [({}, rss)])
    if peak is not None:
        out += _gauge("ivr_process_peak_resident_memory_bytes",
                      "This worker's peak resident memory (VmHWM).", [({}, peak)])
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
    rt = app.extensions["ivr"]
    probe = clinicea_probe or _token_probe(rt.client)
    app.extensions[_EXTENSION] = _Ops(metrics, CliniceaCheck(probe, check_ttl))
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        if not request.path.startswith("/voice/"):
            return
        sid = request.form.get("CallSid", "").strip()
        sid = sid if _CALL_SID.match(sid) else None
        times = metrics._begin(sid)
        g.ivr_ops = (time.perf_counter(), times, _current.set(times), logs.call_sid_var.set(sid))

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
        metrics.webhook.observe(total, step)
        metrics.webhook_own.observe(own, step)
        if response.status_code >= 500:
            metrics.webhook_errors.inc(step)
        response.headers[OWN_HEADER] = f"{own * 1000:.2f}"
        response.headers[CLINICEA_HEADER] = f"{waited * 1000:.2f}"
        return response

    @app.teardown_request
    def _unbind(_exc: BaseException | None) -> None:
        state = g.pop("ivr_ops", None)
        if state is None:
            return
        _, times, times_token, sid_token = state
        metrics._end(times)
        try:
            _current.reset(times_token)
            logs.call_sid_var.reset(sid_token)
        except ValueError:  # pragma: no cover - a different context (should not happen)
            _current.set(None)
            logs.call_sid_var.set(None)
