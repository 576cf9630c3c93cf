"""Booking confirmations by text message, through Twilio's Messages API.

Best effort by design: a text that fails must never undo or delay a booking, so sending runs
on a background thread and failures are logged (without the number or the text).
"""

from __future__ import annotations

import logging
import threading

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.phone import mask

log = logging.getLogger(__name__)
SMS_TIMEOUT_SECONDS = 5.0


class TwilioSms:
    """Sends texts from the clinic's Twilio number."""

    def __init__(self, account_sid: str, auth_token: str, *, background: bool = True) -> None:
        self._client = Client(account_sid, auth_token,
                              http_client=TwilioHttpClient(timeout=SMS_TIMEOUT_SECONDS))
        self._background = background

    def send(self, *, to: str, from_: str, body: str) -> None:
        """Queue one text; returns at once unless built with `background=False`."""
        if self._background:
            threading.Thread(target=self._send, args=(to, from_, body), daemon=True,
                             name="sms").start()
        else:
            self._send(to, from_, body)

    def _send(self, to: str, from_: str, body: str) -> None:
        try:
            self._client.messages.create(to=to, from_=from_, body=body)
            log.info("confirmation text sent to %s", mask(to))
        except Exception as exc:  # any failure: logged, never raised into a call
            log.warning("confirmation text to %s failed: %s", mask(to), type(exc).__name__)
