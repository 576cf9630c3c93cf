"""Processes the benchmark starts: the sandbox Clinicea and two gunicorn servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}):\n"
                               f"{_tail(log)}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: not answering after {timeout:.0f} s:\n{_tail(log)}")


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    """A running subprocess serving HTTP at `url`; `log` holds its stdout and stderr."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    _fh: object = field(repr=False, default=None)

    def worker_pids(self) -> list[int]:
        """Pids of the gunicorn workers (children of the master)."""
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(entry))
        return sorted(pids)

    def peak_rss_mb(self) -> list[float]:
        """VmHWM (peak resident memory) of each worker, in MiB."""
        out = []
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            out.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return out

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and close its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._fh is not None:
            self._fh.close()  # type: ignore[attr-defined]


def start_sandbox(workdir: Path, now: str, latency_ms: int, jitter_ms: int) -> Server:
    """The sandbox Clinicea in its own process (bench.apps), on a free port."""
    port = free_port()
    log = workdir / "sandbox.log"
    fh = open(log, "wb")  # noqa: SIM115 - closed by Server.stop
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.apps", "sandbox", str(port), now, str(latency_ms),
         str(jitter_ms)],
        cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=_env({}),
    )
    server = Server("sandbox", proc, f"http://127.0.0.1:{port}", log, fh)
    try:
        _wait_http(server.url + "/_sandbox/faults", proc, log)
    except Exception:
        server.stop()
        raise
    return server


def start_gunicorn(name: str, app_spec: str, workdir: Path, *, workers: int, threads: int,
                   env: dict[str, str], health: str = "/healthz") -> Server:
    """`app_spec` under gunicorn with the project's gunicorn.conf.py, on a free port."""
    port = free_port()
    log = workdir / f"{name}.log"
    fh = open(log, "wb")  # noqa: SIM115 - closed by Server.stop
    cmd = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
           "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
           "--access-logfile", "/dev/null", "--no-control-socket", app_spec]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env=_env(env))
    server = Server(name, proc, f"http://127.0.0.1:{port}", log, fh)
    try:
        _wait_http(server.url + health, proc, log)
        # Every worker has booted (create_app ran) before the clock starts.
        deadline = time.monotonic() + 30
        while len(server.worker_pids()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
    except Exception:
        server.stop()
        raise
    return server


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLINICEA_", "IVR_", "TWILIO_", "WEB_CONCURRENCY"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
