"""Twilio request signatures: which URL Twilio signed, and whether the signature matches.

Behind a TLS-terminating proxy the app sees `http://` while Twilio signed `https://`. Two
ways out, both explicit: `IVR_PUBLIC_URL` (the public base URL; the request's path and query
are appended to it), or trusting `X-Forwarded-Proto`/`Host` for a configured number of proxy
hops (`IVR_PROXY_HOPS`, applied by Werkzeug's ProxyFix in `ivr.app`). Like Twilio's
`RequestValidator`, the URL is tried with and without the default port.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from hashlib import sha1
from urllib.parse import quote, urlparse

from flask import Request
from twilio.request_validator import add_port, remove_port


def signed_url(request: Request, public_url: str | None) -> str:
    """The URL Twilio signed for this request.

    `public_url` is the app's public base URL, mount prefix included (the same base the action
    URLs are built on), so the prefix the server passes as SCRIPT_NAME is not added again.
    """
    if not public_url:
        return request.url
    path = quote(request.path, safe="/:@!$&'()*+,;=-._~")
    query = request.query_string.decode("latin-1")
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")


def is_valid(request: Request, auth_token: str, public_url: str | None) -> bool:
    """Whether `X-Twilio-Signature` matches this request's URL and form parameters."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not auth_token:
        return False
    params = request.form if request.method == "POST" else {}
    return signature_matches(auth_token, signed_url(request, public_url), params, signature)


def signature_matches(
    auth_token: str, url: str, params: Mapping[str, str], signature: str
) -> bool:
    """Twilio's HMAC-SHA1 check (`RequestValidator.validate` for form parameters), cheaper.

    The same URLs are accepted: without the default port, then with it. Unlike the library,
    the parameter string is built once and the second HMAC only computed when the first does
    not match (the library computes both, and looks every parameter up through two failing
    attribute probes before it finds werkzeug's `getlist`).
    """
    payload = "".join(
        name + value for name in sorted(set(params)) for value in sorted(set(_values(params, name)))
    )
    expected = signature.encode("utf-8")
    key = auth_token.encode("utf-8")
    parsed = urlparse(url)
    for candidate in (remove_port(parsed), add_port(parsed)):
        mac = hmac.new(key, (candidate + payload).encode("utf-8"), sha1)
        if hmac.compare_digest(base64.b64encode(mac.digest()), expected):
            return True
    return False


def _values(params: Mapping[str, str], name: str) -> list[str]:
    getlist = getattr(params, "getlist", None)  # werkzeug's MultiDict: every repeated value
    return getlist(name) if getlist is not None else [params[name]]
