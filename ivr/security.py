"""Twilio request signatures: which URL Twilio signed, and whether the signature matches.

The check itself is Twilio's `RequestValidator`: the account Auth Token with HMAC-SHA1 (the
classic `X-Twilio-Signature`), or a SharedKey secret with the algorithm the
`X-Twilio-Webhooks-Signature-Settings` header names (HMAC-SHA256 today). Security code follows
the vendor; what this module adds is the URL. Behind a TLS-terminating proxy the app sees
`http://` while Twilio signed `https://`. Two ways out, both explicit: `IVR_PUBLIC_URL` (the
public base URL; the request's path and query are appended to it), or trusting
`X-Forwarded-Proto`/`Host` for a configured number of proxy hops (`IVR_PROXY_HOPS`, applied by
Werkzeug's ProxyFix in `ivr.app`).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)


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


def is_valid(request: Request, auth_token: str, public_url: str | None,
             shared_key: str | None = None) -> bool:
    """Whether this request's signature matches its URL and form parameters.

    A request carrying `X-Twilio-Webhooks-Signature-Settings` was signed with a SharedKey:
    it is checked with `shared_key` (none configured: refused) and the algorithm the header
    names; any other request with the Auth Token and HMAC-SHA1. An empty secret validates
    nothing.
    """
    signature = request.headers.get(SIGNATURE_HEADER, "")
    settings_header = request.headers.get(SIGNATURE_SETTINGS_HEADER)
    secret = shared_key if settings_header is not None else auth_token
    if not signature or not secret:
        return False
    params = request.form if request.method == "POST" else {}
    return RequestValidator(secret).validate(
        signed_url(request, public_url), params, signature,
        algorithm=get_signature_algorithm(settings_header))
