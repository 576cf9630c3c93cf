"""The process's metrics: `prometheus_client` histograms and counters, and what feeds them.

`Metrics` is built with the runtime (`ivr.runtime`), so the web app and the booking worker
record alike; `ivr.ops` serves it (`/metrics`) and times the webhooks. A webhook's time spent
inside Clinicea requests is added up in a `RequestTimes` found through the context variable
`request_times`: the client's `on_request` hook credits it from the webhook's thread and from
any helper thread started with a copy of its context (the booking attempt, `ivr.clinicea_services`).
No Flask here: the worker imports it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

__all__ = [
    "APOLOGY_REASONS",
    "CLINICEA_BUCKETS",
    "REMINDER_CALL_STATUSES",
    "REMINDER_CHANNELS",
    "WEBHOOK_BUCKETS",
    "Metrics",
    "RequestTimes",
    "request_times",
]

# `<name>_created` series (a timestamp per series) are noise here and absent in multiprocess
# mode anyway: one exposition whichever mode the process runs in.
disable_created_metrics()

WEBHOOK_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
CLINICEA_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
APOLOGY_REASONS = frozenset({"error", "fallback", "no_call_sid", "callback_not_recorded"})
REMINDER_CHANNELS = frozenset({"call", "sms"})
REMINDER_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass
class RequestTimes:
    """Clinicea time spent on behalf of one webhook request (its thread and its helpers)."""

    clinicea_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float) -> None:
        """Credit `seconds` of Clinicea time (helper threads add concurrently)."""
        with self.lock:
            self.clinicea_seconds += seconds


# The open webhook's accumulator; `ivr.ops` sets it for each /voice request.
request_times: contextvars.ContextVar[RequestTimes | None] = contextvars.ContextVar(
    "ivr_request_times", default=None
)


class Metrics:
    """The process's metrics (`prometheus_client` objects on its own registry) and the hooks
    that feed them."""

    def __init__(self, steps: Iterable[str] | None = None) -> None:
        if steps is None:
            from flows.booking import FLOW

            steps = (row.key for row in FLOW.rows)
        # Webhook step labels are bounded: flow steps and the fixed endpoints; anything else
        # (a forged URL) is "other", so nobody can blow up the series count.
        self.steps = frozenset(steps) | {"incoming", "status", "fallback"}
        # One registry per app: tests build many apps in one process. Under multiprocess mode
        # the values live in the shared directory instead and `/metrics` reads that.
        self.registry = CollectorRegistry()
        reg = self.registry
        self.webhook = Histogram(
            "ivr_webhook_seconds", "Time to answer a Twilio webhook, by flow step.",
            ["step"], buckets=WEBHOOK_BUCKETS, registry=reg)
        self.webhook_own = Histogram(
            "ivr_webhook_own_seconds",
            "Time to answer a Twilio webhook minus time spent waiting on Clinicea, by step.",
            ["step"], buckets=WEBHOOK_BUCKETS, registry=reg)
        self.webhook_errors = Counter(
            "ivr_webhook_errors", "Webhooks answered with a 5xx.", ["step"], registry=reg)
        self.clinicea = Histogram(
            "ivr_clinicea_request_seconds", "Clinicea HTTP request time by operation "
            "(every attempt, logins and retries included).", ["operation"],
            buckets=CLINICEA_BUCKETS, registry=reg)
        self.clinicea_errors = Counter(
            "ivr_clinicea_errors", "Clinicea attempts that failed: HTTP 401/429/5xx or "
            "no answer (error = status code or exception name).", ["operation", "error"],
            registry=reg)
        self.apologies = Counter(
            "ivr_apologies", "Calls answered with the apology instead of the flow, by "
            "reason (error, fallback, no_call_sid; callback_not_recorded: the store refused "
            "the callback request too).", ["reason"], registry=reg)
        self.reminders_sent = Counter(
            "ivr_reminders_sent", "Reminders handed to Twilio, by channel (call: a call "
            "placed; sms: a text accepted).", ["channel"], registry=reg)
        self.reminder_calls = Counter(
            "ivr_reminder_calls", "Reminder calls ended, by Twilio's final CallStatus "
            "(completed, busy, no-answer, failed, canceled).", ["call_status"], registry=reg)

    # -- the Clinicea client's `on_request(operation, seconds, status_or_error)` hook

    def on_clinicea_request(self, operation: str, seconds: float, outcome: int | str) -> None:
        """Record one Clinicea attempt; credit its time to the webhook waiting for it."""
        self.clinicea.labels(operation).observe(seconds)
        if isinstance(outcome, str):
            self.clinicea_errors.labels(operation, outcome).inc()
        elif outcome == 401 or outcome == 429 or outcome >= 500:
            self.clinicea_errors.labels(operation, str(outcome)).inc()
        times = request_times.get()  # the webhook's, also in its helper threads (copied context)
        if times is not None:
            times.add(seconds)

    def apology(self, reason: str) -> None:
        """Count one apology (`ivr.calls`); unknown reasons count as "other"."""
        label = reason.strip().lower().replace(" ", "_").replace("callsid", "call_sid")
        self.apologies.labels(label if label in APOLOGY_REASONS else "other").inc()

    # -- the reminder sender's hooks (`ivr.reminders`, the reminder call's status callback)

    def reminder_sent(self, channel: str) -> None:
        """Count one reminder handed to Twilio: a call placed or a text accepted."""
        self.reminders_sent.labels(channel if channel in REMINDER_CHANNELS else "other").inc()

    def reminder_call_ended(self, call_status: str) -> None:
        """Count one reminder call's end by Twilio's final `CallStatus`."""
        label = call_status if call_status in REMINDER_CALL_STATUSES else "other"
        self.reminder_calls.labels(label).inc()

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

    def sample(self, name: str, **labels: str) -> float:
        """One sample of this process's own figures (0 when absent): tests and the CLI."""
        return self.registry.get_sample_value(name, labels) or 0.0
