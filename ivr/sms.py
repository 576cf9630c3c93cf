"""Text messages through Twilio's Messages API: one request per call, its answer classified.

`TwilioSms.create` posts one message and never retries on its own (the send pass in
`ivr.texts` decides, from the class of the error, whether a second request is safe):

- `SmsRefused`: Twilio answered with a 4xx (a bad or unsubscribed number, a from-number it does
  not accept): it did not take the message, and sending it again would not help.
- `SmsNotSent`: it certainly did not reach Twilio, or Twilio said it did not take it (429,
  503, no connection): safe to try again later.
- `SmsOutcomeUnknown`: the request may have reached Twilio and the answer was lost (a read
  timeout, a dropped connection, any other 5xx): Twilio may have sent it, so sending again
  could text the patient twice.

Logs never carry the number or the text.
"""

from __future__ import annotations

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
        try:
            message = self._client.messages.create(to=to, from_=from_, body=body)
        except TwilioRestException as exc:
            reason = f"Twilio answered {exc.status}" + (f" (error {exc.code})" if exc.code else "")
            detail = (exc.msg or "").strip()
            if detail:
                reason += f": {detail[:200]}"
            if 400 <= exc.status < 500 and exc.status not in _NOT_PROCESSED:
                raise SmsRefused(reason) from exc
            if exc.status in _NOT_PROCESSED:
                raise SmsNotSent(reason) from exc
            raise SmsOutcomeUnknown(reason) from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise SmsNotSent("no connection to Twilio (timed out)") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise SmsNotSent("no connection to Twilio") from exc
            raise SmsOutcomeUnknown("the connection to Twilio dropped before its answer") from exc
        except requests.exceptions.Timeout as exc:
            raise SmsOutcomeUnknown("no answer from Twilio in time") from exc
        except requests.exceptions.RequestException as exc:
            raise SmsOutcomeUnknown(f"request to Twilio failed: {type(exc).__name__}") from exc
        return str(message.sid or "")


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection failed before anything was sent (refused, no route, DNS)."""
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
    return isinstance(inner, NewConnectionError)  # NameResolutionError is one too
