"""The directory of prometheus_client's multiprocess mode, for the launchers (ivr/ops.py).

Light on purpose: gunicorn's master and `ivr serve`'s supervisor use it and import nothing of
the app (nor prometheus_client, which must only be imported once `PROMETHEUS_MULTIPROC_DIR` is
in the environment). The library writes one file per process and kind, `<kind>_<pid>.db`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat

from ivr.config import ConfigError

__all__ = ["clean_up", "ensure_dir", "prepare_dir", "process_dead", "recorded_pids"]

_DB_FILE = re.compile(r"^[a-z_]+_(\d+)\.db$")  # counter_<pid>.db, gauge_livesum_<pid>.db, ...


def ensure_dir(path: str) -> None:
    """Create `path` (0700) if missing; ConfigError when it is not a directory of this user."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR: {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR: {path}: not a directory of this user")


def prepare_dir(path: str) -> None:
    """`ensure_dir`, then drop earlier server starts' figures (once per server start).

    Files of processes that are gone are removed (so a new start counts from zero); those of a
    live process stay: the booking worker of the same deployment, started beside the web
    server (Procfile), records into them.
    """
    ensure_dir(path)
    _remove_dead(path)


def clean_up(path: str, *, remove_dir: bool) -> None:
    """At a server's exit: the files of processes that are gone (the next start would drop
    them anyway), and with `remove_dir` (the default temp-dir path) the directory once empty,
    so stopped servers leave nothing in the temp dir. A live booking worker's files stay."""
    with contextlib.suppress(OSError):
        _remove_dead(path)
        if remove_dir:
            os.rmdir(path)


def _remove_dead(path: str) -> None:
    for name in os.listdir(path):
        match = _DB_FILE.match(name)
        if match is not None and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(path, name))


def process_dead(pid: int, path: str) -> None:
    """gunicorn's `child_exit`: the library's bookkeeping for a worker that exited.

    Its counters and histograms stay in `path` and keep counting (totals never go backwards
    while the server runs); only live-gauge files (none here) would be dropped.
    """
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, path)


def recorded_pids(path: str) -> set[int]:
    """The processes (alive or not) whose figures are in `path`."""
    try:
        names = os.listdir(path)
    except OSError:
        return set()
    return {int(m.group(1)) for m in map(_DB_FILE.match, names) if m is not None}


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # no /proc: kill(0) is all we know
