"""The process model (docs/design.md): what `ivr serve` and the Procfile run, as an operator sees
it. Real processes, real gunicorn, the sandbox Clinicea over HTTP."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.demo import ROOT
from tests.pg import fresh_schema_url

PY = sys.executable
REAL_SECRETS = {"TWILIO_AUTH_TOKEN": "a-real-looking-twilio-token",
                "IVR_SECRET_KEY": "a-real-looking-secret-key-for-tests"}


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CLINICEA_", "TWILIO_", "IVR_"))}
    return {**clean, "PYTHONPATH": str(ROOT), **extra}


def _clinicea(url: str) -> dict[str, str]:
    """The environment of a deployment against the sandbox at `url` (not demo mode)."""
    from ivr.sandbox import SANDBOX_API_KEY, SANDBOX_PASSWORD, SANDBOX_USERNAME

    return {"CLINICEA_BASE_URL": url, "CLINICEA_API_KEY": SANDBOX_API_KEY,
            "CLINICEA_USERNAME": SANDBOX_USERNAME, "CLINICEA_PASSWORD": SANDBOX_PASSWORD,
            **REAL_SECRETS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start_serve(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PY, "-m", "ivr.cli", "serve", "--port", str(port)], env=env,
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own process group: kill it whole


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, seconds: float) -> float:
    """Seconds until /healthz answered 200; AssertionError past `seconds` or if it exits."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if _healthy(base):
            return time.monotonic() - started
        assert proc.poll() is None, f"ivr serve exited with {proc.returncode}"
        time.sleep(0.1)
    raise AssertionError(f"ivr serve did not answer /healthz within {seconds} s")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _group(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _store_fds(pid: int, folder: Path) -> list[int]:
    fds = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder / "ivr.db")):
            fds.append(int(fd))
    return fds


_KCMP_FILE = 0
_SYS_KCMP = {"x86_64": 312, "aarch64": 272}


def _same_open_file(pid1: int, fd1: int, pid2: int, fd2: int) -> bool:
    """kcmp(2): do two descriptors of two processes share one open file (a fork's copy)?"""
    number = _SYS_KCMP.get(os.uname().machine)
    if number is None:
        pytest.skip(f"kcmp(2) syscall number unknown on {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(number, pid1, pid2, _KCMP_FILE, fd1, fd2)
    if result < 0:
        pytest.skip(f"kcmp(2) not permitted here: errno {ctypes.get_errno()}")
    return result == 0


def test_serve_processes_share_no_store_descriptor(tmp_path: Path):
    """Every process of `ivr serve` that uses the store opened it itself: no `ivr.db`, `-wal` or
    `-shm` descriptor is a copy inherited across a fork (SQLite forbids carrying one)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_serve(port, tmp_path, _env())
    try:
        _wait_healthy(proc, base, 60)
        time.sleep(1.0)  # the booking worker's first pass has opened the store too
        holders = {pid: _store_fds(pid, tmp_path) for pid in _group(proc.pid)}
        holders = {pid: fds for pid, fds in holders.items() if fds}
        assert len(holders) >= 2, holders  # the web worker and the booking worker
        shared = [(p1, f1, p2, f2)
                  for p1, fds1 in holders.items() for p2, fds2 in holders.items() if p1 < p2
                  for f1 in fds1 for f2 in fds2 if _same_open_file(p1, f1, p2, f2)]
        assert shared == []
    finally:
        _kill_group(proc)


def _postgres_sockets() -> set[str]:
    """Inodes of this host's TCP connections to port 5432 (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[2].endswith(":1538"):  # remote port 5432
                found.add(fields[9])
    return found


def test_serve_processes_share_no_postgresql_connection(tmp_path: Path, pg_database: str):
    """On PostgreSQL every process of `ivr serve` has its own connections: no socket to the
    database is held by two processes (it was: gunicorn's master and its worker)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(IVR_DATABASE_URL=fresh_schema_url(pg_database))
    proc = _start_serve(port, tmp_path, env)
    try:
        _wait_healthy(proc, base, 60)
        time.sleep(1.0)
        database = _postgres_sockets()
        holders: dict[str, set[int]] = {}
        for pid in _group(proc.pid):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                inode = target.removeprefix("socket:[").removesuffix("]")
                if target.startswith("socket:") and inode in database:
                    holders.setdefault(inode, set()).add(pid)
        assert len({pid for pids in holders.values() for pid in pids}) >= 2, holders
        assert {inode: pids for inode, pids in holders.items() if len(pids) > 1} == {}
    finally:
        _kill_group(proc)


def _free_times(sandbox: str, count: int) -> list[datetime]:
    """`count` free 20-minute times with Dr. Farooq on an open weekday a few days ahead."""
    from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID

    day = date.today() + timedelta(days=3)
    while day.weekday() > 3:  # Monday to Thursday: open 09:00-17:00
        day += timedelta(days=1)
    rows = httpx.get(f"{sandbox}/_sandbox/appointments", params={"date": day.isoformat()}).json()
    busy = {r["StartDateTime"][:16] for r in rows if r.get("StaffID") == DEMO_DOCTOR_FAROOQ_ID}
    times = [datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=20 * i)
             for i in range(24)]
    free = [t for t in times if t.isoformat()[:16] not in busy]
    assert len(free) >= count
    return free[:count]


def _farooq_at(sandbox: str, start: datetime) -> list[dict]:
    from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID

    rows = httpx.get(f"{sandbox}/_sandbox/appointments",
                     params={"date": start.date().isoformat()}).json()
    return [r for r in rows if r.get("StaffID") == DEMO_DOCTOR_FAROOQ_ID
            and r["StartDateTime"][:16] == start.isoformat()[:16]
            and r.get("AppointmentStatus", r.get("Status")) not in ("Cancelled", "No Show")]


@pytest.mark.slow
def test_serve_killed_ten_times_with_bookings_waiting_books_each_exactly_once(tmp_path: Path):
    """SIGKILL to the whole of `ivr serve` at random moments, ten times, while the booking
    worker sends what waits in the outbox to a slow Clinicea: every start comes back up, and in
    the end every booking is in Clinicea exactly once. How fast a start answers is printed, not
    asserted: on a loaded machine a start took 10-16 s, and a time bound here failed by chance."""
    from ivr.outbox import BookingPayload
    from ivr.sandbox import DEMO_PATIENTS
    from ivr.sandbox.seed import (
        DEMO_CLINIC_CLIFTON_ID,
        DEMO_DOCTOR_FAROOQ_ID,
        DEMO_SERVICE_CONSULTATION_ID,
    )
    from ivr.store import Store

    sandbox_port, port = _free_port(), _free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    base = f"http://127.0.0.1:{port}"
    # Its own process, outside the server's group: it survives the kills, as Clinicea would.
    clinicea = subprocess.Popen(
        [PY, "-m", "ivr.cli", "sandbox", "--port", str(sandbox_port), "--faults",
         "latency=400:300"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = None
    try:
        for _ in range(200):
            try:
                httpx.get(f"{sandbox}/_sandbox/faults", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        starts = _free_times(sandbox, 6)
        db = tmp_path / "ivr.db"
        store = Store(f"sqlite:///{db}")
        store.migrate()
        keys = []
        for i, start in enumerate(starts):
            payload = BookingPayload(DEMO_DOCTOR_FAROOQ_ID, start,
                                     DEMO_PATIENTS["Bilal Ahmed"].id, DEMO_CLINIC_CLIFTON_ID,
                                     DEMO_SERVICE_CONSULTATION_ID, call_sid=f"CA{i}")
            keys.append(f"kill-test-{i}")
            store.enqueue_booking(keys[-1], call_sid=f"CA{i}", payload=payload)
        env = _env(**_clinicea(sandbox))
        rng = random.Random(8)
        took = []
        for _ in range(10):
            proc = _start_serve(port, tmp_path, env)
            took.append(_wait_healthy(proc, base, 60))
            time.sleep(rng.uniform(0.0, 2.5))  # somewhere in a pass, a POST, or between
            _kill_group(proc)
        proc = _start_serve(port, tmp_path, env)
        took.append(_wait_healthy(proc, base, 60))
        print("seconds to /healthz per start:", " ".join(f"{t:.1f}" for t in took))
        deadline = time.monotonic() + 180  # rows claimed by a killed worker wait out its lease
        while time.monotonic() < deadline:
            records = [store.get_booking(k) for k in keys]
            if all(r is not None and r.status in ("booked", "failed") for r in records):
                break
            time.sleep(0.5)
        assert [r.status for r in records] == ["booked"] * len(keys), [
            (r.status, r.last_error, r.failure_reason) for r in records]
        for start, record in zip(starts, records, strict=True):
            [appointment] = _farooq_at(sandbox, start)
            assert appointment["ID"] == record.appointment_id
        store.dispose()
    finally:
        if proc is not None:
            _kill_group(proc)
        clinicea.terminate()
        clinicea.wait(10)


_HOST = """
import sys, threading
from ivr.app import create_app, runtime_of
from ivr.phone import parse_phone
rt = runtime_of(create_app())
rt.store.migrate()  # the launcher's part (ivr migrate): the app factory does not migrate
phone = parse_phone("+923216315551", "PK")
threads = [threading.Thread(target=rt.client.search_patients, args=(phone,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(rt.client.counters["login"], rt.client.counters["search"])
rt.close()
"""


def test_two_app_hosts_on_postgresql_log_in_to_clinicea_once(
        tmp_path: Path, pg_database: str):
    """Two hosts (no shared temp directory, so no shared token file), one PostgreSQL: the
    Clinicea token is shared through the database, one login for both."""
    from ivr.clock import SystemClock
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    url = fresh_schema_url(pg_database)
    state = SandboxState(SystemClock("Asia/Karachi"))
    with EmbeddedSandbox(state) as sandbox:
        hosts = []
        for name in ("host-a", "host-b"):
            tmp = tmp_path / name
            tmp.mkdir()
            env = _env(**_clinicea(sandbox.base_url), IVR_DATABASE_URL=url, TMPDIR=str(tmp))
            hosts.append(subprocess.Popen([PY, "-c", _HOST], env=env, cwd=tmp, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for host in hosts:
            out, err = host.communicate(timeout=120)
            assert host.returncode == 0, err
        logins = [r for r in state.requests() if r.operation == "login"]
        searches = [r for r in state.requests() if r.operation == "search"]
    assert len(searches) == 8
    assert len(logins) == 1


def test_slow_senders_do_not_hold_up_healthz(tmp_path: Path):
    """Twelve connections each sending a POST body one byte at a time (more than `ivr serve`
    has threads): while they are all still open and sending, /healthz answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_serve(port, tmp_path, _env())
    slow: list[socket.socket] = []
    try:
        _wait_healthy(proc, base, 60)
        head = (f"POST /voice/incoming HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 1000\r\n\r\n").encode()
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(head + b"C")
            slow.append(s)
        for _ in range(3):  # every thread of a stock gthread server would now be reading
            time.sleep(0.5)
            for s in slow:
                s.sendall(b"a")
        answered = httpx.get(f"{base}/healthz", timeout=8)
        assert answered.status_code == 200
        for s in slow:  # still open, still sending, no answer yet
            s.sendall(b"a")
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        for s in slow:
            s.close()
        _kill_group(proc)


@pytest.mark.parametrize(("data", "complete"), [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", False),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcd", False),
    (b"POST / HTTP/1.1\r\ncontent-length:5\r\n\r\nabcde", True),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", True),
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"a" * 200_000, True),
])
def test_a_request_is_handed_to_a_thread_only_when_whole(data: bytes, complete: bool):
    from ivr.webserver import request_complete

    assert request_complete(data) is complete


def _procfile_web(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """The Procfile's `web:` line, as a platform runs it."""
    [web] = [line.split(":", 1)[1].split() for line in (ROOT / "Procfile").read_text().splitlines()
             if line.startswith("web:")]
    assert web[:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    args = [PY, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
            *(a.strip('"') for a in web[3:])]
    return subprocess.Popen(args, cwd=cwd, env={**env, "PORT": str(port)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def test_procfile_web_with_a_bad_setting_stops_with_one_line(tmp_path: Path):
    bad = tmp_path / "clinic.toml"
    bad.write_text('name = "X"\ntimezone = "Mars/Base"\n')
    web = _procfile_web(_free_port(), tmp_path, _env(IVR_CLINIC_CONFIG=str(bad)))
    try:
        out, err = web.communicate(timeout=60)
    finally:
        _kill_group(web)  # type: ignore[arg-type]
    assert web.returncode == 2
    [line] = err.strip().splitlines()
    assert line.startswith("configuration error:") and "Mars/Base" in line


def test_two_deployments_on_one_host_share_no_gunicorn_control_socket(tmp_path: Path):
    """Neither `ivr serve` nor the Procfile's gunicorn opens ~/.gunicorn/gunicorn.ctl, which two
    deployments run by one user would otherwise fight over."""
    env = {k: v for k, v in _env(HOME=str(tmp_path)).items() if k != "XDG_RUNTIME_DIR"}
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    serve_port, web_port = _free_port(), _free_port()
    serve = _start_serve(serve_port, a, env)
    web = _procfile_web(web_port, b, {**env, "WEB_CONCURRENCY": "2"})
    try:
        _wait_healthy(serve, f"http://127.0.0.1:{serve_port}", 60)
        _wait_healthy(web, f"http://127.0.0.1:{web_port}", 60)  # type: ignore[arg-type]
        assert not (tmp_path / ".gunicorn").exists()
    finally:
        _kill_group(serve)
        _kill_group(web)  # type: ignore[arg-type]


def _role_pids(pgid: int, role: str) -> list[int]:
    found = []
    for pid in _group(pgid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ivr.serve" in argv and role.encode() in argv:
            found.append(pid)
    return found


def test_serve_restarts_a_dead_booking_worker_and_stops_whole_on_sigterm(tmp_path: Path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_serve(port, tmp_path, _env())
    try:
        _wait_healthy(proc, base, 60)
        [worker] = _role_pids(proc.pid, "worker")
        os.kill(worker, signal.SIGKILL)
        for _ in range(300):
            again = [p for p in _role_pids(proc.pid, "worker") if p != worker]
            if again:
                break
            time.sleep(0.1)
        assert again, "the booking worker was not restarted"
        assert _healthy(base)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # no child left hanging (the demo sandbox once was)
        for _ in range(50):
            if not _group(proc.pid):
                break
            time.sleep(0.1)
        assert _group(proc.pid) == []
    finally:
        _kill_group(proc)


def test_a_forked_copy_of_the_embedded_sandbox_stops_at_once():
    """A process forked from one running the embedded sandbox (its serving thread stays in the
    parent) can stop its copy: stop() used to wait for that thread forever (a demo gunicorn
    worker hung until it was killed)."""
    from ivr.clock import SystemClock
    from ivr.sandbox import EmbeddedSandbox, SandboxState

    with EmbeddedSandbox(SandboxState(SystemClock("Asia/Karachi"))) as sandbox:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            sandbox.stop()
            os._exit(0)
        for _ in range(200):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked copy's stop() did not return within 20 s")
        assert os.waitstatus_to_exitcode(status) == 0
        assert httpx.get(f"{sandbox.base_url}/_sandbox/faults").status_code == 200


@pytest.mark.slow
def test_a_request_that_never_arrives_whole_is_answered_408(tmp_path: Path):
    port = _free_port()
    proc = _start_serve(port, tmp_path, _env())
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}", 60)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /voice/incoming HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                      b"From=%2B92")
            s.settimeout(60)
            answer = s.recv(200)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert s.recv(200) == b""  # and closed
    finally:
        _kill_group(proc)
