"""How Twilio's requests reach the app: signing, sending, cookies and HTTP redirects.

Every request is signed (``X-Twilio-Signature``) over the exact URL put on the wire (absolute,
fragment stripped) plus the form parameters. Connection overrides in a URL's fragment
(``#ct=..&rt=..&tt=..&rc=..``) set the timeouts and connect retries. A 3xx is followed with GET
and no parameters (307/308: same method, standard parameters only); either way the verb's
parameters (``Digits``...) are dropped and an ``http-redirect`` warning is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin

import httpx
from twilio.request_validator import RequestValidator

from ivr.simulator.events import Event, Warning

MAX_HTTP_REDIRECTS: Final = 10


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for ``url`` + form ``params``."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def raw_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Section 9.1 by hand: HMAC-SHA1 of url + sorted name+value pairs, base64 (no dedup)."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def hex32(rng: random.Random | None, lock: threading.Lock) -> str:
    """32 hex digits for a SID: from ``rng`` (deterministic) or, without one, from secrets."""
    if rng is None:
        import secrets

        return secrets.token_hex(16)
    with lock:
        return f"{rng.getrandbits(128):032x}"


@dataclass(frozen=True)
class Fetch:
    """A TwiML document to request: the first webhook, a verb's action, or the fallback."""

    url: str  # absolute, fragment kept (stripped when sent)
    method: str = "POST"
    extra: Mapping[str, str] = field(default_factory=dict)
    fallback: bool = False


class FetchError(Exception):
    """A fatal fetch or parse failure with its Twilio error code (e.g. 11200, 12100)."""

    def __init__(self, code: int, text: str, url: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.url = url


class Signer(Protocol):
    """What sending needs of the simulator, read at each request (tests change them mid-call)."""

    http: httpx.Client

    def signing_url(self, wire_url: str) -> str: ...

    def sign(self, url: str, params: Mapping[str, str]) -> str: ...


class Line:
    """One call's requests: signed and sent, recorded, with the call's own cookie jar."""

    def __init__(self, sim: Signer) -> None:
        self.sim = sim
        self.cookies = httpx.Cookies()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.latencies: list[float] = []

    def send(self, method: str, url: str, params: Mapping[str, str]) -> httpx.Response:
        """Sign and send one request; records it; handles the per-call cookie jar."""
        url, frag = urldefrag(url)
        timeout, retries = overrides(frag)
        if method == "GET":
            request = self.sim.http.build_request("GET", append_query(url, params),
                                                  timeout=timeout)
            signed: Mapping[str, str] = {}
        else:
            request = self.sim.http.build_request(method, url, data=dict(params),
                                                  timeout=timeout)
            signed = params
        wire_url = str(request.url)
        request.headers["X-Twilio-Signature"] = self.sim.sign(self.sim.signing_url(wire_url),
                                                              signed)
        request.headers["User-Agent"] = "TwilioProxy/1.1"
        if "Cookie" in request.headers:
            del request.headers["Cookie"]  # the shared client's jar: not this call's
        self.cookies.set_cookie_header(request)
        self.requests.append((method, wire_url, dict(params)))
        t0 = time.perf_counter()
        try:
            for attempt in range(retries + 1):  # only TCP-connect failures are retried
                try:
                    response = self.sim.http.send(request, follow_redirects=False)
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    if attempt == retries:
                        raise
        finally:
            self.latencies.append(time.perf_counter() - t0)
        self.cookies.extract_cookies(response)
        return response

    def fetch(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        standard: Mapping[str, str],
        transcript: list[Event],
    ) -> tuple[httpx.Response, str]:
        """Request a TwiML document, following HTTP redirects; returns the answer and its URL.

        ``standard``: the call's standard parameters, all a 307/308 resends. Transport failures
        and redirect loops raise :class:`FetchError`.
        """
        response: httpx.Response | None = None
        for hop in range(MAX_HTTP_REDIRECTS + 1):
            try:
                response = self.send(method, url, params)
            except (httpx.TimeoutException, httpx.ConnectError) as exc:
                raise FetchError(11205, f"connection failure or timeout: {exc!r}", url) from exc
            except httpx.TransportError as exc:
                raise FetchError(11200, f"HTTP retrieval failure: {exc!r}", url) from exc
            if not (response.is_redirect and "location" in response.headers):
                break
            if hop == MAX_HTTP_REDIRECTS:
                raise FetchError(11215, "more than 10 HTTP redirects", url)
            target = urljoin(urldefrag(url)[0], response.headers["location"])
            dropped = sorted(set(params) - set(standard))
            if response.status_code in (307, 308):
                params = dict(standard)
            else:
                method, params = "GET", {}
            transcript.append(
                Warning(
                    "http-redirect",
                    f"HTTP {response.status_code} from {url} to {target}: followed with "
                    f"{method}, request body dropped"
                    + (f" ({', '.join(dropped)} not resent)" if dropped else ""),
                )
            )
            url = target
        assert response is not None
        return response, url


def append_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query string (GET webhooks)."""
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(list(params.items()))


def overrides(fragment: str) -> tuple[httpx.Timeout, int]:
    """Twilio connection overrides in the URL fragment (``#ct=..&rt=..&tt=..&rc=..``, ms).

    Returns the timeout (Twilio's defaults: connect 5 s, whole request 15 s) and how many times
    a TCP-connect failure is retried (default 1: "two 5-second attempts").
    """
    values = dict(parse_qsl(fragment)) if fragment else {}
    try:
        ct = int(values.get("ct", 5000)) / 1000
        rt = int(values.get("rt", 15000)) / 1000
        tt = int(values.get("tt", 15000)) / 1000
        rc = min(max(int(values.get("rc", 1)), 0), 5)
    except ValueError:
        ct, rt, tt, rc = 5.0, 15.0, 15.0, 1
    return httpx.Timeout(min(tt, rt), connect=ct), rc
