"""A Twilio number's settings as Twilio holds them, and what follows from them alone.

The webhook URLs, auth token and HTTP client of one number; SIDs (deterministic with a seed);
the URL Twilio signs (``signing_base_url`` signs for a public URL while sending to ``base_url``,
as behind a TLS-terminating proxy); the standard webhook parameters (``CallSid``, ``From``,
``To``, ``CallStatus``, ``Direction``, ``ApiVersion``, geo fields...) and the status callback's;
single raw webhooks for security tests. Placing calls is :class:`~ivr.simulator.TwilioSimulator`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final, Self
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from ivr.simulator.wire import append_query, hex32

API_VERSION: Final = "2010-04-01"
DEFAULT_ACCOUNT_SID: Final = "AC" + "c11c1c0de5a11ab1e5eed5c0ffee0001"
_COUNTRY_PREFIXES = (("+92", "PK"), ("+44", "GB"), ("+1", "US"), ("+971", "AE"), ("+91", "IN"))
_AUTO: Any = object()


class TwilioNumber:
    """A Twilio number as Twilio holds it: its webhook URLs, the auth token, the HTTP client.

    ``http``: the client to send with (tests: ``httpx.Client(transport=httpx.WSGITransport(app))``);
    None builds one with Twilio's 15 s timeout. URLs may be relative to ``base_url``.
    ``seed``/``rng`` make CallSids deterministic. ``now`` gives the call's start time (UTC).
    """

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        http: httpx.Client | None = None,
        *,
        to: str = "+922135550199",
        voice_url: str = "/voice/incoming",
        voice_method: str = "POST",
        status_callback: str | None = "/voice/status",
        status_callback_method: str = "POST",
        fallback_url: str | None = "/voice/fallback",
        fallback_method: str = "POST",
        signing_base_url: str | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        seed: int | None = None,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
        geo: bool = True,
        max_fetches_per_turn: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.auth_token = auth_token
        self._own_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=15.0)
        self.to = to
        self.voice_url = voice_url
        self.voice_method = voice_method.upper()
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method.upper()
        self.fallback_url = fallback_url
        self.fallback_method = fallback_method.upper()
        self.signing_base_url = signing_base_url.rstrip("/") + "/" if signing_base_url else None
        self.account_sid = account_sid
        self._rng = rng if rng is not None else (random.Random(seed) if seed is not None else None)
        self._rng_lock = threading.Lock()
        self._now = now or (lambda: datetime.now(UTC))  # aware UTC; naive is taken as UTC
        self.geo = geo
        self.max_fetches_per_turn = max_fetches_per_turn
        self._validator = RequestValidator(auth_token)

    # -- lifecycle

    def close(self) -> None:
        """Close the HTTP client if the simulator created it."""
        if self._own_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers

    def new_sid(self, prefix: str = "CA") -> str:
        """A fresh SID (``prefix`` + 32 hex); deterministic with ``seed``/``rng``."""
        return prefix + hex32(self._rng, self._rng_lock)

    def absolute(self, url: str) -> str:
        """``url`` made absolute against ``base_url`` (keeps a base path prefix, like httpx)."""
        if urlsplit(url).scheme:
            return url
        return urljoin(self.base_url, url.lstrip("/"))

    def signing_url(self, wire_url: str) -> str:
        """The URL Twilio signs for ``wire_url`` (rewritten to ``signing_base_url`` if set)."""
        wire_url = urldefrag(wire_url)[0]
        if self.signing_base_url and wire_url.startswith(self.base_url):
            return self.signing_base_url + wire_url[len(self.base_url):]
        if self.signing_base_url and wire_url + "/" == self.base_url:
            return self.signing_base_url.rstrip("/")
        return wire_url

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """Signature for ``url`` (as it appears to Twilio) and form ``params``."""
        return self._validator.compute_signature(url, dict(params))

    def webhook_params(
        self, from_: str = "+923216315551", *, to: str | None = None,
        call_sid: str | None = None, call_status: str = "ringing", **extra: str,
    ) -> dict[str, str]:
        """The standard parameters of a webhook (for hand-made requests with :meth:`post_raw`)."""
        to = to or self.to
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid or self.new_sid(),
            "CallStatus": call_status,
            "Called": to,
            "Caller": from_,
            "Direction": "inbound",
            "From": from_,
            "To": to,
        }
        if self.geo:
            fc, tc = _country(from_), _country(to)
            for side, country in (("From", fc), ("Caller", fc), ("To", tc), ("Called", tc)):
                params[f"{side}Country"] = country
                for geo in ("City", "State", "Zip"):
                    params[f"{side}{geo}"] = ""
        params.update(extra)
        return params

    def post_raw(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = _AUTO,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        """Send one raw webhook and return the response (security tests).

        ``signature`` default: a valid one; ``None``: no header; a string: sent as is.
        For GET the params go in the query string and the URL alone is signed.
        """
        url = urldefrag(self.absolute(path))[0]
        method = method.upper()
        if method == "GET":
            url = append_query(url, params)
            request = self.http.build_request("GET", url)
            signed_params: Mapping[str, str] = {}
        else:
            request = self.http.build_request(method, url, data=dict(params))
            signed_params = params
        if signature is _AUTO:
            signature = self.sign(self.signing_url(str(request.url)), signed_params)
        if signature is not None:
            request.headers["X-Twilio-Signature"] = signature
        for k, v in (headers or {}).items():
            request.headers[k] = v
        return self.http.send(request)


def _country(number: str) -> str:
    for prefix, code in _COUNTRY_PREFIXES:
        if number.startswith(prefix):
            return code
    return ""


def status_callback_params(status: str, duration: int, started_at: datetime) -> dict[str, str]:
    """The status callback's own parameters when a call ends with ``status``.

    A call never answered lasted 0 s; ``Duration`` (whole minutes) only for a completed call.
    """
    never_answered = status in ("busy", "no-answer", "failed", "canceled")
    duration = 0 if never_answered else duration
    extra = {
        "CallDuration": str(duration),
        "Timestamp": format_datetime(
            (started_at + timedelta(seconds=duration)).astimezone(UTC), usegmt=False
        ),
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    if status == "completed":
        extra["Duration"] = str(max(1, -(-duration // 60)))
    return extra
