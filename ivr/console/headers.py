"""Security headers for the console and the API (no inline script may run)."""

from __future__ import annotations

from flask import Response

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def add_security_headers(response: Response) -> Response:
    """Set the headers above (static files may be cached: they hold no patient data)."""
    for name, value in HEADERS.items():
        if name == "Cache-Control" and response.headers.get("Cache-Control"):
            continue
        response.headers[name] = value
    return response
