"""What a real server writes, as an operator's tools read it: `/metrics` through Prometheus' own
parser across gunicorn workers and the booking worker process, and every line of output as one
JSON object. Real processes (the Procfile's gunicorn, `ivr worker`, `ivr serve`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ivr.simulator import TwilioSimulator
from tests.demo import ROOT

PY = sys.executable
TWILIO_TOKEN = "a-real-looking-twilio-token"
UNKNOWN = ("+923001112223", "+923001112224", "+923001112225", "+923001112226")


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_", "PROMETHEUS_", "WEB_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **extra}


def _clinicea(url: str) -> dict[str, str]:
    from ivr.sandbox import SANDBOX_API_KEY, SANDBOX_PASSWORD, SANDBOX_USERNAME

    return {"CLINICEA_BASE_URL": url, "CLINICEA_API_KEY": SANDBOX_API_KEY,
            "CLINICEA_USERNAME": SANDBOX_USERNAME, "CLINICEA_PASSWORD": SANDBOX_PASSWORD,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "IVR_SECRET_KEY": "a-real-looking-secret-key-for-tests"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """`/metrics` read by Prometheus' parser, on a fresh connection (any worker may answer)."""
    res = httpx.get(f"{base}/metrics", timeout=10)
    assert res.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(res.text) for s in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float:  # noqa: ANN001
    return samples.get((name, frozenset(labels.items())), 0.0)


def _call(base: str, number: str) -> None:
    """One short call on its own connection: the incoming webhook, then the hang-up."""
    with httpx.Client(base_url=base, timeout=15) as http:
        phone = TwilioSimulator(base, TWILIO_TOKEN, http=http)
        phone.call(number).hang_up()


def _free_time(sandbox: str) -> datetime:
    from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID

    day = date.today() + timedelta(days=3)
    while day.weekday() > 3:  # Monday to Thursday: open 09:00-17:00
        day += timedelta(days=1)
    rows = httpx.get(f"{sandbox}/_sandbox/appointments", params={"date": day.isoformat()}).json()
    busy = {r["StartDateTime"][:16] for r in rows if r.get("StaffID") == DEMO_DOCTOR_FAROOQ_ID}
    times = [datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=20 * i)
             for i in range(24)]
    return next(t for t in times if t.isoformat()[:16] not in busy)


def _json_lines(*texts: str) -> list[dict]:
    """Every line of `texts` as a JSON object (AssertionError naming the first that is not)."""
    out = []
    for text in texts:
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not one JSON object: {line!r}") from None
            assert isinstance(out[-1], dict), line
    return out


def test_metrics_sum_every_web_worker_dead_or_alive_and_the_booking_worker(tmp_path: Path):
    """The Procfile on one host (web: gunicorn, 2 workers; worker: `ivr worker`) with one
    PROMETHEUS_MULTIPROC_DIR: `/metrics` from either worker counts the webhooks of workers
    that were killed, of their replacements, and the booking worker's Clinicea requests."""
    from ivr.outbox import BookingPayload
    from ivr.sandbox import DEMO_PATIENTS
    from ivr.sandbox.seed import (
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_DOCTOR_FAROOQ_ID,
        DEMO_SERVICE_CONSULTATION_ID,
    )
    from ivr.store import Store

    sandbox_port, port = _free_port(), _free_port()
    sandbox, base = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{port}"
    metrics_dir = tmp_path / "metrics"
    env = _env(**_clinicea(sandbox), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
               WEB_CONCURRENCY="2", PORT=str(port))
    clinicea = subprocess.Popen([PY, "-m", "ivr.cli", "sandbox", "--port", str(sandbox_port)],
                                env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    procs = [clinicea]
    try:
        _wait_http(f"{sandbox}/_sandbox/faults", clinicea)
        store = Store(f"sqlite:///{tmp_path / 'ivr.db'}")
        store.migrate()
        # The Procfile's worker first, and it books: the web server's start that follows keeps
        # the figures of a live process.
        with open(tmp_path / "worker.out", "wb") as out, open(tmp_path / "worker.err", "wb") as err:
            worker = subprocess.Popen([PY, "-m", "ivr.cli", "worker"], cwd=tmp_path, env=env,
                                      stdout=out, stderr=err, start_new_session=True)
        procs.append(worker)
        start = _free_time(sandbox)
        payload = BookingPayload(DEMO_DOCTOR_FAROOQ_ID, start, DEMO_PATIENTS["Bilal Ahmed"].id,
                                 DEMO_CLINIC_CLIFTON_ID, DEMO_SERVICE_CONSULTATION_ID,
                                 call_sid="CA" + "5" * 32)
        store.enqueue_booking("metrics-test", call_sid="CA" + "5" * 32,
                              payload=payload)
        deadline = time.monotonic() + 60
        while (record := store.get_booking("metrics-test")).status != "booked":
            assert time.monotonic() < deadline, (record.status, record.last_error)
            time.sleep(0.2)
        store.dispose()
        assert list(metrics_dir.glob(f"*_{worker.pid}.db"))
        with open(tmp_path / "web.out", "wb") as out, open(tmp_path / "web.err", "wb") as err:
            web = subprocess.Popen(
                [PY, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                 "ivr.app:create_app()"], cwd=tmp_path, env=env, stdout=out, stderr=err,
                start_new_session=True)
        procs.append(web)
        _wait_http(f"{base}/healthz", web)

        _call(base, UNKNOWN[0])
        _call(base, UNKNOWN[1])
        first = _children(web.pid)
        assert len(first) == 2, first
        for pid in first:  # whichever served the calls is gone now
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while len(set(_children(web.pid)) - set(first)) < 2:
            assert time.monotonic() < deadline, "gunicorn did not replace its workers"
            time.sleep(0.1)
        _wait_http(f"{base}/healthz", web)
        _call(base, UNKNOWN[2])
        _call(base, UNKNOWN[3])


        for _ in range(3):  # a scrape of any worker, each on its own connection
            s = _scrape(base)
            # Four calls, two served by killed workers: nothing lost, nothing counted twice.
            assert _value(s, "ivr_webhook_seconds_count", step="incoming") == 4
            assert _value(s, "ivr_webhook_seconds_count", step="status") == 4
            assert _value(s, "ivr_webhook_own_seconds_bucket", step="incoming", le="+Inf") == 4
            assert _value(s, "ivr_clinicea_request_seconds_count", operation="search") == 4
            # Only the booking worker booked: its process's requests are in the sums.
            assert _value(s, "ivr_clinicea_request_seconds_count", operation="book") == 1
            assert _value(s, "ivr_outbox_bookings", status="booked") == 1
            assert _value(s, "ivr_store_up") == 1
        recorded = {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("*.db")}
        assert worker.pid in recorded and recorded & set(first), (recorded, first)
        assert _value(s, "ivr_metrics_workers_merged") == len(recorded)
        live = {int(dict(labels)["pid"]) for name, labels in s
                if name == "ivr_process_resident_memory_bytes"}
        assert live and live <= set(_children(web.pid))  # live workers only, never summed
        assert oct(metrics_dir.stat().st_mode & 0o777) == "0o700"
    finally:
        for proc in reversed(procs):
            _stop(proc)
    # The Procfile's processes wrote nothing but JSON lines, gunicorn's own included.
    lines = _json_lines(*((tmp_path / n).read_text() for n in
                          ("web.out", "web.err", "worker.out", "worker.err")))
    messages = [line["message"] for line in lines]
    assert any(m.startswith("Booting worker") for m in messages)
    assert any(m == "booking worker running; Ctrl-C to stop" for m in messages)


def test_a_new_server_start_counts_from_zero(tmp_path: Path):
    """Figures of an earlier start are not carried into the next one: a server killed outright
    leaves its files, which the next start removes; a server stopped cleanly leaves none."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    metrics_dir = tmp_path / "metrics"
    env = _env(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    for stop in (signal.SIGKILL, signal.SIGTERM):
        serve = subprocess.Popen([PY, "-m", "ivr.cli", "serve", "--port", str(port)],
                                 cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_http(f"{base}/healthz", serve)
            with httpx.Client(base_url=base, timeout=15) as http:
                TwilioSimulator(base, "demo-twilio-auth-token", http=http).call(
                    UNKNOWN[0]).hang_up()
            assert _value(_scrape(base), "ivr_webhook_seconds_count", step="incoming") == 1
            os.killpg(serve.pid, stop)
            serve.wait(timeout=60)
        finally:
            _stop(serve)
        left = list(metrics_dir.glob("*.db"))
        assert left if stop == signal.SIGKILL else not left, left


def test_every_line_ivr_serve_writes_is_one_json_object(tmp_path: Path):
    """`ivr serve` in demo mode: a whole call through `ivr call`, a request whose path holds a
    quote and a newline, a stop; stdout and stderr of the supervisor, gunicorn, the web worker,
    the booking worker and the sandbox parse line by line as JSON."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        serve = subprocess.Popen([PY, "-m", "ivr.cli", "serve", "--port", str(port)],
                                 cwd=tmp_path, env=env, stdout=out, stderr=err,
                                 start_new_session=True)
    try:
        _wait_http(f"{base}/healthz", serve)
        call = subprocess.run([PY, "-m", "ivr.cli", "call", "--url", base], cwd=tmp_path,
                              env=env, input="1\n1\n1\n\n1\n", capture_output=True, text=True,
                              timeout=120)
        assert call.returncode == 0, call.stderr
        assert "You're booked for" in call.stdout
        odd = httpx.get(f"{base}/no%22such%0apage", timeout=10)
        assert odd.status_code == 404
        s = _scrape(base)
        assert _value(s, "ivr_webhook_seconds_count", step="incoming") == 1
        assert _value(s, "ivr_clinicea_request_seconds_count", operation="book") == 1
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
    finally:
        _stop(serve)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    lines = _json_lines(stdout, stderr)
    assert len({json.dumps(line) for line in lines}) == len(lines)  # none printed twice
    access = [line for line in _json_lines(stdout) if line["logger"] == "gunicorn.access"]
    [weird] = [line for line in access if "such" in line["path"]]
    assert weird["path"] == '/no"such\npage' and weird["status"] == 404
    assert weird["method"] == "GET" and weird["bytes"] > 0 and weird["remote"] == "127.0.0.1"
    assert isinstance(weird["duration_ms"], float) and "call_sid" not in weird
    voice = [line for line in access if line["path"].startswith("/voice/")]
    assert len(voice) >= 6 and all(line["call_sid"].startswith("CA") for line in voice)
    assert len({line["call_sid"] for line in voice}) == 1
    messages = [line["message"] for line in lines]
    for expected in ("Starting gunicorn", "Booting worker", "Handling signal"):
        assert any(m.startswith(expected) for m in messages), (expected, messages)
    assert any(m.startswith("clinic-ivr listening on") for m in messages)
    times = [line["time"] for line in lines]
    assert all(t.endswith("Z") and t[10] == "T" for t in times)


def test_an_unusable_metrics_directory_stops_the_start_with_one_line(tmp_path: Path):
    taken = tmp_path / "not-a-directory"
    taken.write_text("")
    env = _env(PROMETHEUS_MULTIPROC_DIR=str(taken))
    serve = subprocess.run([PY, "-m", "ivr.cli", "serve", "--port", str(_free_port())],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    web = subprocess.run([PY, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                          "ivr.app:create_app()"], cwd=tmp_path,
                         env={**env, "PORT": str(_free_port())}, capture_output=True, text=True,
                         timeout=60)
    for done in (serve, web):
        assert done.returncode == 2, done.stderr
        [line] = [line for line in done.stderr.splitlines() if "PROMETHEUS_MULTIPROC_DIR" in line]
        assert line.startswith("configuration error: PROMETHEUS_MULTIPROC_DIR: ")
        assert "Traceback" not in done.stderr
