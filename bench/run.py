"""The benchmark: the real app and a bare-Flask baseline under gunicorn, driven by simulated calls.

What one run does (`run()`; `python -m bench` / `./dev bench`):

1. Starts the sandbox Clinicea in its own process with `latency_ms +- jitter_ms` on every
   request, a bare Flask app under gunicorn (the baseline), and, per measurement, the real app
   under gunicorn (`bench.apps:ivr_app`, the project's gunicorn.conf.py, a fresh SQLite file,
   `CLINICEA_BASE_URL` pointing at the sandbox). Both clinic clocks read Monday 10:00.
2. **Scenarios**, one call at a time, each on a freshly started app (cold token, cold calendar
   cache; in `quick` mode one app serves all three): a returning patient's keypad booking, a new
   patient registering and booking, and a transfer to reception. For each: the Clinicea
   requests it caused by operation (from the sandbox's request log), the webhooks, and the
   caller's seconds to the booking (or to the transfer).
3. **Load rounds**, two kinds per level in `calls`:
   - **Poisson** (the main load): callers arrive one by one at random (exponential gaps) at
     the rate that keeps on average N calls in progress (Little's law: rate = N / mean call
     duration, the duration estimated from the scenarios' caller seconds x `pace`), each
     listening to every prompt. The first mean call duration is warm-up; the figures are
     those of the webhooks sent in the next `measure` mean durations, and every caller is
     followed to the end of the call. Then the bare Flask app under the same arrivals.
   - **Stress**: N calls start at once (a barrier), no pause between turns: a worst case.
   4 in 5 callers are returning patients and 1 in 5 new callers; each picks a doctor at random
   and takes the first time offered (everyone after the earliest time: the honest contention).
   Per webhook: the latency the caller's side sees, the app's `X-IVR-Own-Ms` and
   `X-IVR-Clinicea-Ms` headers; errors (transport errors, timeouts after Twilio's 15 s, non-2xx,
   apologies and ERROR lines in the app's log); peak RSS per gunicorn worker; Clinicea logins.
   Per round: callers who wanted a time and got one (booked / wanted), Clinicea requests per
   booking, "that time was just taken" heard after the read-back, and appointments in the
   sandbox calendar overlapping another of the same doctor.

The sandbox accepts overlapping appointments when it knows the `overlap` fault (`overlap=True`,
the default: many clinic systems do, so only the app's own holds can prevent a double booking);
a sandbox that does not know it refuses overlaps as before, and the report says which it was.

"Own time" compared with the baseline is the caller-side latency minus the time the app spent
inside Clinicea requests during that webhook: it includes gunicorn, HTTP and queueing exactly as
the baseline's latency does.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.apps import BASELINE_TWIML
from bench.servers import Server, start_gunicorn, start_sandbox
from flows.lang.en import PROMPTS
from ivr.simulator import Dialed, Heard, Paused, Pressed, Said, Silence, TwilioSimulator

BENCH_NOW = "2026-11-23T10:00:00"  # a Monday, 10:00 clinic time: open, agents on duty
AUTH_TOKEN = "bench-twilio-auth-token"
CLINIC_NUMBER = "+922135550199"
WORDS_PER_MINUTE = 150
SECONDS_PER_KEY = 1.0
TWILIO_TIMEOUT = 15.0
MAX_TURNS = 25
BASELINE_TURNS = 7  # key presses per baseline call (a keypad booking's turns)
NEW_NAME = "Ayaan Khan"
# A whole request in one breath (issue 10): a returning caller at the menu, a new one with the name.
ONE_BREATH = "book me with Dr. Khan on Friday at 11 for a sore throat"
ONE_BREATH_NEW = "I'd like Dr. Sheikh tomorrow at 11 for a check up"
RETURNING = ("+923216315551", "+923451234567", "+923007654321", "+923215550001",
             "+923335550003", "+923331234567", "+923125550002", "+923001234567")

SLOT_TAKEN = PROMPTS["slot_taken"]  # what a caller hears when the booking lost the time
OVERLAP_SPEC = "overlap"  # sandbox fault token: accept overlapping appointments
MEASURE = 1.0  # Poisson rounds: mean call durations measured after one of warm-up

_local = threading.local()


# --------------------------------------------------------------------------- results


@dataclass
class Sample:
    """One webhook as the caller's side saw it."""

    step: str
    seconds: float
    status: int | None = None
    own_ms: float | None = None  # X-IVR-Own-Ms (server-side)
    clinicea_ms: float | None = None  # X-IVR-Clinicea-Ms
    error: str | None = None
    at: float = 0.0  # perf_counter when the request was sent

    @property
    def own_seconds(self) -> float:
        """Caller-side latency minus the app's time inside Clinicea."""
        return max(self.seconds - (self.clinicea_ms or 0.0) / 1000, 0.0)


@dataclass
class CallResult:
    """One simulated call."""

    number: str
    kind: str
    samples: list[Sample]
    booked: bool = False
    transferred: bool = False
    app_errors: int = 0
    failure: str | None = None
    caller_seconds: float | None = None
    transcript: str = ""
    slot_taken: int = 0  # times "that time was just taken" came after the read-back
    questions: int = 0  # gathers the caller answered
    started: float = 0.0  # perf_counter at the first webhook and when the call ended
    ended: float = 0.0

    @property
    def wanted(self) -> bool:
        """The caller rang to book a time."""
        return self.kind in ("book", "one_breath")


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (`p` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


@dataclass
class Percentiles:
    """p50/p95/p99 in milliseconds."""

    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Percentiles:
        return cls(*(round(pct(seconds, p) * 1000, 1) for p in (50, 95, 99)))


@dataclass
class Round:
    """One load round on the app, then the same load on the baseline.

    `mode` "poisson": callers arrive at random to keep `in_progress` calls going on average
    (`calls` callers in all); "stress": `calls` = `in_progress` callers at once, no pause."""

    mode: str
    calls: int
    wall_s: float
    webhooks: int
    throughput: float  # webhooks per second
    booked: int
    transferred: int
    errors: int
    timeouts: int
    apologies: int
    app_latency: Percentiles
    app_own: Percentiles  # caller-side minus Clinicea time
    server_own: Percentiles  # X-IVR-Own-Ms
    baseline_latency: Percentiles
    baseline_wall_s: float
    baseline_webhooks: int
    baseline_throughput: float
    baseline_errors: int
    own_p99_ratio: float
    peak_rss_mb: list[float]
    logins: int
    clinicea_requests: dict[str, int]
    requests_per_booked_call: float
    error_examples: list[str] = field(default_factory=list)
    # step -> {"n", "latency_p50", "latency_p99", "own_p50", "own_p99", "clinicea_p50"} (ms)
    by_step: dict[str, dict[str, float]] = field(default_factory=dict)
    in_progress: float = 0.0  # target calls in progress (Poisson) or calls at once (stress)
    in_progress_measured: float = 0.0  # time-average over the measured window
    arrivals_per_s: float = 0.0
    mean_call_s: float = 0.0  # measured, calls that ended
    wanted: int = 0  # callers who wanted a time
    slot_taken: int = 0  # "that time was just taken" heard after the read-back
    double_booked: int = 0  # appointments overlapping another of the doctor's in the sandbox
    own_ratio: dict[str, float] = field(default_factory=dict)  # p50/p95/p99 own / bare


@dataclass
class Scenario:
    """One scripted call on its own."""

    name: str
    completed: bool
    webhooks: int
    requests: dict[str, int]  # by operation, login excluded
    logins: int
    caller_seconds: float | None
    webhook_ms: float  # total caller-side webhook time in the call
    questions: int = 0  # gathers the caller answered


@dataclass
class Report:
    """Everything a run measured."""

    machine: dict[str, str]
    config: dict[str, Any]
    scenarios: list[Scenario]
    rounds: list[Round]

    def to_json(self) -> str:
        """The report as JSON."""
        return json.dumps(asdict(self), indent=2, default=str)


# --------------------------------------------------------------------------- HTTP recording


class _Recorder(httpx.HTTPTransport):
    """Records every webhook of the current thread's call into `_local.sink`."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sink: list[Sample] | None = getattr(_local, "sink", None)
        step = step_of(request.url.path)
        started = time.perf_counter()
        try:
            response = super().handle_request(request)
        except Exception as exc:
            if sink is not None:
                sink.append(Sample(step, time.perf_counter() - started, error=type(exc).__name__,
                                   at=started))
            raise
        if sink is not None:
            sink.append(Sample(step, time.perf_counter() - started, response.status_code,
                               _float(response.headers.get("X-IVR-Own-Ms")),
                               _float(response.headers.get("X-IVR-Clinicea-Ms")), at=started))
        return response


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def step_of(path: str) -> str:
    """`/voice/step/menu` -> `menu`, `/voice/incoming` -> `incoming`."""
    parts = path.strip("/").split("/")
    return parts[2] if len(parts) >= 3 and parts[1] == "step" else parts[-1]


def http_client(pool: int) -> httpx.Client:
    """One pooled client for all the calls of a round (Twilio's 15 s timeout)."""
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    return httpx.Client(transport=_Recorder(limits=limits),
                        timeout=httpx.Timeout(TWILIO_TIMEOUT, connect=5.0))


# --------------------------------------------------------------------------- one call


def _answer(call: Any, step: str, kind: str, rng: random.Random | None) -> bool:
    """Answer the open gather like a caller would; False to hang up instead."""
    pick = (lambda keys: rng.choice(keys)) if rng is not None else (lambda keys: keys[0])
    if step == "menu" and kind == "one_breath":
        call.say(ONE_BREATH, barge_in=barge_in_words(call, step, kind))
    elif step == "confirm" and kind == "one_breath":
        call.say("yes", barge_in=barge_in_words(call, step, kind))
    elif step == "menu":
        call.press("0" if kind == "transfer" else "1")
    elif step in ("language", "new_caller", "name_confirm", "who", "same_doctor", "offer_one",
                  "confirm"):
        call.press("1")
    elif step == "name":
        call.say(f"{NEW_NAME}, {ONE_BREATH_NEW}" if kind == "one_breath" else NEW_NAME)
    elif step == "doctor":
        call.press(pick("1234"))
    elif step in ("slots", "day_slots"):
        call.press("1")  # the first (earliest) time offered: every caller wants the earliest
    elif step == "reason":
        call.silence()
    else:
        return False
    return True


def barge_in_words(call: Any, step: str, kind: str) -> int | None:
    """How much of the prompts a caller hears before speaking over them (Twilio's barge-in),
    or None to hear them all. A one-breath caller talks as callers do: at the menu they start
    once the greeting sentence is over (the last visit and the menu are cut off); at the
    read-back they say "yes" once they have heard the time and doctor, over "Press 1 to book
    it, 2 to change"."""
    if kind != "one_breath" or not call.prompts:
        return None
    if step == "menu":
        return len(call.prompts[0].split())
    if step == "confirm":
        *before, read_back = call.prompts
        words = read_back.split()
        if "Press" not in words:
            return None
        return sum(len(p.split()) for p in before) + words.index("Press")
    return None


def listen(call: Any, pace: float, rng: random.Random | None = None,
           heard: int | None = None) -> None:
    """Wait as long as the caller needs to hear the last prompt and press a key, x `pace`.

    With `rng` the wait varies by +-40% (callers differ; it also keeps N callers who started
    together from answering in lockstep). `heard`: the words a barging-in caller waits for.
    """
    if pace > 0:
        words = _words(call.last_heard) if heard is None else heard
        spread = rng.uniform(0.6, 1.4) if rng is not None else 1.0
        time.sleep(pace * spread * (words * 60 / WORDS_PER_MINUTE + SECONDS_PER_KEY))


def drive_call(sim: TwilioSimulator, number: str, kind: str,
               rng: random.Random | None = None, pace: float = 0.0) -> CallResult:
    """Place one call and answer every question until it ends (or MAX_TURNS).

    `pace` 1.0: the caller listens to each prompt at 150 words a minute and takes a second to
    press a key before answering (a real caller); 0: answers at once (a stress test).
    """
    samples: list[Sample] = []
    _local.sink = samples
    result = CallResult(number, kind, samples, started=time.perf_counter())
    call = None
    try:
        call = sim.call(from_=number, dial_outcome="completed")
        turns = 0
        while call.waiting and turns < MAX_TURNS:
            step = step_of(urlsplit(call.gather_url or "").path)
            listen(call, pace, rng, barge_in_words(call, step, kind))
            if not _answer(call, step, kind, rng):
                break
            turns += 1
            result.questions = turns
            if step == "confirm" and SLOT_TAKEN in call.last_heard:
                result.slot_taken += 1
        if not call.ended:
            call.hang_up()
    except Exception as exc:  # a simulator or HTTP failure: counted, the run goes on
        result.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        _local.sink = None
        result.ended = time.perf_counter()
    if call is not None:
        result.booked = "You're booked" in call.heard
        result.transferred = any(isinstance(e, Dialed) for e in call.transcript)
        result.app_errors = len(call.errors)
        result.caller_seconds = caller_seconds(call.transcript, samples,
                                               "dial" if kind == "transfer" else "booked")
        result.transcript = call.transcript_text()
    return result


def _words(text: str) -> int:
    return len(text.split())


def caller_seconds(transcript: Iterable[object], samples: Sequence[Sample],
                   until: str = "booked") -> float | None:
    """Seconds the caller spends until the booking is read back (or the transfer starts).

    Speech at 150 words a minute (the IVR's and the caller's), 1 s per key, the gather's own
    timeout per silence, pauses as written, plus the webhooks' real latency. None if never
    reached.
    """
    seconds = 0.0
    for event in transcript:
        if isinstance(event, Heard):
            seconds += _words(event.text) * 60 / WORDS_PER_MINUTE * max(event.loop, 1)
            if until == "booked" and "You're booked" in event.text:
                break
        elif isinstance(event, Said):
            seconds += _words(event.text) * 60 / WORDS_PER_MINUTE
        elif isinstance(event, Pressed):
            seconds += SECONDS_PER_KEY * len(event.keys)
        elif isinstance(event, Silence):
            seconds += event.seconds
        elif isinstance(event, Paused):
            seconds += event.seconds
        elif isinstance(event, Dialed) and until == "dial":
            break
    else:
        return None
    waits = sum(s.seconds for s in samples if s.step != "status")
    return round(seconds + waits, 1)


def drive_baseline_call(sim: TwilioSimulator, turns: int, pace: float = 0.0,
                        rng: random.Random | None = None) -> CallResult:
    """A call to the bare app: the same number of key presses, then hang up."""
    samples: list[Sample] = []
    _local.sink = samples
    result = CallResult("+923000000000", "baseline", samples, started=time.perf_counter())
    try:
        call = sim.call(from_="+923000000000")
        for _ in range(turns):
            if not call.waiting:
                break
            listen(call, pace, rng)
            call.press("1")
        if not call.ended:
            call.hang_up()
        result.app_errors = len(call.errors)
    except Exception as exc:
        result.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        _local.sink = None
        result.ended = time.perf_counter()
    return result


def baseline_call_seconds(pace: float) -> float:
    """Mean duration of a paced baseline call: BASELINE_TURNS turns of listening."""
    words = sum(_words(said) for said in re.findall(r"<Say[^>]*>(.*?)</Say>", BASELINE_TWIML))
    return pace * BASELINE_TURNS * (words * 60 / WORDS_PER_MINUTE + SECONDS_PER_KEY)


def arrival_times(n: int, rate: float, rng: random.Random) -> list[float]:
    """`n` arrival offsets (seconds from the first, which is 0) of a Poisson process."""
    times, t = [], 0.0
    for i in range(n):
        if i:
            t += rng.expovariate(rate)
        times.append(t)
    return times


def run_arrivals(offsets: Sequence[float], target: Any, *,
                 deadline_s: float) -> tuple[list[CallResult], float, float]:
    """Start `target(i)` on a thread of its own at each offset (seconds); results, wall time
    and the perf_counter of the first arrival. Calls still running at the deadline count as
    unfinished."""
    results: list[CallResult | None] = [None] * len(offsets)

    def worker(i: int) -> None:
        results[i] = target(i)

    threads = []
    started = time.perf_counter()
    for i, offset in enumerate(offsets):
        delay = started + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=worker, args=(i,), daemon=True, name=f"call-{i}")
        t.start()
        threads.append(t)
    end = started + deadline_s
    for t in threads:
        t.join(max(0.0, end - time.perf_counter()))
    wall = time.perf_counter() - started
    out = [r if r is not None else CallResult("?", "unfinished", [], failure="round deadline")
           for r in results]
    return out, wall, started


def mean_in_progress(results: Iterable[CallResult], start: float, end: float) -> float:
    """Time-average number of calls in progress between `start` and `end` (perf_counter)."""
    if end <= start:
        return 0.0
    busy = sum(max(0.0, min(r.ended, end) - max(r.started, start))
               for r in results if r.ended > r.started)
    return busy / (end - start)


def count_double_booked(rows: Iterable[dict[str, Any]]) -> int:
    """Active appointments (Clinicea rows) that overlap an earlier one of the same doctor."""
    from ivr.clinicea.models import Appointment

    by_doctor: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in rows:
        appt = Appointment.from_api(row)
        if appt.is_active:
            end = appt.end if appt.end and appt.end > appt.start else appt.start
            by_doctor.setdefault(appt.doctor_id or appt.doctor_name or "?", []).append(
                (appt.start, end))
    double = 0
    for intervals in by_doctor.values():
        busy_until: datetime | None = None
        for start, end in sorted(intervals):
            if busy_until is not None and start < busy_until:
                double += 1
            busy_until = end if busy_until is None else max(busy_until, end)
    return double


def run_concurrently(n: int, target: Any, *, deadline_s: float) -> tuple[list[CallResult], float]:
    """Start `n` threads at once (a barrier), each `target(i)`; wall time of the round."""
    results: list[CallResult | None] = [None] * n
    barrier = threading.Barrier(n + 1)

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = target(i)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"call-{i}")
               for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    end = started + deadline_s
    for t in threads:
        t.join(max(0.0, end - time.perf_counter()))
    wall = time.perf_counter() - started
    out = [r if r is not None else CallResult("?", "unfinished", [], failure="round deadline")
           for r in results]
    return out, wall


def _create_database(server: str, name: str) -> str:
    """Create an empty PostgreSQL database `name` on `server`; returns its URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    """Drop a database made by `_create_database` (best effort: the run is over)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    engine = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
                              poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    except sa.exc.SQLAlchemyError as exc:
        print(f"bench: could not drop {parsed.database}: {exc}", flush=True)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the run


class _Bench:
    def __init__(self, workdir: Path, *, workers: int, threads: int, latency_ms: int,
                 jitter_ms: int, postgres: str | None = None, overlap: bool = True) -> None:
        self.workdir = workdir
        self.overlap = overlap
        # "on": the sandbox accepts overlapping appointments; "unsupported": it does not know
        # the fault (it refuses overlaps as Clinicea's demo does); "off": not asked for.
        self.overlap_state = "off"
        self.postgres = postgres  # a server URL: each app start gets a fresh database there
        self._databases: list[str] = []
        self.workers = workers
        self.threads = threads
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.sandbox: Server | None = None
        self.baseline: Server | None = None
        self.admin = httpx.Client(timeout=30.0)
        self._apps = 0

    def start(self) -> None:
        self.sandbox = start_sandbox(self.workdir, BENCH_NOW, self.latency_ms, self.jitter_ms)
        self.baseline = start_gunicorn("baseline", "bench.apps:baseline_app()", self.workdir,
                                       workers=self.workers, threads=self.threads, env={})

    def stop(self) -> None:
        for server in (self.baseline, self.sandbox):
            if server is not None:
                server.stop()
        self.admin.close()
        for url in self._databases:
            _drop_database(url)

    def _database_url(self) -> str:
        if self.postgres is None:
            return f"sqlite:///{self.workdir / f'ivr-{self._apps}.db'}"
        url = _create_database(self.postgres, f"ivr_bench_{os.getpid()}_{self._apps}")
        self._databases.append(url)
        return url

    def start_app(self) -> Server:
        assert self.sandbox is not None
        self._apps += 1
        db = self._database_url()
        # Each app start gets its own temp dir: the workers share their Clinicea token through
        # a file there (ivr.clinicea.auth.TokenFile), never with an earlier start's token.
        tmp = self.workdir / f"tmp-{self._apps}"
        tmp.mkdir()
        return start_gunicorn(
            f"app-{self._apps}", f"bench.apps:ivr_app({BENCH_NOW!r})", self.workdir,
            workers=self.workers, threads=self.threads,
            env={"CLINICEA_BASE_URL": self.sandbox.url, "IVR_DATABASE_URL": db,
                 "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "IVR_DEMO": "1", "IVR_LOG_LEVEL": "INFO",
                 "IVR_SECRET_KEY": "bench-secret-key",
                 "TMPDIR": str(tmp)},
        )

    def reset_sandbox(self) -> None:
        assert self.sandbox is not None
        self.admin.post(self.sandbox.url + "/_sandbox/reset").raise_for_status()
        self.admin.post(self.sandbox.url + "/_sandbox/faults", json={
            "latency": {"ms": self.latency_ms, "jitter_ms": self.jitter_ms}}).raise_for_status()
        if self.overlap:
            self.overlap_state = self._allow_overlaps()

    def _allow_overlaps(self) -> str:
        """Ask the sandbox to accept overlapping appointments; "unsupported" when it does not
        know the fault (400 naming it), so the benchmark runs on either sandbox."""
        assert self.sandbox is not None
        answer = self.admin.post(self.sandbox.url + "/_sandbox/faults",
                                 json={"spec": OVERLAP_SPEC})
        if answer.status_code == 400 and OVERLAP_SPEC in answer.text:
            return "unsupported"
        answer.raise_for_status()
        return "on"

    def double_booked(self) -> int:
        """Appointments in the sandbox calendar overlapping another of the same doctor."""
        assert self.sandbox is not None
        response = self.admin.get(self.sandbox.url + "/_sandbox/appointments")
        response.raise_for_status()
        return count_double_booked(response.json())

    def sandbox_requests(self) -> list[dict[str, Any]]:
        assert self.sandbox is not None
        response = self.admin.get(self.sandbox.url + "/_sandbox/requests")
        response.raise_for_status()
        return response.json()

    # -- scenarios

    def scenarios(self, quick: bool) -> list[Scenario]:
        scripts = [("returning patient, keypad booking", "+923216315551", "book"),
                   ("new patient, registers and books", "+923009876543", "book"),
                   ("transferred to reception", "+923216315551", "transfer"),
                   ("one breath: returning patient", "+923216315551", "one_breath"),
                   ("one breath: new patient", "+923009876512", "one_breath")]
        out = []
        app = None
        if quick:
            self.reset_sandbox()
            app = self.start_app()
        try:
            for name, number, kind in scripts:
                if not quick:
                    self.reset_sandbox()
                    app = self.start_app()
                assert app is not None
                # Full mode counts from the reset: the start-up health check's login included.
                before = len(self.sandbox_requests()) if quick else 0
                with http_client(4) as http:
                    sim = TwilioSimulator(app.url, AUTH_TOKEN, http=http, to=CLINIC_NUMBER)
                    result = drive_call(sim, number, kind)
                ops = Counter(r["operation"] or "other" for r in self.sandbox_requests()[before:])
                logins = ops.pop("login", 0)
                done = result.transferred if kind == "transfer" else result.booked
                if not done:
                    print(f"bench: scenario {name!r} did not complete:\n{result.transcript}")
                out.append(Scenario(
                    name, done, len(result.samples), dict(sorted(ops.items())), logins,
                    result.caller_seconds,
                    round(sum(s.seconds for s in result.samples) * 1000, 1), result.questions))
                if not quick:
                    app.stop()
                    app = None
        finally:
            if app is not None:
                app.stop()
        return out

    # -- load

    def poisson_round(self, in_progress: int, pace: float, call_s: float,
                      measure: float = MEASURE) -> Round:
        """Callers arriving at random to keep `in_progress` calls going (module docstring).

        `call_s`: the mean call duration the arrival rate is set from (Little's law)."""
        assert self.baseline is not None
        n = max(in_progress, math.ceil(in_progress * (1 + measure)))
        rate = in_progress / call_s
        offsets = arrival_times(n, rate, random.Random(in_progress))
        window = (call_s, call_s * (1 + measure))  # seconds after the first arrival
        deadline = offsets[-1] + 120.0 + call_s * 3

        def app_calls(sim: TwilioSimulator) -> tuple[list[CallResult], float, float]:
            return run_arrivals(offsets, lambda i: self._caller(sim, i, in_progress, pace),
                                deadline_s=deadline)

        base_s = baseline_call_seconds(pace) or call_s
        base_rate = in_progress / base_s
        base_offsets = arrival_times(n, base_rate, random.Random(in_progress))

        def base_calls(sim: TwilioSimulator) -> tuple[list[CallResult], float, float]:
            return run_arrivals(
                base_offsets,
                lambda i: drive_baseline_call(sim, BASELINE_TURNS, pace,
                                              random.Random(i * 7919 + in_progress)),
                deadline_s=base_offsets[-1] + 120.0 + base_s * 3)

        r = self._round("poisson", n, in_progress, app_calls, base_calls,
                        window=window, base_window=(base_s, base_s * (1 + measure)))
        r.arrivals_per_s = round(rate, 3)
        return r

    def stress_round(self, n: int) -> Round:
        """N calls at once, no pause between turns."""
        deadline = 60.0 + n * 1.5

        def app_calls(sim: TwilioSimulator) -> tuple[list[CallResult], float, float]:
            results, wall = run_concurrently(n, lambda i: self._caller(sim, i, n, 0.0),
                                             deadline_s=deadline)
            return results, wall, 0.0

        def base_calls(sim: TwilioSimulator) -> tuple[list[CallResult], float, float]:
            results, wall = run_concurrently(
                n, lambda i: drive_baseline_call(sim, BASELINE_TURNS, 0.0,
                                                 random.Random(i * 7919 + n)),
                deadline_s=deadline)
            return results, wall, 0.0

        return self._round("stress", n, n, app_calls, base_calls)

    @staticmethod
    def _caller(sim: TwilioSimulator, i: int, seed: int, pace: float) -> CallResult:
        rng = random.Random(i * 7919 + seed)
        if i % 5 == 4:
            return drive_call(sim, f"+92300{9000000 + i}", "book", rng, pace)
        return drive_call(sim, RETURNING[i % len(RETURNING)], "book", rng, pace)

    def _round(self, mode: str, n: int, in_progress: float, app_calls: Any, base_calls: Any,
               *, window: tuple[float, float] | None = None,
               base_window: tuple[float, float] | None = None) -> Round:
        """Run `app_calls(sim)` on a fresh app, `base_calls(sim)` on the baseline; the figures.

        With `window` (seconds after the first arrival), latencies are those of the webhooks
        sent inside it, and the calls in progress are averaged over it."""
        assert self.baseline is not None
        self.reset_sandbox()
        app = self.start_app()
        log_start = app.log.stat().st_size
        try:
            with http_client(int(in_progress) * 2 + 8) as http:
                sim = TwilioSimulator(app.url, AUTH_TOKEN, http=http, to=CLINIC_NUMBER,
                                      seed=n)
                results, wall, first = app_calls(sim)
            peak = [round(m, 1) for m in app.peak_rss_mb()]
        finally:
            app.stop()
        log_lines = _json_lines(app.log, log_start)
        apologies = sum(1 for line in log_lines if "apology" in line.get("message", ""))
        error_lines = [line for line in log_lines if line.get("level") in ("ERROR", "CRITICAL")]
        requests = Counter(r["operation"] or "other" for r in self.sandbox_requests())
        logins = requests.pop("login", 0)
        double = self.double_booked()

        with http_client(int(in_progress) * 2 + 8) as http:
            bsim = TwilioSimulator(self.baseline.url, AUTH_TOKEN, http=http, to=CLINIC_NUMBER,
                                   seed=n)
            bresults, bwall, bfirst = base_calls(bsim)

        samples = [s for r in results for s in r.samples]
        bsamples = [s for r in bresults for s in r.samples]
        ok = [s for s in samples if s.error is None]
        bok = [s for s in bsamples if s.error is None]
        measured, bmeasured = ok, bok
        in_flight = float(in_progress)
        if window is not None:
            lo, hi = first + window[0], first + window[1]
            measured = [s for s in ok if lo <= s.at < hi] or ok
            in_flight = round(mean_in_progress(results, lo, hi), 1)
        if base_window is not None:
            lo, hi = bfirst + base_window[0], bfirst + base_window[1]
            bmeasured = [s for s in bok if lo <= s.at < hi] or bok
        timeouts = sum(1 for s in samples if s.error and "Timeout" in s.error)
        failed = [s for s in samples if s.error or (s.status or 0) >= 400]
        call_failures = [r.failure for r in results if r.failure]
        errors = (len(failed) + len(call_failures) + sum(r.app_errors for r in results)
                  + apologies + len(error_lines))
        booked = sum(1 for r in results if r.booked)
        own = Percentiles.of([s.own_seconds for s in measured])
        base = Percentiles.of([s.seconds for s in bmeasured])
        examples = [f"{s.step}: {s.error or s.status}" for s in failed[:3]]
        examples += [f or "" for f in call_failures[:3]]
        examples += [line.get("message", "")[:160] for line in error_lines[:3]]
        total_requests = sum(requests.values())
        steps: dict[str, list[Sample]] = {}
        for s in measured:
            steps.setdefault(s.step, []).append(s)
        by_step = {
            step: {"n": len(ss),
                   "latency_p50": round(pct([x.seconds for x in ss], 50) * 1000, 1),
                   "latency_p99": round(pct([x.seconds for x in ss], 99) * 1000, 1),
                   "own_p50": round(pct([x.own_ms or 0.0 for x in ss], 50), 1),
                   "own_p99": round(pct([x.own_ms or 0.0 for x in ss], 99), 1),
                   "clinicea_p50": round(pct([x.clinicea_ms or 0.0 for x in ss], 50), 1)}
            for step, ss in sorted(steps.items())
        }
        durations = [r.ended - r.started for r in results if r.ended > r.started]
        return Round(
            mode=mode, calls=n, wall_s=round(wall, 2),
            webhooks=len(samples),
            throughput=round(len(ok) / wall, 1) if wall else 0.0, booked=booked,
            transferred=sum(1 for r in results if r.transferred), errors=errors,
            timeouts=timeouts, apologies=apologies,
            app_latency=Percentiles.of([s.seconds for s in measured]), app_own=own,
            server_own=Percentiles.of([(s.own_ms or 0) / 1000 for s in measured
                                       if s.own_ms is not None]),
            baseline_latency=base, baseline_wall_s=round(bwall, 2),
            baseline_webhooks=len(bsamples),
            baseline_throughput=round(len(bok) / bwall, 1) if bwall else 0.0,
            baseline_errors=(sum(1 for s in bsamples if s.error or (s.status or 0) >= 400)
                             + sum(1 for r in bresults if r.failure)),
            own_p99_ratio=_ratio(own.p99, base.p99),
            peak_rss_mb=peak, logins=logins, clinicea_requests=dict(sorted(requests.items())),
            requests_per_booked_call=round(total_requests / booked, 2) if booked else 0.0,
            error_examples=examples, by_step=by_step,
            in_progress=float(in_progress), in_progress_measured=in_flight,
            mean_call_s=round(sum(durations) / len(durations), 2) if durations else 0.0,
            wanted=sum(1 for r in results if r.wanted or r.kind == "unfinished"),
            slot_taken=sum(r.slot_taken for r in results), double_booked=double,
            own_ratio={k: _ratio(getattr(own, k), getattr(base, k))
                       for k in ("p50", "p95", "p99")},
        )


def _ratio(own: float, base: float) -> float:
    return round(own / base, 2) if base else float("nan")


def _json_lines(path: Path, offset: int) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as fh:
        fh.seek(offset)
        for raw in fh:
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
    return out


def mean_call_seconds(scenarios: Sequence[Scenario], pace: float) -> float:
    """The mean call duration the Poisson rates are set from: the booking scenarios' caller
    seconds (4 returning callers in 5, 1 new), x `pace`; 60 s x `pace` without them."""
    by_kind = {s.name.split(",")[0]: s.caller_seconds for s in scenarios
               if s.completed and s.caller_seconds}
    returning, new = by_kind.get("returning patient"), by_kind.get("new patient")
    if returning and new:
        seconds = 0.8 * returning + 0.2 * new
    else:
        seconds = returning or new or 60.0
    return max(seconds * pace, 0.05)


def machine_info() -> dict[str, str]:
    """nproc, CPU model, Python, gunicorn, OS, date."""
    import os

    import gunicorn

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    with open("/proc/meminfo", encoding="ascii") as fh:
        mem = fh.readline().split()[1]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc.strip(),
        "cpu": model or platform.processor() or "unknown",
        "memory": f"{int(mem) // 1024} MiB",
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "os": f"{platform.system()} {platform.release()}",
    }


def run(calls: Sequence[int] = (10, 50, 200), *, quick: bool = False, workers: int | None = None,
        threads: int = 16, latency_ms: int = 150, jitter_ms: int = 50,
        out_dir: Path | str | None = None, write: bool = True, pace: float | None = None,
        stress: bool = True, postgres: str | None = None, overlap: bool = True,
        measure: float = MEASURE) -> Report:
    """Run the benchmark and return its figures; with `write`, also the markdown and the PNG.

    For each N in `calls`: a Poisson round keeping N calls in progress on average (callers
    listen to every prompt, `pace` x real time, default 1.0; 0.05 in `quick` mode; `measure`
    mean call durations measured after one of warm-up) and, with `stress`, N calls at once with
    no pause between turns. `out_dir` defaults to bench/results/. `quick` runs the three
    scenarios on one app start. `postgres` (a server URL) stores the app's data in a fresh
    PostgreSQL database per app start instead of a SQLite file. `overlap`: ask the sandbox to
    accept overlapping appointments (ignored by a sandbox without that fault; the report's
    config says which).
    """
    from bench import report as report_mod

    workers = workers or max(2, os.cpu_count() or 2)
    workdir = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    bench = _Bench(workdir, workers=workers, threads=threads, latency_ms=latency_ms,
                   jitter_ms=jitter_ms, postgres=postgres, overlap=overlap)
    try:
        bench.start()
        scenarios = bench.scenarios(quick)
        rounds = []
        pace = (0.05 if quick else 1.0) if pace is None else pace
        call_s = mean_call_seconds(scenarios, pace)
        for n in calls:
            print(f"bench: Poisson arrivals, {n} calls in progress (mean call {call_s:.1f} s,"
                  f" paced x{pace:g})...", flush=True)
            rounds.append(bench.poisson_round(n, pace, call_s, measure))
        if stress:
            for n in calls:
                print(f"bench: {n} calls at once, no pause...", flush=True)
                rounds.append(bench.stress_round(n))
    finally:
        bench.stop()
    result = Report(
        machine=machine_info(),
        config={"workers": workers, "threads": threads, "worker_class": "gthread",
                "clinicea_latency": f"{latency_ms} ms +- {jitter_ms} ms", "quick": quick,
                "calls": list(calls), "clinic_clock": BENCH_NOW, "pace": pace,
                "store": "PostgreSQL" if postgres else "SQLite",
                "overlap": bench.overlap_state, "mean_call_s": round(call_s, 2),
                "measure": measure},
        scenarios=scenarios, rounds=rounds,
    )
    if write:
        out = Path(out_dir) if out_dir else Path(__file__).resolve().parent / "results"
        report_mod.write(result, out)
    shutil.rmtree(workdir, ignore_errors=True)
    return result
