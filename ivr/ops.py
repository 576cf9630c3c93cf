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

**One host's figures, whichever worker is scraped.** The histograms and counters live in each
worker's memory (`Metrics`); under gunicorn every worker also publishes a snapshot of them
(`Publisher`) to a per-host directory (`SnapshotDir`: `IVR_METRICS_DIR`, by default
`<temp dir>/ivr-metrics-<hash of user id and database URL>`), and `/metrics` sums its own
figures with every other worker's last snapshot (counters, histogram buckets, sums and counts;
a family whose labels or bucket bounds differ from the scraped worker's is left out). Hot path:
an observation only schedules a write when none is scheduled; a worker writes at most once per
`PUBLISH_INTERVAL` (1 s) on a timer thread, at scrape time (so what one scrape shows of a worker
is what the next scrape of another reads) and at gunicorn's `worker_exit`; each write is a temp
file and `os.replace`, mode 0600, in a 0700 directory.

Decision on dead workers and restarts: snapshots are grouped by **server start**, one
subdirectory `run-<IVR_METRICS_RUN>` per start. gunicorn.conf.py's `on_starting` hook (in the
master, before any worker forks) sets `IVR_METRICS_RUN=<master pid>-<start ns>`, inherited by
every worker. Within a run a dead worker's last snapshot is kept and keeps counting, so counters
never go backwards while the server runs (a reload with HUP keeps the run); a new start has a
new run and never reads an earlier run's files. Earlier gunicorn runs are deleted by the first
write of a new run when their master is gone (or had the same pid: a container's pid 1). With
no `IVR_METRICS_RUN` (`ivr serve`, `flask run`, tests, the booking worker) nothing is published
or merged: the process's figures are its own, as before. Process memory gauges are not summed:
they are reported per live worker of the run with a `pid` label (the scraped worker and its
live siblings under the same master), so a dead worker's memory never counts.

The store-backed figures (calls by outcome, the outbox) are global. See docs/benchmark.md.

`/healthz` is unauthenticated and cheap: `SELECT 1` on the store and a one-row write probe
(`Store.writable`: a full disk or a read-only database is "cannot_write", 503), and whether a
Clinicea token is obtainable (the client's cached token counts; a login only when none is
valid). The Clinicea result is cached for `CLINICEA_CHECK_TTL` seconds so load balancers polling
every second do not hammer Clinicea. 200 `{"status": "ok"}` when both are fine, 200 `"degraded"`
when only Clinicea is not, 503 when the store is down or cannot write.
No patient data, no error text.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from ivr import insights, logs

__all__ = [
    "CLINICEA_BUCKETS",
    "CLINICEA_CHECK_TTL",
    "PUBLISH_INTERVAL",
    "WEBHOOK_BUCKETS",
    "CounterVec",
    "Histogram",
    "Metrics",
    "Publisher",
    "Snapshot",
    "SnapshotDir",
    "bp",
    "default_metrics_dir",
    "flush",
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
log = logging.getLogger(__name__)


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

    def snapshot(self) -> dict[tuple[str, ...], tuple[list[int], float]]:
        """A copy of every series: label values -> (bucket counts with +Inf last, sum)."""
        with self._lock:
            return {k: (list(c), t[0]) for k, (c, t) in self._series.items()}

    def expose(self) -> list[str]:
        """The histogram in text exposition format."""
        return _histogram_lines(self, self.snapshot())


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

    def snapshot(self) -> dict[tuple[str, ...], float]:
        """A copy of every series: label values -> value."""
        with self._lock:
            return dict(self._values)

    def expose(self) -> list[str]:
        """The counter in text exposition format."""
        return _counter_lines(self, self.snapshot())


def _histogram_lines(h: Histogram,
                     series: dict[tuple[str, ...], tuple[list[int], float]]) -> list[str]:
    lines = [f"# HELP {h.name} {h.help}", f"# TYPE {h.name} histogram"]
    for values, (counts, total) in sorted(series.items()):
        base = dict(zip(h.labels, values, strict=True))
        for bound, n in zip(h.buckets, counts, strict=False):
            lines.append(_sample(f"{h.name}_bucket", {**base, "le": _num(bound)}, n))
        lines.append(_sample(f"{h.name}_bucket", {**base, "le": "+Inf"}, counts[-1]))
        lines.append(_sample(f"{h.name}_sum", base, total))
        lines.append(_sample(f"{h.name}_count", base, counts[-1]))
    return lines


def _counter_lines(c: CounterVec, series: dict[tuple[str, ...], float]) -> list[str]:
    lines = [f"# HELP {c.name} {c.help}", f"# TYPE {c.name} counter"]
    for values, v in sorted(series.items()):
        lines.append(_sample(c.name, dict(zip(c.labels, values, strict=True)), v))
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


APOLOGY_REASONS = frozenset({"error", "fallback", "no_call_sid", "callback_not_recorded"})


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
        self.apologies = CounterVec(
            "ivr_apologies_total", "Calls answered with the apology instead of the flow, by "
            "reason (error, fallback, no_call_sid; callback_not_recorded: the store refused "
            "the callback request too).", ["reason"])
        self._open: dict[str, _RequestTimes] = {}
        self._open_lock = threading.Lock()
        # Set by `install` when the host's workers share their figures (see `Publisher`).
        self.publisher: Publisher | None = None

    # -- the Clinicea client's `on_request(operation, seconds, status_or_error)` hook

    def on_clinicea_request(self, operation: str, seconds: float, outcome: int | str) -> None:
        """Record one Clinicea attempt; credit its time to the webhook waiting for it."""
        self.clinicea.observe(seconds, operation)
        if isinstance(outcome, str):
            self.clinicea_errors.inc(operation, outcome)
        elif outcome == 401 or outcome == 429 or outcome >= 500:
            self.clinicea_errors.inc(operation, str(outcome))
        self.changed()
        times = _current.get()
        if times is None:
            match = _HELPER_THREAD.match(threading.current_thread().name)
            if match:
                with self._open_lock:
                    times = self._open.get(match.group(1))
        if times is not None:
            times.add(seconds)

    def apology(self, reason: str) -> None:
        """Count one apology (`Runtime.on_apology`); unknown reasons count as "other"."""
        label = reason.strip().lower().replace(" ", "_").replace("callsid", "call_sid")
        self.apologies.inc(label if label in APOLOGY_REASONS else "other")
        self.changed()

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

    def changed(self) -> None:
        """Something was observed: let the publisher (if any) schedule a snapshot.

        The hot path: one attribute read when a snapshot is already scheduled.
        """
        publisher = self.publisher
        if publisher is not None:
            publisher.touch()

    def histograms(self) -> tuple[Histogram, ...]:
        """The histogram families, in exposition order."""
        return (self.webhook, self.webhook_own, self.clinicea)

    def counters(self) -> tuple[CounterVec, ...]:
        """The counter families, in exposition order."""
        return (self.webhook_errors, self.clinicea_errors, self.apologies)

    def snapshot(self) -> Snapshot:
        """This process's figures now."""
        return Snapshot(
            pid=os.getpid(),
            histograms={h.name: h.snapshot() for h in self.histograms()},
            counters={c.name: c.snapshot() for c in self.counters()},
        )

    def render(self, snapshots: Sequence[Snapshot]) -> list[str]:
        """The sum of `snapshots` (this worker's and others') in text exposition format."""
        hist_lines: dict[str, list[str]] = {}
        for h in self.histograms():
            merged: dict[tuple[str, ...], tuple[list[int], float]] = {}
            for snap in snapshots:
                for values, (counts, total) in snap.histograms.get(h.name, {}).items():
                    into = merged.get(values)
                    if into is None:
                        merged[values] = (list(counts), total)
                    else:
                        merged[values] = ([a + b for a, b in zip(into[0], counts, strict=True)],
                                          into[1] + total)
            hist_lines[h.name] = _histogram_lines(h, merged)
        counter_lines: dict[str, list[str]] = {}
        for c in self.counters():
            sums: dict[tuple[str, ...], float] = {}
            for snap in snapshots:
                for values, v in snap.counters.get(c.name, {}).items():
                    sums[values] = sums.get(values, 0.0) + v
            counter_lines[c.name] = _counter_lines(c, sums)
        return [*hist_lines[self.webhook.name], *hist_lines[self.webhook_own.name],
                *counter_lines[self.webhook_errors.name], *hist_lines[self.clinicea.name],
                *counter_lines[self.clinicea_errors.name], *counter_lines[self.apologies.name]]

    def expose(self) -> list[str]:
        """This process's in-memory metrics in text exposition format."""
        return self.render([self.snapshot()])


def metrics_of(app: Flask) -> Metrics:
    """The app's `Metrics` (installed by `install`)."""
    return app.extensions[_EXTENSION].metrics


# --------------------------------------------------------------------------- host-wide figures

PUBLISH_INTERVAL = 1.0  # seconds: at most one snapshot write per worker per interval
_SNAPSHOT_FORMAT = 1
_SNAPSHOT_MAX_BYTES = 1 << 20
_GUNICORN_RUN = re.compile(r"^run-(\d+)-(\d+)$")  # run-<master pid>-<start ns>

HistogramSeries = dict[tuple[str, ...], tuple[list[int], float]]
CounterSeries = dict[tuple[str, ...], float]


@dataclass(frozen=True)
class Snapshot:
    """One worker's in-memory figures at one moment: what it publishes and `/metrics` sums."""

    pid: int
    histograms: dict[str, HistogramSeries]
    counters: dict[str, CounterSeries]

    def to_json(self, metrics: Metrics) -> dict[str, Any]:
        """The file form; every family carries its label names (and bucket bounds)."""
        return {
            "format": _SNAPSHOT_FORMAT,
            "pid": self.pid,
            "histograms": {
                h.name: {"labels": list(h.labels), "buckets": list(h.buckets),
                         "series": [[list(values), counts, total] for values, (counts, total)
                                    in self.histograms.get(h.name, {}).items()]}
                for h in metrics.histograms()},
            "counters": {
                c.name: {"labels": list(c.labels),
                         "series": [[list(values), value]
                                    for values, value in self.counters.get(c.name, {}).items()]}
                for c in metrics.counters()},
        }

    @classmethod
    def from_json(cls, data: Any, metrics: Metrics) -> Snapshot | None:
        """A published snapshot read back; None when `data` is not one.

        Only families whose label names (and bucket bounds) equal this worker's are kept, and
        only well-formed series: a worker running other code in the same run cannot corrupt
        the sums, it just goes uncounted for that family.
        """
        if not isinstance(data, dict) or data.get("format") != _SNAPSHOT_FORMAT:
            return None
        pid = data.get("pid")
        hists, counters = data.get("histograms"), data.get("counters")
        if not _is_int(pid) or not isinstance(hists, dict) or not isinstance(counters, dict):
            return None
        histograms: dict[str, HistogramSeries] = {}
        for h in metrics.histograms():
            family = hists.get(h.name)
            if (not isinstance(family, dict) or family.get("labels") != list(h.labels)
                    or family.get("buckets") != list(h.buckets)):
                continue
            series: HistogramSeries = {}
            for item in _items(family.get("series"), 3):
                values, counts, total = item
                if (_label_values(values, len(h.labels)) and isinstance(counts, list)
                        and len(counts) == len(h.buckets) + 1
                        and all(_is_int(n) and n >= 0 for n in counts) and _is_number(total)):
                    series[tuple(values)] = (list(counts), float(total))
            histograms[h.name] = series
        counter_series: dict[str, CounterSeries] = {}
        for c in metrics.counters():
            family = counters.get(c.name)
            if not isinstance(family, dict) or family.get("labels") != list(c.labels):
                continue
            counter_series[c.name] = {
                tuple(values): float(value) for values, value in _items(family.get("series"), 2)
                if _label_values(values, len(c.labels)) and _is_number(value)
            }
        return cls(pid, histograms, counter_series)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _label_values(values: Any, n: int) -> bool:
    return isinstance(values, list) and len(values) == n and all(
        isinstance(v, str) for v in values)


def _items(series: Any, width: int) -> list[list[Any]]:
    if not isinstance(series, list):
        return []
    return [item for item in series if isinstance(item, list) and len(item) == width]


def default_metrics_dir(database_url: str) -> str:
    """`<temp dir>/ivr-metrics-<hash of user id and database URL>` (like the `TokenFile`)."""
    digest = hashlib.sha256(f"{os.getuid()}\n{database_url}".encode()).hexdigest()[:24]
    return os.path.join(tempfile.gettempdir(), f"ivr-metrics-{digest}")


class SnapshotDir:
    """Where one server start's workers publish their snapshots.

    `<base>/run-<run>/<pid>-<random>.json`, one file per worker (per `Metrics`), each replaced
    atomically (a temp file in the same directory, then `os.replace`), mode 0600 in a 0700
    directory. Only regular files owned by this user are read back. On first use, run
    directories of earlier gunicorn starts (`run-<master pid>-<stamp>`) are removed when their
    master is gone, or when their master pid is this run's (a container restarted as pid 1).
    """

    def __init__(self, base: str, run: str, *, own_base: bool = False) -> None:
        self.base = os.path.abspath(base)
        self.run = run
        self.path = os.path.join(self.base, f"run-{run}")
        self._own_base = own_base  # the default temp-dir base: it must be ours too
        self._own: str | None = None
        self._ready = False
        self._lock = threading.Lock()

    def _prepare(self) -> None:
        with self._lock:
            if self._ready:
                return
            os.makedirs(self.base, mode=0o700, exist_ok=True)
            if self._own_base:
                _check_ours(self.base)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.path, 0o700)
            _check_ours(self.path)
            self._prune()
            self._own = os.path.join(self.path, f"{os.getpid()}-{secrets.token_hex(6)}.json")
            self._ready = True

    def _prune(self) -> None:
        mine = _GUNICORN_RUN.match(os.path.basename(self.path))
        try:
            entries = list(os.scandir(self.base))
        except OSError:
            return
        for entry in entries:
            match = _GUNICORN_RUN.match(entry.name)
            if match is None or entry.path == self.path:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                continue
            pid = int(match.group(1))
            if (mine is not None and int(mine.group(1)) == pid) or not _alive(pid):
                shutil.rmtree(entry.path, ignore_errors=True)

    def write(self, data: dict[str, Any]) -> None:
        """Replace this worker's snapshot atomically (mode 0600); OSError when it cannot."""
        self._prepare()
        assert self._own is not None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path)
        except FileNotFoundError:  # removed under us (a temp cleaner): make it again
            with self._lock:
                self._ready = False
            self._prepare()
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, self._own)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read_others(self) -> list[Any]:
        """The decoded snapshots of every other worker of this run (dead ones included)."""
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            if (entry.name.startswith(".") or not entry.name.endswith(".json")
                    or entry.path == self._own):
                continue
            data = _read_json(entry.path)
            if data is not None:
                out.append(data)
        return out


def _check_ours(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(f"{path}: not a directory owned by this user")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _read_json(path: str) -> Any:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid()
                or st.st_size > _SNAPSHOT_MAX_BYTES):
            return None  # not written by us: never trust it
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            return json.loads(fh.read(_SNAPSHOT_MAX_BYTES + 1) or b"null")
    except (OSError, ValueError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)


class Publisher:
    """Publishes one worker's snapshot to its run's `SnapshotDir`, throttled.

    `touch()` (after every observation) costs one attribute read when a write is already
    scheduled; otherwise it schedules one on a daemon timer thread, at once if the last write
    is older than `interval`, else when it is `interval` old. So a busy worker writes about
    once a second, an idle one never, and its last observation is on disk within `interval`.
    `publish()` writes synchronously (at scrape time and at worker exit). Writes are
    serialised, so a worker's file never goes back in time.
    """

    def __init__(self, metrics: Metrics, directory: SnapshotDir, *,
                 interval: float = PUBLISH_INTERVAL,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.directory = directory
        self.interval = interval
        self._monotonic = monotonic
        self._state = threading.Lock()
        self._write = threading.Lock()
        self._pending = False
        self._last = -math.inf
        self._warned = False

    def touch(self) -> None:
        """Something changed: make sure a write is scheduled."""
        if self._pending:
            return
        with self._state:
            if self._pending:
                return
            self._pending = True
            delay = max(0.0, self._last + self.interval - self._monotonic())
        timer = threading.Timer(delay, self._fire)
        timer.name = "ivr-metrics-publish"
        timer.daemon = True
        timer.start()

    def _fire(self) -> None:
        with self._state:
            self._pending = False  # observations from now on schedule the next write
        self.publish()

    def publish(self) -> Snapshot:
        """Write this worker's figures now and return them (what the file now holds)."""
        with self._write:
            snap = self.metrics.snapshot()
            try:
                self.directory.write(snap.to_json(self.metrics))
            except OSError as exc:
                self._warn(exc)
            self._last = self._monotonic()
        return snap

    def others(self) -> list[Snapshot]:
        """Every other worker's last snapshot in this run (live and dead workers)."""
        try:
            raw = self.directory.read_others()
        except OSError as exc:
            self._warn(exc)
            return []
        return [snap for snap in (Snapshot.from_json(d, self.metrics) for d in raw)
                if snap is not None]

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("metrics snapshots in %s unavailable (%s): /metrics shows this worker "
                        "only", self.directory.path, exc.__class__.__name__)


def flush(app: Flask) -> None:
    """Publish the worker's figures now (gunicorn's `worker_exit`); no-op when not sharing."""
    ext = app.extensions.get(_EXTENSION)
    if ext is not None and ext.metrics.publisher is not None:
        ext.metrics.publisher.publish()


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
    """Store and Clinicea health as JSON; 503 when the store is down or cannot write."""
    rt = current_app.extensions["ivr"]
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
    rt = current_app.extensions["ivr"]
    own = _ops().metrics
    publisher = own.publisher
    if publisher is None:
        snapshots = [own.snapshot()]
    else:  # publish first: what this scrape shows of us is what the others will read
        snapshots = [publisher.publish(), *publisher.others()]
    lines = own.render(snapshots)
    lines.extend(_gauge("ivr_metrics_workers_merged",
                        "Worker snapshots summed into the histograms and counters above (this "
                        "worker, the others and the last of those that exited since start).",
                        [({}, len(snapshots))]))
    lines.extend(_store_lines(rt.store))
    lines.extend(_insight_lines(rt.store, rt.settings.clinic.timezone))
    lines.extend(_process_lines({snap.pid for snap in snapshots}))
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
        *_gauge("ivr_store_writable", "1 when a write to the store commits (0: disk full, "
                "read-only or locked).", [({}, 1 if store.writable() else 0)]),
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


def _insight_lines(store: Any, timezone: str) -> list[str]:
    """The History page's figures (`ivr.insights`, the last 14 clinic-local days)."""
    zone = ZoneInfo(timezone)
    today = insights.local_today(store.now(), zone)
    try:
        figures = insights.compute(store.call_facts(insights.window_start(zone, today)),
                                   zone, today)
    except Exception:
        return []  # ivr_store_up already says the store did not answer
    span = f"the last {insights.WINDOW_DAYS} clinic-local days"
    return [
        *_gauge("ivr_funnel_calls", f"Calls over {span} that reached each booking stage.",
                [({"stage": s.key}, s.calls) for s in figures.funnel]),
        *_gauge("ivr_containment_ratio", f"Calls over {span} the robot settled alone (booked, "
                "no call back from that number within a day) over all calls.",
                [({}, figures.containment or 0.0)]),
        *_gauge("ivr_booked_rang_back_calls", f"Booked calls over {span} whose caller rang "
                "again within a day.", [({}, figures.rang_back)]),
        *_gauge("ivr_person_after_failure_ratio", f"Calls over {span} that reached a person "
                "after the robot gave up understanding, over all calls.",
                [({}, figures.person_after_failure_share or 0.0)]),
        *_gauge("ivr_calls_by_hour", f"Calls over {span} by clinic-local weekday and hour.",
                [({"weekday": insights.WEEKDAYS[d], "hour": f"{h:02d}"}, n)
                 for d, row in enumerate(figures.by_hour) for h, n in enumerate(row)]),
    ]


def _process_lines(pids: Iterable[int]) -> list[str]:
    """Memory of this process and of its live sibling workers among `pids`, by `pid` label.

    A sibling is a live process with the same parent (the gunicorn master), so a dead
    worker's pid reused by an unrelated process is never reported.
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
    out: list[str] = []
    if rss:
        out += _gauge("ivr_process_resident_memory_bytes",
                      "Resident memory of each live worker (pid label).", rss)
    if peak:
        out += _gauge("ivr_process_peak_resident_memory_bytes",
                      "Peak resident memory (VmHWM) of each live worker (pid label).", peak)
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
    rt = app.extensions["ivr"]
    probe = clinicea_probe or _token_probe(rt.client)
    app.extensions[_EXTENSION] = _Ops(metrics, CliniceaCheck(probe, check_ttl))
    settings = rt.settings
    if settings.metrics_run:
        base = settings.metrics_dir or default_metrics_dir(settings.database_url)
        metrics.publisher = Publisher(metrics, SnapshotDir(
            base, settings.metrics_run, own_base=settings.metrics_dir is None))
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        if not request.path.startswith("/voice/"):
            return
        raw_sid = request.form.get("CallSid", "").strip()
        sid = raw_sid if _CALL_SID.match(raw_sid) else None
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
        metrics.changed()
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
