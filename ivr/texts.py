"""Confirmation texts, never lost and never doubled: queued with the booking, sent by the worker.

1. **Queued before the booking.** When a call books and the clinic texts confirmations, the
   text is written to the store (`Store.queue_text`, one row per booking, keyed by the
   booking's idempotency key) before the booking row itself. So a booking can never become
   booked without its text, and a text whose booking never gets booked is never sent. A
   booking the worker finishes later ("recorded" on the call) is texted when it is booked.
2. **Sent by the booking worker.** `TextSender.run_once`, called from the worker loop after
   each outbox pass, claims the due texts of booked bookings. Claiming marks a row `sending`
   and commits that BEFORE Twilio is asked, then posts it once and records the answer:
   `sent` (with Twilio's SID), `retrying` (Twilio certainly did not take it: 429, 503, no
   connection; at most `max_attempts` tries, with jittered backoff), `failed` (Twilio refused
   it, 4xx; or out of tries), or `unknown`.
3. **Unknown is never resent on its own.** If Twilio's answer is lost (read timeout, dropped
   connection, other 5xx), or the process stopped while a row was `sending` (after
   `stale_after` it is found by the next pass), Twilio may already have sent the text. A
   second text with the same appointment is confusing but harmless, a silent double send
   on every hiccup is not what a clinic expects, and Twilio's own message log can tell: so
   the row goes to `unknown`, and agents see it (console outbox, API booking JSON) with a
   "send again" button for when Twilio's log shows it was not sent.

The trade-off: a crash in the instant between the `sending` mark and the request leaves a
text that was never sent marked `unknown` (an agent resends it); nothing is ever sent twice
without a person deciding to. Logs never carry the number or the text.
"""

from __future__ import annotations

import logging
import random
import time as _time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ivr.twilio_rest import SmsNotSent, SmsOutcomeUnknown, SmsRefused

if TYPE_CHECKING:
    from ivr.store import Store, TextRecord
    from ivr.twilio_rest import TwilioSms

log = logging.getLogger(__name__)

#: `last_error` of a text whose sender stopped while it was with Twilio.
STOPPED_WHILE_SENDING = (
    "the sender stopped while Twilio had it: it may have been sent; not resent on its own "
    "(check Twilio's message log, then send again if it is not there)"
)
#: Statuses agents must look at.
NEEDS_AGENT = ("failed", "unknown")


class TextSender:
    """The send pass of confirmation texts (module docstring); one per worker process."""

    def __init__(
        self,
        store: Store,
        sms: TwilioSms,
        *,
        worker_id: str,
        max_attempts: int = 5,
        backoff_seconds: float = 30.0,
        backoff_max_seconds: float = 900.0,
        stale_after: timedelta = timedelta(minutes=2),
        batch: int = 20,
        jitter: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> None:
        """`stale_after` must outlast one Twilio request (`ivr.twilio_rest.SMS_TIMEOUT_SECONDS` for
        connecting plus as much for the answer), so a live sender's row is never called
        stopped."""
        self.store = store
        self.sms = sms
        self.worker_id = worker_id
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.stale_after = stale_after
        self.batch = batch
        self._jitter = jitter
        self._monotonic = monotonic
        self._last_expiry: float | None = None

    def run_once(self) -> int:
        """Send the due texts; returns how many were handed to Twilio."""
        now = self._monotonic()
        every = self.stale_after.total_seconds() / 4
        if self._last_expiry is None or now - self._last_expiry >= every:
            self._last_expiry = now
            stopped = self.store.expire_sending_texts(self.stale_after, STOPPED_WHILE_SENDING)
            if stopped:
                log.warning("%d confirmation text(s) left sending by a stopped sender: "
                            "marked unknown, not resent", stopped)
        records = self.store.claim_due_texts(worker=self.worker_id, limit=self.batch)
        for record in records:
            try:
                self.send(record)
            except Exception:  # one bad row must not stop the others; it expires to unknown
                log.exception("text of booking %s: sending failed", record.booking_key)
        return len(records)

    def send(self, record: TextRecord) -> str:
        """Post one claimed text once and record Twilio's answer; returns the new status."""
        key = record.booking_key
        try:
            sid = self.sms.create(to=record.to_e164, from_=record.from_e164, body=record.body)
        except SmsRefused as exc:
            return self._finish(key, "failed", f"Twilio refused it: {exc}")
        except SmsNotSent as exc:
            if record.attempts >= self.max_attempts:
                return self._finish(key, "failed",
                                    f"not sent after {record.attempts} attempts: {exc}")
            delay = self._delay(record.attempts)
            return self._finish(key, "retrying", f"not sent: {exc}",
                                next_attempt_at=self.store.now() + delay)
        except SmsOutcomeUnknown as exc:
            return self._finish(key, "unknown",
                                f"{exc}: it may have been sent; not resent on its own")
        self.store.finish_text(key, "sent", twilio_sid=sid)
        log.info("text of booking %s: sent (%s)", key, sid)
        return "sent"

    def _finish(
        self, key: str, status: str, error: str, *, next_attempt_at: datetime | None = None
    ) -> str:
        self.store.finish_text(key, status, error=error, next_attempt_at=next_attempt_at)
        log.warning("text of booking %s: %s (%s)", key, status, error)
        return status

    def _delay(self, attempts: int) -> timedelta:
        """Doubling backoff, capped, with jitter so that many texts do not retry in lockstep."""
        base = min(self.backoff_seconds * 2 ** min(max(attempts - 1, 0), 20),
                   self.backoff_max_seconds)
        return timedelta(seconds=base * (0.5 + self._jitter() / 2))


def send_again(store: Store, booking_key: str) -> bool:
    """An agent checked Twilio's log: queue a `failed` or `unknown` text for one more try."""
    return store.finish_text(booking_key, "retrying", error=None,
                             from_statuses=NEEDS_AGENT)
