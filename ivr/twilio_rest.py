"""Twilio's REST API: text messages (Messages API) and outbound calls, one request each.

`TwilioSms.create` posts one message and never retries on its own (the send pass in
`ivr.texts` decides, from the class of the error, whether a second request is safe):

- `SmsRefused`: Twilio answered with a 4xx (a bad or unsubscribed number, a from-number it does
  not accept): it did not take the message, and sending it again would not help.
- `SmsNotSent`: it certainly did not reach Twilio, or Twilio said it did not take it (429,
  503, no connection): safe to try again later.
- `SmsOutcomeUnknown`: the request may have reached Twilio and the answer was lost (a read
  timeout, a dropped connection, any other 5xx): Twilio may have sent it, so sending again
  could text the patient twice.

Outbound calls (appointment reminders, docs/reminders.md) go through the same REST client:
`TwilioCalls.create` posts one `Calls.create` request (To, From, Url, StatusCallback with its
events, MachineDetection) and sorts its failures the same way (`CallRefused`, `CallNotPlaced`,
`CallOutcomeUnknown`: an unknown outcome may have rung the patient, so it is never placed
again on its own). `CallPacer` keeps one process's calls under the account's calls-per-second
limit; `SharedCallPacer` keeps every process's together under it, through slots it takes from a
shared queue (the store's `take_call_slot`, handed in as a callable so this module stays the
owner of Twilio only).

Logs never carry the number or the text.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

SMS_TIMEOUT_SECONDS = 5.0
#: HTTP answers of Twilio that say it did not process the request (so a retry is safe).
_NOT_PROCESSED = frozenset({429, 503})


class SmsError(Exception):
    """A text was not confirmed by Twilio; `str()` is the reason shown to agents."""


class SmsRefused(SmsError):
    """Twilio refused the message (4xx): it will not be sent."""


class SmsNotSent(SmsError):
    """Twilio did not take the message (429, 503, no connection): safe to try again."""


class SmsOutcomeUnknown(SmsError):
    """The request may have reached Twilio; whether the text went out is unknown."""


class TwilioSms:
    """Sends texts from the clinic's Twilio number."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        # max_retries stays at requests' default (no retry): a second POST could be a second text.
        self._client = Client(account_sid, auth_token,
                              http_client=TwilioHttpClient(timeout=SMS_TIMEOUT_SECONDS))

    def create(self, *, to: str, from_: str, body: str) -> str:
        """Post one message; its Twilio SID, or one of the `SmsError`s (module docstring)."""
        message = _classified(
            lambda: self._client.messages.create(to=to, from_=from_, body=body),
            refused=SmsRefused, not_sent=SmsNotSent, unknown=SmsOutcomeUnknown,
        )
        return str(message.sid or "")


_T = TypeVar("_T")


def _classified(
    request: Callable[[], _T], *, refused: type[Exception], not_sent: type[Exception],
    unknown: type[Exception],
) -> _T:
    """Run one REST request; a failure becomes `refused` (4xx), `not_sent` (certainly not
    taken: 429, 503, no connection) or `unknown` (may have been taken)."""
    try:
        return request()
    except TwilioRestException as exc:
        reason = f"Twilio answered {exc.status}" + (f" (error {exc.code})" if exc.code else "")
        detail = (exc.msg or "").strip()
        if detail:
            reason += f": {detail[:200]}"
        if 400 <= exc.status < 500 and exc.status not in _NOT_PROCESSED:
            raise refused(reason) from exc
        if exc.status in _NOT_PROCESSED:
            raise not_sent(reason) from exc
        raise unknown(reason) from exc
    except requests.exceptions.ConnectTimeout as exc:
        raise not_sent("no connection to Twilio (timed out)") from exc
    except requests.exceptions.ConnectionError as exc:
        if _never_connected(exc):
            raise not_sent("no connection to Twilio") from exc
        raise unknown("the connection to Twilio dropped before its answer") from exc
    except requests.exceptions.Timeout as exc:
        raise unknown("no answer from Twilio in time") from exc
    except requests.exceptions.RequestException as exc:
        raise unknown(f"request to Twilio failed: {type(exc).__name__}") from exc


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before anything was sent (refused, no route, DNS)."""
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(inner, NewConnectionError)  # NameResolutionError is one too


# --- outbound calls (appointment reminders) --------------------------------------------------

#: Call progress events the reminder worker follows (Twilio sends only "completed" by default).
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")


class CallError(Exception):
    """A call was not confirmed by Twilio; `str()` is the reason shown to agents."""


class CallRefused(CallError):
    """Twilio refused the call (4xx: a bad number, a from-number it does not accept)."""


class CallNotPlaced(CallError):
    """Twilio did not take the call (429, 503, no connection): safe to try again."""


class CallOutcomeUnknown(CallError):
    """The request may have reached Twilio: the patient may be ringing. Never placed again on
    its own (a patient must not get two reminder calls)."""


@dataclass(frozen=True)
class OutboundCall:
    """One reminder call to place.

    `url`: our webhook Twilio fetches when the patient answers (it carries the reminder's id);
    `status_callback`: where the progress events go; `machine_detection`: "DetectMessageEnd"
    answers a machine after its greeting and beep (so the short message is recorded whole) and
    a person at once; `ring_seconds`: how long it rings before "no-answer"."""

    to: str
    from_: str
    url: str
    status_callback: str
    machine_detection: str = "DetectMessageEnd"
    ring_seconds: int = 30
    events: tuple[str, ...] = CALL_EVENTS


class TwilioCalls:
    """Places outbound calls from the clinic's Twilio number (one request, never retried)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self._client = Client(account_sid, auth_token,
                              http_client=TwilioHttpClient(timeout=SMS_TIMEOUT_SECONDS))

    def create(self, call: OutboundCall) -> str:
        """Post one `Calls.create`; its CallSid, or one of the `CallError`s."""
        created = _classified(
            lambda: self._client.calls.create(
                to=call.to, from_=call.from_, url=call.url, method="POST",
                status_callback=call.status_callback, status_callback_method="POST",
                status_callback_event=list(call.events),
                machine_detection=call.machine_detection, timeout=call.ring_seconds,
            ),
            refused=CallRefused, not_sent=CallNotPlaced, unknown=CallOutcomeUnknown,
        )
        return str(created.sid or "")


class Pacer(Protocol):
    """What the send pass calls before each call."""

    def wait(self) -> object:
        """Block until the next call may be placed, and claim that moment."""


class CallPacer:
    """Spaces one process's calls to at most `per_second` a second (Twilio's default account
    limit is 1; `SharedCallPacer` keeps several processes together under it).

    `wait()` before each call sleeps only as long as needed: the n-th call of a run starts no
    sooner than n / per_second seconds after the first. Clock and sleep are injected (tests)."""

    def __init__(
        self,
        per_second: float = 1.0,
        *,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.gap = 1.0 / per_second
        self._monotonic = monotonic
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Block until the next call may be placed, and claim that moment."""
        now = self._monotonic()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.gap


def utc_now() -> datetime:
    """The wall clock as naive UTC (the store's time convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


class SharedCallPacer:
    """Spaces the calls of every process on one account to at most `per_second` a second.

    `take_slot(now, gap)` reserves the account's next moment in a queue every process shares
    and returns it (naive UTC: `Store.take_call_slot` with the account's key); `wait()` takes
    one and sleeps until it. The slots are handed out `gap` apart by the queue, so two
    processes never start calls closer together than that, whoever asks first. Clock and sleep
    are injected (tests)."""

    def __init__(
        self,
        take_slot: Callable[[datetime, timedelta], datetime],
        per_second: float = 1.0,
        *,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.gap = timedelta(seconds=1.0 / per_second)
        self._take_slot = take_slot
        self._now = now
        self._sleep = sleep

    def wait(self) -> datetime:
        """Block until this process's next call may be placed; the slot it was given."""
        slot = self._take_slot(self._now(), self.gap)
        # Slept against the clock read after the store answered: a slow answer waits less.
        ahead = (slot - self._now()).total_seconds()
        if ahead > 0:
            self._sleep(ahead)
        return slot
