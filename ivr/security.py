"""Twilio request signatures: which URL Twilio signed, and whether the signature matches.

Behind a TLS-terminating proxy the app sees `http://` while Twilio signed `https://`. Two
ways out, both explicit: `IVR_PUBLIC_URL` (the public base URL; the request's path and query
are appended to it), or trusting `X-Forwarded-Proto`/`Host` for a configured number of proxy
hops (`IVR_PROXY_HOPS`, applied by Werkzeug's ProxyFix in `ivr.app`). Twilio's
`RequestValidator` also tries the URL with and without the default port.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Request
from twilio.request_validator import RequestValidator


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
    return RequestValidator(auth_token).validate(signed_url(request, public_url), params, signature)
