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
3. **Load rounds**: for each N in `calls`, N simulated calls start at once (a thread each, one
   pooled httpx client over real HTTP, no pause between turns: a worst case, real callers take
   seconds per turn), 4 in 5 returning patients and 1 in 5 new callers, choosing doctors and
   slots at random. Then N baseline calls with the same number of turns against the bare app.
   Per webhook: the latency the caller's side sees, the app's `X-IVR-Own-Ms` and
   `X-IVR-Clinicea-Ms` headers; errors (transport errors, timeouts after Twilio's 15 s, non-2xx,
   apologies and ERROR lines in the app's log); peak RSS per gunicorn worker; Clinicea logins.

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

from bench.servers import Server, start_gunicorn, start_sandbox
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
RETURNING = ("+923216315551", "+923451234567", "+923007654321", "+923215550001",
             "+923335550003", "+923331234567", "+923125550002", "+923001234567")

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
    """One load round: N concurrent calls on the app, then N on the baseline."""

    mode: str  # "paced" (callers listen before answering) or "stress" (no pause)
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
                sink.append(Sample(step, time.perf_counter() - started, error=type(exc).__name__))
            raise
        if sink is not None:
            sink.append(Sample(step, time.perf_counter() - started, response.status_code,
                               _float(response.headers.get("X-IVR-Own-Ms")),
                               _float(response.headers.get("X-IVR-Clinicea-Ms"))))
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
    if step == "menu":
        call.press("0" if kind == "transfer" else "1")
    elif step in ("language", "new_caller", "name_confirm", "who", "same_doctor", "offer_one",
                  "confirm"):
        call.press("1")
    elif step == "name":
        call.say(NEW_NAME)
    elif step == "doctor":
        call.press(pick("1234"))
    elif step in ("slots", "day_slots"):
        call.press(pick("1123"))
    elif step == "reason":
        call.silence()
    else:
        return False
    return True


def listen(call: Any, pace: float, rng: random.Random | None = None) -> None:
    """Wait as long as the caller needs to hear the last prompt and press a key, x `pace`.

    With `rng` the wait varies by +-40% (callers differ; it also keeps N callers who started
    together from answering in lockstep).
    """
    if pace > 0:
        words = _words(call.last_heard)
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
    result = CallResult(number, kind, samples)
    call = None
    try:
        call = sim.call(from_=number, dial_outcome="completed")
        turns = 0
        while call.waiting and turns < MAX_TURNS:
            step = step_of(urlsplit(call.gather_url or "").path)
            listen(call, pace, rng)
            if not _answer(call, step, kind, rng):
                break
            turns += 1
        if not call.ended:
            call.hang_up()
    except Exception as exc:  # a simulator or HTTP failure: counted, the run goes on
        result.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        _local.sink = None
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
    result = CallResult("+923000000000", "baseline", samples)
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
    return result


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
                 jitter_ms: int, postgres: str | None = None) -> None:
        self.workdir = workdir
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

    def sandbox_requests(self) -> list[dict[str, Any]]:
        assert self.sandbox is not None
        response = self.admin.get(self.sandbox.url + "/_sandbox/requests")
        response.raise_for_status()
        return response.json()

    # -- scenarios

    def scenarios(self, quick: bool) -> list[Scenario]:
        scripts = [("returning patient, keypad booking", "+923216315551", "book"),
                   ("new patient, registers and books", "+923009876543", "book"),
                   ("transferred to reception", "+923216315551", "transfer")]
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
                    round(sum(s.seconds for s in result.samples) * 1000, 1)))
                if not quick:
                    app.stop()
                    app = None
        finally:
            if app is not None:
                app.stop()
        return out

    # -- load

    def load_round(self, n: int, pace: float) -> Round:
        assert self.baseline is not None
        self.reset_sandbox()
        app = self.start_app()
        log_start = app.log.stat().st_size
        deadline = 60.0 + n * 1.5 + pace * 120
        try:
            with http_client(n + 8) as http:
                sim = TwilioSimulator(app.url, AUTH_TOKEN, http=http, to=CLINIC_NUMBER,
                                      seed=n)

                def one(i: int) -> CallResult:
                    rng = random.Random(i * 7919 + n)
                    if i % 5 == 4:
                        return drive_call(sim, f"+92300{9000000 + i}", "book", rng, pace)
                    return drive_call(sim, RETURNING[i % len(RETURNING)], "book", rng, pace)

                results, wall = run_concurrently(n, one, deadline_s=deadline)
            peak = [round(m, 1) for m in app.peak_rss_mb()]
        finally:
            app.stop()
        log_lines = _json_lines(app.log, log_start)
        apologies = sum(1 for line in log_lines if "apology" in line.get("message", ""))
        error_lines = [line for line in log_lines if line.get("level") in ("ERROR", "CRITICAL")]
        requests = Counter(r["operation"] or "other" for r in self.sandbox_requests())
        logins = requests.pop("login", 0)

        with http_client(n + 8) as http:
            bsim = TwilioSimulator(self.baseline.url, AUTH_TOKEN, http=http, to=CLINIC_NUMBER,
                                   seed=n)
            bresults, bwall = run_concurrently(
                n, lambda i: drive_baseline_call(bsim, BASELINE_TURNS, pace,
                                                 random.Random(i * 7919 + n)),
                deadline_s=deadline)

        samples = [s for r in results for s in r.samples]
        bsamples = [s for r in bresults for s in r.samples]
        ok = [s for s in samples if s.error is None]
        bok = [s for s in bsamples if s.error is None]
        timeouts = sum(1 for s in samples if s.error and "Timeout" in s.error)
        failed = [s for s in samples if s.error or (s.status or 0) >= 400]
        call_failures = [r.failure for r in results if r.failure]
        errors = (len(failed) + len(call_failures) + sum(r.app_errors for r in results)
                  + apologies + len(error_lines))
        booked = sum(1 for r in results if r.booked)
        own = Percentiles.of([s.own_seconds for s in ok])
        base = Percentiles.of([s.seconds for s in bok])
        examples = [f"{s.step}: {s.error or s.status}" for s in failed[:3]]
        examples += [f or "" for f in call_failures[:3]]
        examples += [line.get("message", "")[:160] for line in error_lines[:3]]
        total_requests = sum(requests.values())
        steps: dict[str, list[Sample]] = {}
        for s in ok:
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
        return Round(
            mode="paced" if pace else "stress", calls=n, wall_s=round(wall, 2),
            webhooks=len(samples),
            throughput=round(len(ok) / wall, 1) if wall else 0.0, booked=booked,
            transferred=sum(1 for r in results if r.transferred), errors=errors,
            timeouts=timeouts, apologies=apologies,
            app_latency=Percentiles.of([s.seconds for s in ok]), app_own=own,
            server_own=Percentiles.of([(s.own_ms or 0) / 1000 for s in ok
                                       if s.own_ms is not None]),
            baseline_latency=base, baseline_wall_s=round(bwall, 2),
            baseline_webhooks=len(bsamples),
            baseline_throughput=round(len(bok) / bwall, 1) if bwall else 0.0,
            baseline_errors=(sum(1 for s in bsamples if s.error or (s.status or 0) >= 400)
                             + sum(1 for r in bresults if r.failure)),
            own_p99_ratio=round(own.p99 / base.p99, 2) if base.p99 else float("nan"),
            peak_rss_mb=peak, logins=logins, clinicea_requests=dict(sorted(requests.items())),
            requests_per_booked_call=round(total_requests / booked, 2) if booked else 0.0,
            error_examples=examples, by_step=by_step,
        )


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
        stress: bool = True, postgres: str | None = None) -> Report:
    """Run the benchmark and return its figures; with `write`, also the markdown and the PNG.

    For each N in `calls`: a paced round (callers listen to every prompt, `pace` x real time,
    default 1.0; 0.05 in `quick` mode) and, with `stress`, a round with no pause between turns.
    `out_dir` defaults to bench/results/. `quick` runs the three scenarios on one app start.
    `postgres` (a server URL) stores the app's data in a fresh PostgreSQL database per app
    start instead of a SQLite file.
    """
    from bench import report as report_mod

    workers = workers or max(2, os.cpu_count() or 2)
    workdir = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    bench = _Bench(workdir, workers=workers, threads=threads, latency_ms=latency_ms,
                   jitter_ms=jitter_ms, postgres=postgres)
    try:
        bench.start()
        scenarios = bench.scenarios(quick)
        rounds = []
        pace = (0.05 if quick else 1.0) if pace is None else pace
        for n in calls:
            print(f"bench: {n} concurrent calls, paced x{pace:g}...", flush=True)
            rounds.append(bench.load_round(n, pace))
        if stress:
            for n in calls:
                print(f"bench: {n} concurrent calls, no pause...", flush=True)
                rounds.append(bench.load_round(n, 0.0))
    finally:
        bench.stop()
    result = Report(
        machine=machine_info(),
        config={"workers": workers, "threads": threads, "worker_class": "gthread",
                "clinicea_latency": f"{latency_ms} ms +- {jitter_ms} ms", "quick": quick,
                "calls": list(calls), "clinic_clock": BENCH_NOW, "pace": pace,
                "store": "PostgreSQL" if postgres else "SQLite"},
        scenarios=scenarios, rounds=rounds,
    )
    if write:
        out = Path(out_dir) if out_dir else Path(__file__).resolve().parent / "results"
        report_mod.write(result, out)
    shutil.rmtree(workdir, ignore_errors=True)
    return result
