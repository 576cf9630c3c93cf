"""The booking worker: one `OutboxWorker` on a runtime, with its texts and reminders passes.

`ivr worker` and `ivr serve`'s worker process both build it here, without Flask: the outbox
(bookings Clinicea has not confirmed), confirmation texts, and the clinic's reminders when its
file has `[reminders]` (docs/reminders.md).
"""

from __future__ import annotations

import socket
import threading

from ivr.outbox import OutboxWorker
from ivr.reminders import run_for
from ivr.runtime import Runtime
from ivr.texts import TextSender


def build_worker(rt: Runtime) -> OutboxWorker:
    """The process's worker on the runtime's one Outbox (so what it books is dropped from the
    calendar cache the same process reads)."""
    worker_id = f"{socket.gethostname()}-worker"
    sms = rt.services.sms
    texts = TextSender(rt.store, sms, worker_id=worker_id) if sms is not None else None
    return rt.services.outbox.worker(worker_id, texts=texts, reminders=run_for(rt, worker_id))


def run_until_stopped(rt: Runtime, stop: threading.Event) -> None:
    """Work the passes until `stop` is set (SIGTERM in the launchers)."""
    build_worker(rt).run_forever(stop)
